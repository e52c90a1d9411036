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
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import text_values as tv
from .access_policy import IMPERSONATION_RULES_ENV, AccessPolicy, parse_policy
from .errors import SettingsError
from .reservations import RESERVATION_ENV, RESERVATIONS_ENV, parse_reservation, parse_reservation_defaults
from .text_values import parse_size

__all__ = [
    "BILLING_PROJECT_ENV",
    "CA_BUNDLE_VARIABLES",
    "DEFAULT_LABELS_ENV",
    "EMULATOR_HOST_ENV",
    "ESTIMATE_ENV",
    "GOOGLE_CLOUD_PROJECT_ENV",
    "IAM_ENDPOINT_ENV",
    "IMPERSONATION_RULES_ENV",
    "MAXIMUM_BYTES_ENV",
    "MAX_INFLIGHT_ENV",
    "MAX_WORKERS_ENV",
    "PRICE_PER_TIB_ENV",
    "PROXY_VARIABLES",
    "READ_STREAMS_ENV",
    "RESERVATIONS_ENV",
    "RESERVATION_ENV",
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
IAM_ENDPOINT_ENV = "FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT"
MAX_INFLIGHT_ENV = "FLYTEKITPLUGINS_BIGQUERY_MAX_INFLIGHT_PER_PROJECT"
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
            detail = f" ({e})" if isinstance(e, tv.Malformed) and str(e) else ""
            raise SettingsError(f"{name}{shown} is malformed{detail}; expected {self.expects}") from None


#: Every setting, in README order.
VARIABLES: tuple[Variable, ...] = (
    Variable((MAX_WORKERS_ENV,), "max_workers", tv.whole(1), 64, "a whole number of threads, at least 1"),
    Variable((RETRY_SECONDS_ENV,), "retry_seconds", tv.number(0), 60.0, "a number of seconds, at least 0"),
    Variable(
        (DEFAULT_LABELS_ENV,),
        "default_labels",
        tv.labels,
        {},
        "key=value,key=value labels (keys distinct after BigQuery's label rules)",
        echo=False,
    ),
    Variable((ESTIMATE_ENV,), "estimate", tv.flag, False, "true or false (also 1/0, yes/no, on/off)"),
    Variable((MAXIMUM_BYTES_ENV,), "maximum_bytes", parse_size, None, "a number of bytes or a size such as '10 GiB'"),
    Variable((PRICE_PER_TIB_ENV,), "price_per_tib", tv.number(0), None, "a number (price per TiB), at least 0"),
    Variable((RESULTS_DATASET_ENV,), "results_dataset", tv.dataset, None, "'dataset' or 'project.dataset'", echo=False),
    Variable(
        (RESULTS_EXPIRATION_DAYS_ENV,),
        "results_expiration_days",
        tv.number(_MIN_EXPIRATION_DAYS),
        7.0,
        "a number of days, at least 1/24 (one hour, BigQuery's minimum)",
    ),
    Variable((BILLING_PROJECT_ENV,), "billing_project", tv.verbatim, None, "a project id", echo=False),
    Variable((READ_STREAMS_ENV,), "read_streams", tv.whole(1), 16, "a whole number of streams, at least 1"),
    Variable(
        (WRITE_DISPOSITION_ENV,),
        "write_disposition",
        tv.choice(WRITE_DISPOSITIONS),
        "WRITE_APPEND",
        f"one of {', '.join(WRITE_DISPOSITIONS)}",
    ),
    Variable((EMULATOR_HOST_ENV,), "emulator_host", tv.url, None, "a URL such as http://127.0.0.1:9050", echo=False),
    Variable(
        (STORAGE_EMULATOR_HOST_ENV,),
        "storage_emulator_host",
        tv.host_port,
        None,
        "host:port of a plain-gRPC Storage Read API",
        echo=False,
    ),
    Variable((GOOGLE_CLOUD_PROJECT_ENV,), "google_cloud_project", tv.verbatim, None, "a project id", echo=False),
    Variable(
        (IMPERSONATION_RULES_ENV,),
        "impersonation_rules",
        parse_policy,
        AccessPolicy(),
        'a JSON allow-list, inline or the path of a JSON file: {"rules": [{"name", "project", "domain", '
        '"principals", "delegates"}]}',
        echo=False,
    ),
    Variable(
        (IAM_ENDPOINT_ENV,),
        "iam_endpoint",
        tv.url,
        None,
        "the URL of the IAM Credentials API, such as https://iamcredentials.googleapis.com",
        echo=False,
    ),
    Variable(
        (RESERVATION_ENV,),
        "default_reservation",
        parse_reservation,
        None,
        "'projects/<project>/locations/<location>/reservations/<name>' or 'none' (on-demand)",
        echo=False,
    ),
    Variable(
        (RESERVATIONS_ENV,),
        "reservation_defaults",
        parse_reservation_defaults,
        {},
        'a JSON object, inline or the path of a JSON file: {"<project>/<domain>": "<reservation or none>"} '
        "('*' for any project or domain)",
        echo=False,
    ),
    Variable(
        (MAX_INFLIGHT_ENV,),
        "max_inflight_per_project",
        tv.whole(0),
        0,
        "a whole number of job calls in flight per BigQuery project and replica, 0 for no cap",
    ),
    Variable(PROXY_VARIABLES, "proxy_configured", tv.present, False, "a proxy URL", echo=False),
    Variable(CA_BUNDLE_VARIABLES, "ca_bundle", tv.verbatim, None, "the path of a CA bundle file", echo=False),
)


@dataclass(frozen=True)
class Settings:
    """The plugin's settings, one typed field per environment variable (see :data:`VARIABLES`).

    ``Settings()`` is every default; :meth:`from_env` reads the environment. Tests can build one directly:
    ``Settings(estimate=True, maximum_bytes=2**30)``.
    """

    max_workers: int = 64
    """``FLYTEKITPLUGINS_BIGQUERY_MAX_WORKERS``: threads for blocking BigQuery calls (a count); HTTP
    connections per event loop are twice this (:data:`~flyte_bigquery_core.clients.CALLS_PER_TASK_CALL`)."""
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
    impersonation_rules: AccessPolicy = field(default_factory=AccessPolicy)
    """``FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES``: which service accounts tasks of each Flyte project and
    domain may run as (:mod:`.access_policy`); no rules: impersonation is refused."""
    iam_endpoint: str | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_IAM_ENDPOINT``: base URL of the IAM Credentials API that issues impersonated
    tokens (``generateAccessToken``); ``None``: Google's (and, with a local BigQuery, no token exchange)."""
    default_reservation: str | None = None
    """``FLYTEKITPLUGINS_BIGQUERY_RESERVATION``: the reservation of jobs whose task and Flyte project/domain name
    none (a reservation's resource name, or ``none`` for on-demand); ``None``: BigQuery's assignments decide."""
    reservation_defaults: dict[str, str] = field(default_factory=dict)
    """``FLYTEKITPLUGINS_BIGQUERY_RESERVATIONS``: reservation per Flyte ``project/domain`` (``*`` for any)."""
    max_inflight_per_project: int = 0
    """``FLYTEKITPLUGINS_BIGQUERY_MAX_INFLIGHT_PER_PROJECT``: the most job calls (insert, get, cancel, dry run)
    one replica has in flight per BigQuery project (a count; 0: no cap). The effective limit is replicas * cap."""
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
