"""Importing the plugin loads no dataframe library and no BigQuery client; the ``bq://`` handlers are
registered lazily, as flytekit registers its own, and ours still serve every ``bq://`` read.

Each case runs in a fresh interpreter: the test process has long imported everything, and registered our
handlers eagerly (``register_handlers``) for other tests.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from flyte_bigquery_core.settings import STORAGE_EMULATOR_HOST_ENV

from flytekitplugins.bigquery.testing import Emulator

#: Imported by google-cloud-bigquery (pandas, pyarrow, numpy and the Storage client, when installed) or by the
#: ``bq://`` handlers only; the plugin's import must load none of them.
HEAVY = (
    "pandas",
    "pyarrow",
    "polars",
    "numpy",
    "google.cloud.bigquery",
    "google.cloud.bigquery_storage_v1",
    "flytekit.types.structured.bigquery",
)

#: The child's test of "really imported": flytekit puts lazy placeholders for pandas and pyarrow in
#: ``sys.modules`` (its ``is_imported`` tells them apart).
PRELUDE = """
import json, sys
from flytekit.lazy_import.lazy_module import is_imported
from flytekit.types.structured.structured_dataset import StructuredDatasetTransformerEngine as Engine
"""


def _run(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` (after :data:`PRELUDE`) in a fresh interpreter; it prints one JSON object last. From a
    file, since flytekit reads a task's source."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "case.py"
        script.write_text(PRELUDE + textwrap.dedent(code))
        proc = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp,
            env=env if env is not None else dict(os.environ),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_loads_no_dataframe_library_nor_bigquery_client() -> None:
    found = _run(
        f"""
        import flytekitplugins.bigquery
        print(json.dumps({{m: is_imported(m) for m in {HEAVY!r}}}))
        """
    )
    assert found == dict.fromkeys(HEAVY, False)


def test_pandas_alone_gets_our_handlers_without_loading_bigquery() -> None:
    """A pandas task that never touches BigQuery: ours are registered on its first type lookup, and neither
    google-cloud-bigquery nor pyarrow is imported for it."""
    found = _run(
        """
        import pandas as pd
        import flytekitplugins.bigquery
        from flytekit.core.type_engine import TypeEngine
        from flytekitplugins.bigquery.io import BigQueryDecoder, BigQueryEncoder

        TypeEngine.get_transformer(pd.DataFrame)
        print(json.dumps({
            "decoder": isinstance(Engine.get_decoder(pd.DataFrame, "bq", ""), BigQueryDecoder),
            "encoder": isinstance(Engine.get_encoder(pd.DataFrame, "bq", ""), BigQueryEncoder),
            "bigquery": is_imported("google.cloud.bigquery"),
            "schema_transformer": "flytekit.types.schema.types_pandas" in sys.modules,
        }))
        """
    )
    assert found == {"decoder": True, "encoder": True, "bigquery": False, "schema_transformer": True}


def test_ours_replace_flytekits_when_bigquery_is_imported_later() -> None:
    """Ours registered first; then google-cloud-bigquery is imported and flytekit's lazy loader registers its
    own bq handlers: they fail as duplicates once (settled, not retried on every lookup), and ours stay."""
    found = _run(
        """
        import pandas as pd
        import flytekitplugins.bigquery
        from flytekit.core.type_engine import TypeEngine
        from flytekitplugins.bigquery.io import BigQueryDecoder

        TypeEngine.get_transformer(pd.DataFrame)
        import google.cloud.bigquery
        import pyarrow as pa

        attempts = []
        register = Engine.register.__func__

        def counting(cls, handler, *args, **kwargs):
            attempts.append(type(handler).__name__)
            return register(cls, handler, *args, **kwargs)

        Engine.register = classmethod(counting)
        for _ in range(3):
            TypeEngine.get_transformer(pd.DataFrame)
        print(json.dumps({
            "pandas": isinstance(Engine.get_decoder(pd.DataFrame, "bq", ""), BigQueryDecoder),
            "arrow": isinstance(Engine.get_decoder(pa.Table, "bq", ""), BigQueryDecoder),
            "flytekit_attempts": attempts.count("PandasToBQEncodingHandlers"),
        }))
        """
    )
    assert found == {"pandas": True, "arrow": True, "flytekit_attempts": 1}


def test_ours_replace_flytekits_when_flytekit_registered_first() -> None:
    """google-cloud-bigquery imported before the first lookup: flytekit registers its bq handlers, ours
    replace them in the same call."""
    found = _run(
        """
        import google.cloud.bigquery
        import pandas as pd
        import pyarrow as pa
        import flytekitplugins.bigquery
        from flytekit.core.type_engine import TypeEngine
        from flytekitplugins.bigquery.io import BigQueryDecoder, BigQueryEncoder

        TypeEngine.get_transformer(pa.Table)
        print(json.dumps({
            "flytekits": "flytekit.types.structured.bigquery" in sys.modules,
            "ours": [
                isinstance(Engine.get_decoder(t, "bq", ""), BigQueryDecoder)
                and isinstance(Engine.get_encoder(t, "bq", ""), BigQueryEncoder)
                for t in (pd.DataFrame, pa.Table)
            ],
        }))
        """
    )
    assert found == {"flytekits": True, "ours": [True, True]}


def _read_in_fresh_process(emulator: Emulator, table: str, storage: bool) -> dict:
    env = {**os.environ, **emulator.env()}
    if not storage:
        env.pop(STORAGE_EMULATOR_HOST_ENV, None)
    return _run(
        f"""
        import pandas as pd
        from flytekit import StructuredDataset, task, workflow
        from flytekitplugins.bigquery.io import BigQueryDecoder

        decoded = []
        decode = BigQueryDecoder.decode
        BigQueryDecoder.decode = lambda self, *a, **k: decoded.append(self._kind.python_type.__name__) or decode(
            self, *a, **k
        )

        @task
        def count(frame: pd.DataFrame) -> int:
            return len(frame)

        @workflow
        def wf(sd: StructuredDataset) -> int:
            return count(frame=sd)

        uri = {table!r}
        frame = StructuredDataset(uri=uri).open(pd.DataFrame).all()
        print(json.dumps({{
            "rows": len(frame),
            "dtype": str(frame["downloads"].dtype),
            "workflow_rows": wf(sd=StructuredDataset(uri=uri)),
            "decoded": decoded,
        }}))
        """,
        env,
    )


def test_a_bq_read_goes_through_our_decoder_after_lazy_registration(emulator: Emulator) -> None:
    project, dataset, table = emulator.seed_demo().split(".")
    uri = f"bq://{project}:{dataset}.{table}"
    for storage in (True, False):
        found = _read_in_fresh_process(emulator, uri, storage)
        assert found["rows"] == found["workflow_rows"] > 0, (storage, found)
        # ours keep INT64 exact as the nullable Int64 (flytekit's handler gives int64)
        assert found["dtype"] == "Int64", (storage, found)
        assert found["decoded"] == ["DataFrame", "DataFrame"], (storage, found)
