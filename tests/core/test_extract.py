"""Extract specs → ``configuration.extract``: formats, compression, file names, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError
from flyte_bigquery_core.extract import ExtractSpec, extract_configuration


def _extract(value: Any = "bq://proj:ds.t", **spec: Any) -> dict[str, Any]:
    """``configuration.extract`` of a spec with ``spec`` fields, the ``source`` input being ``value``."""
    return extract_configuration(ExtractSpec(**{"destination": "gs://b/out", **spec}), value, "proj")


# (spec fields, the destination URI, format, compression)
FILES = [
    pytest.param({}, "gs://b/out/part-*.parquet", "PARQUET", "NONE", id="parquet"),
    pytest.param({"compression": "snappy"}, "gs://b/out/part-*.parquet", "PARQUET", "SNAPPY", id="parquet-snappy"),
    pytest.param({"compression": "ZSTD"}, "gs://b/out/part-*.parquet", "PARQUET", "ZSTD", id="parquet-zstd"),
    pytest.param({"compression": "GZIP"}, "gs://b/out/part-*.parquet", "PARQUET", "GZIP", id="parquet-gzip-keeps-name"),
    pytest.param(
        {"destination_format": "AVRO", "compression": "DEFLATE"},
        "gs://b/out/part-*.avro",
        "AVRO",
        "DEFLATE",
        id="avro-deflate",
    ),
    pytest.param({"destination_format": "CSV"}, "gs://b/out/part-*.csv", "CSV", "NONE", id="csv"),
    pytest.param(
        {"destination_format": "CSV", "compression": "GZIP"}, "gs://b/out/part-*.csv.gz", "CSV", "GZIP", id="csv-gzip"
    ),
    pytest.param(
        {"destination_format": "JSON", "compression": "GZIP"},
        "gs://b/out/part-*.json.gz",
        "NEWLINE_DELIMITED_JSON",
        "GZIP",
        id="ndjson-gzip",
    ),
    pytest.param({"destination": "gs://b/out/"}, "gs://b/out/part-*.parquet", "PARQUET", "NONE", id="trailing-slash"),
]


@pytest.mark.parametrize(("spec", "uri", "kind", "compression"), FILES)
def test_files_are_named_for_their_format_and_compression(
    spec: dict[str, Any], uri: str, kind: str, compression: str
) -> None:
    configuration = _extract(**spec)
    assert configuration["destinationUris"] == [uri]
    assert (configuration["destinationFormat"], configuration["compression"]) == (kind, compression)


@pytest.mark.parametrize(
    ("source", "spec", "table"),
    [
        pytest.param("bq://proj:_results.anon", {}, ("proj", "_results", "anon"), id="query-result-input"),
        pytest.param("other.ds.t", {}, ("other", "ds", "t"), id="input-table-name"),
        pytest.param(None, {"source": "ds.fixed"}, ("proj", "ds", "fixed"), id="fixed-table"),
    ],
)
def test_the_source_table_is_the_input_or_the_spec(source: Any, spec: dict[str, Any], table: tuple[str, ...]) -> None:
    reference = _extract(source, **spec)["sourceTable"]
    assert (reference["projectId"], reference["datasetId"], reference["tableId"]) == table


def test_avro_keeps_logical_types_and_csv_its_options() -> None:
    assert _extract(destination_format="AVRO")["useAvroLogicalTypes"] is True
    csv = _extract(destination_format="CSV", print_header=False, field_delimiter="\t")
    assert (csv["printHeader"], csv["fieldDelimiter"]) == (False, "\t")


REFUSED = [
    pytest.param({"destination_format": "ORC"}, "bq://p:d.t", "destination_format is 'ORC'", id="unknown-format"),
    pytest.param(
        {"compression": "DEFLATE"}, "bq://p:d.t", "'DEFLATE' is not available for PARQUET", id="deflate-parquet"
    ),
    pytest.param(
        {"destination_format": "CSV", "compression": "SNAPPY"}, "bq://p:d.t", "not available for CSV", id="snappy-csv"
    ),
    pytest.param({"destination": "/tmp/out"}, "bq://p:d.t", "a folder in Cloud Storage", id="local-folder"),
    pytest.param({"destination": "gs://bucket"}, "bq://p:d.t", "a bucket and a path", id="bucket-only"),
    pytest.param({"destination": "gs://b/x/*"}, "bq://p:d.t", "no '*'", id="wildcard-folder"),
    pytest.param({}, None, "no 'source' input and ExtractJob.source is not set", id="no-table"),
    pytest.param({}, "gs://b/file.parquet", "input 'source' is a str, not a table", id="file-input"),
    pytest.param({"print_header": True}, "bq://p:d.t", "CSV options, not PARQUET", id="header-on-parquet"),
]


@pytest.mark.parametrize(("spec", "source", "message"), REFUSED)
def test_an_extract_that_cannot_work_is_refused(spec: dict[str, Any], source: Any, message: str) -> None:
    with pytest.raises(InvalidTaskError) as e:
        _extract(source, **spec)
    assert message in str(e.value)


def test_a_spec_survives_the_task_template() -> None:
    spec = ExtractSpec("gs://b/o", "CSV", "GZIP", "ds.t", True, ";")
    assert ExtractSpec.from_api_repr(spec.to_api_repr()) == spec
