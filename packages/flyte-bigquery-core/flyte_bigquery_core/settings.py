"""Every setting the plugin reads from the environment, parsed and validated once. Free of flytekit.

The connector's settings are environment variables set by whoever deploys it (the *operator*). They are
read in one place, :meth:`Settings.from_env`, from one declarative table (:data:`VARIABLES`: variable,
field, parser, default, what is expected), and a malformed value raises :class:`~.errors.SettingsError`
with one line naming the variable and what it expects. That happens at start-up — the connector reads
its settings when it is constructed, which importing the plugin does, and
``python -m flytekitplugins.bigquery.service`` validates them before serving and exits with status 2 —
so an operator's mistake is never a gRPC ``INTERNAL`` on every call, nor reported as a user's task
failing.

Everything else reads one object: :func:`current_settings` parses the environment once per process and
caches the result; :func:`reload_settings` (or ``current_settings.cache_clear()``) forgets it, for tests
that change the environment.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SettingsError
from .identity import LabelCollisionError, sanitize_labels

__all__ = [
    "BILLING_PROJECT_ENV",
    "CA_BUNDLE_VARIABLES",
    "DEFAULT_LABELS_ENV",
    "EMULATOR_HOST_ENV",
    "ESTIMATE_ENV",
    "GOOGLE_CLOUD_PROJECT_ENV",
    "MAXIMUM_BYTES_ENV",
    "MAX_WORKERS_ENV",
    "PRICE_PER_TIB_ENV",
    "PROXY_VARIABLES",
    "READ_STREAMS_ENV",
    "RESULTS_DATASET_ENV",
    "RESULTS_EXPIRATION_DAYS_ENV",
    "RETRY_SECONDS_ENV",
    "STORAGE_EMULATOR_HOST_ENV",
    "VARIABLES",
    "WRITE_DISPOSITIONS",
    "WRITE_DISPOSITION_ENV",
    "Settings",
    "SettingsError",
    "Variable",
    "current_settings",
    "parse_size",
    "reload_settings",
]

MAX_WORKERS_ENV = "FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS"
RETRY_SECONDS_ENV = "FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS"
DEFAULT_LABELS_ENV = "FLYTEKITPLUGINS_BIGQUERY_DEFAULT_LABELS"
ESTIMATE_ENV = "FLYTEKITPLUGINS_BIGQUERY_ESTIMATE"
MAXIMUM_BYTES_ENV = "FLYTEKITPLUGINS_BIGQUERY_MAXIMUM_BYTES"
PRICE_PER_TIB_ENV = "FLYTEKITPLUGINS_BIGQUERY_PRICE_PER_TIB"
RESULTS_DATASET_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESULTS_DATASET"
RESULTS_EXPIRATION_DAYS_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESULTS_EXPIRATION_DAYS"
BILLING_PROJECT_ENV = "FLYTEKITPLUGINS_BIGQUERY_BILLING_PROJECT"
READ_STREAMS_ENV = "FLYTEKITPLUGINS_BIGQUERY_READ_STREAMS"
WRITE_DISPOSITION_ENV = "FLYTEKITPLUGINS_BIGQUERY_WRITE_DISPOSITION"
STORAGE_EMULATOR_HOST_ENV = "FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST"
#: Read by google-cloud-bigquery itself too.
EMULATOR_HOST_ENV = "BIGQUERY_EMULATOR_HOST"
GOOGLE_CLOUD_PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
#: The variables that make requests use a proxy (their values may hold credentials: never read out).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
#: requests' order of preference for a CA bundle.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

WRITE_DISPOSITIONS = ("WRITE_APPEND", "WRITE_TRUNCATE", "WRITE_EMPTY")
#: BigQuery's smallest default table expiration is one hour.
_MIN_EXPIRATION_DAYS = 1 / 24


# --- parsers: text (stripped, non-empty) -> value, or ValueError -----------------------------------------


class _Malformed(ValueError):
    """A parser's explanation, added to the one-line message (never carries the raw value of a string)."""


_SIZE = re.compile(r"^\s*(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?\s*(?P<unit>[a-zA-Z]*)\s*$")
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}
_WHOLE = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_size(text: str) -> int:
    """``"10737418240"``, ``"10 GiB"``, ``"1.5 TiB"``, ``"500MB"`` → bytes, exactly (integer arithmetic, no
    float: ``"9007199254740993"`` stays 9007199254740993). Binary units are powers of 1024, SI of 1000; a
    fraction of a byte is dropped. Raises ``ValueError`` for anything else."""
    match = _SIZE.match(text)
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size")
    scale = _SIZE_UNITS[unit]
    fraction = match.group("fraction") or ""
    return int(match.group("whole")) * scale + int(fraction or "0") * scale // 10 ** len(fraction)


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _WHOLE.match(text):
            raise ValueError(text)
        value = int(text)
        if value < minimum:
            raise _Malformed(f"at least {minimum}")
        return value

    return parse


