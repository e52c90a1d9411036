"""``BigQueryConfig`` and ``BigQueryTask``: what users write. Drop-in compatible with the upstream plugin.

A ``BigQueryTask`` is a SQL task whose query runs as a BigQuery job; its inputs become named query
parameters (``@name``) and its optional output ``results`` is a ``StructuredDataset`` pointing at the result
table. Serialization writes the custom fields exactly as upstream does (``Location``, ``ProjectID``,
``Domain`` and the ``QueryJobConfig``'s ``query`` fields flattened in), so templates registered by either
package run on either connector. Two keys are added, which upstream's connector ignores: the complete job
configuration (upstream loses ``labels``, ``dryRun`` and ``jobTimeoutMs``) and the BigQuery type of each input
as a type expression such as ``ARRAY<DATE>`` (Flyte's literals alone cannot tell a ``date`` from a ``datetime``,
and carry ``bytes`` as pickles); see :func:`flyte_bigquery_core.params.input_type`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flyte_bigquery_core.definition import BigQueryConfig, define_task
from flyte_bigquery_core.typed_results import OUTPUTS_KEY, declare_outputs
from flytekit.configuration import SerializationSettings
from flytekit.extend import SQLTask
from flytekit.extend.backend.base_connector import AsyncConnectorExecutorMixin
from flytekit.models import task as _task_model
from flytekit.types.structured import StructuredDataset
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    pass

__all__ = ["BigQueryConfig", "BigQueryTask"]


class BigQueryTask(AsyncConnectorExecutorMixin, SQLTask[BigQueryConfig]):
    """A query against BigQuery, run by :class:`~flytekitplugins.bigquery.connector.BigQueryConnector`.

    The query is sent as written: line breaks and ``--`` comments are preserved (flytekit's ``SQLTask``
    collapses whitespace, which would turn a comment into one that swallows the rest of the query).
    """

    _TASK_TYPE = "bigquery_query_job_task"

    def __init__(
        self,
        name: str,
        query_template: str,
        task_config: BigQueryConfig,
        inputs: dict[str, type] | None = None,
        output_structured_dataset_type: type[StructuredDataset] | None = None,
        outputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``outputs`` (our addition) declares small typed results instead of a table: scalars or one dataclass,
        filled by the connector from the result's single row (see :mod:`flyte_bigquery_core.typed_results`:
        each output reads the column of its name; one dataclass output with no such column reads the whole
        row). It excludes ``output_structured_dataset_type``."""
        # Refuses a missing project, a malformed byte limit and unmappable input types now, naming the task.
        self._definition = define_task(name, task_config, inputs)
        self._typed_outputs = None
        if outputs:
            both = "output_structured_dataset_type" if output_structured_dataset_type is not None else None
            self._typed_outputs = declare_outputs(outputs, name, both)
        elif output_structured_dataset_type is not None:
            outputs = {"results": output_structured_dataset_type}
        super().__init__(
            name=name,
            task_config=task_config,
            query_template=query_template,
            inputs=inputs,
            outputs=outputs,
            task_type=self._TASK_TYPE,
            **kwargs,
        )
        self._query_template = query_template  # as written; see the class docstring
        self._output_structured_dataset_type = output_structured_dataset_type

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        # flytekit 1 carries an enum by its value, so the member names (for Flyte 2's transport) are not recorded.
        definition = replace(self._definition, input_enums={})
        fields = definition.custom_fields(settings.domain)
        if self._typed_outputs is not None:
            fields[OUTPUTS_KEY] = self._typed_outputs.to_json()
        s = Struct()
        s.update(fields)
        return json_format.MessageToDict(s)

    def get_sql(self, settings: SerializationSettings) -> _task_model.Sql | None:
        return _task_model.Sql(statement=self.query_template, dialect=_task_model.Sql.Dialect.ANSI)
