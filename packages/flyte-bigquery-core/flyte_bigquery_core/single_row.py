"""What a finished query's single result row must give: typed outputs (:mod:`.typed_results`) or check verdicts
(:mod:`.checks`). Read by the connector itself with one small ``jobs.getQueryResults`` call — no pod, no Storage
read session.

The job handle carries the *row result* (:func:`row_result_of` reads it from the task's custom fields at
planning): ``{"task": name, "outputs": {...}}`` or ``{"task": name, "checks": {...}}``. :func:`judge_row` turns
a succeeded :class:`~.observation.Observation` into the final one: with ``values`` for typed outputs, a
permanent failure when the row does not fit, a check verdict by severity, or RUNNING when BigQuery stayed
unavailable (the next poll reads again; the job is done and kept).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .checks import CHECKS_KEY, CheckSpec, evaluate, results_info, verdict
from .errors import InvalidTaskError, PermanentError, TransientError
from .status import Outcome
from .typed_results import OUTPUTS_KEY, TypedOutputs, typed_values

if TYPE_CHECKING:
    from .handle import JobHandle
    from .observation import Observation

__all__ = ["MAX_ROWS_READ", "judge_row", "row_result_of", "typed_outputs_of"]

#: Rows asked of ``jobs.getQueryResults``: two tell "exactly one" from "more than one" (``totalRows`` counts all).
MAX_ROWS_READ = 2


def row_result_of(custom: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    """The row result a task's custom fields ask for (validated; raises :class:`InvalidTaskError`), or ``None``
    for a task whose result is a table (or nothing)."""
    outputs, checks = custom.get(OUTPUTS_KEY), custom.get(CHECKS_KEY)
    if outputs is not None and checks is not None:
        raise InvalidTaskError(f"a task has either {OUTPUTS_KEY} or {CHECKS_KEY}, not both", task=task)
    if outputs is not None:
        return {"task": task, "outputs": TypedOutputs.from_json(outputs, task).to_json()}
    if checks is not None:
        return {"task": task, "checks": CheckSpec.from_json(checks, task).to_json()}
    return None


def typed_outputs_of(row_result: Mapping[str, Any] | None) -> TypedOutputs | None:
    """The typed outputs a handle's row result declares (``None`` for checks or no row result)."""
    if not row_result or "outputs" not in row_result:
        return None
    return TypedOutputs.from_json(row_result["outputs"], str(row_result.get("task") or "?"))


async def judge_row(api: Any, handle: JobHandle, observation: Observation) -> Observation:
    """The final observation of a succeeded job whose handle carries a row result (see the module docstring)."""
    row_result = handle.row_result or {}
    task = str(row_result.get("task") or "?")
    try:
        response = await api.query_results(handle.project, handle.job_id, handle.location or None, MAX_ROWS_READ)
        if "checks" in row_result:
            spec = CheckSpec.from_json(row_result["checks"], task)
            results = evaluate(response, spec, task)
            succeeds, message = verdict(results, spec.severity)
            info = {**(observation.info or {}), "checks": results_info(results), "severity": spec.severity}
            outcome = Outcome.SUCCEEDED if succeeds else Outcome.PERMANENT_FAILURE
            text = message if succeeds else f"task {task!r}: {message}"
            if handle.reused_from_attempt is not None:
                text += f" (reused job {handle.job_id} from attempt {handle.reused_from_attempt})"
            return dataclasses.replace(observation, outcome=outcome, message=text, info=info)
        outputs = TypedOutputs.from_json(row_result.get("outputs"), task)
        values = typed_values(response, outputs, task)
    except TransientError as e:
        return dataclasses.replace(observation, outcome=Outcome.RUNNING, message=f"{e}; will read the result again")
    except PermanentError as e:
        return dataclasses.replace(observation, outcome=Outcome.PERMANENT_FAILURE, message=e.for_task(task))
    return dataclasses.replace(observation, values=values)
