"""What code and deployments written for upstream's Flyte 2 plugin rely on: its public names, the connector's
entry point and registration, and its metadata's type."""

from __future__ import annotations

import importlib.metadata

import flyteplugins.bigquery as plugin
import pandas as pd
from flyte.connectors import ConnectorRegistry
from flyteplugins.bigquery import BigQueryConnector, BigQueryMetadata

#: ``flyteplugins.bigquery.__all__`` of upstream's 2.12.1.
UPSTREAM_NAMES = ["BQToPandasDecodingHandler", "BigQueryConfig", "BigQueryConnector", "BigQueryTask"]


def test_upstreams_public_names_are_ours_too() -> None:
    assert set(UPSTREAM_NAMES) <= set(plugin.__all__)
    assert all(hasattr(plugin, name) for name in UPSTREAM_NAMES)


def test_upstreams_pandas_handler_can_still_be_made() -> None:
    assert plugin.BQToPandasDecodingHandler().python_type is pd.DataFrame


def test_the_connector_entry_point_is_upstreams_name_and_loads_ours() -> None:
    [entry] = [ep for ep in importlib.metadata.entry_points(group="flyte.connectors") if ep.name == "bigquery"]
    assert entry.load() is BigQueryConnector


def test_importing_the_plugin_registers_the_connector_for_the_task_type() -> None:
    connector = ConnectorRegistry.get_connector("bigquery_query_job_task", 0)
    assert isinstance(connector, BigQueryConnector) and connector.metadata_type is BigQueryMetadata
