"""flytekit's input literals → plain Python values, by the core's decoder; pickle files read through flytekit.

flytekit hands the connector its literal *models* (``flytekit.models.literals``). Each is turned into its
protobuf message (``to_flyte_idl``) and decoded by :mod:`flyte_bigquery_core.literal_values`, the one decoder
both Flyte adapters share: lists, maps, unions, primitives, msgpack, generic records, and pickles through
:func:`flyte_bigquery_core.safe_pickle.load_restricted` only (never ``pickle.loads``). What is flytekit's own
is here: reading pickle files through flytekit's data access, on the pool's threads, never on the event loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core import literal_values
from flyte_bigquery_core.clients import ClientPool
from flyte_bigquery_core.errors import PermanentError, UnsupportedInputError
from flyte_bigquery_core.literal_values import MAX_PICKLED_INPUT_BYTES
from flytekit import FlyteContextManager
from flytekit.models.literals import Literal, LiteralMap

__all__ = ["MAX_PICKLED_INPUT_BYTES", "input_values", "pickled_inputs", "plain_values", "read_pickles"]


def pickled_inputs(literals: Mapping[str, Literal]) -> list[str]:
    """The URIs of every pickle file among the literals (inside lists, maps and unions too), in order, once
    each: what must be read before :func:`plain_values` can decode them."""
    by_input = literal_values.pickle_uris(_messages(literals))
    return list(dict.fromkeys(uri for uris in by_input.values() for uri in uris))


def plain_values(literals: Mapping[str, Literal], blobs: Mapping[str, bytes], task: str) -> dict[str, Any]:
    """Plain Python values for a task's input literals. ``blobs`` holds the content of every pickle file
    :func:`pickled_inputs` listed, by URI. Errors name the task and the input, never the value."""
    return literal_values.plain_values(_messages(literals, task), blobs, task)


async def input_values(inputs: LiteralMap | None, task: str, pool: ClientPool) -> dict[str, Any]:
    """Plain values of a task's inputs: pickle files are found by scanning the literals and read on the
    pool's threads (never on the event loop), then everything is decoded once."""
    literals = dict(inputs.literals) if inputs is not None and inputs.literals else {}
    messages = _messages(literals, task)
    by_input = literal_values.pickle_uris(messages)
    blobs = await pool.run(read_pickles, by_input, task) if by_input else {}
    return literal_values.plain_values(messages, blobs, task)


def _messages(literals: Mapping[str, Literal], task: str | None = None) -> dict[str, Any]:
    """Each literal model as its ``flyteidl.core.literals_pb2.Literal`` message, by input name. Raises
    :class:`UnsupportedInputError` naming the task and the input for a value protobuf cannot hold."""
    messages: dict[str, Any] = {}
    for name, literal in literals.items():
        try:
            messages[name] = literal.to_flyte_idl()
        except (ValueError, TypeError, OverflowError) as e:  # e.g. a zoned datetime out of range in UTC
            raise UnsupportedInputError(
                f"input {name!r}: a Flyte literal cannot hold this value ({type(e).__name__})", task=task
            ) from None
    return messages


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
