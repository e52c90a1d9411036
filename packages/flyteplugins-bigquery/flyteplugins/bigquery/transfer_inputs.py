"""The inputs of a Flyte 2 load, extract or copy task (``source``, and a load's ``partition``), from the native
values Flyte 2 hands a connector to the core's plain values.

Only the transport is undone, nothing is read: a ``flyte.io.File`` becomes a
:class:`~flyte_bigquery_core.sources.SourceRef` of kind ``file`` with its path, a ``flyte.io.Dir`` one of kind
``directory``, a ``flyte.io.DataFrame`` one of kind ``dataset`` with its format (its ``bq://`` URI as a plain
string for extract and copy, which read tables), and a ``str``, ``list[str]``, integer, date or datetime stays as
it is; our service hands the same :class:`~flyte_bigquery_core.sources.SourceRef` values, decoded from the
request's literals. What the values mean, and which inputs a kind reads, is the core's decision
(:func:`flyte_bigquery_core.transfer.plan_transfer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyte.io import DataFrame, Dir, File
from flyte_bigquery_core.errors import UnsupportedInputError, about_task
from flyte_bigquery_core.sources import SourceRef

__all__ = ["transfer_values"]

_EXPECTED = "a flyte.io.File, flyte.io.Dir, flyte.io.DataFrame, str or list[str]"
#: Values that pass as they are (a load's ``partition``, URIs).
_PLAIN = (str, int, float)


async def transfer_values(inputs: Mapping[str, Any] | None, kind: str, task: str) -> dict[str, Any]:
    """The plain value of each input; :class:`UnsupportedInputError` naming the task and the input for a value no
    Flyte 2 type of a transfer task carries (never the value itself)."""
    with about_task(task):
        return {name: _value(name, value, kind) for name, value in (inputs or {}).items()}


def _value(name: str, value: Any, kind: str) -> Any:
    if isinstance(value, list):
        return [_value(name, item, kind) for item in value]
    if isinstance(value, File):
        return SourceRef("file", value.path)
    if isinstance(value, Dir):
        return SourceRef("directory", value.path)
    if isinstance(value, DataFrame):
        if value.uri is None:
            raise UnsupportedInputError(
                f"input {name!r} is a flyte.io.DataFrame without a uri; expected one written to gs:// (or bq://)"
            )
        if kind != "load":  # extract and copy read a table: the dataset's bq:// URI
            return value.uri
        return SourceRef("dataset", value.uri, value.format or None)
    if isinstance(value, SourceRef):  # decoded from a literal by our service (flyte_bigquery_core.literal_values)
        return value.uri if value.kind == "dataset" and kind != "load" else value
    if value is None or isinstance(value, _PLAIN) or hasattr(value, "isoformat"):
        return value
    raise UnsupportedInputError(f"input {name!r} is a {type(value).__name__}; expected {_EXPECTED}")
