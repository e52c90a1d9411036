"""The BigQuery job engine shared by the Flyte plugins, free of any Flyte SDK.

Modules, one job each (the repository README's "Development" table lists them all): :mod:`.errors` (the
exception tree), :mod:`.settings` (every setting, read once), :mod:`.params` with :mod:`.bigquery_types`,
:mod:`.scalars` and :mod:`.resolve` (the type model and query parameters), :mod:`.template` (placeholders),
:mod:`.jobconfig` (a task's job configuration), :mod:`.identity` (job ids and labels), :mod:`.planning` (one
run, decided), :mod:`.engine` and :mod:`.observation` (a job's life), :mod:`.status` (its outcome), :mod:`.cost`
(cost guards), :mod:`.report` (custom info, logs, metrics), :mod:`.results` (managed result tables),
:mod:`.handle` (the resource meta), :mod:`.transport`, :mod:`.jobs_api`, :mod:`.retry` and :mod:`.clients`
(the call layer), :mod:`.access`, :mod:`.access_policy`, :mod:`.impersonation`, :mod:`.reservations`,
:mod:`.throttle` and :mod:`.resubmission` (who a task runs as, where, on which slots, and bursts),
:mod:`.metrics` (Prometheus), :mod:`.io` (Storage Read → Arrow, REST reads, load-job writes) and :mod:`.testing`
(emulator harness, fault proxy, scripted transport, IAM stand-in). Nothing here imports flytekit, flyteidl or
flyte.
"""
