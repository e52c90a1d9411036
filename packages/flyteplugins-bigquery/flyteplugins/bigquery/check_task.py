"""``BigQueryCheckTask`` for Flyte 2: a data-quality check as its own task type, run by
:class:`BigQueryCheckConnector`.

The check itself (which checks, the query, how its row is judged, severity, the dry run that prices it against
``MaximumBytes``) is the core's (:mod:`flyte_bigquery_core.check_definition`, :mod:`flyte_bigquery_core.checks`);
this module declares the task and registers the connector, which is the query connector under another task
type: one query job with all of its guarantees, the row read and judged when the job succeeds. The connector is
registered when this module is imported (``flyteplugins.bigquery`` imports it; Flyte 2's connector services load
it through the ``flyte.connectors`` entry point ``bigquery_check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flyte.connectors import ConnectorRegistry
from flyte.models import SerializationContext
from flyte_bigquery_core.check_definition import define_check
from flyte_bigquery_core.checks import CHECKS_KEY, IntervalCheck, ValueCheck
from flyte_bigquery_core.connector_core import at_start_up

from .connector import BigQueryConnector
from .service import EXIT_BAD_SETTINGS
from .task import BigQueryConfig, BigQueryTask

__all__ = ["CHECK_TASK_TYPE", "BigQueryCheckConnector", "BigQueryCheckTask", "IntervalCheck", "ValueCheck"]

CHECK_TASK_TYPE = "bigquery_check_task"


class BigQueryCheckTask(BigQueryTask):
    """A query whose single row is judged: a row check (``query_template`` alone: every column must be
    ``TRUE``), ``value_checks`` (:class:`ValueCheck`: a column within a relative tolerance of a value) or an
    ``interval`` check (:class:`IntervalCheck`: metrics on the run's day against ``days_back`` days before, the
    query generated); see :mod:`flyte_bigquery_core.checks` for the rules. ``severity`` ``"fail"`` (default) fails
    the task permanently naming the failed checks and their values, ``"warn"`` succeeds and reports them. The query
    is priced by a dry run first and held to ``MaximumBytes``. No outputs. Bad settings raise
    :class:`~flyte_bigquery_core.errors.InvalidTaskError` here, naming the task.
    """

    _TASK_TYPE = CHECK_TASK_TYPE

    def __init__(
        self,
        name: str,
        plugin_config: BigQueryConfig,
        query_template: str | None = None,
        inputs: dict[str, type] | None = None,
        severity: str = "fail",
        value_checks: Sequence[ValueCheck] = (),
        interval: IntervalCheck | None = None,
        **kwargs: Any,
    ) -> None:
        declares_outputs = bool(kwargs.get("outputs")) or kwargs.get("output_dataframe_type") is not None
        self._checks, query = define_check(
            name, severity, value_checks, interval, query_template, inputs, declares_outputs
        )
        super().__init__(name=name, query_template=query, plugin_config=plugin_config, inputs=inputs, **kwargs)

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return {**super().custom_config(sctx), CHECKS_KEY: self._checks.to_json()}


class BigQueryCheckConnector(BigQueryConnector):
    """Runs ``bigquery_check_task`` tasks: the query connector under the check task type."""

    name = "BigQuery Check Connector"
    task_type_name = CHECK_TASK_TYPE


ConnectorRegistry.register(
    at_start_up(BigQueryCheckConnector, "flyteplugins-bigquery", EXIT_BAD_SETTINGS), override=True
)
