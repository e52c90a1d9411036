"""Which reservation a job runs in: the task's, its QueryJobConfig's, its Flyte project/domain's, the connector's."""

from __future__ import annotations

from typing import Any

import pytest
from flyte_bigquery_core.errors import InvalidTaskError, SettingsError
from flyte_bigquery_core.reservations import RESERVATION_ENV, RESERVATIONS_ENV, ReservationChoice, choose_reservation
from flyte_bigquery_core.settings import Settings

TASK = "projects/admin/locations/US/reservations/task"
CONFIGURED = "projects/admin/locations/US/reservations/configured"
DEFAULTS = {
    "analytics/production": "projects/admin/locations/US/reservations/prod",
    "analytics/*": "projects/admin/locations/US/reservations/analytics",
    "*/development": "none",
    "*/*": "projects/admin/locations/US/reservations/shared",
}
CONNECTOR = "projects/admin/locations/US/reservations/connector"


@pytest.mark.parametrize(
    ("task", "configured", "project", "domain", "defaults", "connector", "expected"),
    [
        pytest.param(TASK, CONFIGURED, "analytics", "production", DEFAULTS, CONNECTOR, TASK, id="task-wins"),
        pytest.param("NONE", None, "analytics", "production", DEFAULTS, CONNECTOR, "none", id="task-forces-on-demand"),
        pytest.param(None, CONFIGURED, "analytics", "production", DEFAULTS, CONNECTOR, CONFIGURED, id="job-config"),
        pytest.param(None, None, "analytics", "production", DEFAULTS, CONNECTOR, DEFAULTS["analytics/production"],
                     id="exact-project-domain"),
        pytest.param(None, None, "analytics", "staging", DEFAULTS, CONNECTOR, DEFAULTS["analytics/*"], id="project"),
        pytest.param(None, None, "web", "development", DEFAULTS, CONNECTOR, "none", id="domain-on-demand"),
        pytest.param(None, None, "web", "staging", DEFAULTS, CONNECTOR, DEFAULTS["*/*"], id="catch-all"),
        pytest.param(None, None, "web", "staging", {}, CONNECTOR, CONNECTOR, id="connector-default"),
        pytest.param(None, "", "web", "staging", {}, None, None, id="nothing-chosen-assignments-decide"),
    ],
)  # fmt: skip
def test_precedence(
    task: Any, configured: Any, project: str, domain: str, defaults: dict[str, str], connector: Any, expected: Any
) -> None:
    choice = choose_reservation(task, configured, project, domain, defaults, connector, "wf.q")
    assert choice.reservation == expected
    assert (choice.source is None) == (expected is None)


def test_the_choice_goes_into_the_job_configuration_and_nothing_is_added_without_one() -> None:
    configuration: dict[str, Any] = {"query": {}}
    ReservationChoice(None).apply(configuration)
    assert "reservation" not in configuration
    ReservationChoice("none", "the task's Reservation").apply(configuration)
    assert configuration["reservation"] == "none"


@pytest.mark.parametrize("value", ["prod", "projects/a/reservations/b", 7])
def test_a_task_reservation_that_is_not_one_is_refused_naming_the_task(value: Any) -> None:
    with pytest.raises(InvalidTaskError, match=r"^task 'wf\.q': the task's Reservation is not a reservation; expected"):
        choose_reservation(value, None, "p", "d", {}, None, "wf.q")


def test_the_settings_read_both_variables() -> None:
    settings = Settings.from_env(
        {
            RESERVATION_ENV: "None",
            RESERVATIONS_ENV: '{"analytics/production": "projects/a/locations/EU/reservations/p"}',
        }
    )
    assert settings.default_reservation == "none"
    assert settings.reservation_defaults == {"analytics/production": "projects/a/locations/EU/reservations/p"}


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (RESERVATION_ENV, "prod", "expected 'projects/<project>/locations/<location>/reservations/<name>'"),
        (RESERVATIONS_ENV, '{"analytics": "none"}', "key 'analytics' is not 'project/domain'"),
        (RESERVATIONS_ENV, '{"a/b": "prod"}', "the value of 'a/b' is not a reservation"),
        (RESERVATIONS_ENV, '["none"]', "expected a JSON object"),
    ],
)
def test_malformed_reservation_settings_fail_at_start_up_naming_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({name: value})
    assert str(error.value).startswith(f"{name} is malformed") and says in str(error.value)
