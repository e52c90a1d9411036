"""``python -m flytekitplugins.bigquery.testing.emulator``: the old command line of the emulator harness,
which now lives in :mod:`flyte_bigquery_core.testing.emulator` (same arguments, same behaviour)."""

import sys

from flyte_bigquery_core.testing.emulator import main

if __name__ == "__main__":
    sys.exit(main())
