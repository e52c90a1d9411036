"""Load specs → ``configuration.load``: the decisions made before a load job is submitted."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.load import LoadSpec, load_configuration
from flyte_bigquery_core.partitioning import RangePartitioning, TimePartitioning
from flyte_bigquery_core.sources import SourceRef

SCHEMA = ({"name": "day", "type": "DATE"}, {"name": "n", "type": "INT64"}, {"name": "s", "type": "STRING"})


def _load(source: Any = "gs://b/f.parquet", **spec: Any) -> dict[str, Any]:
    return load_configuration(LoadSpec(**{"destination": "ds.t", **spec}), source, "proj")


# (spec fields, source, entries the configuration must hold)
BUILT = [
    pytest.param(
        {},
        "gs://b/f.parquet",
        {
            "sourceUris": ["gs://b/f.parquet"],
            "sourceFormat": "PARQUET",
            "destinationTable": {"projectId": "proj", "datasetId": "ds", "tableId": "t"},
            "writeDisposition": "WRITE_APPEND",
        },
        id="parquet-file-appends-by-default",
    ),
    pytest.param({}, SourceRef("directory", "gs://b/dir/"), {"sourceUris": ["gs://b/dir/*"]}, id="directory-wildcard"),
    pytest.param({}, SourceRef("dataset", "gs://b/sd", "parquet"), {"sourceUris": ["gs://b/sd/*"]}, id="dataset"),
    pytest.param({}, SourceRef("file", "gs://b/x.parquet"), {"sourceUris": ["gs://b/x.parquet"]}, id="file"),
    pytest.param({}, ["gs://b/1", "gs://b/2*"], {"sourceUris": ["gs://b/1", "gs://b/2*"]}, id="uri-list"),
    pytest.param(
        {"source_format": "ndjson"},
        "gs://b/f",
        {"sourceFormat": "NEWLINE_DELIMITED_JSON", "autodetect": True},
        id="json-autodetects",
    ),
    pytest.param(
        {"source_format": "CSV", "skip_leading_rows": 1, "field_delimiter": ";"},
        "gs://b/f",
        {"sourceFormat": "CSV", "skipLeadingRows": 1, "fieldDelimiter": ";", "autodetect": True},
        id="csv-options",
    ),
    pytest.param({"source_format": "AVRO"}, "gs://b/f", {"sourceFormat": "AVRO"}, id="avro"),
    pytest.param(
        {"source_format": "CSV", "schema": SCHEMA},
        "gs://b/f",
        {"schema": {"fields": [{**c, "mode": "NULLABLE"} for c in SCHEMA]}},
        id="explicit-schema-no-autodetect",
    ),
    pytest.param(
        {"destination": "other.ds.t$20240101", "write_disposition": "WRITE_TRUNCATE"},
        "gs://b/f",
        {
            "destinationTable": {"projectId": "other", "datasetId": "ds", "tableId": "t$20240101"},
            "writeDisposition": "WRITE_TRUNCATE",
        },
        id="partition-replace",
    ),
    pytest.param(
        {"schema": SCHEMA, "time_partitioning": TimePartitioning("DAY", "day", 86_400_000), "clustering": ("s", "n")},
        "gs://b/f",
        {
            "timePartitioning": {"type": "DAY", "field": "day", "expirationMs": "86400000"},
            "clustering": {"fields": ["s", "n"]},
        },
        id="time-partitioned-clustered",
    ),
    pytest.param(
        {"range_partitioning": RangePartitioning("n", 0, 100, 10), "destination": "ds.t$20"},
        "gs://b/f",
        {"rangePartitioning": {"field": "n", "range": {"start": "0", "end": "100", "interval": "10"}}},
        id="range-partitioned-partition",
    ),
    pytest.param(
        {"create_disposition": "CREATE_NEVER"}, "gs://b/f", {"createDisposition": "CREATE_NEVER"}, id="create-never"
    ),
    pytest.param({"source_uris": ("gs://b/fixed",)}, None, {"sourceUris": ["gs://b/fixed"]}, id="fixed-uris"),
]


def test_the_partition_input_decorates_the_destination() -> None:
    spec = LoadSpec("ds.events", write_disposition="WRITE_TRUNCATE", time_partitioning=TimePartitioning("HOUR"))
    load = load_configuration(spec, "gs://b/f", "proj", partition="2024010213")
    assert load["destinationTable"]["tableId"] == "events$2024010213"


def test_a_partition_input_and_a_decorated_destination_are_refused_together() -> None:
    with pytest.raises(InvalidTaskError, match=r"names partition \$20240101 and the task has a 'partition' input"):
        load_configuration(LoadSpec("ds.events$20240101"), "gs://b/f", "proj", partition="20240102")


@pytest.mark.parametrize(("spec", "source", "expected"), BUILT)
def test_the_load_configuration_holds_what_the_spec_says(
    spec: dict[str, Any], source: Any, expected: dict[str, Any]
) -> None:
    configuration = _load(source, **spec)
    assert {k: configuration.get(k) for k in expected} == expected


def test_self_describing_formats_are_not_autodetected() -> None:
    assert "autodetect" not in _load() and "schema" not in _load()


# (spec fields, source, what the error must say)
REFUSED = [
    pytest.param({"source_format": "ORC"}, "gs://b/f", "LoadJob.source_format is 'ORC'", id="unknown-format"),
    pytest.param({"write_disposition": "WRITE_OVER"}, "gs://b/f", "LoadJob.write_disposition", id="bad-disposition"),
    pytest.param({"create_disposition": "NEVER"}, "gs://b/f", "LoadJob.create_disposition", id="bad-create"),
    pytest.param({"destination": "t"}, "gs://b/f", "LoadJob.destination is 't', not a table", id="one-part-name"),
    pytest.param({}, "/tmp/local.parquet", "input 'source' is on a local path", id="local-path"),
    pytest.param({}, SourceRef("file", "s3://b/x"), "input 'source' is on s3://", id="other-cloud"),
    pytest.param({}, "gs://b/a*/b*", "more than one '*'", id="two-wildcards"),
    pytest.param({}, [], "holds no URI", id="no-uris"),
    pytest.param({}, 3, "input 'source' is a int", id="not-a-uri"),
    pytest.param({}, None, "no 'source' input and LoadJob.source_uris is empty", id="no-source-at-all"),
    pytest.param(
        {"source_format": "AVRO"},
        SourceRef("dataset", "gs://b/sd", "parquet"),
        "in parquet but the task loads AVRO",
        id="dataset-format-mismatch",
    ),
    pytest.param({"skip_leading_rows": 1}, "gs://b/f", "CSV options, not PARQUET", id="csv-option-on-parquet"),
    pytest.param({"destination": "ds.t$yesterday"}, "gs://b/f", "partition decorator $yesterday", id="word-decorator"),
    pytest.param(
        {"destination": "ds.t$20241301", "time_partitioning": TimePartitioning("DAY")},
        "gs://b/f",
        "$20241301 is not a DAY partition",
        id="no-such-day",
    ),
    pytest.param(
        {"destination": "ds.t$2024010112", "time_partitioning": TimePartitioning("DAY", "day")},
        "gs://b/f",
        "is not a DAY partition such as $20240131",
        id="hour-decorator-on-day-table",
    ),
    pytest.param(
        {"destination": "ds.t$15", "range_partitioning": RangePartitioning("n", 0, 100, 10)},
        "gs://b/f",
        "$15 is not the start of a range of n",
        id="unaligned-range-partition",
    ),
    pytest.param({"schema": ({"name": "a", "type": "TEXT"},)}, "gs://b/f", "column 'a' has type 'TEXT'", id="bad-type"),
    pytest.param({"schema": ({"type": "STRING"},)}, "gs://b/f", "column 1 has no name", id="nameless-column"),
    pytest.param(
        {"schema": SCHEMA, "time_partitioning": TimePartitioning("DAY", "s")},
        "gs://b/f",
        "time partitioning column 's' is STRING",
        id="partition-by-string",
    ),
    pytest.param(
        {"schema": SCHEMA, "clustering": ("missing",)},
        "gs://b/f",
        "clustering column 'missing' is not in",
        id="cluster-missing",
    ),
    pytest.param(
        {"clustering": ("a", "b", "c", "d", "e")}, "gs://b/f", "1 to 4 columns, got 5", id="five-cluster-columns"
    ),
    pytest.param(
        {"time_partitioning": TimePartitioning(), "range_partitioning": RangePartitioning("n", 0, 10, 1)},
        "gs://b/f",
        "time or range partitioning, not both",
        id="both-partitionings",
    ),
]


@pytest.mark.parametrize(("spec", "source", "message"), REFUSED)
def test_a_load_that_cannot_work_is_refused_naming_the_setting(spec: dict[str, Any], source: Any, message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        _load(source, **spec)
    assert message in str(e.value)


def test_an_input_uri_is_never_quoted_in_an_error() -> None:
    with pytest.raises(InvalidTaskError) as e:
        _load("s3://secret-bucket/key")
    assert "secret-bucket" not in str(e.value)


@pytest.mark.parametrize(
    "spec",
    [
        LoadSpec("ds.t"),
        LoadSpec(
            "p.ds.t$20240101",
            "CSV",
            SCHEMA,
            False,
            "WRITE_TRUNCATE",
            "CREATE_NEVER",
            TimePartitioning("HOUR", "day", 5),
            None,
            ("s",),
            2,
            "|",
            ("gs://b/x",),
        ),
        LoadSpec("ds.t", range_partitioning=RangePartitioning("n", -10, 10, 5)),
    ],
)
def test_a_spec_survives_the_task_template(spec: LoadSpec) -> None:
    assert LoadSpec.from_api_repr(spec.to_api_repr()) == spec


@pytest.mark.parametrize("recorded", [None, {}, {"destination": 3}, {"destination": "ds.t", "skipLeadingRows": "x"}])
def test_a_malformed_recorded_spec_is_refused(recorded: Any) -> None:
    with pytest.raises(InvalidTaskError, match="LoadJob"):
        LoadSpec.from_api_repr(recorded)
