"""The inputs of a load, extract or copy task (``source``, and a load's ``partition``), from Flyte's literals to
the core's plain values.

Only the transport is undone, nothing is read or unpickled: a file (single blob) or directory (multipart blob)
becomes a :class:`~flyte_bigquery_core.sources.SourceRef` of its URI, a structured dataset one of kind
``dataset`` with its file format (its ``bq://`` URI as a plain string for extract and copy, which read tables),
and a ``str``, ``list[str]``, integer or datetime (a ``date`` arrives as one) stays as it is. What the values
mean is the core's decision
(:func:`flyte_bigquery_core.transfer.plan_transfer`).
"""

from __future__ import annotations

from typing import Any

from flyte_bigquery_core.errors import UnsupportedInputError, about_task
from flyte_bigquery_core.sources import SourceRef
from flyte_bigquery_core.transfer import SOURCE_INPUT
from flytekit.models.core.types import BlobType
from flytekit.models.literals import Literal, LiteralMap

__all__ = ["transfer_values"]

_EXPECTED = "a FlyteFile, FlyteDirectory, StructuredDataset, str or list[str]"


def transfer_values(inputs: LiteralMap | None, kind: str, task: str) -> dict[str, Any]:
    """The plain value of each input the task has (the core refuses one its kind does not read)."""
    literals = dict(inputs.literals) if inputs is not None and inputs.literals else {}
    with about_task(task):
        return {name: _value(literal, kind) for name, literal in literals.items()}


def _value(literal: Literal, kind: str) -> Any:
    if literal.collection is not None:
        return [_value(item, kind) for item in literal.collection.literals]
    scalar = literal.scalar
    if scalar is not None and scalar.union is not None:
        return _value(scalar.union.value, kind)
    if scalar is not None and scalar.primitive is not None:
        return scalar.primitive.value
    if scalar is not None and scalar.blob is not None:
        multipart = scalar.blob.metadata.type.dimensionality == BlobType.BlobDimensionality.MULTIPART
        return SourceRef("directory" if multipart else "file", scalar.blob.uri)
    if scalar is not None and scalar.structured_dataset is not None:
        dataset = scalar.structured_dataset
        if kind != "load":  # extract and copy read a table: the dataset's bq:// URI
            return dataset.uri
        meta = dataset.metadata.structured_dataset_type if dataset.metadata is not None else None
        return SourceRef("dataset", dataset.uri, (meta.format or None) if meta is not None else None)
    raise UnsupportedInputError(f"input {SOURCE_INPUT!r}: unsupported literal; expected {_EXPECTED}")
