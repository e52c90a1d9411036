"""The GCS stand-in process: :class:`GcsEmulator` runs ``gcp-storage-emulator`` (through :mod:`.gcs_server`) on a
free loopback port as a :class:`~.service_process.ServiceProcess` (started, awaited and stopped like a connector
service), makes buckets, and says how clients reach it.

The local BigQuery reaches it through its own ``STORAGE_EMULATOR_HOST`` (:class:`~._emulator_process.Emulator`
takes :attr:`GcsEmulator.url`); flytekit's ``gs://`` access (gcsfs) through the variables of :meth:`env`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from flyte_bigquery_core.testing._emulator_errors import EmulatorError
from flyte_bigquery_core.testing.service_process import ServiceProcess

__all__ = ["GCS_CLIENT_ENV", "GcsEmulator"]

#: What a client process needs besides ``STORAGE_EMULATOR_HOST``: gcsfs's experimental bucket-type probe
#: (a gRPC call the stand-in cannot answer, retried for a minute per bucket) off, and no probe of the GCE
#: metadata server while gcsfs looks for credentials (it then connects anonymously).
GCS_CLIENT_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "NO_GCE_CHECK": "true"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy: loopback only


class GcsEmulator(ServiceProcess):
    """One in-memory GCS stand-in on a free loopback port; a context manager. ``stop`` is idempotent."""

    MODULE = "flyte_bigquery_core.testing.gcs_server"
    LISTENING = re.compile(r"gcs emulator listening on (\S+):(\d+)")

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        super().__init__(startup_timeout=startup_timeout)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, as ``STORAGE_EMULATOR_HOST`` wants it."""
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables that point gcsfs (flytekit's ``gs://``) and google-cloud-storage at this stand-in."""
        return {"STORAGE_EMULATOR_HOST": self.url, **GCS_CLIENT_ENV}

    def _wait_until_healthy(self, deadline: float) -> None:
        while True:
            with contextlib.suppress(urllib.error.URLError, OSError), _OPENER.open(f"{self.url}/", timeout=2) as reply:
                if reply.status == 200:
                    return
            if time.monotonic() > deadline:
                raise EmulatorError(f"the GCS emulator did not answer in {self._startup_timeout:.0f}s")
            time.sleep(0.05)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (one that exists already is fine)."""
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=local-project",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            _OPENER.open(request, timeout=10).close()
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise EmulatorError(f"the GCS emulator refused bucket {name!r}: HTTP {error.code}") from None

    def upload(self, uri: str, data: bytes) -> None:
        """Write ``data`` as object ``gs://bucket/name`` (``uri``) with a media upload, as any GCS client would."""
        bucket, name = uri.removeprefix("gs://").split("/", 1)
        request = urllib.request.Request(
            f"{self.url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={urllib.parse.quote(name, safe='')}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        _OPENER.open(request, timeout=30).close()

    def object_names(self, uri: str) -> list[str]:
        """The names of the objects under the ``gs://bucket/prefix`` folder ``uri``, relative to it, sorted."""
        bucket, prefix = uri.removeprefix("gs://").split("/", 1)
        prefix = prefix.rstrip("/") + "/"
        query = urllib.parse.urlencode({"prefix": prefix})
        with _OPENER.open(f"{self.url}/storage/v1/b/{bucket}/o?{query}", timeout=30) as reply:
            items = json.load(reply).get("items", [])
        return sorted(item["name"].removeprefix(prefix) for item in items)

    def download(self, uri: str) -> bytes:
        """The bytes of object ``gs://bucket/name`` (``uri``)."""
        bucket, name = uri.removeprefix("gs://").split("/", 1)
        with _OPENER.open(f"{self.url}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media") as r:
            return bytes(r.read())
