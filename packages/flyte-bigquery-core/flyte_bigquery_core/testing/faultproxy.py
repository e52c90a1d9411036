"""A scriptable fault-injecting HTTP proxy for the BigQuery REST API (stdlib only).

Why: the connector's promises under failure (retry 5xx/429, survive a lost ``jobs.insert`` response by
reattaching on 409, never start a second job) can only be tested honestly with the real client talking
HTTP to a real server. This proxy sits between the client (``BIGQUERY_EMULATOR_HOST=proxy.url``) and the
emulator and misbehaves on cue:

* :meth:`FaultProxy.add_rule` matches requests by method and a regex searched in the path (query string
  excluded) and applies an action to the next ``count`` matches (``count=None``: all of them);
* actions: answer an HTTP ``status`` without forwarding (with ``Retry-After`` for 429), ``reset`` the
  connection before forwarding, ``drop`` (forward, then close the connection without answering: a lost
  response), ``delay`` seconds before or after forwarding, ``truncate`` the forwarded body;
* :meth:`FaultProxy.chaos` injects faults into a fraction of the other requests with a seeded RNG, so
  a failing run can be replayed;
* :attr:`FaultProxy.seen` / :attr:`FaultProxy.injected` count requests by endpoint and faults by kind,
  :attr:`FaultProxy.injected_at` faults by endpoint and kind, and :attr:`FaultProxy.log` records every
  exchange with the status the client got (and the request headers it sent).

It listens on 127.0.0.1 only. Use it as a context manager or call :meth:`start`/:meth:`stop`.

The parts live in private modules, one job each: the rules (:mod:`._fault_rules`), endpoint names
(:mod:`._bigquery_endpoints`), the exchange log entry (:mod:`._exchange`), the HTTP handler
(:mod:`._proxy_handler`), the proxy itself (:mod:`._fault_proxy`) and ``rewrite`` transforms
(:mod:`._rewrites`). This module is the public face.
"""

from __future__ import annotations

from flyte_bigquery_core.testing._bigquery_endpoints import endpoint_of
from flyte_bigquery_core.testing._exchange import Exchange
from flyte_bigquery_core.testing._fault_proxy import FaultProxy
from flyte_bigquery_core.testing._fault_rules import ACTIONS, Rule
from flyte_bigquery_core.testing._rewrites import dry_run_estimate, partitions_summary

__all__ = ["ACTIONS", "Exchange", "FaultProxy", "Rule", "dry_run_estimate", "endpoint_of", "partitions_summary"]
