"""Read and write ``bq://project:dataset.table`` StructuredDatasets."""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import pandas as pd
import pyarrow as pa
from flytekit import FlyteContext
from flytekit.models import literals
from flytekit.models.types import StructuredDatasetType
from flytekit.types.structured.structured_dataset import (
    StructuredDataset,
    StructuredDatasetDecoder,
    StructuredDatasetEncoder,
    StructuredDatasetMetadata,
    StructuredDatasetTransformerEngine,
)
from google.cloud import bigquery

from ..clients import ClientPool
from ..errors import BigQueryJobError, PermanentError

__all__ = [
    "STORAGE_EMULATOR_HOST_ENV",
    "ArrowToBigQueryEncoder",
    "BigQueryToArrowDecoder",
    "BigQueryToPandasDecoder",
    "PandasToBigQueryEncoder",
    "parse_bq_uri",
    "register_handlers",
]

PROTOCOL = "bq"
#: ``host:port`` of a Storage Read API without TLS or credentials (a local BigQuery's gRPC port). The
#: Storage client does not read ``BIGQUERY_EMULATOR_HOST``, so it needs its own setting.
STORAGE_EMULATOR_HOST_ENV = "FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"
_URI = re.compile(r"^bq://(?P<project>[^:/]+)[:.](?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[^./]+)$")


def parse_bq_uri(uri: str | None) -> tuple[str, str, str]:
    """``bq://project:dataset.table`` (or ``bq://project.dataset.table``) → (project, dataset, table)."""
    match = _URI.match(uri or "")
    if not match:
        raise PermanentError(f"{uri!r} is not a BigQuery table URI; expected bq://<project>:<dataset>.<table>")
    return match.group("project"), match.group("dataset"), match.group("table")


class _Access:
    """The clients the handlers share; owned by :func:`register_handlers`'s handler set."""

    def __init__(self) -> None:
        self.pool = ClientPool(max_workers=8)
        self._storage: Any = None
        self._storage_key: str | None = None
        self._lock = threading.Lock()

    def storage(self) -> Any:
        """A Storage Read client, or ``None`` when the Storage API cannot be used here."""
        target = os.environ.get(STORAGE_EMULATOR_HOST_ENV) or ""
        with self._lock:
            if self._storage is not None and self._storage_key == target:
                return self._storage
            try:
                from google.cloud import bigquery_storage

                if target:
                    import grpc
                    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
                        BigQueryReadGrpcTransport,
                    )

                    channel = grpc.insecure_channel(target)
                    client = bigquery_storage.BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))
                elif os.environ.get("BIGQUERY_EMULATOR_HOST"):
                    return None  # a local REST-only BigQuery: use the REST path
                else:
                    client = bigquery_storage.BigQueryReadClient()
            except Exception:
                return None
            self._storage, self._storage_key = client, target
            return client

    def read_arrow(self, uri: str, columns: list[str] | None) -> pa.Table:
        project, dataset, table = parse_bq_uri(uri)
        # Bill the caller's project when one is configured, not the table's owner.
        billing = os.environ.get("GOOGLE_CLOUD_PROJECT") or project
        client = self.pool.client(billing)
        ref = bigquery.TableReference(bigquery.DatasetReference(project, dataset), table)
        tbl = client.get_table(ref)
        fields = [f for f in tbl.schema if f.name in set(columns)] if columns else None
        rows = client.list_rows(tbl, selected_fields=fields)
        return rows.to_arrow(bqstorage_client=self.storage(), create_bqstorage_client=False)

    def write(self, uri: str, frame: pd.DataFrame | pa.Table) -> None:
        project, dataset, table = parse_bq_uri(uri)
        client = self.pool.client(project)
        destination = f"{project}.{dataset}.{table}"
        if isinstance(frame, pa.Table):
            frame = frame.to_pandas()
        job = client.load_table_from_dataframe(frame, destination)
        try:
            job.result()
        except Exception as exc:
            errors = "; ".join(str(e.get("message")) for e in (job.errors or [])) or str(exc)
            raise BigQueryJobError(f"loading into {uri} failed: {errors}") from exc


def _columns(metadata: StructuredDatasetMetadata) -> list[str] | None:
    sd_type = metadata.structured_dataset_type
    return [c.name for c in sd_type.columns] if sd_type is not None and sd_type.columns else None


class BigQueryToArrowDecoder(StructuredDatasetDecoder):
    def __init__(self, access: _Access) -> None:
        super().__init__(pa.Table, PROTOCOL, supported_format="")
        self._access = access

    def decode(
        self,
        ctx: FlyteContext,
        flyte_value: literals.StructuredDataset,
        current_task_metadata: StructuredDatasetMetadata,
    ) -> pa.Table:
        return self._access.read_arrow(flyte_value.uri, _columns(current_task_metadata))


class BigQueryToPandasDecoder(StructuredDatasetDecoder):
    def __init__(self, access: _Access) -> None:
        super().__init__(pd.DataFrame, PROTOCOL, supported_format="")
        self._access = access

    def decode(
        self,
        ctx: FlyteContext,
        flyte_value: literals.StructuredDataset,
        current_task_metadata: StructuredDatasetMetadata,
    ) -> pd.DataFrame:
        return self._access.read_arrow(flyte_value.uri, _columns(current_task_metadata)).to_pandas()


class _Encoder(StructuredDatasetEncoder):
    def __init__(self, python_type: type, access: _Access) -> None:
        super().__init__(python_type, PROTOCOL, supported_format="")
        self._access = access

    def encode(
        self, ctx: FlyteContext, structured_dataset: StructuredDataset, structured_dataset_type: StructuredDatasetType
    ) -> literals.StructuredDataset:
        uri = structured_dataset.uri or ""
        self._access.write(uri, structured_dataset.dataframe)
        return literals.StructuredDataset(uri=uri, metadata=StructuredDatasetMetadata(structured_dataset_type))


class PandasToBigQueryEncoder(_Encoder):
    def __init__(self, access: _Access) -> None:
        super().__init__(pd.DataFrame, access)


class ArrowToBigQueryEncoder(_Encoder):
    def __init__(self, access: _Access) -> None:
        super().__init__(pa.Table, access)


def register_handlers() -> None:
    """Register our ``bq`` handlers in place of flytekit's (idempotent)."""
    access = _Access()
    for handler in (
        PandasToBigQueryEncoder(access),
        BigQueryToPandasDecoder(access),
        ArrowToBigQueryEncoder(access),
        BigQueryToArrowDecoder(access),
    ):
        StructuredDatasetTransformerEngine.register(handler, override=True)
