"""The public API is pinned: removing or renaming a name is a breaking change."""

from flyte_bigquery_core import checks, errors, params, partitioning

import flytekitplugins.bigquery as plugin
from flytekitplugins.bigquery import (
    check_task,
    connector,
    copy_task,
    extract_task,
    load_task,
    metadata,
    sensors,
    task,
    transfer_connector,
)

#: The public API, and where each name is implemented: the package exports exactly these names, as these
#: very objects.
IMPLEMENTATIONS = {
    "BigQueryCheckTask": check_task.BigQueryCheckTask,
    "BigQueryConfig": task.BigQueryConfig,
    "BigQueryPartitionSensor": sensors.BigQueryPartitionSensor,
    "BigQueryTableModifiedSensor": sensors.BigQueryTableModifiedSensor,
    "BigQueryTableSensor": sensors.BigQueryTableSensor,
    "IntervalCheck": checks.IntervalCheck,
    "ValueCheck": checks.ValueCheck,
    "BigQueryConnector": connector.BigQueryConnector,
    "BigQueryCopyTask": copy_task.BigQueryCopyTask,
    "BigQueryExtractTask": extract_task.BigQueryExtractTask,
    "BigQueryLoadTask": load_task.BigQueryLoadTask,
    "BigQueryJobError": errors.BigQueryJobError,
    "BigQueryMetadata": metadata.BigQueryMetadata,
    "BigQueryPluginError": errors.BigQueryPluginError,
    "BigQueryTask": task.BigQueryTask,
    "InvalidMetadataError": errors.InvalidMetadataError,
    "InvalidTaskError": errors.InvalidTaskError,
    "PermanentError": errors.PermanentError,
    "RangePartitioning": partitioning.RangePartitioning,
    "TimePartitioning": partitioning.TimePartitioning,
    "TransientError": errors.TransientError,
    "UnsupportedInputError": errors.UnsupportedInputError,
    "pythonTypeToBigQueryType": params.pythonTypeToBigQueryType,
}


def test_package_exports_exactly_the_public_api() -> None:
    assert sorted(plugin.__all__) == sorted(IMPLEMENTATIONS)
    for name in plugin.__all__:
        assert getattr(plugin, name) is IMPLEMENTATIONS[name], name


def test_connector_module_keeps_upstreams_names() -> None:
    for name in ("BigQueryConnector", "BigQueryMetadata", "pythonTypeToBigQueryType"):
        assert getattr(connector, name) is IMPLEMENTATIONS[name], name


def test_errors_keep_their_hierarchy() -> None:
    """Callers catch by these bases: every permanent failure is a PermanentError, none is transient."""
    for name in ("BigQueryJobError", "InvalidMetadataError", "InvalidTaskError", "UnsupportedInputError"):
        assert issubclass(getattr(plugin, name), plugin.PermanentError), name
        assert not issubclass(getattr(plugin, name), plugin.TransientError), name
    assert issubclass(plugin.PermanentError, plugin.BigQueryPluginError)
    assert issubclass(plugin.TransientError, plugin.BigQueryPluginError)
    assert not issubclass(plugin.TransientError, plugin.PermanentError)


def test_task_type_is_upstreams() -> None:
    bq_task = plugin.BigQueryTask(
        name="api.query", query_template="SELECT 1", task_config=plugin.BigQueryConfig(ProjectID="p")
    )
    assert bq_task.task_type == connector.TASK_TYPE == "bigquery_query_job_task"


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


def test_each_transfer_task_type_has_its_own_registered_connector() -> None:
    from flytekit.extend.backend.base_connector import ConnectorRegistry

    for task_type, connector_type in transfer_connector.TRANSFER_TASK_TYPES.items():
        registered = ConnectorRegistry.get_connector(task_type, 0)
        assert type(registered) is connector_type and registered.served_task_type == task_type
    assert sorted(transfer_connector.TRANSFER_TASK_TYPES) == [
        "bigquery_copy_job_task",
        "bigquery_extract_job_task",
        "bigquery_load_job_task",
    ]
