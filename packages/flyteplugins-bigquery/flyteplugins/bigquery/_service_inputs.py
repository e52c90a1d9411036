"""A CreateTask request's inputs (``flyteidl2.task.common_pb2.Inputs``) → the plain values a connector gets.

Flyte 2's own server converts inputs with its TypeEngine, which ends in ``cloudpickle.loads`` for every
``Decimal``, ``bytes``, ``time`` and unknown class (``flyte/types/_pickle.py``): whoever can send a request runs
code in the service. This module never unpickles: the literals are decoded by
:func:`flyte_bigquery_core.literal_values.plain_values`, which reads pickles with the core's restricted reader
(:mod:`flyte_bigquery_core.safe_pickle`: bytes, decimals, date/time values, nothing callable).

A pickle too large to travel inline is a file in the blob store; it is read here with ``flyte.storage`` (the
SDK knows the store's credentials), at most :data:`~flyte_bigquery_core.literal_values.MAX_PICKLED_INPUT_BYTES`,
and only from a remote store: a request does not get to make the service read its own file system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError, about_task
from flyte_bigquery_core.literal_values import MAX_PICKLED_INPUT_BYTES, pickle_uris, plain_values

__all__ = ["input_values"]


async def input_values(inputs: Any, task: str) -> dict[str, Any]:
    """Plain values of a request's ``Inputs`` message (``name → value``; empty without inputs). Raises
    :class:`UnsupportedInputError` or :class:`PermanentError` naming the task and the input, never a value."""
    literals = {named.name: named.value for named in inputs.literals} if inputs is not None else {}
    with about_task(task):
        blobs = await _read_pickles(pickle_uris(literals))
    return plain_values(literals, blobs, task)


async def _read_pickles(uris_by_input: Mapping[str, list[str]]) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    for name, uris in uris_by_input.items():
        for uri in uris:
            blobs[uri] = await _read_pickle(uri, f"input {name!r}")
    return blobs


async def _read_pickle(uri: str, where: str) -> bytes:
    import flyte.storage as storage

    if not storage.is_remote(uri):
        raise UnsupportedInputError(f"{where}: a pickled input must be in the blob store, not a local path")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in storage.get_stream(uri):
            size += len(chunk)
            if size > MAX_PICKLED_INPUT_BYTES:
                raise UnsupportedInputError(
                    f"{where}: a pickled input is larger than {MAX_PICKLED_INPUT_BYTES // 2**20} MiB; "
                    "BigQuery query parameters must fit in a 10 MB request"
                )
            chunks.append(chunk)
    except UnsupportedInputError:
        raise
    except Exception as e:  # fsspec/obstore errors share no base class; the URI is not echoed
        raise PermanentError(f"{where}: the pickled input could not be read ({type(e).__name__})") from None
    return b"".join(chunks)
