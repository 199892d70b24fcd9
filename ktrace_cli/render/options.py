"""The options of one pykdump run, travelling as a frozen value (no global flags)."""

from __future__ import annotations

from dataclasses import dataclass

from ktrace_cli.format import constants as K


@dataclass(frozen=True)
class KdumpOptions:
    abi_column: bool = False  # -A
    cpu: bool = False  # -c
    decimal: bool = False  # -d
    elapsed: bool = False  # -E
    tid: bool = False  # -H
    follow: bool = False  # -l
    maxdata: int = 0  # -m (0: no limit)
    fancy: bool = True  # not -n
    pid: int | None = None  # -p
    relative: bool = False  # -R
    resolve: bool = False  # -r
    syscall_numbers: bool = False  # -S
    suppress_data: bool = False  # -s
    timestamps: bool = False  # -T
    points: int = K.ALL_POINTS  # -t
    screenwidth: int = 80
    # Output meant for a terminal (stdout is one, or colour is on): names a
    # traced program chose (NAMI, SCTL, ARGS, ENVS, STRU, comm) are vis(3)-escaped.
    terminal: bool = False
