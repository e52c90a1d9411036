"""Which slot reservation a job runs in: the task's choice, else its Flyte project/domain's, else the connector's.

BigQuery's ``JobConfiguration.reservation`` (``jobs.insert``, https://cloud.google.com/bigquery/docs/reference/
rest/v2/Job#JobConfiguration; google-cloud-bigquery's ``JobConfig.reservation``) names the reservation a job
uses, as ``projects/{project}/locations/{location}/reservations/{reservation}``; ``none`` runs it on demand
whatever the reservation assignments say. Unset, BigQuery applies the execution project's assignments.

Precedence, most specific first (:func:`choose_reservation`):

1. the task's ``Reservation`` (``BigQueryConfig(Reservation=...)``);
2. ``reservation`` in the task's own ``QueryJobConfig``;
3. the operator's default for the task's Flyte project and domain (``FLYTEKITPLUGINS_BIGQUERY_RESERVATIONS``, a
   JSON object whose keys are ``project/domain``, ``project/*``, ``*/domain`` or ``*/*``: the most specific
   key that matches wins);
4. the connector default (``FLYTEKITPLUGINS_BIGQUERY_RESERVATION``).

``none`` at any level forces on-demand and stops the search. The chosen value and where it came from go into the
job, its ``custom_info`` and the connector's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidTaskError
from .operator_config import json_document
from .text_values import Malformed

__all__ = [
    "ON_DEMAND",
    "RESERVATIONS_ENV",
    "RESERVATION_ENV",
    "ReservationChoice",
    "choose_reservation",
    "parse_reservation",
    "parse_reservation_defaults",
]

RESERVATION_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESERVATION"
RESERVATIONS_ENV = "FLYTEKITPLUGINS_BIGQUERY_RESERVATIONS"
#: The reservation value that runs a job on demand.
ON_DEMAND = "none"
_PATH = re.compile(r"^projects/[A-Za-z0-9.:-]+/locations/[A-Za-z0-9-]+/reservations/[a-z][a-z0-9-]{0,63}$")
_EXPECTED = f"'projects/<project>/locations/<location>/reservations/<name>' or '{ON_DEMAND}' (on-demand)"


def parse_reservation(text: str) -> str:
    """A reservation's resource name, or ``none``; ``ValueError`` for anything else."""
    value = text.strip()
    if value.casefold() == ON_DEMAND:
        return ON_DEMAND
    if not _PATH.match(value):
        raise Malformed(f"expected {_EXPECTED}")
    return value


def parse_reservation_defaults(text: str) -> dict[str, str]:
    """``FLYTEKITPLUGINS_BIGQUERY_RESERVATIONS`` (inline JSON or a file): ``{"project/domain": reservation}``."""
    document = json_document(text)
    if not isinstance(document, dict):
        raise Malformed('expected a JSON object such as {"analytics/production": "projects/…/reservations/prod"}')
    defaults: dict[str, str] = {}
    for key, value in document.items():
        parts = key.split("/")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise Malformed(f"key {key!r} is not 'project/domain' ('*' for any project or any domain)")
        if not isinstance(value, str):
            raise Malformed(f"the value of {key!r} is not a string; expected {_EXPECTED}")
        try:
            defaults["/".join(p.strip() for p in parts)] = parse_reservation(value)
        except ValueError:
            raise Malformed(f"the value of {key!r} is not a reservation; expected {_EXPECTED}") from None
    return defaults


@dataclass(frozen=True)
class ReservationChoice:
    """The reservation for one job (``None``: BigQuery's assignments decide) and where it came from."""

    reservation: str | None
    source: str | None = None

    def apply(self, configuration: dict[str, Any]) -> None:
        """Write it into a ``jobs.insert`` ``configuration`` (leaves it alone when nothing was chosen)."""
        if self.reservation is not None:
            configuration["reservation"] = self.reservation


def choose_reservation(
    task_value: Any,
    configured: Any,
    project: str,
    domain: str,
    defaults: Mapping[str, str],
    connector_default: str | None,
    task_name: str,
) -> ReservationChoice:
    """Apply the precedence of the module docstring. ``task_value`` is the task's ``Reservation`` custom field,
    ``configured`` the ``reservation`` of its ``QueryJobConfig``; ``project``/``domain`` are Flyte's. Raises
    :class:`InvalidTaskError` naming the task when the task's own value is not a reservation."""
    for value, source in ((task_value, "the task's Reservation"), (configured, "the task's QueryJobConfig")):
        if value in (None, ""):
            continue
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return ReservationChoice(parse_reservation(value), source)
        except ValueError:
            raise InvalidTaskError(f"{source} is not a reservation; expected {_EXPECTED}", task=task_name) from None
    for key in (f"{project}/{domain}", f"{project}/*", f"*/{domain}", "*/*"):
        if key in defaults:
            return ReservationChoice(defaults[key], f"the default for {key} ({RESERVATIONS_ENV})")
    if connector_default is not None:
        return ReservationChoice(connector_default, f"the connector default ({RESERVATION_ENV})")
    return ReservationChoice(None)
