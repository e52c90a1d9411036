"""The public API is pinned: removing or renaming a name is a breaking change."""

import flytekitplugins.bigquery as plugin
from flytekitplugins.bigquery import connector


def test_package_exports_exactly_the_public_api() -> None:
    assert sorted(plugin.__all__) == [
        "BigQueryConfig",
        "BigQueryConnector",
        "BigQueryJobError",
        "BigQueryMetadata",
        "BigQueryPluginError",
        "BigQueryTask",
        "InvalidMetadataError",
        "InvalidTaskError",
        "PermanentError",
        "TransientError",
        "UnsupportedInputError",
        "pythonTypeToBigQueryType",
    ]
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None


def test_connector_module_keeps_upstreams_names() -> None:
    for name in ("BigQueryConnector", "BigQueryMetadata", "pythonTypeToBigQueryType"):
        assert hasattr(connector, name)


def test_connector_is_registered_for_the_task_type() -> None:
    from flytekit.extend.backend.base_connector import ConnectorRegistry

    registered = ConnectorRegistry.get_connector("bigquery_query_job_task", 0)
    assert isinstance(registered, connector.BigQueryConnector)
    assert registered.name == "Bigquery Connector"


def test_public_type_map_keeps_upstream_keys_and_fixes_date() -> None:
    import datetime

    upstream_keys = {list, bool, bytes, datetime.datetime, float, int, str}
    assert upstream_keys <= set(plugin.pythonTypeToBigQueryType)
    assert plugin.pythonTypeToBigQueryType[datetime.date] == "DATE"


def test_metadata_carries_upstreams_fields() -> None:
    meta = plugin.BigQueryMetadata(job_id="j", project="p", location="US")
    assert plugin.BigQueryMetadata.decode(meta.encode()) == meta


def test_plugin_is_an_entry_point_for_flytekit() -> None:
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="flytekit.plugins")}
    assert "flytekitplugins.bigquery" in names
