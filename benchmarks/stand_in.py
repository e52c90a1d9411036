"""A loopback stand-in for the BigQuery REST API, fast and with a fixed latency, for load tests.

Why not the emulator: it really runs the SQL (DuckDB) and would be the bottleneck; the benchmark
measures the connector service, so BigQuery is replaced by something that answers like it, in constant
time after a configurable delay (default 100 ms, a typical ``jobs.insert`` round trip). It is asyncio
(aiohttp), so thousands of requests can wait out their latency at once without threads.

It answers what the connector calls: ``jobs.insert`` (a DONE query job with ``jobReference``, ``status``,
``configuration.query.destinationTable`` and statistics; 409 for a job id it has seen), ``jobs.get``
(404 for unknown ids), ``jobs.cancel``, ``tables.get`` (the connector reads the result's row count) and a minimal
``jobs.getQueryResults``. ``GET /_stats`` reports
the counts the benchmark checks (jobs created, conflicts, requests by endpoint) and ``POST /_reset``
forgets everything. It listens on 127.0.0.1 only.

    python -m benchmarks.stand_in --port 0 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web

__all__ = ["StandIn", "main"]

HOST = "127.0.0.1"
_API = "/bigquery/v2/projects/{project}"


def _error(status: int, reason: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}
    return web.json_response(body, status=status)


class StandIn:
    """The stand-in's state and handlers; ``app()`` builds the aiohttp application."""

    #: How the first line on stdout names it.
    label = "stand-in"

    def __init__(self, latency: float = 0.1) -> None:
        self.latency = latency
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.conflicts = 0

    async def _wait(self, endpoint: str) -> None:
        self.requests[endpoint] += 1
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    def _resource(self, project: str, job_id: str, location: str, configuration: dict[str, Any]) -> dict[str, Any]:
        now = str(int(time.time() * 1000))
        query = dict(configuration.get("query") or {})
        query.setdefault("destinationTable", {"projectId": project, "datasetId": "_standin", "tableId": job_id})
        return {
            "kind": "bigquery#job",
            "id": f"{project}:{location}.{job_id}",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location},
            "status": {"state": "DONE"},
            "configuration": {**configuration, "jobType": "QUERY", "query": query},
            "statistics": {
                "creationTime": now,
                "startTime": now,
                "endTime": now,
                "totalBytesProcessed": "0",
                "query": {"statementType": "SELECT", "totalBytesProcessed": "0", "totalBytesBilled": "0"},
            },
            "user_email": "stand-in@localhost",
        }

    async def insert(self, request: web.Request) -> web.Response:
        await self._wait("jobs.insert")
        project = request.match_info["project"]
        body = json.loads(await request.read() or b"{}")
        ref = body.get("jobReference") or {}
        job_id = ref.get("jobId") or f"standin_{len(self.jobs)}"
        location = ref.get("location") or "US"
        key = (project, job_id)
        if key in self.jobs:
            self.conflicts += 1
            return _error(409, "duplicate", f"Already Exists: Job {project}:{location}.{job_id}")
        resource = self._resource(project, job_id, location, body.get("configuration") or {})
        self.jobs[key] = resource
        return web.json_response(resource)

    async def get(self, request: web.Request) -> web.Response:
        await self._wait("jobs.get")
        key = (request.match_info["project"], request.match_info["job_id"])
        resource = self.jobs.get(key)
        if resource is None:
            return _error(404, "notFound", f"Not found: Job {key[0]}:{key[1]}")
        return web.json_response(resource)

    async def cancel(self, request: web.Request) -> web.Response:
        await self._wait("jobs.cancel")
        resource = self.jobs.get((request.match_info["project"], request.match_info["job_id"]))
        if resource is None:
            return _error(404, "notFound", "Not found: Job")
        return web.json_response({"kind": "bigquery#jobCancelResponse", "job": resource})

    async def query_results(self, request: web.Request) -> web.Response:
        await self._wait("jobs.getQueryResults")
        resource = self.jobs.get((request.match_info["project"], request.match_info["job_id"]))
        if resource is None:
            return _error(404, "notFound", "Not found: Job")
        return web.json_response(
            {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": resource["jobReference"],
                "jobComplete": True,
                "totalRows": "1",
                "schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]},
                "rows": [{"f": [{"v": "1"}]}],
            }
        )

    async def table(self, request: web.Request) -> web.Response:
        """``tables.get``: the connector reads the result table's row count once a job succeeded."""
        await self._wait("tables.get")
        ref = {
            k: request.match_info[v]
            for k, v in (("projectId", "project"), ("datasetId", "dataset"), ("tableId", "table"))
        }
        return web.json_response(
            {
                "kind": "bigquery#table",
                "id": f"{ref['projectId']}:{ref['datasetId']}.{ref['tableId']}",
                "tableReference": ref,
                "type": "TABLE",
                "numRows": "1",
                "schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]},
            }
        )

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"jobs": len(self.jobs), "conflicts": self.conflicts, "requests": self.requests})

    async def reset(self, request: web.Request) -> web.Response:
        self.jobs.clear()
        self.requests.clear()
        self.conflicts = 0
        return web.json_response({})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(_API + "/jobs", self.insert)
        app.router.add_get(_API + "/jobs/{job_id}", self.get)
        app.router.add_post(_API + "/jobs/{job_id}/cancel", self.cancel)
        app.router.add_get(_API + "/queries/{job_id}", self.query_results)
        app.router.add_get(_API + "/datasets/{dataset}/tables/{table}", self.table)
        app.router.add_get("/_stats", self.stats)
        app.router.add_post("/_reset", self.reset)
        return app


async def _serve(stand_in: StandIn, port: int) -> None:
    runner = web.AppRunner(stand_in.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"{stand_in.label} listening on http://{HOST}:{bound} (latency {stand_in.latency * 1000:.0f} ms)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(
    argv: list[str] | None = None,
    *,
    kind: type[StandIn] = StandIn,
    prog: str = "python -m benchmarks.stand_in",
    doc: str = __doc__,
    latency_help: str = "seconds before each BigQuery answer",
) -> int:
    """Serve ``kind`` on loopback until interrupted; the URL is the first line on stdout."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed on stdout)")
    parser.add_argument("--latency", type=float, default=0.1, help=latency_help)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(kind(args.latency), args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
