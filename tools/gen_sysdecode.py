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
SOURCE_REPO = "fel1x-developer/freebsd-src (a GitHub fork of freebsd/freebsd-src)"
SOURCE_COMMIT = "2d614aa2fe3e037bd11d351b0b5cfda776e65814"
MKTABLES = "freebsd/freebsd-src lib/libsysdecode/mktables @ 023fc80ee38a117fa65b2ccb2abf8bdc7dbd6fd9"
FLAGS_C = "freebsd/freebsd-src lib/libsysdecode/flags.c @ 017690e509134422dbfa80316eab56d8d3f87065"
MKIOCTLS = "freebsd/freebsd-src lib/libsysdecode/mkioctls @ 0a7776b36ce7405bf3a9a3b3bb74c424984e3db2"

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
}

# (table, egrep regex, header, egrep -v exclusion) copied as facts from mktables, in
# its order.  Only the tables kdump's CALL decoding needs and whose header was fetched.
TABLES: list[tuple[str, str, str, str | None]] = [
    ("accessmode", r"[A-Z]_OK[[:space:]]+0?x?[0-9A-Fa-f]+", "sys/unistd.h", None),
    ("atflags", r"AT_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/fcntl.h", None),
    ("closerangeflags", r"CLOSE_RANGE_[A-Z]+[[:space:]]+\([0-9]+<<[0-9]+\)", "sys/unistd.h", None),
    ("fadvisebehav", r"POSIX_FADV_[A-Z]+[[:space:]]+[0-9]+", "sys/fcntl.h", None),
    ("openflags", r"O_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/fcntl.h", "O_RDONLY|O_RDWR|O_WRONLY"),
    ("flockops", r"LOCK_[A-Z]+[[:space:]]+0x[0-9]+", "sys/fcntl.h", None),
    ("kldsymcmd", r"KLDSYM_[A-Z]+[[:space:]]+[0-9]+", "sys/linker.h", None),
    ("kldunloadfflags", r"LINKER_UNLOAD_[A-Z]+[[:space:]]+[0-9]+", "sys/linker.h", None),
    ("madvisebehav", r"_?MADV_[A-Z]+[[:space:]]+[0-9]+", "sys/mman.h", None),
    ("minheritflags", r"INHERIT_[A-Z]+[[:space:]]+[0-9]+", "sys/mman.h", None),
    ("mlockallflags", r"MCL_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mman.h", None),
    ("mmapprot", r"PROT_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/mman.h", None),
    ("fileflags", r"[SU]F_[A-Z]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/stat.h",
     "UF_COMPRESSED|UF_TRACKED|UF_SETTABLE|SF_SETTABLE"),
    ("filemode", r"S_[A-Z]+[[:space:]]+[0-6]{7}", "sys/stat.h", None),
    ("mountflags", r"MNT_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mount.h", None),
    ("msyncflags", r"MS_[A-Z]+[[:space:]]+0x[0-9]+", "sys/mman.h", None),
    ("pathconfname", r"_PC_[A-Z4_]+[[:space:]]+[0-9]+", "sys/unistd.h", None),
    ("prio", r"PRIO_[A-Z]+[[:space:]]+[0-9]", "sys/resource.h", None),
    ("procctlcmd", r"PROC_[A-Z_]+[[:space:]]+[0-9]", "sys/procctl.h", "PROC_TRACE_CTL_"),
    ("ptraceop", r"PT_[[:alnum:]_]+[[:space:]]+[0-9]+", "sys/ptrace.h", None),
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
    ("sockipproto", r"IPPROTO_[[:alnum:]]+[[:space:]]+", "netinet/in.h", None),
    ("sockopt", r"SO_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/socket.h", None),
    ("socktype", r"SOCK_[A-Z]+[[:space:]]+[1-9]+[0-9]*", "sys/socket.h", None),
    ("thrcreateflags", r"THR_[A-Z]+[[:space:]]+0x[0-9]+", "sys/thr.h", None),
    ("umtxop", r"UMTX_OP_[[:alnum:]][[:alnum:]_]*[[:space:]]+[0-9]+", "sys/umtx.h", None),
    ("umtxopflags", r"UMTX_OP__[[:alnum:]_]+[[:space:]]+[0-9]+", "sys/umtx.h", None),
    ("wait6opt", r"W[A-Z]+[[:space:]]+[0-9]+", "sys/wait.h", None),
    ("seekwhence", r"SEEK_[A-Z]+[[:space:]]+[0-9]+", "sys/unistd.h", None),
    ("fcntlcmd", r"F_[A-Z0-9_]+[[:space:]]+[0-9]+[[:space:]]+", "sys/fcntl.h", "F_CANCEL|F_..LCK"),
    ("mmapflags", r"MAP_[A-Z_]+[[:space:]]+0x[0-9A-Fa-f]+", "sys/mman.h", None),
    ("rtpriofuncs", r"RTP_[A-Z]+[[:space:]]+[0-9]+", "sys/rtprio.h", None),
    ("msgflags", r"MSG_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/socket.h",
     "MSG_SOCALLBCK|MSG_MORETOCOME|MSG_TLSAPPDATA"),
    ("umtxcvwaitflags", r"CVWAIT_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/umtx.h", None),
    ("umtxrwlockflags", r"URWLOCK_PREFER_READER[[:space:]]+0x[0-9]+", "sys/umtx.h", None),
    ("sysarchnum", r"(AMD64|I386)_[A-Z86_]+[[:space:]]+[0-9]+", "x86/sysarch.h", None),
    ("shmflags", r"SHM_[A-Z_]+[[:space:]]+0x[0-9]+", "sys/mman.h", "SHM_ANON"),
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
    # SOCK_CLOFORK is listed in flags.c but absent from this header snapshot.
    "sockflags": ["SOCK_CLOEXEC", "SOCK_CLOFORK", "SOCK_NONBLOCK"],
    "getfsstatmode": ["MNT_WAIT", "MNT_NOWAIT"],
    # FD_CLOFORK likewise; the literal 0 entry prints "0".
    "fcntl_fd_arg": ["FD_CLOEXEC", "FD_CLOFORK", "0"],
}

