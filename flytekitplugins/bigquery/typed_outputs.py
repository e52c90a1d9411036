"""Typed outputs read from a query's single row (:mod:`flyte_bigquery_core.typed_results`) → Flyte literals.

The connector has no Python classes, only the BigQuery type recorded per output, so each value becomes the
literal flytekit itself would write for the declared type: scalars through flytekit's own transformers
(``Optional[T]`` as a union), a dataclass as MessagePack of its fields in the forms flytekit's dataclass decoder
reads back (ISO text for dates and times, text for decimals, seconds for durations), a list as a collection.

flytekit 1.16 has no literal for a ``Decimal``, ``bytes`` or ``datetime.time`` of its own: it carries them as a
pickle file. Those outputs are pickled here (producing a pickle is safe; only loading one runs code) and written
under the task's output prefix, which the connector records at ``create`` (:func:`needs_files`); blocking, so the
connector calls :func:`output_literals` on a worker thread.
"""

from __future__ import annotations

import io
import pickle
import typing
from collections.abc import Mapping
from typing import Any

from flyte_bigquery_core.bigquery_types import DECIMAL_BY_VALUE, BigQueryType
from flyte_bigquery_core.errors import PermanentError
from flyte_bigquery_core.typed_results import TypedOutputs, packable, python_type_of
from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.core.types import BlobType
from flytekit.models.literals import Binary, Blob, BlobMetadata, Literal, LiteralCollection, LiteralMap, Scalar, Void

__all__ = ["needs_files", "output_literals"]

_MSGPACK = "msgpack"
#: BigQuery types whose values flytekit carries as pickle files (``FlytePickleTransformer``'s format).
_PICKLED = frozenset({DECIMAL_BY_VALUE, "NUMERIC", "BIGNUMERIC", "BYTES", "TIME"})
_PICKLE_FORMAT = "PythonPickle"


def _pickled(declared: BigQueryType) -> bool:
    return (declared.element or declared).name in _PICKLED


def needs_files(outputs: TypedOutputs | None) -> bool:
    """Whether some output must be written as a file (so the connector records the output prefix)."""
    return outputs is not None and any(_pickled(declared) for declared in outputs.types.values())


class _Writer:
    """Writes pickled outputs as ``<output prefix>/<output>[.<index>].pickle``."""

    def __init__(self, prefix: str | None) -> None:
        self.prefix = prefix

    def pickle(self, value: Any, name: str) -> Literal:
        if not self.prefix:
            raise PermanentError(f"output {name!r} must be written as a file, but no output prefix was recorded")
        ctx = FlyteContextManager.current_context()
        uri = ctx.file_access.put_raw_data(
            io.BytesIO(pickle.dumps(value)),
            upload_prefix=self.prefix,
            file_name=f"{name}.pickle",
            skip_raw_data_prefix=True,
        )
        blob_type = BlobType(format=_PICKLE_FORMAT, dimensionality=BlobType.BlobDimensionality.SINGLE)
        return Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=blob_type), uri=uri)))


def _literal(value: Any, declared: BigQueryType, nullable: bool, name: str, writer: _Writer) -> Literal:
    if value is None:
        return Literal(scalar=Scalar(none_type=Void()))
    if declared.is_struct or declared.name == "JSON":
        import msgpack

        return Literal(scalar=Scalar(binary=Binary(value=msgpack.dumps(packable(value)), tag=_MSGPACK)))
    if declared.element is not None:
        element = declared.element
        items = [_literal(item, element, False, f"{name}.{i}", writer) for i, item in enumerate(value)]
        return Literal(collection=LiteralCollection(items))
    if declared.name in _PICKLED:
        return writer.pickle(value, name)
    python_type: Any = python_type_of(declared)
    if nullable:
        python_type = typing.Optional[python_type]
    ctx = FlyteContextManager.current_context()
    return TypeEngine.to_literal(ctx, value, python_type, TypeEngine.to_literal_type(python_type))


def output_literals(values: Mapping[str, Any], outputs: TypedOutputs, output_prefix: str | None = None) -> LiteralMap:
    """The ``LiteralMap`` of a task's typed outputs (values as :func:`~flyte_bigquery_core.typed_results.typed_values`
    returns them). Pickled outputs are written under ``output_prefix`` (blocking I/O)."""
    writer = _Writer(output_prefix)
    return LiteralMap(
        {
            name: _literal(values.get(name), declared, name in outputs.nullable, name, writer)
            for name, declared in outputs.types.items()
        }
    )
