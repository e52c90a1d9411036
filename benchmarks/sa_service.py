"""Our connector service, authenticating with Application Default Credentials even against a stand-in.

With ``BIGQUERY_EMULATOR_HOST`` set the connector uses anonymous credentials (an emulator has no token
endpoint). The side-by-side benchmark points both connectors at a loopback stand-in through that variable,
and the upstream connector authenticates there with ``GOOGLE_APPLICATION_CREDENTIALS`` (a generated
service-account key whose ``token_uri`` is the stand-in). For a like-for-like comparison this launcher makes
ours do the same: the one change is that ``ClientPool`` loads ADC whatever the endpoint, so every call
carries a bearer token obtained from the key, as in production.

    python -m benchmarks.sa_service --host 127.0.0.1 --port 0
"""

from __future__ import annotations

import sys
from typing import Any

from flyte_bigquery_core import clients

_credentials_for_host = clients.ClientPool._credentials_for_host


def _adc_always(self: Any, emulator: str | None) -> Any:
    return _credentials_for_host(self, None)


def use_adc_with_emulator() -> None:
    """Make every ClientPool use ADC (the service-account key) even when BIGQUERY_EMULATOR_HOST is set."""
    clients.ClientPool._credentials_for_host = _adc_always  # type: ignore[method-assign]


if __name__ == "__main__":
    use_adc_with_emulator()
    from flytekitplugins.bigquery.service import main

    sys.exit(main())
