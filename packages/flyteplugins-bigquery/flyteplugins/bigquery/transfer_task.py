"""What the Flyte 2 load, extract and copy tasks share: a task run by its own connector
(:mod:`.transfer_connector`), configured with ``BigQueryConfig`` (``ProjectID``, ``Location`` and the identity
and capacity fields), a typed spec from the core, the type of its ``source`` input (or none) and its one output.

The definition is checked and recorded by the core (:func:`flyte_bigquery_core.transfer_definition.define_transfer`),
exactly as for the flytekit tasks, so the templates of both SDKs carry the same custom fields: a mistake names the
task and the setting when the task is defined, not at run time.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from flyte.connectors import AsyncConnectorExecutorMixin
from flyte.extend import TaskTemplate
from flyte.models import NativeInterface, SerializationContext
from flyte_bigquery_core.definition import BigQueryConfig
from flyte_bigquery_core.transfer import SOURCE_INPUT
from flyte_bigquery_core.transfer_definition import TransferDefinition, define_transfer

__all__ = ["BigQueryTransferTask"]


class BigQueryTransferTask(AsyncConnectorExecutorMixin, TaskTemplate):
    """Base of :class:`~.load_task.BigQueryLoadTask`, :class:`~.extract_task.BigQueryExtractTask` and
    :class:`~.copy_task.BigQueryCopyTask`; not used directly."""

    #: The core's job kind (a key of ``flyte_bigquery_core.transfer.JOB_KINDS``) and Flyte's task type.
    _KIND: ClassVar[str]
    _TASK_TYPE: ClassVar[str]
    #: The one output: name and Flyte type.
    _OUTPUT: ClassVar[tuple[str, type]]
    #: The types the ``source`` input may have.
    _SOURCE_TYPES: ClassVar[tuple[Any, ...]]

    def __init__(
        self,
        name: str,
        plugin_config: BigQueryConfig,
        spec: Any,
        source_type: Any = None,
        labels: dict[str, str] | None = None,
        extra_inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``extra_inputs`` are inputs besides ``source`` that the subclass declares (a load's ``partition``)."""
        inputs = {**({SOURCE_INPUT: source_type} if source_type is not None else {}), **(extra_inputs or {})}
        definition = define_transfer(name, self._KIND, plugin_config, spec, inputs, self._SOURCE_TYPES, labels)
        output_name, output_type = self._OUTPUT
        super().__init__(
            name=name,
            interface=NativeInterface(
                {k: (t, inspect.Parameter.empty) for k, t in inputs.items()},
                {output_name: output_type},
            ),
            task_type=self._TASK_TYPE,
            image=None,
            **kwargs,
        )
        self.plugin_config = plugin_config
        self._definition: TransferDefinition = definition

    async def execute(self, **kwargs: Any) -> Any:
        """Run the job through the registered connector in this process (a local run); see :mod:`.local`."""
        from .local import run_locally

        return await run_locally(self, kwargs)

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return self._definition.custom_fields(sctx.domain)
