"""Which dataframe libraries get an SDK's ``bq`` handlers, and when: once each, after it is really imported."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from flyte_bigquery_core.io import registration
from flyte_bigquery_core.io.frames import FrameKind
from flyte_bigquery_core.io.registration import HandlerRegistration, imported
from flyte_bigquery_core.io.tables import BigQueryIO


class _LazyModule(types.ModuleType):
    """A placeholder a Flyte SDK puts in ``sys.modules`` for a library it will import on first use."""


def _kind(name: str) -> FrameKind:
    return FrameKind(type(name, (), {}), lambda table: table, lambda frame: frame)


@pytest.fixture
def libraries(monkeypatch: pytest.MonkeyPatch) -> dict[str, FrameKind]:
    """Two stand-in libraries, neither imported yet."""
    kinds = {"bq_test_frames_a": _kind("A"), "bq_test_frames_b": _kind("B")}
    monkeypatch.setattr(registration, "LIBRARIES", {name: (lambda kind=kind: kind) for name, kind in kinds.items()})
    for name in kinds:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return kinds


@pytest.fixture
def calls() -> list[tuple[FrameKind, BigQueryIO]]:
    return []


@pytest.fixture
def handlers(calls: list[tuple[FrameKind, BigQueryIO]]) -> HandlerRegistration:
    return HandlerRegistration(lambda kind, io: calls.append((kind, io)))


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param(types.ModuleType("bq_test_module"), True, id="imported"),
        pytest.param(_LazyModule("bq_test_module"), False, id="lazy-placeholder"),
    ],
)
def test_imported_means_really_imported(monkeypatch: pytest.MonkeyPatch, module: Any, expected: bool) -> None:
    monkeypatch.delitem(sys.modules, "bq_test_module", raising=False)
    if module is not None:
        monkeypatch.setitem(sys.modules, "bq_test_module", module)
    assert imported("bq_test_module") is expected


def test_nothing_is_registered_before_a_library_is_imported(
    libraries: dict[str, FrameKind], handlers: HandlerRegistration, calls: list[Any]
) -> None:
    handlers.register_imported()
    assert calls == []


def test_each_imported_library_is_registered_once_with_one_shared_io(
    monkeypatch: pytest.MonkeyPatch, libraries: dict[str, FrameKind], handlers: HandlerRegistration, calls: list[Any]
) -> None:
    monkeypatch.setitem(sys.modules, "bq_test_frames_a", types.ModuleType("bq_test_frames_a"))
    handlers.register_imported()
    handlers.register_imported()
    monkeypatch.setitem(sys.modules, "bq_test_frames_b", types.ModuleType("bq_test_frames_b"))
    handlers.register_imported()
    assert [kind for kind, _ in calls] == [libraries["bq_test_frames_a"], libraries["bq_test_frames_b"]]
    assert all(io is handlers.io for _, io in calls)


def test_a_lazy_placeholder_is_not_registered_until_replaced(
    monkeypatch: pytest.MonkeyPatch, libraries: dict[str, FrameKind], handlers: HandlerRegistration, calls: list[Any]
) -> None:
    monkeypatch.setitem(sys.modules, "bq_test_frames_a", _LazyModule("bq_test_frames_a"))
    handlers.register_imported()
    assert calls == []
    monkeypatch.setitem(sys.modules, "bq_test_frames_a", types.ModuleType("bq_test_frames_a"))
    handlers.register_imported()
    assert [kind for kind, _ in calls] == [libraries["bq_test_frames_a"]]


def test_registering_now_marks_the_libraries_done(
    monkeypatch: pytest.MonkeyPatch, libraries: dict[str, FrameKind], handlers: HandlerRegistration, calls: list[Any]
) -> None:
    handlers.register({"bq_test_frames_a": libraries["bq_test_frames_a"]})
    monkeypatch.setitem(sys.modules, "bq_test_frames_a", types.ModuleType("bq_test_frames_a"))
    handlers.register_imported()
    assert [kind for kind, _ in calls] == [libraries["bq_test_frames_a"]]


@pytest.mark.parametrize(
    ("fresh_io", "same"), [pytest.param(False, True, id="kept"), pytest.param(True, False, id="fresh")]
)
def test_registering_now_keeps_or_replaces_the_shared_io(
    libraries: dict[str, FrameKind], handlers: HandlerRegistration, calls: list[Any], fresh_io: bool, same: bool
) -> None:
    before = handlers.io
    io = handlers.register(libraries, fresh_io=fresh_io)
    assert (io is before) is same
    assert io is handlers.io
    assert [used for _, used in calls] == [io, io]
