"""Flyte input literals → plain Python values, without unpickling or running user code.

The connector only sees Flyte literals, and they lose Python type information: a ``date`` arrives as a UTC
datetime, ``bytes``/``Decimal``/``time`` as pickle files, a dataclass as msgpack. This module only undoes
the transport — lists, maps, unions, primitives, msgpack, generic records — leaving the values plain; the
types the task recorded shape them afterwards (:func:`flyte_bigquery_core.params.query_parameters`).

Pickle files are read by the caller, off the event loop, before decoding: :func:`pickled_inputs` lists
them, and :func:`plain_values` decodes the bytes read with
:func:`flyte_bigquery_core.safe_pickle.load_restricted`, which understands only bytes, decimals and
date/time values and refuses everything else. Nothing here calls ``pickle.loads``: that would run
arbitrary code with the connector's BigQuery credentials.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from flyte_bigquery_core.bigquery_types import SUPPORTED_TYPES
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError, about_task
from flyte_bigquery_core.safe_pickle import load_restricted
from flytekit import FlyteContextManager
from flytekit.models.literals import Literal, LiteralMap

__all__ = ["MAX_PICKLED_INPUT_BYTES", "input_values", "pickled_inputs", "plain_values", "read_pickles"]

#: BigQuery caps a query request at about 10 MB, so a larger pickled input cannot be a parameter anyway;
#: the cap also bounds what a malformed request can make the service read.
MAX_PICKLED_INPUT_BYTES = 16 * 2**20

_PICKLE_FORMAT = "PythonPickle"


def _pickle_uri(literal: Literal) -> str | None:
    scalar = literal.scalar
    blob = scalar.blob if scalar is not None else None
    return blob.uri if blob is not None and blob.metadata.type.format == _PICKLE_FORMAT else None


def _children(literal: Literal) -> Iterator[Literal]:
    if literal.collection is not None:
        yield from literal.collection.literals
    elif literal.map is not None:
        yield from literal.map.literals.values()
    elif literal.scalar is not None and literal.scalar.union is not None:
        yield literal.scalar.union.value


def pickled_inputs(literals: Mapping[str, Literal]) -> list[str]:
    """The URIs of every pickle file among the literals (inside lists, maps and unions too), in order, once
    each: what must be read before :func:`plain_values` can decode them."""
    uris: dict[str, None] = {}
    pending = list(reversed(list(literals.values())))
    while pending:
        literal = pending.pop()
        uri = _pickle_uri(literal)
        if uri is not None:
            uris.setdefault(uri)
        pending.extend(reversed(list(_children(literal))))
    return list(uris)


def plain_values(literals: Mapping[str, Literal], blobs: Mapping[str, bytes], task: str) -> dict[str, Any]:
    """Plain Python values for a task's input literals. ``blobs`` holds the content of every pickle file
    :func:`pickled_inputs` listed, by URI. Errors name the task and the input, never the value."""
    with about_task(task):
        return {name: _value(literal, blobs, f"input {name!r}") for name, literal in literals.items()}


def _value(literal: Literal, blobs: Mapping[str, bytes], where: str) -> Any:
    if literal.collection is not None:
        return [_value(item, blobs, where) for item in literal.collection.literals]
    if literal.map is not None:
        return {key: _value(item, blobs, where) for key, item in literal.map.literals.items()}
    scalar = literal.scalar
    if scalar is None:
        raise UnsupportedInputError(f"{where}: unsupported literal kind; expected a scalar, list or map")
    if scalar.union is not None:
        return _value(scalar.union.value, blobs, where)
    if scalar.none_type is not None:
        return None
    if scalar.primitive is not None:
        return scalar.primitive.value
    if scalar.binary is not None:
        return _binary(scalar.binary.value, scalar.binary.tag, where)
    if scalar.generic is not None:
        from google.protobuf import json_format

        return json_format.MessageToDict(scalar.generic)
    uri = _pickle_uri(literal)
    if uri is not None:
        data = blobs.get(uri)
        if data is None:
            raise PermanentError(f"{where}: the pickled input could not be read")
        try:
            return load_restricted(data)
        except UnsupportedInputError as e:
            raise UnsupportedInputError(f"{where}: {e}") from None
    raise UnsupportedInputError(
        f"{where}: files, directories and structured datasets cannot be query parameters; "
        f"supported types: {SUPPORTED_TYPES}"
    )


def _binary(value: bytes, tag: str, where: str) -> Any:
    if tag != "msgpack":
        raise UnsupportedInputError(f"{where}: binary literal with tag {tag!r} is not supported")
    import msgpack

    try:
        return msgpack.unpackb(value, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise UnsupportedInputError(f"{where}: the msgpack value could not be decoded ({type(e).__name__})") from None


async def input_values(inputs: LiteralMap | None, task: str, pool: ClientPool) -> dict[str, Any]:
    """Plain values of a task's inputs: pickle files are found by scanning the literals and read on the
    pool's threads (never on the event loop), then everything is decoded once."""
    literals = dict(inputs.literals) if inputs is not None and inputs.literals else {}
    by_input = {name: pickled_inputs({name: literal}) for name, literal in literals.items()}
    blobs = await pool.run(read_pickles, by_input, task) if any(by_input.values()) else {}
    return plain_values(literals, blobs, task)


def read_pickles(uris_by_input: Mapping[str, list[str]], task: str) -> dict[str, bytes]:
    """The content of each pickle file, by URI, read through flytekit's data access (blocking); a failure
    names the task and the input, never the URI's content."""
    blobs: dict[str, bytes] = {}
    for name, uris in uris_by_input.items():
        for uri in uris:
            try:
                blobs[uri] = _read_pickle(uri)
            except PermanentError as e:
                raise PermanentError(f"input {name!r}: {e.message}", task=task) from None
            except Exception as e:  # flytekit's download errors are not OSErrors
                raise PermanentError(
                    f"input {name!r}: the pickled input could not be read ({type(e).__name__})", task=task
                ) from None
    return blobs


def _read_pickle(uri: str) -> bytes:
    ctx = FlyteContextManager.current_context()
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "input")
        ctx.file_access.get_data(uri, local)
        if os.path.getsize(local) > MAX_PICKLED_INPUT_BYTES:
            raise PermanentError(
                f"a pickled input is larger than {MAX_PICKLED_INPUT_BYTES // 2**20} MiB; "
                "BigQuery query parameters must fit in a 10 MB request"
            )
        with open(local, "rb") as f:
            return f.read()