def _number(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise _Malformed("a finite number")
        if value < minimum:
            raise _Malformed(f"at least {minimum:g}")
        return value

    return parse


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.upper() not in options:
            raise ValueError(text)
        return text.upper()

    return parse


def _text(text: str) -> str:
    return text


def _present(text: str) -> bool:
    return True


def _url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(text)
    return text


def _host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return text


def _dataset(text: str) -> str:
    parts = text.split(".")
    if len(parts) > 2 or not all(parts) or any(c.isspace() for c in text):
        raise ValueError(text)
    return text


def _labels(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue  # "a=1," and "a=1,,b=2" are fine
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise _Malformed(f"item {position} is not key=value")
        if key.strip() in pairs:
            raise _Malformed(f"key {key.strip()!r} is given twice")
        pairs[key.strip()] = value.strip()
    try:
        return sanitize_labels(pairs)
    except LabelCollisionError as e:
        first, second = e.keys
        raise _Malformed(f"keys {first!r} and {second!r} both become the BigQuery label {e.key!r}") from None


# --- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One row of the table: where a setting comes from, how it is parsed, its default, what is expected."""

    #: The environment variable(s); the first one set (non-blank) is read.
    names: tuple[str, ...]
    #: The :class:`Settings` field it fills.
    field: str
    parse: Callable[[str], Any]
    default: Any
    #: What a valid value looks like, for the error message and the README.
    expects: str
    #: Whether a malformed value may be quoted in the error (numbers and keywords yes; free text no, it
    #: could be a credential pasted into the wrong variable).
    echo: bool = True

    @property
    def name(self) -> str:
        return self.names[0]

    def read(self, environ: Mapping[str, str]) -> Any:
        """The parsed value, the default when unset or blank, or :class:`SettingsError`."""
        for name in self.names:
            raw = environ.get(name, "").strip()
            if raw:
                break
        else:
            return copy.copy(self.default)
        try:
            return self.parse(raw)
        except (ValueError, ArithmeticError) as e:
            shown = f"={raw!r}" if self.echo else ""
            detail = f" ({e})" if isinstance(e, _Malformed) and str(e) else ""
            raise SettingsError(f"{name}{shown} is malformed{detail}; expected {self.expects}") from None


#: Every setting, in README order.
VARIABLES: tuple[Variable, ...] = (
    Variable((MAX_WORKERS_ENV,), "max_workers", _whole(1), 64, "a whole number of threads, at least 1"),
    Variable((RETRY_SECONDS_ENV,), "retry_seconds", _number(0), 60.0, "a number of seconds, at least 0"),
    Variable(
        (DEFAULT_LABELS_ENV,),
        "default_labels",
        _labels,
        {},
        "key=value,key=value labels (keys distinct after BigQuery's label rules)",
        echo=False,
    ),
    Variable((ESTIMATE_ENV,), "estimate", _flag, False, "true or false (also 1/0, yes/no, on/off)"),
    Variable((MAXIMUM_BYTES_ENV,), "maximum_bytes", parse_size, None, "a number of bytes or a size such as '10 GiB'"),
    Variable((PRICE_PER_TIB_ENV,), "price_per_tib", _number(0), None, "a number (price per TiB), at least 0"),
    Variable((RESULTS_DATASET_ENV,), "results_dataset", _dataset, None, "'dataset' or 'project.dataset'", echo=False),
    Variable(
        (RESULTS_EXPIRATION_DAYS_ENV,),
        "results_expiration_days",
        _number(_MIN_EXPIRATION_DAYS),
        7.0,
        "a number of days, at least 1/24 (one hour, BigQuery's minimum)",
    ),
    Variable((BILLING_PROJECT_ENV,), "billing_project", _text, None, "a project id", echo=False),
    Variable((READ_STREAMS_ENV,), "read_streams", _whole(1), 16, "a whole number of streams, at least 1"),
    Variable(
        (WRITE_DISPOSITION_ENV,),
        "write_disposition",
        _choice(WRITE_DISPOSITIONS),
        "WRITE_APPEND",
        f"one of {', '.join(WRITE_DISPOSITIONS)}",
    ),
    Variable((EMULATOR_HOST_ENV,), "emulator_host", _url, None, "a URL such as http://127.0.0.1:9050", echo=False),
    Variable(
        (STORAGE_EMULATOR_HOST_ENV,),
        "storage_emulator_host",
        _host_port,
        None,
        "host:port of a plain-gRPC Storage Read API",
        echo=False,
    ),
    Variable((GOOGLE_CLOUD_PROJECT_ENV,), "google_cloud_project", _text, None, "a project id", echo=False),
    Variable(PROXY_VARIABLES, "proxy_configured", _present, False, "a proxy URL", echo=False),
    Variable(CA_BUNDLE_VARIABLES, "ca_bundle", _text, None, "the path of a CA bundle file", echo=False),
)


@dataclass(frozen=True)
class Settings:
    """The plugin's settings, one typed field per environment variable (see :data:`VARIABLES`).

    ``Settings()`` is every default; :meth:`from_env` reads the environment. Tests can build one directly:
    ``Settings(estimate=True, maximum_bytes=2**30)``.
    """

    max_workers: int = 64
    """``FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS``: threads for blocking BigQuery calls, and HTTP connections per
    client and per event loop (a count)."""
    retry_seconds: float = 60.0
    """``FLYTEKITPLUGINS_BIGQUERY_RETRY_SECONDS``: time budget, in seconds, for retrying transient errors in
    one call."""
    default_labels: dict[str, str] = field(default_factory=dict)
    """``FLYTEKITPLUGINS_BIGQUERY_DEFAULT_LABELS``: labels added to every job, already sanitized to
    BigQuery's label rules (the job's Flyte labels and the task's own labels win)."""
    estimate: bool = False
    """``FLYTEKITPLUGINS_BIGQUERY_ESTIMATE``: dry-run every query first (tasks may say otherwise)."""
    maximum_bytes: int | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_MAXIMUM_BYTES``: default byte limit (bytes) of a query; ``None``: no limit."""
    price_per_tib: float | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_PRICE_PER_TIB``: price of a TiB scanned (your currency), to show
    approximate costs in messages; ``None``: no prices shown."""
    results_dataset: str | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_RESULTS_DATASET``: ``dataset`` or ``project.dataset`` holding result tables
    of tasks that name none; ``None``: BigQuery's anonymous tables."""
    results_expiration_days: float = 7.0
    """``FLYTEKITPLUGINS_BIGQUERY_RESULTS_EXPIRATION_DAYS``: days a managed result table is kept (the
    dataset's default table expiration)."""
    billing_project: str | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_BILLING_PROJECT``: the project billed for ``bq://`` reads and loads."""
    read_streams: int = 16
    """``FLYTEKITPLUGINS_BIGQUERY_READ_STREAMS``: the most Storage Read streams (and threads) one read uses."""
    write_disposition: str = "WRITE_APPEND"
    """``FLYTEKITPLUGINS_BIGQUERY_WRITE_DISPOSITION``: how a ``bq://`` load treats an existing table."""
    emulator_host: str | None = None
    """``BIGQUERY_EMULATOR_HOST``: URL of a local BigQuery (anonymous credentials are used with it)."""
    storage_emulator_host: str | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_STORAGE_EMULATOR_HOST``: ``host:port`` of a Storage Read API without TLS."""
    google_cloud_project: str | None = None
    """``GOOGLE_CLOUD_PROJECT``: the default project (billed for reads when no billing project is set)."""
    proxy_configured: bool = False
    """Whether an HTTP proxy variable (``HTTPS_PROXY``…) is set; then requests keeps its per-call
    environment handling (``NO_PROXY`` included)."""
    ca_bundle: str | None = None
    """``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``: a CA bundle file for HTTPS (path)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Parse and validate every variable of :data:`VARIABLES`; :class:`SettingsError` on the first
        malformed one (one line: the variable and what it expects)."""
        return cls(**{variable.field: variable.read(environ) for variable in VARIABLES})

    def billing_project_for(self, table_project: str) -> str:
        """The project billed for a read of a table of ``table_project``: the billing project, else
        ``GOOGLE_CLOUD_PROJECT``, else the table's own."""
        return self.billing_project or self.google_cloud_project or table_project


@functools.cache
def current_settings() -> Settings:
    """The process's settings, read from the environment on first use and cached. Raises
    :class:`SettingsError` (and caches nothing) while a variable is malformed."""
    return Settings.from_env()


def reload_settings() -> Settings:
    """Forget the cached settings and read the environment again (for tests that change it)."""
    current_settings.cache_clear()
    return current_settings()
