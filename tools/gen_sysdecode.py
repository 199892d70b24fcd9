"""Generate ktrace_cli/abi/data/sysdecode_freebsd.tsv from FreeBSD headers the way libsysdecode's mktables does."""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Where the headers came from.  The header text itself is never committed: it is
# fetched into a scratch directory (laid out like FreeBSD's sys/ tree) and read here.
# mktables greps one line at a time, so a scratch file may hold just a header's
# #define lines (kept whole, comments included, as egrep -v sees them) and give
# the same tables.
# The stored copies of FreeBSD's tree are per file, so each header names its source.
BASE_SOURCE = "fel1x-developer/freebsd-src @ 2d614aa2fe3e037bd11d351b0b5cfda776e65814"
# Headers taken from a FreeBSD 15 tree because they carry names added in 15
# (AMD64_*_TLSBASE; the CLOFORK family; SO_SPLICE and SO_FIB; AF_HYPERV removed).
HEADER_SOURCES = {
    "sys/x86/include/sysarch.h": "5BSD/5BSD (a FreeBSD 15 tree) @ 392999caf154e717986fc9e41698e9e194526408",
    "sys/sys/fcntl.h": "5BSD/5BSD (a FreeBSD 15 tree) @ 31c150b818f27cbd4d15d2bf7a4e2a01662f19a0",
    "sys/sys/socket.h": "charles-cowart/freebsd-src (FreeBSD 15) @ 91c60424fe161e2542a827fed9bfd3dc824a9a2e",
}
MKTABLES = "freebsd/freebsd-src lib/libsysdecode/mktables @ 6e225b56e7bf2aa5f11faf893383e8c693785daa"
FLAGS_C = "freebsd/freebsd-src lib/libsysdecode/flags.c @ 017690e509134422dbfa80316eab56d8d3f87065"

# mktables' installed-header names -> their place in the source tree.
HEADER_PATHS = {
    "sys/unistd.h": "sys/sys/unistd.h",
    "sys/fcntl.h": "sys/sys/fcntl.h",
    "sys/linker.h": "sys/sys/linker.h",
    "sys/mman.h": "sys/sys/mman.h",
    "sys/stat.h": "sys/sys/stat.h",
    "sys/mount.h": "sys/sys/mount.h",
    "sys/resource.h": "sys/sys/resource.h",
    "sys/procctl.h": "sys/sys/procctl.h",
    "sys/ptrace.h": "sys/sys/ptrace.h",
    "sys/reboot.h": "sys/sys/reboot.h",
    "sys/sched.h": "sys/sys/sched.h",
    "sys/socket.h": "sys/sys/socket.h",
    "sys/shm.h": "sys/sys/shm.h",
    "sys/signal.h": "sys/sys/signal.h",
    "netinet/in.h": "sys/netinet/in.h",
    "sys/thr.h": "sys/sys/thr.h",
    "sys/umtx.h": "sys/sys/umtx.h",
    "sys/wait.h": "sys/sys/wait.h",
    "sys/rtprio.h": "sys/sys/rtprio.h",
    "x86/sysarch.h": "sys/x86/include/sysarch.h",
    "sys/ipc.h": "sys/sys/ipc.h",
    "sys/sem.h": "sys/sys/sem.h",
    "sys/acl.h": "sys/sys/acl.h",
    "sys/capsicum.h": "sys/sys/capsicum.h",
    "sys/extattr.h": "sys/sys/extattr.h",
    "aio.h": "sys/sys/aio.h",
    "netgraph/bluetooth/include/ng_btsocket.h": "sys/netgraph/bluetooth/include/ng_btsocket.h",
    "ufs/ufs/quota.h": "sys/ufs/ufs/quota.h",
    "netinet6/in6.h": "sys/netinet6/in6.h",
    "netinet/sctp.h": "sys/netinet/sctp.h",
    "netinet/tcp.h": "sys/netinet/tcp.h",
    "netinet/udp.h": "sys/netinet/udp.h",
    "netinet/udplite.h": "sys/netinet/udplite.h",
    "sys/time.h": "sys/sys/time.h",
}

