"""Decode the pickle files flytekit uses for ``bytes``, ``Decimal`` and ``datetime.time`` inputs — without
unpickling.

flytekit has no literal type for these, so it cloudpickles the value into a file. ``pickle.loads`` on such a file
runs whatever callables the file names (``os.system``, ``builtins.eval``, ...) with the connector service's
credentials, and the file comes from whoever can launch a task. So this module never calls ``pickle.loads`` or an
``Unpickler``: it reads the opcode stream with :func:`pickletools.genops` (a parser that executes nothing) and runs
a tiny stack machine that knows only the opcodes these values need and an allow-list of globals, each rebuilt by
our own validating constructor (see :data:`_GLOBALS`). Everything else — any other global, ``BUILD``, ``INST``,
``OBJ``, ``NEWOBJ``, extension codes, persistent ids, out-of-band buffers, lists, dicts, sets — is refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import pickletools
import typing
from collections.abc import Callable
from typing import Union

from .errors import UnsupportedInputError

__all__ = ["RestrictedValue", "load_restricted"]

RestrictedValue = Union[
    bytes,
    bytearray,
    str,
    int,
    float,
    bool,
    None,
    tuple,  # of RestrictedValue
    decimal.Decimal,
    datetime.date,  # and datetime.datetime
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
]

_MAX_NAME = 100  # a refused global's name comes from the file: keep messages short


class _Refused(Exception):
    """The pickle asks for something outside the allow-list; the message names it."""


@dataclasses.dataclass(frozen=True)
class _Global:
    """An allowed global, pushed by GLOBAL/STACK_GLOBAL and only ever invoked by REDUCE."""

    name: str
    build: Callable[[tuple[object, ...]], object]


class _Mark:
    """The MARK opcode's stack sentinel."""


_MARK = _Mark()


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

#: Opcodes whose argument, as pickletools decodes it, is the value to push.
_PUSH_ARGUMENT = frozenset(
    {
        "INT",  # protocol 0; "I01"/"I00" decode to True/False
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
    }
)
_CONSTANTS: dict[str, object] = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_TUPLE_SIZES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_NO_EFFECT = frozenset({"PROTO", "FRAME"})
_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})


def _global_name(module: object, name: object) -> str:
    return f"{module}.{name}"[:_MAX_NAME]


def _lookup(module: object, name: object) -> _Global:
    build = _GLOBALS.get((module, name)) if isinstance(module, str) and isinstance(name, str) else None
    if build is None:
        raise _Refused(f"refusing to unpickle global {_global_name(module, name)}: not an allowed type")
    return _Global(_global_name(module, name), build)


class _Machine:
    """The part of the pickle VM our values need, over already-parsed opcodes."""

    def __init__(self) -> None:
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}

    def pop(self) -> object:
        if not self.stack or self.stack[-1] is _MARK:
            raise _Refused("refusing to unpickle a malformed stream (stack underflow)")
        return self.stack.pop()

    def pop_to_mark(self) -> list[object]:
        if _MARK not in self.stack:
            raise _Refused("refusing to unpickle a malformed stream (no MARK)")
        at = len(self.stack) - 1 - self.stack[::-1].index(_MARK)
        items = self.stack[at + 1 :]
        del self.stack[at:]  # in place: callers hold self.stack.append bound to this list
        return items

    def step(self, opcode: str, arg: object) -> None:
        if opcode in _NO_EFFECT:
            return
        if opcode in _PUSH_ARGUMENT:
            self.stack.append(arg)
        elif opcode in _CONSTANTS:
            self.stack.append(_CONSTANTS[opcode])
        elif opcode in _TUPLE_SIZES:
            items = [self.pop() for _ in range(_TUPLE_SIZES[opcode])]
            self.stack.append(tuple(reversed(items)))
        elif opcode == "TUPLE":
            self.stack.append(tuple(self.pop_to_mark()))
        elif opcode == "MARK":
            self.stack.append(_MARK)
        elif opcode == "POP":
            self.pop()
        elif opcode == "POP_MARK":
            self.pop_to_mark()
        elif opcode == "DUP":
            self.stack.append(self.top())
        elif opcode in _PUT:
            self.memo[_memo_key(arg)] = self.top()
        elif opcode == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif opcode in _GET:
            if _memo_key(arg) not in self.memo:
                raise _Refused("refusing to unpickle a malformed stream (unknown memo key)")
            self.stack.append(self.memo[_memo_key(arg)])
        elif opcode == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            self.stack.append(_lookup(module, name))
        elif opcode == "STACK_GLOBAL":
            global_name = self.pop()
            self.stack.append(_lookup(self.pop(), global_name))
        elif opcode == "REDUCE":
            args, func = self.pop(), self.pop()
            if not isinstance(func, _Global) or not isinstance(args, tuple):
                raise _Refused("refusing to unpickle a REDUCE of something other than an allowed global")
            self.stack.append(func.build(args))
        elif opcode == "INST":
            module, _, name = str(arg).partition(" ")
            raise _Refused(f"refusing to unpickle INST of {_global_name(module, name)}: not an allowed type")
        else:  # BUILD, OBJ, NEWOBJ(_EX), EXT1/2/4, PERSID, BINPERSID, NEXT_BUFFER, lists, dicts, sets, py2 str...
            raise _Refused(f"refusing to unpickle opcode {opcode}: not needed for the allowed types")

    def top(self) -> object:
        if not self.stack or self.stack[-1] is _MARK:
            raise _Refused("refusing to unpickle a malformed stream (empty stack)")
        return self.stack[-1]

    def result(self) -> RestrictedValue:
        if len(self.stack) != 1 or isinstance(self.stack[0], (_Mark, _Global)):
            raise _Refused("refusing to unpickle a malformed stream (it does not end in a single value)")
        return typing.cast("RestrictedValue", self.stack[0])


def _memo_key(arg: object) -> int:
    """A memo index: pickletools decodes it as an int, for the text forms (PUT/GET) too."""
    if not isinstance(arg, int):
        raise _Refused("refusing to unpickle a malformed stream (bad memo key)")
    return arg


def load_restricted(data: bytes) -> RestrictedValue:
    """Rebuild the value a flytekit pickle file holds — bytes/bytearray, str, int, float, bool, None, tuples of
    those, ``Decimal``, ``datetime.date``/``datetime``/``time``/``timedelta`` and ``timezone`` — without running
    any code the file names. Anything else raises :class:`UnsupportedInputError` naming the refused global or
    opcode (never a value)."""
    machine = _Machine()
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "STOP":
                return machine.result()
            machine.step(opcode.name, arg)
    except _Refused as refused:
        raise UnsupportedInputError(f"Pickled input: {refused}.") from None
    except (ValueError, TypeError, ArithmeticError, IndexError, KeyError):
        # genops on truncated/garbled data, or a constructor rejecting an out-of-range field.
        raise UnsupportedInputError("Pickled input: refusing to unpickle a malformed or out-of-range value.") from None
    raise UnsupportedInputError("Pickled input: refusing to unpickle a stream without STOP.")
