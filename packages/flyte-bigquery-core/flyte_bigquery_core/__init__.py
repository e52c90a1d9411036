"""The BigQuery job engine shared by the Flyte plugins, free of any Flyte SDK.

Modules, one job each: :mod:`.errors` (the exception tree), :mod:`.params` (types and query parameters),
:mod:`.jobconfig` (a task's job configuration), :mod:`.identity` (job ids and labels), :mod:`.status`
(job outcome), :mod:`.cost` (cost guards), :mod:`.report` (logs and metrics), :mod:`.results` (managed result
tables), :mod:`.io` (Storage Read → Arrow, load-job writes) and :mod:`.testing` (emulator harness, fault
proxy). Nothing here imports flytekit, flyteidl or flyte.
"""
