"""The globals a flytekit pickle may name (:data:`_GLOBALS`), each rebuilt by our own validating constructor,
and the refusal (:class:`_Refused`) for everything else. Used by :mod:`.safe_pickle`'s stack machine."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Callable

_MAX_NAME = 100  # a refused global's name comes from the file: keep messages short


class _Refused(Exception):
    """The pickle asks for something outside the allow-list; the message names it."""


@dataclasses.dataclass(frozen=True)
class _Global:
    """An allowed global, pushed by GLOBAL/STACK_GLOBAL and only ever invoked by REDUCE."""

    name: str
    build: Callable[[tuple[object, ...]], object]


def _unexpected(name: str) -> _Refused:
    return _Refused(f"refusing to unpickle {name} with unexpected arguments")


def _state(value: bytes | str) -> bytes:
    # Protocol 2 carries the state as bytes rebuilt by _codecs.encode; very old pickles as a latin-1 str.
    return value.encode("latin-1") if isinstance(value, str) else value


def _codecs_encode(args: tuple[object, ...]) -> bytes:
    match args:
        case (str() as text, "latin1" | "latin-1"):
            return text.encode("latin-1")
    raise _unexpected("_codecs.encode")


def _bytes(args: tuple[object, ...]) -> bytes:
    # bytes() and bytes(b"..") only: bytes(10**12) would allocate.
    match args:
        case ():
            return b""
        case (bytes() as data,):
            return data
    raise _unexpected("bytes")


def _bytearray(args: tuple[object, ...]) -> bytearray:
    match args:
        case ():
            return bytearray()
        case (bytes() | bytearray() as data,):
            return bytearray(data)
    raise _unexpected("bytearray")


def _decimal(args: tuple[object, ...]) -> decimal.Decimal:
    match args:
        case (str() as text,):
            return decimal.Decimal(text)
    raise _unexpected("decimal.Decimal")


# The pickled states below mirror CPython's datetime._getstate: big-endian year, microseconds in three bytes, and
# the fold bit added as 128 to the hour (time) or month (datetime) at protocol 4+. We decode them and call the
# ordinary, range-checking constructors rather than the C fast path, which checks little more than the month.


def _date(args: tuple[object, ...]) -> datetime.date:
    match args:
        case (bytes() | str() as raw,) if len(state := _state(raw)) == 4:
            return datetime.date(state[0] * 256 + state[1], state[2], state[3])
    raise _unexpected("datetime.date")


def _tzinfo(rest: list[object], what: str) -> datetime.timezone | None:
    """The optional tzinfo argument of a pickled time or datetime: none, or a ``datetime.timezone``."""
    match rest:
        case []:
            return None
        case [datetime.timezone() as tzinfo]:
            return tzinfo
    raise _unexpected(what)


def _time(args: tuple[object, ...]) -> datetime.time:
    match args:
        case (bytes() | str() as raw, *rest) if len(state := _state(raw)) == 6:
            tzinfo = _tzinfo(rest, "datetime.time")
            hour, fold = state[0] & 0x7F, state[0] >> 7
            microsecond = int.from_bytes(state[3:6], "big")
            return datetime.time(hour, state[1], state[2], microsecond, tzinfo, fold=fold)
    raise _unexpected("datetime.time")


def _datetime(args: tuple[object, ...]) -> datetime.datetime:
    match args:
        case (bytes() | str() as raw, *rest) if len(state := _state(raw)) == 10:
            tzinfo = _tzinfo(rest, "datetime.datetime")
            year, month, fold = state[0] * 256 + state[1], state[2] & 0x7F, state[2] >> 7
            hour, minute, second = state[4:7]
            microsecond = int.from_bytes(state[7:10], "big")
            return datetime.datetime(year, month, state[3], hour, minute, second, microsecond, tzinfo, fold=fold)
    raise _unexpected("datetime.datetime")


def _timedelta(args: tuple[object, ...]) -> datetime.timedelta:
    match args:
        case (int() as days, int() as seconds, int() as microseconds):
            return datetime.timedelta(days, seconds, microseconds)
    raise _unexpected("datetime.timedelta")


def _timezone(args: tuple[object, ...]) -> datetime.timezone:
    match args:
        case (datetime.timedelta() as offset,):
            return datetime.timezone(offset)
        case (datetime.timedelta() as offset, str() as name):
            return datetime.timezone(offset, name)
    raise _unexpected("datetime.timezone")


#: The only globals a pickle may name. ``__builtin__`` is protocol 2's spelling of ``builtins``.
_GLOBALS: dict[tuple[str, str], Callable[[tuple[object, ...]], object]] = {
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "bytes"): _bytes,
    ("__builtin__", "bytes"): _bytes,
    ("builtins", "bytearray"): _bytearray,
    ("__builtin__", "bytearray"): _bytearray,
    ("decimal", "Decimal"): _decimal,
    ("datetime", "date"): _date,
    ("datetime", "time"): _time,
    ("datetime", "datetime"): _datetime,
    ("datetime", "timedelta"): _timedelta,
    ("datetime", "timezone"): _timezone,
}


def _global_name(module: object, name: object) -> str:
    return f"{module}.{name}"[:_MAX_NAME]


def _lookup(module: object, name: object) -> _Global:
    build = _GLOBALS.get((module, name)) if isinstance(module, str) and isinstance(name, str) else None
    if build is None:
        raise _Refused(f"refusing to unpickle global {_global_name(module, name)}: not an allowed type")
    return _Global(_global_name(module, name), build)