# ioctl headers (mkioctls scans every header sorted by path; this is the subset fetched).
IOCTL_HEADERS = ["sys/filio.h", "sys/sockio.h", "sys/ttycom.h"]
IOCTL_PATHS = {"sys/filio.h": "sys/sys/filio.h", "sys/sockio.h": "sys/sys/sockio.h",
               "sys/ttycom.h": "sys/sys/ttycom.h"}
# sizeof() on amd64 (kdump runs there; sysdecode_ioctlname is compiled for the host).
# ioctls whose argument type is not listed are left out of the table.
STRUCT_SIZES = {
    "int": 4, "char": 1, "off_t": 8, "struct termios": 44, "struct winsize": 8,
    "struct timeval": 16, "struct fiodgname_arg": 16, "struct fiobmap2_arg": 16,
    "struct shm_largepage_conf": 48, "struct ifreq": 32, "struct ifconf": 16,
}
IOC_VOID, IOC_OUT, IOC_IN = 0x20000000, 0x40000000, 0x80000000
IOCPARM_MASK = (1 << 13) - 1
IOC_DIRS = {"_IO": IOC_VOID, "_IOWINT": IOC_VOID, "_IOR": IOC_OUT, "_IOW": IOC_IN,
            "_IOWR": IOC_IN | IOC_OUT}

_DEFINE_RE = re.compile(r"^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?\s*(.*)$")
_ENUM_RE = re.compile(r"\benum\b[^{]*\{([^}]*)\}")
_COMMENT_RE = re.compile(r"/\*.*?\*/")
_IOCTL_RE = re.compile(
    r"^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(_IO|_IOR|_IOW|_IOWR|_IOWINT)\("
    r"\s*'(.)'\s*,\s*(\d+)\s*(?:,\s*([^)]*?)\s*)?\)")


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
    excl = re.compile(exclude) if exclude else None
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


def ioctl_entries(root: Path) -> list[tuple[str, int]]:
    entries = []
    for header in IOCTL_HEADERS:
        for line in read_header(root, IOCTL_PATHS[header]):
            match = _IOCTL_RE.match(line)
            if not match:
                continue
            name, macro, group, num, argtype = match.groups()
            if macro in ("_IO",):
                size = 0
            elif macro == "_IOWINT":
                size = STRUCT_SIZES["int"]
            elif argtype in STRUCT_SIZES:
                size = STRUCT_SIZES[argtype]
            else:
                continue
            value = IOC_DIRS[macro] | ((size & IOCPARM_MASK) << 16) | (ord(group) << 8) | int(num)
            entries.append((name, value))
    return entries


def generate(root: Path) -> str:
    symbols = collect_symbols(root, sorted(set(HEADER_PATHS.values())))
    out = [
        "# FreeBSD libsysdecode name tables for kdump's CALL decoding: table TAB value TAB name",
        "# Generated by tools/gen_sysdecode.py; do not edit.  Rows are in header order;",
        "# lookups take the first match, masks walk the rows in order (libsysdecode semantics).",
        "# A '%table NAME' line declares each generated table, so an empty one is still known.",
        f"# headers: {SOURCE_REPO} @ {SOURCE_COMMIT}",
        f"#   ({', '.join(sorted(set(HEADER_PATHS.values()) | set(IOCTL_PATHS.values())))})",
        f"# regexes: {MKTABLES}",
        "# hand tables (semctlops, shmctlops, semgetflags, idtypes, sockflags, getfsstatmode,",
        f"#   fcntl_fd_arg): {FLAGS_C}",
        f"# ioctlname: {MKIOCTLS}; amd64 struct sizes",
        "# Deliberate subsets: ioctlname covers only sys/filio.h, sys/sockio.h and",
        "#   sys/ttycom.h (and only ioctls whose argument size is known); tables for",
        "#   acltype, extattrns, capfcntl, lio_listiomodes, quotactlcmds, itimerwhich and",
        "#   the per-protocol sockopt names (IP_, IPV6_, TCP_, ...) are not generated.",
        "# shutdownhow is empty: sys/socket.h defines SHUT_* in an enum, which mktables'",
        "#   #define regex cannot see, so kdump prints <invalid=...> for shutdown's how.",
    ]
    for table, regex, header, exclude in TABLES:
        out.append(f"%table\t{table}")
        for name, value in mktables_entries(root, symbols, regex, header, exclude):
            out.append(f"{table}\t{value:#x}\t{name}")
    for table, names in HAND_TABLES.items():
        out.append(f"%table\t{table}")
        for name in names:
            hand_value = symbols.evaluate(name)
            if hand_value is None:
                continue
            out.append(f"{table}\t{hand_value:#x}\t{name}")
    out.append("%table\tioctlname")
    for name, value in ioctl_entries(root):
        out.append(f"ioctlname\t{value:#x}\t{name}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("headers", type=Path, help="directory holding the fetched sys/ tree")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent.parent
                        / "ktrace_cli/abi/data/sysdecode_freebsd.tsv")
    args = parser.parse_args(argv)
    args.output.write_text(generate(args.headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
