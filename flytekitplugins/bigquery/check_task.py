"""``BigQueryCheckTask``: a data-quality check as its own task type, run by :class:`BigQueryCheckConnector`.

The check itself (which checks, how its row is judged, severity) is the core's
(:mod:`flyte_bigquery_core.checks`); this module declares the task and registers the connector, which is the
query connector under another task type: one query job with all of its guarantees, a dry run first, the row read
and judged when the job succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flyte_bigquery_core.check_definition import define_check
from flyte_bigquery_core.checks import CHECKS_KEY, IntervalCheck, ValueCheck
from flytekit.configuration import SerializationSettings
from flytekit.extend.backend.base_connector import ConnectorRegistry
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from .connector import BigQueryConnector
from .task import BigQueryConfig, BigQueryTask

__all__ = ["CHECK_TASK_TYPE", "BigQueryCheckConnector", "BigQueryCheckTask", "IntervalCheck", "ValueCheck"]

CHECK_TASK_TYPE = "bigquery_check_task"


class BigQueryCheckTask(BigQueryTask):
    """A query whose single row is judged (see :mod:`flyte_bigquery_core.checks`).

    * ``query_template`` alone: a **row check**, every column must be ``TRUE``
      (``SELECT COUNT(*) > 0 AS has_rows, COUNTIF(id IS NULL) = 0 AS ids_set FROM ...``);
    * ``value_checks``: those columns must be within a relative tolerance of a value
      (``[ValueCheck("n", expected=1000, tolerance=0.1)]``); any other column is still a row check;
    * ``interval``: no query of yours; :class:`IntervalCheck` metrics today against ``days_back`` days before.

    ``severity="fail"`` (default) fails the task permanently naming the failed checks and their values;
    ``"warn"`` succeeds and reports them in the custom info, the logs and the message. The check query is always
    priced by a dry run first and held to ``MaximumBytes``. The task has no outputs.
    """

    _TASK_TYPE = CHECK_TASK_TYPE

    def __init__(
        self,
        name: str,
        task_config: BigQueryConfig,
        query_template: str | None = None,
        inputs: dict[str, type] | None = None,
        severity: str = "fail",
        value_checks: Sequence[ValueCheck] = (),
        interval: IntervalCheck | None = None,
        **kwargs: Any,
    ) -> None:
        declares_outputs = bool(kwargs.get("outputs")) or kwargs.get("output_structured_dataset_type") is not None
        self._checks, query_template = define_check(
            name, severity, value_checks, interval, query_template, inputs, declares_outputs
        )
        super().__init__(name=name, query_template=query_template, task_config=task_config, inputs=inputs, **kwargs)

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        custom = super().get_custom(settings)
        struct = Struct()
        struct.update({CHECKS_KEY: self._checks.to_json()})
        return {**custom, **json_format.MessageToDict(struct)}


class BigQueryCheckConnector(BigQueryConnector):
    """Runs ``bigquery_check_task`` tasks: the query connector under the check task type."""

    name = "BigQuery Check Connector"
    served_task_type = CHECK_TASK_TYPE


ConnectorRegistry.register(BigQueryCheckConnector(), override=True)
