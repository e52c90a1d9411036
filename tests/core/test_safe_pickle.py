"""The restricted pickle decoder rebuilds flytekit's pickled inputs and refuses — without executing — anything else."""

from __future__ import annotations

import datetime
import os
import pickle
import pickletools
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import cloudpickle
import pytest
from flyte_bigquery_core.errors import UnsupportedInputError
from flyte_bigquery_core.safe_pickle import load_restricted

UTC = datetime.timezone.utc
PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))
PROTOCOLS = [2, 3, 4, 5]
DUMPERS = [pytest.param(pickle.dumps, id="pickle"), pytest.param(cloudpickle.dumps, id="cloudpickle")]

VALUES = [
    pytest.param(b"", id="bytes-empty"),
    pytest.param(b"\x00ab\xff", id="bytes"),
    pytest.param(bytes(range(256)) + b"x", id="bytes-over-256"),
    pytest.param(b"y" * (64 * 1024 + 1), id="bytes-over-64KiB"),
    pytest.param(bytearray(b"ab"), id="bytearray"),
    pytest.param(Decimal("1.5"), id="decimal"),
    pytest.param(Decimal("-1E+40"), id="decimal-exponent"),
    pytest.param(Decimal("NaN"), id="decimal-nan"),
    pytest.param(datetime.time(1, 2, 3, 4), id="time"),
    pytest.param(datetime.time(1, 2, 3, 4, tzinfo=UTC), id="time-utc"),
    pytest.param(datetime.time(1, 2, 3, 4, tzinfo=PLUS_2), id="time-plus-2"),
    pytest.param(datetime.date(2024, 2, 29), id="date"),
    pytest.param(datetime.datetime(2024, 1, 2, 3, 4, 5, 6), id="datetime"),
    pytest.param(
        datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone(-datetime.timedelta(hours=5), "EST")), id="dt-tz"
    ),
    pytest.param(datetime.timedelta(days=-1, seconds=5, microseconds=7), id="timedelta"),
    pytest.param((1, "a", None, True, 1.5, 2**100), id="tuple-of-primitives"),
]


@pytest.mark.parametrize("dumps", DUMPERS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("value", VALUES)
def test_round_trips(value: object, protocol: int, dumps: Callable[..., bytes]) -> None:
    result = load_restricted(dumps(value, protocol=protocol))
    assert type(result) is type(value)
    assert repr(result) == repr(value)  # repr: NaN != NaN, and it shows tzinfo


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize("value", [datetime.time(1, 2, fold=1), datetime.datetime(2024, 11, 3, 1, 30, fold=1)])
def test_fold_survives_protocols_that_record_it(value: object, protocol: int) -> None:
    assert repr(load_restricted(pickle.dumps(value, protocol=protocol))) == repr(value)


def test_timezone_keeps_its_name() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=-5), "EST")
    result = load_restricted(pickle.dumps(datetime.time(9, tzinfo=tz)))
    assert isinstance(result, datetime.time)
    assert result.tzname() == "EST"


# --- malicious payloads -------------------------------------------------------------------------------------------


