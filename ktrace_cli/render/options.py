"""The options of one pykdump run, travelling as a frozen value (no global flags)."""

from __future__ import annotations

from ktrace_cli.format import constants as K
from ktrace_cli.value import Value


class KdumpOptions(Value):
    __slots__ = ("abi_column", "cpu", "decimal", "elapsed", "tid", "follow", "maxdata", "fancy",
                 "pid", "relative", "resolve", "syscall_numbers", "suppress_data", "timestamps",
                 "points", "screenwidth", "terminal")  # fmt: skip
    abi_column: bool  # -A
    cpu: bool  # -c
    decimal: bool  # -d
    elapsed: bool  # -E
    tid: bool  # -H
    follow: bool  # -l
    maxdata: int  # -m (0: no limit)
    fancy: bool  # not -n
    pid: int | None  # -p
    relative: bool  # -R
    resolve: bool  # -r
    syscall_numbers: bool  # -S
    suppress_data: bool  # -s
    timestamps: bool  # -T
    points: int  # -t
    screenwidth: int
    # Output meant for a terminal (stdout is one, or colour is on): names a
    # traced program chose (NAMI, SCTL, ARGS, ENVS, STRU, comm) are vis(3)-escaped.
    terminal: bool

    def __init__(self, *, abi_column: bool = False, cpu: bool = False, decimal: bool = False,
                 elapsed: bool = False, tid: bool = False, follow: bool = False, maxdata: int = 0,
                 fancy: bool = True, pid: int | None = None, relative: bool = False,
                 resolve: bool = False, syscall_numbers: bool = False, suppress_data: bool = False,
                 timestamps: bool = False, points: int = K.ALL_POINTS, screenwidth: int = 80,
                 terminal: bool = False) -> None:  # fmt: skip
        self._set(abi_column=abi_column, cpu=cpu, decimal=decimal, elapsed=elapsed, tid=tid,
                  follow=follow, maxdata=maxdata, fancy=fancy, pid=pid, relative=relative,
                  resolve=resolve, syscall_numbers=syscall_numbers, suppress_data=suppress_data,
                  timestamps=timestamps, points=points, screenwidth=screenwidth,
                  terminal=terminal)  # fmt: skip
