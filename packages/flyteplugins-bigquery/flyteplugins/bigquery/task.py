"""``BigQueryConfig`` and ``BigQueryTask`` for Flyte 2: what users write. Drop-in for upstream's Flyte 2 plugin.

A ``BigQueryTask`` runs its query as a BigQuery job; its inputs become named query parameters (``@name``) and
its optional output ``results`` is a :class:`flyte.io.DataFrame` pointing at the result table — or, with
``outputs=``, typed values read from the result's single row (:mod:`.typed_results`). The custom fields
are upstream's (``Location``, ``ProjectID``, ``Domain``, the ``QueryJobConfig``'s ``query`` fields flattened in,
and ``secrets``), so either connector runs the other's templates, plus our additions, written by the core
(:func:`flyte_bigquery_core.definition.define_task`): the complete job configuration, each input's BigQuery type,
enum member names, and the results dataset, cost-guard and raw-template settings.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import TYPE_CHECKING, Any

from flyte.connectors import AsyncConnectorExecutorMixin
from flyte.extend import TaskTemplate
from flyte.models import NativeInterface, SerializationContext
from flyte_bigquery_core.definition import BigQueryConfig, TaskDefinition, define_task
from flyte_bigquery_core.jobconfig import SECRETS_KEY
from flyte_bigquery_core.typed_results import OUTPUTS_KEY, TypedOutputs
from flyteidl2.core import tasks_pb2

from .typed_results import declare

if TYPE_CHECKING:  # google-cloud-bigquery imports pandas, pyarrow and the Storage client: loaded on first use
    from flyte.io import DataFrame

__all__ = ["TASK_TYPE", "BigQueryConfig", "BigQueryTask"]

TASK_TYPE = "bigquery_query_job_task"
#: The connection secret holding a service account key (JSON), as upstream names it.
CREDENTIALS_SECRET = "google_application_credentials"


def _optional(python_type: object) -> bool:
    origin = typing.get_origin(python_type)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(python_type)


class BigQueryTask(AsyncConnectorExecutorMixin, TaskTemplate):
    """A query against BigQuery, run by :class:`~flyteplugins.bigquery.connector.BigQueryConnector`.

    The query is sent exactly as written: line breaks, ``--`` comments and string literals are kept (upstream
    collapses all whitespace, so a comment swallows the rest of the query). ``Optional`` inputs default to
    ``None``; the others are required. ``google_application_credentials`` names the secret (or, in a local run,
    the environment variable) holding a service account key; without it the connector's own credentials run
    the job.
    """

    _TASK_TYPE = TASK_TYPE

    def __init__(
        self,
        name: str,
        query_template: str,
        plugin_config: BigQueryConfig,
        inputs: dict[str, type] | None = None,
        output_dataframe_type: type[DataFrame] | None = None,
        google_application_credentials: str | None = None,
        outputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``outputs`` (our addition) declares small typed results instead of a table: scalars or one dataclass,
        filled by the connector from the result's single row (:mod:`.typed_results`). It excludes
        ``output_dataframe_type``."""
        # Refuses a missing project, a malformed byte limit and unmappable input types now, naming the task.
        definition = define_task(name, plugin_config, inputs)
        declared = {k: (t, None if _optional(t) else inspect.Parameter.empty) for k, t in (inputs or {}).items()}
        self.typed_outputs: TypedOutputs | None = None
        if outputs:
            both = "output_dataframe_type" if output_dataframe_type is not None else None
            self.typed_outputs = declare(outputs, name, both)
        else:
            outputs = {"results": output_dataframe_type} if output_dataframe_type is not None else {}
        super().__init__(
            name=name,
            interface=NativeInterface(declared, outputs),
            task_type=self._TASK_TYPE,
            image=None,
            **kwargs,
        )
        self.output_dataframe_type = output_dataframe_type
        self.plugin_config = plugin_config
        self.query_template = query_template  # as written; see the class docstring
        self.google_application_credentials = google_application_credentials
        self._definition: TaskDefinition = definition

    async def execute(self, **kwargs: Any) -> Any:
        """Run the query through the registered connector in this process (a local run); see :mod:`.local`."""
        from .local import run_locally

        return await run_locally(self, kwargs)

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        custom = self._definition.custom_fields(sctx.domain)
        if self.google_application_credentials is not None:
            custom[SECRETS_KEY] = {CREDENTIALS_SECRET: self.google_application_credentials}
        if self.typed_outputs is not None:
            custom[OUTPUTS_KEY] = self.typed_outputs.to_json()
        return custom

    def sql(self, sctx: SerializationContext) -> tasks_pb2.Sql:
        return tasks_pb2.Sql(statement=self.query_template, dialect=tasks_pb2.Sql.Dialect.ANSI)
