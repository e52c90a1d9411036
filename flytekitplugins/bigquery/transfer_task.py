"""What the load, extract and copy tasks share: a Flyte task run by its own connector
(:mod:`.transfer_connector`), configured with :class:`~.task.BigQueryConfig` (``ProjectID``, ``Location``), a
typed spec from the core, the type of its ``source`` input (or none) and its one output.

The template's custom fields hold ``ProjectID``, ``Location``, ``Domain``, the spec under its kind's key
(``LoadJob``, ``ExtractJob``, ``CopyJob``) and the task's own ``Labels``. The spec is checked when the task is
defined (:func:`flyte_bigquery_core.transfer_definition.define_transfer`): a mistake names the task and the
setting then, not at run time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flyte_bigquery_core.transfer import SOURCE_INPUT
from flyte_bigquery_core.transfer_definition import TransferDefinition, define_transfer
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.extend.backend.base_connector import AsyncConnectorExecutorMixin
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from .task import BigQueryConfig

__all__ = ["BigQueryTransferTask"]


class BigQueryTransferTask(AsyncConnectorExecutorMixin, PythonTask[BigQueryConfig]):
    """Base of :class:`~.load_task.BigQueryLoadTask`, :class:`~.extract_task.BigQueryExtractTask` and
    :class:`~.copy_task.BigQueryCopyTask`; not used directly. The definition is checked and recorded by the core
    (:func:`flyte_bigquery_core.transfer_definition.define_transfer`)."""

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
        task_config: BigQueryConfig,
        spec: Any,
        source_type: Any = None,
        labels: dict[str, str] | None = None,
        extra_inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``extra_inputs`` are inputs besides ``source`` that the subclass declares (a load's ``partition``)."""
        inputs = {**({SOURCE_INPUT: source_type} if source_type is not None else {}), **(extra_inputs or {})}
        self._definition: TransferDefinition = define_transfer(
            name, self._KIND, task_config, spec, inputs, self._SOURCE_TYPES, labels
        )
        output_name, output_type = self._OUTPUT
        super().__init__(
            task_type=self._TASK_TYPE,
            name=name,
            task_config=task_config,
            interface=Interface(inputs=inputs, outputs={output_name: output_type}),
            **kwargs,
        )

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        s = Struct()
        s.update(self._definition.custom_fields(settings.domain))
        return json_format.MessageToDict(s)
