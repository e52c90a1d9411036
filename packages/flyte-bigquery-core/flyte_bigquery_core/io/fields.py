"""Declared columns as field paths: ``detail.age`` is the sub-field ``age`` of the RECORD column ``detail``.

Why: flytekit flattens a nested column declaration (``kwtypes(detail={"age": int})``, or ``detail=SomeDataclass``)
into dotted names before a decoder sees it (``flatten_dict`` in flytekit's ``structured_dataset.py``), and
BigQuery's column names cannot contain a dot, so a dot always separates path parts. A read delivers the
top-level columns in the order they are first declared; a RECORD declared through sub-paths arrives as a
struct of those sub-fields only, in declared order; a column declared whole (``detail``) keeps all of its
sub-fields, whatever sub-paths are declared besides. Names match case-insensitively, as BigQuery's do, and
come back spelt as in the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from google.cloud.bigquery import SchemaField

from ..errors import PermanentError

__all__ = ["Projection", "field_paths", "project", "requested_paths"]

_RECORD = ("RECORD", "STRUCT")


@dataclass
class _Node:
    """One declared name: ``children`` is ``None`` when the field is declared whole."""

    name: str
    children: dict[str, _Node] | None = field(default_factory=dict)


def _tree(columns: Sequence[str]) -> dict[str, _Node]:
    root: dict[str, _Node] = {}
    for column in columns:
        level: dict[str, _Node] | None = root
        parts = column.split(".")
        for depth, part in enumerate(parts):
            if level is None:  # an ancestor is declared whole: it already holds this path
                break
            node = level.setdefault(part.casefold(), _Node(part))
            if depth == len(parts) - 1:
                node.children = None
            level = node.children
    return root


def _paths(tree: dict[str, _Node], prefix: str = "") -> Iterator[str]:
    for node in tree.values():
        path = f"{prefix}{node.name}"
        if node.children is None:
            yield path
        else:
            yield from _paths(node.children, f"{path}.")


def requested_paths(columns: Sequence[str] | None) -> list[str]:
    """The declared paths without repeats and without paths inside a column declared whole, in declared order
    (``[]`` when nothing is declared: every column)."""
    return list(_paths(_tree(columns))) if columns else []


def field_paths(schema: Sequence[SchemaField], prefix: str = "") -> Iterator[str]:
    """Every path a declaration can name, parents before their sub-fields (``detail``, ``detail.age``…)."""
    for column in schema:
        path = f"{prefix}{column.name}"
        yield path
        if (column.field_type or "").upper() in _RECORD:
            yield from field_paths(column.fields, f"{path}.")


def _with_fields(column: SchemaField, fields: list[SchemaField]) -> SchemaField:
    return SchemaField.from_api_repr({**column.to_api_repr(), "fields": [f.to_api_repr() for f in fields]})


def _prune(schema: Sequence[SchemaField], tree: dict[str, _Node], prefix: str, missing: list[str]) -> list[SchemaField]:
    by_name = {column.name.casefold(): column for column in schema}
    out = []
    for key, node in tree.items():
        column = by_name.get(key)
        if column is None:
            missing.extend(_paths({key: node}, prefix))
        elif node.children is None:
            out.append(column)
        elif (column.field_type or "").upper() not in _RECORD:
            missing.extend(_paths(node.children, f"{prefix}{column.name}."))
        else:
            out.append(_with_fields(column, _prune(column.fields, node.children, f"{prefix}{column.name}.", missing)))
    return out


@dataclass(frozen=True)
class Projection:
    """What a read delivers: the table's fields pruned to the declared paths, in declared order."""

    fields: list[SchemaField]
    #: The same top-level columns in the table's order: the order the APIs send them in.
    table_order: list[SchemaField]
    #: The table's whole fields of those columns, in the table's order (what a server that cannot select
    #: sub-fields sends).
    whole: list[SchemaField]

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.fields]


def project(schema: Sequence[SchemaField], columns: Sequence[str] | None, uri: str) -> Projection:
    """The :class:`Projection` of ``columns`` (every column when none are declared) on ``schema``.

    A declared path the table lacks is a :class:`~..errors.PermanentError` naming every such path and the
    paths the table has.
    """
    if not columns:
        return Projection(list(schema), list(schema), list(schema))
    missing: list[str] = []
    fields = _prune(schema, _tree(columns), "", missing)
    if missing:
        raise PermanentError(
            f"{uri} has no column(s) {', '.join(missing)}; its columns are {', '.join(field_paths(schema))}"
        )
    chosen = {column.name for column in fields}
    by_name = {column.name: column for column in fields}
    whole = [column for column in schema if column.name in chosen]
    return Projection(fields, [by_name[column.name] for column in whole], whole)
