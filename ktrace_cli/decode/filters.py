"""Call filters: which system calls (and the records that belong to them) an output shows.

`-e trace=SET` takes strace's grammar: a comma list of names, fnmatch globs,
classes (`%file`, or truss's `@file`), each of which may be negated with `!`;
the last item that matches a call decides, and a list that starts with a
negation starts from every call.  The classes are strace's, kept as data in
abi/data/syscall_classes.tsv by Linux name; FreeBSD names are classed by the
Linux call they correspond to.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from ktrace_cli.abi.twins import FREEBSD_TWINS
from ktrace_cli.decode.calls import Call, base_name

CLASS_FLAGS = {
    "file": "TF", "desc": "TD", "net": "TN", "network": "TN", "process": "TP", "signal": "TS",
    "memory": "TM", "ipc": "TI", "creds": "TC", "clock": "TCL",
}  # fmt: skip


class FilterError(ValueError):
    """A filter expression that cannot be understood (the message says why)."""


@cache
def _classes() -> dict[str, frozenset[str]]:
    from ktrace_cli.abi.freebsd import data_rows

    by_flag: dict[str, set[str]] = {}
    for name, flags in data_rows("syscall_classes.tsv"):
        for flag in flags.split("|"):
            by_flag.setdefault(flag, set()).add(name)
    return {flag: frozenset(names) for flag, names in by_flag.items()}


def in_class(cls: str, name: str) -> bool:
    """Whether syscall `name` (Linux or FreeBSD) is in class `cls` (file, desc, ...)."""
    members = _classes().get(CLASS_FLAGS[cls], frozenset())
    name = base_name(name)
    return name in members or FREEBSD_TWINS.get(name, "") in members


@cache
def known_names() -> frozenset[str]:
    """Every syscall name of either ABI's table."""
    from ktrace_cli.abi import freebsd, linux

    names = {n for n in (freebsd.syscall_name(i) for i in range(freebsd.syscall_count())) if n}
    names.update(linux.syscall_names())
    return frozenset(names)


@cache
def known_errnos() -> frozenset[str]:
    """Every errno name of either ABI."""
    import errno as _errno

    from ktrace_cli.abi import freebsd

    names = {n for n in (freebsd.errno_name(i) for i in range(256)) if n}
    names.update(_errno.errorcode.values())
    return frozenset(names)


@dataclass(frozen=True)
class TraceSet:
    """A parsed -e trace= list."""

    items: tuple[tuple[bool, Callable[[str], bool]], ...]  # (negated, matcher)
    default: bool

    def __call__(self, name: str | None) -> bool:
        selected = self.default
        if name is None:
            return selected
        for negated, matches in self.items:
            if matches(name):
                selected = not negated
        return selected


def parse_trace_set(text: str, warn: Callable[[str], None]) -> TraceSet:
    """A -e value (`trace=SET` or SET) as a TraceSet; unknown names draw a warning."""
    if "=" in text:
        qualifier, _, text = text.partition("=")
        if qualifier not in ("trace", "t"):
            raise FilterError(f"unknown -e qualifier: {qualifier}")
    items: list[tuple[bool, Callable[[str], bool]]] = []
    unknown: list[str] = []
    tokens = [t.strip() for t in text.split(",")]
    if not any(tokens):
        raise FilterError("empty -e trace= list")
    for token in tokens:
        if not token:
            continue
        negated = token.startswith("!")
        word = token[1:] if negated else token
        matcher: Callable[[str], bool]
        if word in ("all", "*"):
            matcher = _always
        elif word[:1] in "%@" and word[1:]:
            cls = word[1:]
            if cls not in CLASS_FLAGS:
                raise FilterError(f"unknown syscall class: {word}")
            matcher = _class_matcher(cls)
        elif any(ch in word for ch in "*?["):
            pattern = re.compile(fnmatch.translate(word))
            matcher = pattern.match  # type: ignore[assignment]
            if not any(pattern.match(n) for n in known_names()):
                unknown.append(word)
        else:
            matcher = word.__eq__
            if word not in known_names():
                unknown.append(word)
        items.append((negated, matcher))
    if unknown:
        warn(f"no such syscall: {', '.join(unknown)}")
    return TraceSet(tuple(items), default=tokens[0].startswith("!"))


def _always(name: str) -> bool:
    return True


def _class_matcher(cls: str) -> Callable[[str], bool]:
    return lambda name: in_class(cls, name)


def parse_time(text: str, option: str) -> tuple[bool, int]:
    """(relative to the first record?, nanoseconds) of a --since/--until value."""
    relative = text.startswith("+")
    body = text[1:] if relative else text
    try:
        if not re.fullmatch(r"\d+(\.\d{0,9})?", body):
            raise ValueError
        whole, _, frac = body.partition(".")
        return relative, int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)
    except ValueError:
        raise FilterError(f"{option}: not a time in seconds: {text}") from None


@dataclass
class CallFilter:
    """Everything a pykdump run selects calls by (beyond record types and -p)."""

    trace: TraceSet | None = None
    failed: bool = False
    successful: bool = False
    errnos: frozenset[str] | None = None
    paths: tuple[str, ...] = ()
    fds: frozenset[int] | None = None
    comms: tuple[str, ...] = ()
    since: tuple[bool, int] | None = None
    until: tuple[bool, int] | None = None
    first_ns: int | None = None  # the first record's time, for +S.s bounds
    _path_res: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._path_res = [re.compile(fnmatch.translate(p)) for p in self.paths]

    @property
    def active(self) -> bool:
        """Whether any call filter is given (else records pass as kdump shows them)."""
        return bool(
            self.trace is not None or self.failed or self.successful or self.errnos is not None
            or self.paths or self.fds is not None or self.comms or self.since or self.until
        )  # fmt: skip

    @property
    def needs_end(self) -> bool:
        """Whether deciding on a call needs its RET and the records before it."""
        return bool(self.failed or self.successful or self.errnos is not None or self.paths or self.fds is not None)

    def _bound(self, bound: tuple[bool, int]) -> int:
        relative, ns = bound
        return ns + (self.first_ns or 0) if relative else ns

    def record_ok(self, pid_comm: bytes, ns: int) -> bool:
        """The filters that apply to any record: --comm, --since, --until."""
        if self.comms:
            comm = pid_comm.decode("utf-8", "surrogateescape")
            if not any(fnmatch.fnmatchcase(comm, c) for c in self.comms):
                return False
        if self.since is not None and ns < self._bound(self.since):
            return False
        if self.until is not None and ns > self._bound(self.until):
            return False
        return True

    def call_ok(self, call: Call) -> bool:
        """Whether the call is selected, from what is known of it now."""
        first = call.first.record
        if not self.record_ok(first.comm_name, call.ns):
            return False
        if self.trace is not None and not self.trace(call.name):
            return False
        if self.failed and not call.failed:
            return False
        if self.successful and not call.succeeded:
            return False
        if self.errnos is not None and call.errno_name not in self.errnos:
            return False
        if self.fds is not None and not (call.fds() & self.fds):
            return False
        if self._path_res:
            names = [p.decode("utf-8", "surrogateescape") for p in call.paths]
            for extra in (call.fd_path, call.ret_path):
                if extra is not None:
                    names.append(extra)
            if call.pair is not None:
                names.extend(path for _fd, path in call.pair)
            if not any(r.match(n) for r in self._path_res for n in names):
                return False
        return True
