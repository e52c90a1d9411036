"""What the load, extract and copy tasks share: a Flyte task run by its own connector
(:mod:`.transfer_connector`), configured with :class:`~.task.BigQueryConfig` (``ProjectID``, ``Location``), a
typed spec from the core, the type of its ``source`` input (or none) and its one output.

The template's custom fields hold ``ProjectID``, ``Location``, ``Domain``, the spec under its kind's key
(``LoadJob``, ``ExtractJob``, ``CopyJob``) and the task's own ``Labels``. The spec is checked when the task is
defined (:func:`flyte_bigquery_core.transfer.check_definition`): a mistake names the task and the setting then,
not at run time.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar

from flyte_bigquery_core.definition import access_fields
from flyte_bigquery_core.errors import InvalidTaskError, about_task
from flyte_bigquery_core.jobconfig import require_project
from flyte_bigquery_core.transfer import JOB_KINDS, LABELS_KEY, SOURCE_INPUT, TransferTask, check_definition
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.extend.backend.base_connector import AsyncConnectorExecutorMixin
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from .task import BigQueryConfig

__all__ = ["BigQueryTransferTask"]

#: BigQueryConfig fields that only a query task uses; a transfer task refuses them rather than ignore them.
_QUERY_ONLY = ("QueryJobConfig", "ResultsDataset", "Estimate", "MaximumBytes", "RawTemplateInputs")


def _accepts(declared: Any, allowed: tuple[Any, ...]) -> bool:
    for kind in allowed:
        if typing.get_origin(kind) is not None:
            if declared == kind:
                return True
        elif isinstance(declared, type) and issubclass(declared, kind):
            return True
    return False


class BigQueryTransferTask(AsyncConnectorExecutorMixin, PythonTask[BigQueryConfig]):
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
        task_config: BigQueryConfig,
        spec: Any,
        source_type: Any = None,
        labels: dict[str, str] | None = None,
        extra_inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``extra_inputs`` are inputs besides ``source`` that the subclass declares (a load's ``partition``)."""
        require_project(task_config.ProjectID if task_config is not None else None, name)
        used = [field for field in _QUERY_ONLY if getattr(task_config, field) not in (None, False, "")]
        if used:
            raise InvalidTaskError(
                f"BigQueryConfig.{', '.join(used)} only apply to query tasks; a {self._KIND} task takes ProjectID "
                "and Location",
                task=name,
            )
        if source_type is not None and not _accepts(source_type, self._SOURCE_TYPES):
            expected = ", ".join(getattr(t, "__name__", str(t)) for t in self._SOURCE_TYPES)
            raise InvalidTaskError(
                f"input 'source' is declared as {source_type!r}; expected one of {expected}", task=name
            )
        self._spec = spec
        self._labels = dict(labels or {})
        self._access = access_fields(task_config, name)  # who runs the job, where, on which slots
        output_name, output_type = self._OUTPUT
        inputs = {**({SOURCE_INPUT: source_type} if source_type is not None else {}), **(extra_inputs or {})}
        with about_task(name):
            check_definition(TransferTask(name, self._KIND, self._custom(task_config, None), output_name), list(inputs))
        super().__init__(
            task_type=self._TASK_TYPE,
            name=name,
            task_config=task_config,
            interface=Interface(inputs=inputs, outputs={output_name: output_type}),
            **kwargs,
        )

    def _custom(self, config: BigQueryConfig, domain: str | None) -> dict[str, Any]:
        custom: dict[str, Any] = {
            "ProjectID": config.ProjectID,
            "Location": config.Location,
            "Domain": domain,
            JOB_KINDS[self._KIND].custom_key: self._spec.to_api_repr(),
        }
        if self._labels:
            custom[LABELS_KEY] = self._labels
        custom.update(self._access)
        return custom

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        s = Struct()
        s.update(self._custom(typing.cast(BigQueryConfig, self.task_config), settings.domain))
        return json_format.MessageToDict(s)
