"""Where a load job reads from: the ``gs://`` URIs of a task's ``source`` input, whatever Flyte type carried it.

An adapter turns a file, directory or structured dataset literal into a :class:`SourceRef` (and passes a plain
``str`` or ``list[str]`` of URIs as is); :func:`source_uris` decides the URIs BigQuery reads: a file as itself, a
directory and a structured dataset (a folder of files, as flytekit writes them) as every object under it.
BigQuery loads only from Cloud Storage, so anything else is refused before submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError

__all__ = ["SOURCE_KINDS", "SourceRef", "source_uris"]

#: How each kind of Flyte value becomes the URI a load job reads (``{}``: the value's URI).
SOURCE_KINDS: dict[str, str] = {"file": "{}", "directory": "{}/*", "dataset": "{}/*"}
#: BigQuery allows 10,000 source URIs per load job.
MAX_SOURCE_URIS = 10_000


@dataclass(frozen=True)
class SourceRef:
    """A file, directory or structured dataset input: its ``kind`` (a key of :data:`SOURCE_KINDS`), its URI,
    and for a structured dataset the file format it was written in (``parquet``), if known."""

    kind: str
    uri: str
    format: str | None = None

    @property
    def load_uri(self) -> str:
        return SOURCE_KINDS[self.kind].format(self.uri.rstrip("/") if self.kind != "file" else self.uri)


def source_uris(value: Any, what: str) -> list[str]:
    """The ``gs://`` URIs a load job reads for input ``value`` (a :class:`SourceRef`, a URI or a list of URIs);
    :class:`InvalidTaskError` naming ``what`` (``input 'source'``) for an empty, non-GCS or malformed value.
    Errors name the URI's scheme only, never the value."""
    if isinstance(value, SourceRef):
        uris = [value.load_uri]
    elif isinstance(value, str):
        uris = [value]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        uris = list(value)
    else:
        raise InvalidTaskError(
            f"{what} is a {type(value).__name__}; expected a file, directory or dataset (flytekit: FlyteFile, "
            "FlyteDirectory, StructuredDataset; Flyte 2: flyte.io.File, Dir, DataFrame), or gs:// URI(s) as str or "
            "list[str]"
        )
    if not uris:
        raise InvalidTaskError(f"{what} holds no URI; expected at least one gs:// URI")
    if len(uris) > MAX_SOURCE_URIS:
        raise InvalidTaskError(f"{what} holds {len(uris)} URIs; a load job reads at most {MAX_SOURCE_URIS}")
    for uri in uris:
        if not uri.startswith("gs://") or len(uri) <= len("gs://") or uri.count("*") > 1:
            scheme = uri.split("://", 1)[0] + "://" if "://" in uri else "a local path"
            problem = "has more than one '*'" if uri.startswith("gs://") else f"is on {scheme}"
            raise InvalidTaskError(
                f"{what} {problem}; BigQuery loads only from Cloud Storage (gs://bucket/path, at most one '*' "
                "per URI). For a local run, put files on gs:// (e.g. pyflyte run --raw-output-data-prefix "
                "gs://bucket/prefix)"
            )
    return uris
