"""What goes wrong starting the emulator: :class:`EmulatorError`, and the port clash that is retried."""

from __future__ import annotations

__all__ = ["EmulatorError"]

# What local-bigquery's log says when a port we picked was taken before it could bind it.
_PORT_CLASH_MARKERS = ("address already in use", "errno 98", "failed to add port", "failed to bind")


class EmulatorError(RuntimeError):
    """The emulator could not be found, started or reached. The message says what to do about it."""


class _PortClashError(EmulatorError):
    """Someone grabbed one of our ports between picking it and the server binding it; retry."""
