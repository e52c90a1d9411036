"""BigQueryMetadata: the core's JobHandle as flytekit's resource meta.

The encoding itself (every earlier form decodes, exact bytes, malformed input refused) is pinned on the core's
``JobHandle`` in ``tests/core/test_handle.py``; here only what needs flytekit.
"""

import pytest
from flyte_bigquery_core.handle import JobHandle
from flytekit.extend.backend.base_connector import AsyncConnectorBase, ResourceMeta

from flytekitplugins.bigquery.connector import BigQueryConnector
from flytekitplugins.bigquery.metadata import BigQueryMetadata

HANDLES = [
    pytest.param(BigQueryMetadata("job1", "proj", "US"), id="required-fields-only"),
    pytest.param(
        BigQueryMetadata("job1", "proj", "EU", output_name="results", reused_from_attempt=0, deadline=1.5),
        id="optional-fields",
    ),
    pytest.param(BigQueryMetadata("", "proj", "", error="refused", retryable=True), id="error"),
]


@pytest.mark.parametrize("base", [ResourceMeta, JobHandle])
def test_is_a_flytekit_resource_meta_and_a_core_job_handle(base: type) -> None:
    assert issubclass(BigQueryMetadata, base)


def test_is_the_metadata_type_flytekit_decodes_resource_meta_with() -> None:
    connector = BigQueryConnector()
    assert isinstance(connector, AsyncConnectorBase)
    assert connector.metadata_type is BigQueryMetadata


@pytest.mark.parametrize("meta", HANDLES)
def test_round_trips_as_the_subclass(meta: BigQueryMetadata) -> None:
    decoded = BigQueryMetadata.decode(meta.encode())
    assert type(decoded) is BigQueryMetadata
    assert decoded == meta


@pytest.mark.parametrize("meta", HANDLES)
def test_encodes_as_the_core_handle_not_as_flytekits_default(meta: BigQueryMetadata) -> None:
    """JobHandle's compact encoding wins over ResourceMeta's ``json.dumps(asdict(...))`` in the MRO."""
    assert meta.encode() == JobHandle(**vars(meta)).encode()
    assert meta.encode() != ResourceMeta.encode(meta)