# (table, egrep regex, header, egrep -v exclusion) copied as facts from mktables, in
# its order.  Only the tables kdump's CALL decoding needs and whose header was fetched.
TABLES: list[tuple[str, str, str, str | None]] = [
    ("accessmode", r"[A-Z]_OK[[:space:]]+0?x?[0-9A-Fa-f]+", "sys/unistd.h", None),
    ("acltype", r"ACL_TYPE_[A-Z4_]+[[:space:]]+0x[0-9]+", "sys/acl.h", None),
    ("atflags", r"AT_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/fcntl.h", None),
    ("capfcntl", r"CAP_FCNTL_[A-Z]+[[:space:]]+\(1", "sys/capsicum.h", None),
    ("closerangeflags", r"CLOSE_RANGE_[A-Z]+[[:space:]]+\([0-9]+<<[0-9]+\)", "sys/unistd.h", None),
    ("extattrns", r"EXTATTR_NAMESPACE_[A-Z]+[[:space:]]+0x[0-9]+", "sys/extattr.h", None),
    ("fadvisebehav", r"POSIX_FADV_[A-Z]+[[:space:]]+[0-9]+", "sys/fcntl.h", None),
    ("openflags", r"O_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/fcntl.h", "O_RDONLY|O_RDWR|O_WRONLY"),
    ("flockops", r"LOCK_[A-Z]+[[:space:]]+0x[0-9]+", "sys/fcntl.h", None),
    ("kldsymcmd", r"KLDSYM_[A-Z]+[[:space:]]+[0-9]+", "sys/linker.h", None),
    ("kldunloadfflags", r"LINKER_UNLOAD_[A-Z]+[[:space:]]+[0-9]+", "sys/linker.h", None),
    ("lio_listiomodes", r"LIO_(NO)?WAIT[[:space:]]+[0-9]+", "aio.h", None),
    ("madvisebehav", r"_?MADV_[A-Z]+[[:space:]]+[0-9]+", "sys/mman.h", None),
    ("minheritflags", r"INHERIT_[A-Z]+[[:space:]]+[0-9]+", "sys/mman.h", None),
    ("mlockallflags", r"MCL_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mman.h", None),
    ("mmapprot", r"PROT_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/mman.h", None),
    ("ngbtsolevel", r"SOL_[A-Z0-9]+[[:space:]]+0x[0-9A-Fa-f]+",
     "netgraph/bluetooth/include/ng_btsocket.h", None),
    ("fileflags", r"[SU]F_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/stat.h",
     "UF_COMPRESSED|UF_TRACKED|UF_SETTABLE|SF_SETTABLE"),
    ("filemode", r"S_[A-Z]+[[:space:]]+[0-6]{7}", "sys/stat.h", None),
    ("mountflags", r"MNT_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mount.h", None),
    ("msyncflags", r"MS_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mman.h", None),
    ("pathconfname", r"_PC_[A-Z4_]+[[:space:]]+[0-9]+", "sys/unistd.h", None),
    ("prio", r"PRIO_[A-Z]+[[:space:]]+[0-9]", "sys/resource.h", None),
    ("procctlcmd", r"PROC_[A-Z_]+[[:space:]]+[0-9]", "sys/procctl.h", "PROC_TRACE_CTL_"),
    ("ptraceop", r"PT_[[:alnum:]_]+[[:space:]]+[0-9]+", "sys/ptrace.h", None),
    ("quotactlcmds", r"Q_[A-Z]+[[:space:]]+0x[0-9]+", "ufs/ufs/quota.h", None),
    ("rebootopt", r"RB_[A-Z]+[[:space:]]+0x[0-9]+", "sys/reboot.h", None),
    ("rforkflags", r"RF[A-Z]+[[:space:]]+\([0-9]+<<[0-9]+\)", "sys/unistd.h", None),
    ("rlimit", r"RLIMIT_[A-Z]+[[:space:]]+[0-9]+", "sys/resource.h", None),
    ("rusage", r"RUSAGE_[A-Z]+[[:space:]]+[-0-9]+", "sys/resource.h", None),
    ("schedpolicy", r"SCHED_[A-Z]+[[:space:]]+[0-9]+", "sys/sched.h", None),
    ("sendfileflags", r"SF_[A-Z]+[[:space:]]+[0-9]+", "sys/socket.h", None),
    ("shmatflags", r"SHM_[A-Z]+[[:space:]]+[0-9]{6}", "sys/shm.h", None),
    ("shutdownhow", r"SHUT_[A-Z]+[[:space:]]+[0-9]+", "sys/socket.h", None),
    ("sigprocmaskhow", r"SIG_[A-Z]+[[:space:]]+[0-9]+", "sys/signal.h", None),
    ("sockdomain", r"PF_[[:alnum:]]+[[:space:]]+", "sys/socket.h", None),
    ("sockfamily", r"AF_[[:alnum:]]+[[:space:]]+", "sys/socket.h", None),
    ("sockipproto", r"IPPROTO_[[:alnum:]]+[[:space:]]+", "netinet/in.h", None),
    ("sockopt", r"SO_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/socket.h", None),
    ("sockoptip", r"(IP_[[:alnum:]_]+|MCAST_[[:alnum:]_]+_GROUP)[[:space:]]+", "netinet/in.h",
     "IP_DEFAULT|IP_MIN|IP_MAX|IP_PORTRANGE"),
    ("sockoptipv6", r"IPV6_[[:alnum:]_]+[[:space:]]+[0-9]+", "netinet6/in6.h",
     "IPV6_ADDR_|IPV6_TAG_DIRECT|IPV6_OPTIONS|IPV6_RECVOPTS|IPV6_RECVRETOPTS|IPV6_RECVDSTADDR"
     "|IPV6_RETOPTS|IPV6_2292|IPV6_RECVRTHDRDSTOPTS|IPV6_REACHCONF|IPV6_PKTOPTIONS"),
    ("sockoptsctp", r"SCTP_[[:alnum:]_]+[[:space:]]+[0-9]+", "netinet/sctp.h", None),
    ("sockopttcp", r"TCP_[[:alnum:]_]+[[:space:]]+[0-9]+", "netinet/tcp.h",
     "TCP_MIN|TCP_MAX[^S]|TCP_MSS|TCP_[[:alnum:]_]+_MAX|TCP_FASTOPEN_MIN_COOKIE_LEN"
     "|TCP_FASTOPEN_PSK_LEN|TCP_USE_DDP"),
    ("sockoptudp", r"UDP_[[:alnum:]]+[[:space:]]+[0-9]+", "netinet/udp.h", "UDP_ENCAP_"),
    ("sockoptudplite", r"UDPLITE_[[:alnum:]_]+[[:space:]]+[0-9]+", "netinet/udplite.h", None),
    ("socktype", r"SOCK_[A-Z]+[[:space:]]+[1-9]+[0-9]*", "sys/socket.h", None),
    ("thrcreateflags", r"THR_[A-Z]+[[:space:]]+0x[0-9]+", "sys/thr.h", None),
    ("umtxop", r"UMTX_OP_[[:alnum:]][[:alnum:]_]*[[:space:]]+[0-9]+", "sys/umtx.h", None),
    ("umtxopflags", r"UMTX_OP__[[:alnum:]_]+[[:space:]]+[0-9]+", "sys/umtx.h", None),
    ("wait6opt", r"W[A-Z]+[[:space:]]+[0-9]+", "sys/wait.h", None),
    ("seekwhence", r"SEEK_[A-Z]+[[:space:]]+[0-9]+", "sys/unistd.h", None),
    ("fcntlcmd", r"F_[A-Z0-9_]+[[:space:]]+[0-9]+[[:space:]]+", "sys/fcntl.h", "F_CANCEL|F_..LCK"),
    ("mmapflags", r"MAP_[2-3A-Z_]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/mman.h", None),
    ("rtpriofuncs", r"RTP_[A-Z]+[[:space:]]+[0-9]+", "sys/rtprio.h", None),
    ("msgflags", r"MSG_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/socket.h",
     "MSG_SOCALLBCK|MSG_MORETOCOME|MSG_TLSAPPDATA"),
    ("umtxcvwaitflags", r"CVWAIT_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/umtx.h", None),
    ("umtxrwlockflags", r"URWLOCK_PREFER_READER[[:space:]]+0x[0-9]+", "sys/umtx.h", None),
    ("sysarchnum", r"(AMD64|I386)_[A-Z86_]+[[:space:]]+[0-9]+", "x86/sysarch.h", None),
    ("shmflags", r"SHM_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/mman.h", "SHM_ANON"),
    ("itimerwhich", r"ITIMER_[A-Z]+[[:space:]]+[0-9]+", "sys/time.h", None),
]

