"""The context-manager protocol the test harnesses share (the emulator, the fault proxy, the service
process): ``with harness as h:`` starts it and, whatever happens inside the block, cleans it up."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

__all__ = ["Harness"]


class Harness:
    """Something started with :meth:`start` and stopped with :meth:`stop`, and a context manager: entering
    starts it, leaving calls :meth:`cleanup` (which stops it, and may release more)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Stop; a harness holding more than a running process or server releases that too."""
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.cleanup()
