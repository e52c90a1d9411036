"""Decode the pickle files flytekit uses for ``bytes``, ``Decimal`` and ``datetime.time`` inputs — without
unpickling.

flytekit has no literal type for these, so it cloudpickles the value into a file. ``pickle.loads`` on such a file
runs whatever callables the file names (``os.system``, ``builtins.eval``, ...) with the connector service's
credentials, and the file comes from whoever can launch a task. So this module never calls ``pickle.loads`` or an
``Unpickler``: it reads the opcode stream with :func:`pickletools.genops` (a parser that executes nothing) and runs
a tiny stack machine that knows only the opcodes these values need and an allow-list of globals, each rebuilt by
our own validating constructor (see :mod:`._pickle_allowlist`). Everything else — any other global, ``BUILD``, ``INST``,
``OBJ``, ``NEWOBJ``, extension codes, persistent ids, out-of-band buffers, lists, dicts, sets — is refused.
"""

from __future__ import annotations

import datetime
import decimal
import pickletools
import typing
from typing import Union

from ._pickle_allowlist import _Global, _global_name, _lookup, _Refused
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


class _Mark:
    """The MARK opcode's stack sentinel."""


_MARK = _Mark()


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
