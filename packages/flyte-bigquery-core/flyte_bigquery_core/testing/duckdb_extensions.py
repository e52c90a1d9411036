"""Install the DuckDB extensions the BigQuery emulator needs, from wheels, without network access.

Run this with the *emulator* virtualenv's interpreter (``.venv-emulator/bin/python``; ``make
emulator-venv`` does it). It is a standalone script: it imports nothing from this project, because
the emulator venv (Python 3.13) does not have the plugin installed.

Why it exists: ``local-bigquery`` runs every query through DuckDB and needs the ``icu`` (time zones,
collations) and ``ducklake`` (its table storage) extensions. DuckDB normally downloads extensions on
first use, which fails offline and leaves every query failing with "the icu extension needs to be
loaded". The ``duckdb-extension-*`` wheels carry the extension binaries; ``INSTALL '<file>'`` copies
them into DuckDB's extension directory (``~/.duckdb/extensions/<version>/<platform>``), which lives
outside the venv, so this script is idempotent and cheap enough to run on every ``make``.
"""

from __future__ import annotations

import glob
import os
import site
import sys

#: Extensions without which the emulator cannot answer a single query.
REQUIRED = ("icu", "ducklake")


def _wheel_extension_files() -> list[str]:
    """Every ``*.duckdb_extension`` shipped by an installed ``duckdb-extension-*`` wheel."""
    roots = [*site.getsitepackages(), site.getusersitepackages()]
    found: set[str] = set()
    for root in roots:
        pattern = os.path.join(root, "duckdb_extension_*", "extensions", "*", "*.duckdb_extension")
        found.update(glob.glob(pattern))
    return sorted(found)


def main() -> int:
    """Install the missing extensions; exit non-zero if a required one still cannot be loaded."""
    try:
        import duckdb
    except ImportError:
        print(f"duckdb is not installed for {sys.executable}; run `make emulator-venv`", file=sys.stderr)
        return 1

    con = duckdb.connect()
    # Skip only extensions already installed from a file. One that DuckDB reports as statically linked
    # (icu, in the 1.5.x wheels) is still needed as a file: setting ``TimeZone`` in the connect-time
    # config, as local-bigquery does, autoloads it from the extension directory.
    from_file = {
        row[0]
        for row in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE installed AND install_mode = 'CUSTOM_PATH'"
        ).fetchall()
    }
    for path in _wheel_extension_files():
        name = os.path.basename(path).removesuffix(".duckdb_extension")
        if name in from_file:
            continue
        con.execute("INSTALL '" + path.replace("'", "''") + "'")
        print(f"installed DuckDB extension {name} (duckdb {duckdb.__version__})")

    missing = []
    try:  # exactly what local-bigquery does first; fails with "the icu extension needs to be loaded"
        duckdb.connect(config={"TimeZone": "UTC"}).close()
    except duckdb.Error as error:
        missing.append(f"icu: {error}")
    for name in REQUIRED:
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error as error:
            missing.append(f"{name}: {error}")
    if missing:
        print(
            "DuckDB extensions needed by local-bigquery cannot be loaded:\n  "
            + "\n  ".join(missing)
            + f"\ninstall the matching duckdb-extension-* wheels (duckdb {duckdb.__version__}) into {sys.prefix}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