class _Reduce:
    """Pickles as ``func(*args)``: the shape of every classic pickle exploit."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _os_system(marker: Path) -> object:
    return _Reduce(os.system, _touch(marker))


def _eval(marker: Path) -> object:
    return _Reduce(eval, f"__import__('os').system({_touch(marker)!r})")


def _popen(marker: Path) -> object:
    return _Reduce(subprocess.Popen, ["touch", str(marker)])


def _decimal_of_os_system(marker: Path) -> object:
    return _Reduce(Decimal, _Reduce(os.system, _touch(marker)))


PAYLOADS = [
    # protocol 2 writes Python 2's module names (fix_imports): __builtin__, commands
    pytest.param(_os_system, rf"{os.system.__module__}\.system", id="os-system"),
    pytest.param(_eval, r"(builtins|__builtin__)\.eval", id="builtins-eval"),
    pytest.param(_popen, r"(subprocess|commands)\.Popen", id="subprocess-popen"),
    pytest.param(_decimal_of_os_system, rf"{os.system.__module__}\.system", id="decimal-wrapping-os-system"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("payload", "refused_global"), PAYLOADS)
def test_malicious_global_is_refused_by_name_without_running(
    payload: Callable[[Path], object], refused_global: str, protocol: int, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(payload(marker), protocol=protocol)
    with pytest.raises(UnsupportedInputError, match=f"refusing to unpickle global {refused_global}"):
        load_restricted(data)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_os_system_payload_uses_the_opcode_it_is_meant_to(protocol: int, tmp_path: Path) -> None:
    opcodes = {op.name for op, _, _ in pickletools.genops(pickle.dumps(_os_system(tmp_path / "x"), protocol=protocol))}
    assert {"GLOBAL" if protocol < 4 else "STACK_GLOBAL", "REDUCE"} <= opcodes


def test_os_system_payload_is_live_under_real_unpickling(tmp_path: Path) -> None:
    """Control for the refusal tests: the same bytes do run code under pickle.loads (in a child process)."""
    marker = tmp_path / "pwned"
    loader = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", loader], input=pickle.dumps(_os_system(marker)), check=True)
    assert marker.exists()


def test_inst_opcode_is_refused_by_name_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = b"(V" + _touch(marker).encode() + b"\nios\nsystem\n."  # MARK, str arg, INST os.system, STOP
    assert [op.name for op, _, _ in pickletools.genops(data)] == ["MARK", "UNICODE", "INST", "STOP"]
    with pytest.raises(UnsupportedInputError, match=r"INST of os\.system"):
        load_restricted(data)
    assert not marker.exists()


@pytest.mark.parametrize(
    "arg",
    [
        pytest.param(Decimal("1"), id="decimal"),
        pytest.param((0, (1,), 0), id="tuple"),
        pytest.param(1, id="int"),
        pytest.param(b"1", id="bytes"),
    ],
)
def test_decimal_with_non_str_argument_is_refused(arg: object) -> None:
    with pytest.raises(UnsupportedInputError, match=r"decimal\.Decimal with unexpected arguments"):
        load_restricted(pickle.dumps(_Reduce(Decimal, arg), protocol=4))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        pytest.param(_Reduce(OrderedDict), "global collections.OrderedDict", id="other-global"),
        pytest.param(_Reduce(getattr, Decimal, "__init__"), "global builtins.getattr", id="getattr"),
        pytest.param(_Reduce(bytes, 10**9), "bytes with unexpected arguments", id="bytes-allocation"),
        pytest.param(_Reduce(bytearray, 10**9), "bytearray with unexpected arguments", id="bytearray-allocation"),
        pytest.param(_Reduce(datetime.date, 2024, 1, 2), "datetime.date with unexpected arguments", id="date-args"),
        pytest.param(["a"], "opcode EMPTY_LIST", id="list"),
        pytest.param({"a": 1}, "opcode EMPTY_DICT", id="dict"),
        pytest.param(Path("x"), "global pathlib.PosixPath", id="arbitrary-class"),
    ],
)
def test_anything_outside_the_allow_list_is_refused(payload: object, refused: str) -> None:
    with pytest.raises(UnsupportedInputError, match=refused):
        load_restricted(pickle.dumps(payload, protocol=4))


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        pytest.param(
            b"\x80\x02cdecimal\nDecimal\nX\x03\x00\x00\x001.5\x85RX\x01\x00\x00\x00xb.", "opcode BUILD", id="build"
        ),
        pytest.param(b"\x80\x02cdecimal\nDecimal\n)\x81.", "opcode NEWOBJ", id="newobj"),
        pytest.param(b"\x80\x02cdecimal\nDecimal\n(o.", "opcode OBJ", id="obj"),
        pytest.param(b"\x80\x02\x82\x01.", "opcode EXT1", id="ext1"),
        pytest.param(b"Pfoo\n.", "opcode PERSID", id="persid"),
        pytest.param(b"\x80\x05\x97.", "opcode NEXT_BUFFER", id="out-of-band-buffer"),
        pytest.param(b"\x80\x02X\x01\x00\x00\x00a)R.", "REDUCE of something other", id="reduce-of-non-global"),
        pytest.param(b"\x80\x04K\x01K\x02\x93.", "global 1.2", id="stack-global-of-non-str"),
    ],
)
def test_forbidden_opcode_is_refused(data: bytes, refused: str) -> None:
    with pytest.raises(UnsupportedInputError, match=refused):
        load_restricted(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(pickle.dumps(b"abc")[:-1], id="no-stop"),
        pytest.param(pickle.dumps(Decimal("1.5"))[:20], id="truncated"),
        pytest.param(b"not a pickle", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80\x02K\x01K\x02.", id="two-values"),
        pytest.param(b"\x80\x02cdecimal\nDecimal\n.", id="bare-global"),
        pytest.param(b"\x80\x02h\x05.", id="unknown-memo"),
        pytest.param(b"\x80\x02cdatetime\ndate\nC\x04\x07\xe8\x0d\x01\x85R.", id="date-month-13"),
        pytest.param(b"\x80\x02cdatetime\ntime\nC\x06\x19\x00\x00\x00\x00\x00\x85R.", id="time-hour-25"),
        pytest.param(b"\x80\x02cdatetime\ndate\nC\x03\x07\xe8\x01\x85R.", id="date-short-state"),
    ],
)
def test_malformed_or_out_of_range_stream_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedInputError, match="refusing to unpickle"):
        load_restricted(data)


def test_refusal_message_does_not_contain_arguments() -> None:
    secret = "s3cr3t-T0KEN"
    with pytest.raises(UnsupportedInputError) as caught:
        load_restricted(pickle.dumps(_Reduce(Decimal, secret, secret), protocol=4))
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