# Tables libsysdecode's flags.c spells out by hand (names as facts; values from headers).
HAND_TABLES: dict[str, list[str]] = {
    "semctlops": ["GETNCNT", "GETPID", "GETVAL", "GETALL", "GETZCNT", "SETVAL", "SETALL",
                  "IPC_RMID", "IPC_SET", "IPC_STAT"],
    "shmctlops": ["IPC_RMID", "IPC_SET", "IPC_STAT"],
    "semgetflags": ["IPC_CREAT", "IPC_EXCL", "SEM_R", "SEM_A", "(SEM_R>>3)", "(SEM_A>>3)",
                    "(SEM_R>>6)", "(SEM_A>>6)"],
    "idtypes": ["P_PID", "P_PPID", "P_PGID", "P_SID", "P_CID", "P_UID", "P_GID", "P_ALL",
                "P_LWPID", "P_TASKID", "P_PROJID", "P_POOLID", "P_JAILID", "P_CTID",
                "P_CPUID", "P_PSETID"],
    "sockflags": ["SOCK_CLOEXEC", "SOCK_CLOFORK", "SOCK_NONBLOCK"],
    "getfsstatmode": ["MNT_WAIT", "MNT_NOWAIT"],
    # The literal 0 entry prints "0".
    "fcntl_fd_arg": ["FD_CLOEXEC", "FD_CLOFORK", "0"],
}

