"""A command line read without click, when it is plain enough that click's answer is certain.

Importing click costs both commands more than the rest of their start-up
(it brings typing, inspect, uuid, datetime...). Most command lines are a
few known options and a command or nothing, which this reads to the same
parameters click would hand the command. Anything else (--help,
--version, an unknown or malformed option, a value click would convert or
check, shell completion) gets None, and the caller asks click, so every
message and the help stay click's own. tests/unit/test_fastargs.py checks
the tables here against the click commands and the answers against
click's on generated command lines.
"""

from __future__ import annotations

import os

FLAG, COUNT, VALUE, MULTIPLE = range(4)  # how an option's occurrences become its parameter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    # collections.abc loads the collections package, a few ms of start-up.
    from collections.abc import Mapping, Sequence

    OptionTable = Mapping[str, tuple[str, int]]  # option string -> (parameter name, kind)


def parse(prog: str, argv: Sequence[str], options: OptionTable, defaults: Mapping[str, object],
          rest: str | None) -> dict[str, object] | None:  # fmt: skip
    """The parameters click would pass for `argv`, or None if only click can say.

    `rest` names the nargs=-1 argument that takes everything from the first
    operand on (click's allow_interspersed_args=False); None means operands
    are left to click (a command that has none but refuses them itself).
    """
    if f"_{prog}_COMPLETE".replace("-", "_").upper() in os.environ:
        return None  # click's shell completion
    params: dict[str, object] = dict(defaults)
    for name, kind in options.values():
        if kind == FLAG:
            params.setdefault(name, False)
        elif kind == COUNT:
            params.setdefault(name, 0)
        elif kind == MULTIPLE:
            params.setdefault(name, ())
        else:
            params.setdefault(name, None)
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if arg[:1] != "-" or len(arg) == 1:
            i -= 1
            break
        if arg[:2] == "--":
            opt, eq, value = arg.partition("=")
            known = options.get(opt)
            if known is None:
                return None
            name, kind = known
            if kind in (VALUE, MULTIPLE):
                if not eq:
                    if i >= len(args):
                        return None
                    value = args[i]
                    i += 1
                _store(params, name, kind, value)
            elif eq:
                return None  # a flag given a value: click's error
            else:
                _store(params, name, kind, None)
            continue
        for at in range(1, len(arg)):
            known = options.get("-" + arg[at])
            if known is None:
                return None
            name, kind = known
            if kind in (VALUE, MULTIPLE):
                if at + 1 < len(arg):
                    value = arg[at + 1 :]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    return None
                _store(params, name, kind, value)
                break
            _store(params, name, kind, None)
    operands = tuple(args[i:])
    if rest is None:
        return None if operands else params
    params[rest] = operands
    return params


def _store(params: dict[str, object], name: str, kind: int, value: str | None) -> None:
    if kind == FLAG:
        params[name] = True
    elif kind == COUNT:
        params[name] = int(params[name]) + 1  # type: ignore[call-overload]
    elif kind == MULTIPLE:
        params[name] = (*params[name], value)  # type: ignore[misc]
    else:
        params[name] = value
