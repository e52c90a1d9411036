"""Flyte input literals, as protobuf messages, → plain Python values, without unpickling or running user code.

Works on the ``Literal`` messages of both Flyte IDLs (``flyteidl.core.literals_pb2`` for flytekit 1,
``flyteidl2.core.literals_pb2`` for Flyte 2: the same field names), read by field name, so this module imports
neither. Literals lose Python types: a ``date`` arrives as a UTC ``datetime``, a dataclass or ``dict`` as
msgpack, an enum as its member's name, and ``bytes``/``Decimal``/``time`` (and any class Flyte does not know)
as a cloudpickle — inline (``Binary`` without a tag, Flyte 2) or in a file (a ``Blob`` of format
``PythonPickle``). This module only undoes the transport — lists, maps, unions, primitives, msgpack, generic
records, pickles — and leaves the values plain; the types the task recorded shape them afterwards
(:func:`flyte_bigquery_core.params.query_parameters`). A file, directory or structured dataset becomes a
:class:`~flyte_bigquery_core.sources.SourceRef` of its URI (nothing is read): a load task's source, which a
query refuses (:func:`flyte_bigquery_core.planning.plan_query`).

Pickles are decoded by :func:`flyte_bigquery_core.safe_pickle.load_restricted` only, which understands bytes,
decimals and date/time values and refuses everything else. ``pickle.loads`` is never called: a pickle runs any
callable it names, with the service's BigQuery credentials. Pickle *files* are read by the adapter (its SDK
knows the blob store): :func:`pickle_uris` lists them, the adapter reads them (at most
:data:`MAX_PICKLED_INPUT_BYTES` each) and hands their content to :func:`plain_values`.

Errors name the task and the input, never the value.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

from .bigquery_types import SUPPORTED_TYPES
from .errors import PermanentError, UnsupportedInputError, about_task
from .safe_pickle import load_restricted
from .sources import SourceRef

__all__ = ["MAX_PICKLED_INPUT_BYTES", "PICKLE_FORMAT", "pickle_uris", "plain_values"]

#: BigQuery caps a query request at about 10 MB, so a larger pickled input cannot be a parameter anyway; the
#: cap also bounds what a malformed request can make a service read.
MAX_PICKLED_INPUT_BYTES = 16 * 2**20

#: ``BlobType.BlobDimensionality.MULTIPART`` (a directory) in flyteidl and flyteidl2 alike.
_MULTIPART = 1
#: The blob format Flyte gives a file holding a cloudpickle.
PICKLE_FORMAT = "PythonPickle"
_MSGPACK_TAG = "msgpack"


def _kind(message: Any) -> str | None:
    kind: str | None = message.WhichOneof("value")
    return kind


def _pickle_uri(literal: Any) -> str | None:
    if _kind(literal) != "scalar" or _kind(literal.scalar) != "blob":
        return None
    blob = literal.scalar.blob
    return str(blob.uri) if blob.metadata.type.format == PICKLE_FORMAT else None


def _children(literal: Any) -> Iterator[Any]:
    kind = _kind(literal)
    if kind == "collection":
        yield from literal.collection.literals
    elif kind == "map":
        yield from literal.map.literals.values()
    elif kind == "scalar" and _kind(literal.scalar) == "union":
        yield literal.scalar.union.value


def pickle_uris(literals: Mapping[str, Any]) -> dict[str, list[str]]:
    """The URIs of the pickle files among each input's literal (inside lists, maps and unions too), by input
    name, in order, once each; inputs without one are left out. What must be read before :func:`plain_values`
    can decode them."""
    found: dict[str, list[str]] = {}
    for name, literal in literals.items():
        uris: dict[str, None] = {}
        pending = [literal]
        while pending:
            item = pending.pop()
            uri = _pickle_uri(item)
            if uri is not None:
                uris.setdefault(uri)
            pending.extend(reversed(list(_children(item))))
        if uris:
            found[name] = list(uris)
    return found


def plain_values(literals: Mapping[str, Any], blobs: Mapping[str, bytes], task: str) -> dict[str, Any]:
    """Plain Python values for a task's input literals (``name → Literal`` message). ``blobs`` holds the content
    of every pickle file :func:`pickle_uris` listed, by URI. Raises :class:`UnsupportedInputError` (or
    :class:`PermanentError` for a pickle file missing from ``blobs``) naming the task and the input."""
    with about_task(task):
        return {name: _value(literal, blobs, f"input {name!r}") for name, literal in literals.items()}


def _value(literal: Any, blobs: Mapping[str, bytes], where: str) -> Any:
    kind = _kind(literal)
    if kind == "collection":
        return [_value(item, blobs, where) for item in literal.collection.literals]
    if kind == "map":
        return {key: _value(item, blobs, where) for key, item in literal.map.literals.items()}
    if kind != "scalar":
        raise UnsupportedInputError(f"{where}: unsupported literal kind {kind!r}; expected a scalar, list or map")
    return _scalar(literal, blobs, where)


def _scalar(literal: Any, blobs: Mapping[str, bytes], where: str) -> Any:
    scalar = literal.scalar
    kind = _kind(scalar)
    if kind == "union":
        return _value(scalar.union.value, blobs, where)
    if kind == "none_type":
        return None
    if kind == "primitive":
        return _primitive(scalar.primitive, where)
    if kind == "binary":
        return _binary(scalar.binary.value, scalar.binary.tag, where)
    if kind == "generic":
        from google.protobuf import json_format

        return json_format.MessageToDict(scalar.generic)
    uri = _pickle_uri(literal)
    if uri is not None:
        data = blobs.get(uri)
        if data is None:
            raise PermanentError(f"{where}: the pickled input could not be read")
        return _unpickle(data, where)
    if kind == "blob":  # a file (single blob) or a directory (multipart): its URI, never read here
        blob = scalar.blob
        multipart = int(blob.metadata.type.dimensionality) == _MULTIPART
        return SourceRef("directory" if multipart else "file", str(blob.uri))
    if kind == "structured_dataset":
        dataset = scalar.structured_dataset
        return SourceRef("dataset", str(dataset.uri), dataset.metadata.structured_dataset_type.format or None)
    raise UnsupportedInputError(f"{where}: unsupported scalar kind {kind!r}; supported types: {SUPPORTED_TYPES}")


def _primitive(primitive: Any, where: str) -> Any:
    kind = _kind(primitive)
    if kind == "datetime":
        return primitive.datetime.ToDatetime(tzinfo=datetime.timezone.utc)
    if kind == "duration":
        return primitive.duration.ToTimedelta()
    if kind is None:
        raise UnsupportedInputError(f"{where}: the primitive literal holds no value")
    return getattr(primitive, kind)


def _binary(value: bytes, tag: str, where: str) -> Any:
    if not tag:  # Flyte 2 puts a small pickle inline, untagged
        return _unpickle(value, where)
    if tag != _MSGPACK_TAG:
        raise UnsupportedInputError(f"{where}: binary literal with tag {tag!r} is not supported")
    import msgpack

    try:
        return msgpack.unpackb(value, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise UnsupportedInputError(f"{where}: the msgpack value could not be decoded ({type(e).__name__})") from None


def _unpickle(data: bytes, where: str) -> Any:
    try:
        return load_restricted(data)
    except UnsupportedInputError as e:
        raise UnsupportedInputError(f"{where}: {e}") from None