_DEFINE_RE = re.compile(r"^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?\s*(.*)$")
_ENUM_RE = re.compile(r"\benum\b[^{]*\{([^}]*)\}")
_COMMENT_RE = re.compile(r"/\*.*?\*/")

def posix_to_python(regex: str) -> str:
    """Translate the POSIX bracket classes mktables uses into Python regex syntax."""
    return regex.replace("[[:space:]]", r"\s").replace("[:alnum:]", "A-Za-z0-9")


def logical_lines(text: str) -> list[str]:
    """Header lines with backslash continuations joined, as the preprocessor sees them.

    The fetched snapshot was reflowed by clang-format, which split some one-line
    defines (AT_EACCESS, WTRAPPED, ...) over continuation lines; joining restores the
    upstream one-line form egrep sees.  clang-format also spaced shifts, so "(1 << 2)"
    is folded back to upstream's "(1<<2)".
    """
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"\(\s*(\d+U?)\s*<<\s*(\d+)\s*\)", r"(\1<<\2)", line)
        lines.append(line)
    return lines


@dataclass
class Symbols:
    """Macro and enum values across all headers read, for evaluating table values."""

    exprs: dict[str, str]

    def value(self, name: str, depth: int = 0) -> int | None:
        if depth > 20 or name not in self.exprs:
            return None
        return self.evaluate(self.exprs[name], depth + 1)

    def evaluate(self, expr: str, depth: int = 0) -> int | None:
        expr = _COMMENT_RE.sub("", expr).strip()
        expr = re.sub(r"\((?:in_addr_t|vm_prot_t|key_t|char \*)\)", "", expr)
        expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)
        expr = re.sub(r"\b0([0-7]+)\b", r"0o\1", expr)
        if not expr:
            return None
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError:
            return None
        return self._eval(tree.body, depth)

    def _eval(self, node: ast.AST, depth: int) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return self.value(node.id, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._eval(node.operand, depth)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, depth), self._eval(node.right, depth)
            if left is None or right is None:
                return None
            ops: dict[type, Callable[[int, int], int]] = {
                ast.BitOr: lambda a, b: a | b, ast.LShift: lambda a, b: a << b,
                ast.RShift: lambda a, b: a >> b, ast.Add: lambda a, b: a + b,
                ast.BitAnd: lambda a, b: a & b,
            }
            fn = ops.get(type(node.op))
            return None if fn is None else fn(left, right)
        return None


def read_header(root: Path, path: str) -> list[str]:
    return logical_lines((root / path).read_text())


def collect_symbols(root: Path, paths: Iterable[str]) -> Symbols:
    exprs: dict[str, str] = {}
    for path in paths:
        text = "\n".join(read_header(root, path))
        for line in text.splitlines():
            match = _DEFINE_RE.match(line)
            if match and match.group(2) is None:
                exprs.setdefault(match.group(1), match.group(3))
        for body in _ENUM_RE.findall(text):
            counter = 0
            for item in body.split(","):
                item = _COMMENT_RE.sub("", item).strip()
                if not item:
                    continue
                name, _, explicit = item.partition("=")
                if explicit.strip():
                    counter = int(explicit.strip(), 0)
                exprs.setdefault(name.strip(), str(counter))
                counter += 1
    return Symbols(exprs)


def mktables_entries(root: Path, symbols: Symbols, regex: str, header: str,
                     exclude: str | None) -> list[tuple[str, int]]:
    """egrep '^#[[:space:]]*define[[:space:]]+REGEX[[:space:]]*' | egrep -v EXCL, in order."""
    pattern = re.compile(r"^#\s*define\s+" + posix_to_python(regex) + r"\s*")
    excl = re.compile(posix_to_python(exclude)) if exclude else None
    entries = []
    for line in read_header(root, HEADER_PATHS[header]):
        if not pattern.match(line) or (excl and excl.search(line)):
            continue
        name = _DEFINE_RE.match(line).group(1)  # type: ignore[union-attr]
        value = symbols.value(name)
        if value is None:
            raise SystemExit(f"{header}: cannot evaluate {name}")
        entries.append((name, value))
    return entries


def read_previous(path: Path) -> dict[str, list[tuple[int, str]]]:
    """The tables of an earlier output file, for the tables whose header is not fetched."""
    tables: dict[str, list[tuple[int, str]]] = {}
    if not path.exists():
        return tables
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0] == "%table":
            tables.setdefault(fields[1], [])
        else:
            tables.setdefault(fields[0], []).append((int(fields[1], 16), fields[2]))
    return tables


@dataclass
class Output:
    """The rows being written, and where each table's rows came from."""

    lines: list[str]
    read: set[str]
    carried: list[str]
    missing: list[str]

    def table(self, name: str, rows: Iterable[tuple[int, str]]) -> None:
        self.lines.append(f"%table\t{name}")
        self.lines.extend(f"{name}\t{value:#x}\t{entry}" for value, entry in rows)


def _source(path: str) -> str:
    return HEADER_SOURCES.get(path, BASE_SOURCE)


def generate(root: Path, previous: dict[str, list[tuple[int, str]]] | None = None) -> str:
    """The data file's text.  A table whose header is absent from `root` keeps its rows
    from `previous` (the file being replaced), so one header can be refreshed alone."""
    previous = previous or {}
    present = sorted(p for p in set(HEADER_PATHS.values()) if (root / p).exists())
    symbols = collect_symbols(root, present)
    out = Output([], set(), [], [])
    for table, regex, header, exclude in TABLES:
        path = HEADER_PATHS[header]
        if (root / path).exists():
            out.read.add(path)
            rows = mktables_entries(root, symbols, regex, header, exclude)
            out.table(table, ((value, name) for name, value in rows))
        elif table in previous:
            out.carried.append(table)
            out.table(table, previous[table])
        else:
            out.missing.append(table)
    for table, names in HAND_TABLES.items():
        values = [symbols.evaluate(name) for name in names]
        if None in values and table in previous:
            out.carried.append(table)
            out.table(table, previous[table])
            continue
        out.table(table, ((v, n) for v, n in zip(values, names, strict=True) if v is not None))
    return "\n".join(_preamble(out) + out.lines) + "\n"


def _preamble(out: Output) -> list[str]:
    lines = [
        "# FreeBSD libsysdecode name tables for kdump's CALL decoding: table TAB value TAB name",
        "# Generated by tools/gen_sysdecode.py; do not edit.  Rows are in header order;",
        "# lookups take the first match, masks walk the rows in order (libsysdecode semantics).",
        "# A '%table NAME' line declares each generated table, so an empty one is still known.",
        f"# regexes: {MKTABLES}",
        "# hand tables (semctlops, shmctlops, semgetflags, idtypes, sockflags, getfsstatmode,",
        f"#   fcntl_fd_arg): {FLAGS_C}",
        "# ioctl request names are in freebsd_ioctls.tsv (tools/gen_ioctls.py).",
        "# headers read (FreeBSD source paths):",
    ]
    lines += [f"#   {path}: {_source(path)}" for path in sorted(out.read)]
    if out.carried:
        lines.append(f"# tables kept from the previous generation ({BASE_SOURCE}):")
        lines += _wrap(out.carried)
    if out.missing:
        lines.append("# tables not generated (header not fetched; kdump's names are missing):")
        lines += _wrap(out.missing)
    lines += [
        "# shutdownhow is empty: sys/socket.h defines SHUT_* in an enum, which mktables'",
        "#   #define regex cannot see, so kdump prints <invalid=...> for shutdown's how.",
    ]
    return lines


def _wrap(names: list[str]) -> list[str]:
    lines, line = [], "#  "
    for name in names:
        if len(line) + len(name) > 86:
            lines.append(line.rstrip(","))
            line = "#  "
        line += f" {name},"
    lines.append(line.rstrip(","))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("headers", type=Path, help="directory holding the fetched sys/ tree")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent.parent
                        / "ktrace_cli/abi/data/sysdecode_freebsd.tsv")
    args = parser.parse_args(argv)
    args.output.write_text(generate(args.headers, read_previous(args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
