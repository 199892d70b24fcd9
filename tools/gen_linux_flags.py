"""Generate ktrace_cli/abi/data/linux_flags.tsv from Linux UAPI headers, as strace's xlat tables are.

The headers are never committed.  Fetch each HEADERS path at its commit from
torvalds/linux into a scratch directory laid out like the kernel tree, e.g.

    git -C linux show COMMIT:include/uapi/linux/futex.h > DIR/include/uapi/linux/futex.h

(or https://raw.githubusercontent.com/torvalds/linux/COMMIT/PATH), then run

    python tools/gen_linux_flags.py DIR ktrace_cli/abi/data/linux_flags.tsv

Each row is `table TAB value TAB name`, in the order the names appear in the
headers: masks are printed by walking a table in that order, so the order is
part of the output.  A name that several tables share (O_CLOEXEC) is taken
from the header that defines it, never retyped.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = "torvalds/linux"

# Every header read, with the commit of the stored copy it was read at.  The
# copies come from one index of the repository, which keeps one version of
# each file; they are not all from the commit the syscall table comes from,
# so each row of the output's header names its own commit.
HEADERS: dict[str, str] = {
    "include/uapi/asm-generic/mman-common.h": "65e575744264b28811c1a82c2640b1257cabf22f",
    "include/uapi/asm-generic/mman.h": "6867849aac964c47532897b4f843dfb2311216db",
    "arch/x86/include/uapi/asm/mman.h": "de80193308f43d3ae52cd3561e8ba77cd1437311",
    "include/uapi/linux/mman.h": "851462444d421c223965b12b836bef63da61b57f",
    "include/linux/socket.h": "91de76e661a266731fc2889a398ad1694df9d523",
    "include/linux/net.h": "4c1ac1b49122b805adfa4efc620592f68dccf5db",
    "include/uapi/asm-generic/socket.h": "2dd0ef5d951e9b565ddb324fe26c531b6a40bf82",
    "include/uapi/linux/in.h": "107d3e535874dc06e9bf0282d9bd707f7595eafe",
    "include/uapi/linux/in6.h": "cc9263874b42bf98209dce0afe698b550648e770",
    "include/uapi/linux/tcp.h": "3eb66e91a25497065c5322b1268cbc3953642227",
    "include/uapi/asm-generic/fcntl.h": "a3928246651b92dec93a47b99c49ff3151b08bae",
    "include/uapi/linux/fcntl.h": "22fa74c2b0975f8ae05e55860b84ba2557c940ad",
    "include/uapi/asm-generic/ioctls.h": "fc4b04d84027716cb45c7266d35f9216d445f747",
    "include/uapi/linux/fs.h": "0a6eab8bd4e0120d49511acbb294797d96ef9e4a",
    "include/uapi/linux/random.h": "251c226c3504601320b1eef14494abf68589db86",
    "include/uapi/linux/futex.h": "3bf3e21c15d4386a5f15118ec39bbc1b67ea5759",
    "include/uapi/linux/prctl.h": "60a5825e9cbeed329d6a6fc0705b21d7c33c9e42",
    "arch/x86/include/uapi/asm/prctl.h": "2d39a6add422ac78254927ec2194838c33ae4fb2",
    "include/uapi/asm-generic/resource.h": "107d3e535874dc06e9bf0282d9bd707f7595eafe",
    "include/uapi/asm-generic/signal-defs.h": "8f1533c166442010fa53f9f4ac719389bebd839a",
    "include/uapi/linux/wait.h": "107d3e535874dc06e9bf0282d9bd707f7595eafe",
    "include/uapi/linux/stat.h": "b6e2174ef49bb3e0fccb4e2548bc9384d0bd9105",
    "include/uapi/linux/eventpoll.h": "0604aa87b098740f2e517a584552591cbf2209d7",
    "include/uapi/linux/sched.h": "07c3ef58223e2c75ea209d8c416b976ec30d9413",
    "include/uapi/linux/memfd.h": "0b77b97066628deef03a6eac7b29e5c3756f4ab0",
    "include/uapi/linux/eventfd.h": "2612e3bbc0386368a850140a6c9b990cd496a5ec",
    "include/uapi/linux/timerfd.h": "30c0923370175a01a806b23d797f1d9f2f3e4f40",
    "include/uapi/linux/signalfd.h": "0683b53197b55343a166f1507086823030809a19",
    "include/uapi/linux/inotify.h": "254a142007114cad7b0a901215c1558e4315d46f",
    "include/uapi/linux/time.h": "31881d74b6dd1a6c530cff61248def4f2da38bee",
}

# Names a current kernel defines that the stored copies above predate.  Each is
# an expression over the headers' own macros where the kernel writes it so,
# with the header and release that brought it; nothing else is supplied.
SUPPLEMENT: dict[str, tuple[str, str]] = {
    "MAP_SHARED": ("0x01", "include/uapi/linux/mman.h (asm-generic/mman-common.h before 4.15)"),
    "MAP_PRIVATE": ("0x02", "include/uapi/linux/mman.h (asm-generic/mman-common.h before 4.15)"),
    "MAP_SHARED_VALIDATE": ("0x03", "include/uapi/linux/mman.h, Linux 4.15"),
    "SOCK_CLOEXEC": ("O_CLOEXEC", "include/linux/net.h, Linux 2.6.27"),
    "SOCK_NONBLOCK": ("O_NONBLOCK", "include/linux/net.h, Linux 2.6.27"),
    "AT_EACCESS": ("0x200", "include/uapi/linux/fcntl.h, Linux 5.8"),
    "AT_STATX_FORCE_SYNC": ("0x2000", "include/uapi/linux/fcntl.h, Linux 4.11"),
    "AT_STATX_DONT_SYNC": ("0x4000", "include/uapi/linux/fcntl.h, Linux 4.11"),
    "AT_RECURSIVE": ("0x8000", "include/uapi/linux/fcntl.h, Linux 5.2"),
    "P_PIDFD": ("3", "include/uapi/linux/wait.h, Linux 5.4"),
    "GRND_INSECURE": ("0x0004", "include/uapi/linux/random.h, Linux 5.6"),
    "MFD_NOEXEC_SEAL": ("0x0008U", "include/uapi/linux/memfd.h, Linux 6.3"),
    "MFD_EXEC": ("0x0010U", "include/uapi/linux/memfd.h, Linux 6.3"),
    "AF_XDP": ("44", "include/linux/socket.h, Linux 4.18"),
    "AF_MCTP": ("45", "include/linux/socket.h, Linux 5.15"),
    "MSG_SOCK_DEVMEM": ("0x2000000", "include/linux/socket.h, Linux 6.12"),
    "MSG_SPLICE_PAGES": ("0x8000000", "include/linux/socket.h, Linux 6.5"),
    "PR_SET_IO_FLUSHER": ("57", "include/uapi/linux/prctl.h, Linux 5.6"),
    "PR_GET_IO_FLUSHER": ("58", "include/uapi/linux/prctl.h, Linux 5.6"),
    "PR_SET_SYSCALL_USER_DISPATCH": ("59", "include/uapi/linux/prctl.h, Linux 5.11"),
    "PR_SCHED_CORE": ("62", "include/uapi/linux/prctl.h, Linux 5.14"),
    "PR_SET_MDWE": ("65", "include/uapi/linux/prctl.h, Linux 6.3"),
    "PR_GET_MDWE": ("66", "include/uapi/linux/prctl.h, Linux 6.3"),
    "PR_GET_AUXV": ("0x41555856", "include/uapi/linux/prctl.h, Linux 6.4"),
}

# Names printed differently from the header: the uapi header calls 0o20000
# FASYNC, but glibc, strace and FreeBSD's kdump all print O_ASYNC.
RENAMES = {"FASYNC": "O_ASYNC"}


@dataclass(frozen=True)
class Spec:
    """One output table: names matching `names` (and not `exclude`) in `headers`, in order."""

    table: str
    headers: tuple[str, ...]
    names: str
    exclude: str | None = None
    # Only `#define NAME` at column 0, not `# define NAME` (prctl's sub-options).
    top_level: bool = False
    # Only macros, not enum members (tcp.h's netlink attribute enums share TCP_).
    defines_only: bool = False
    extra: tuple[str, ...] = ()
    # Keep values in this range (clone's flags vs clone3's 64-bit ones).
    low: int = -(1 << 63)
    high: int = (1 << 64) - 1
    # Move each multi-bit name before the first single name it covers, so a
    # mask walk prints O_SYNC rather than __O_SYNC|O_DSYNC.
    composites_first: bool = False


_MMAN = ("include/uapi/asm-generic/mman-common.h", "include/uapi/asm-generic/mman.h",
         "arch/x86/include/uapi/asm/mman.h", "include/uapi/linux/mman.h")  # fmt: skip
_FCNTL = ("include/uapi/asm-generic/fcntl.h", "include/uapi/linux/fcntl.h")
_SOCKET = ("include/linux/socket.h",)

SPECS: tuple[Spec, ...] = (
    Spec("mmap_prot", _MMAN, r"PROT_[A-Z]+"),
    Spec("mmap_type", _MMAN, r"MAP_(SHARED|PRIVATE|SHARED_VALIDATE)",
         extra=("MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE")),
    Spec("mmap_flags", _MMAN, r"MAP_[A-Z0-9_]+", r"^MAP_(TYPE|FILE|SHARED|PRIVATE|SHARED_VALIDATE)$"),
    Spec("madvise_advice", _MMAN, r"MADV_[A-Z_]+"),
    Spec("msync_flags", _MMAN, r"MS_[A-Z]+"),
    Spec("mlockall_flags", _MMAN, r"MCL_[A-Z]+"),
    Spec("mremap_flags", _MMAN, r"MREMAP_[A-Z]+"),
    Spec("socket_domain", _SOCKET, r"AF_[A-Za-z0-9]+", r"^AF_MAX$", extra=("AF_XDP", "AF_MCTP")),
    Spec("socket_type", ("include/linux/net.h",), r"SOCK_(STREAM|DGRAM|RAW|RDM|SEQPACKET|DCCP|PACKET)"),
    Spec("socket_flags", ("include/linux/net.h",), r"SOCK_(CLOEXEC|NONBLOCK)",
         extra=("SOCK_CLOEXEC", "SOCK_NONBLOCK")),
    Spec("ipproto", ("include/uapi/linux/in.h", "include/uapi/linux/in6.h"), r"IPPROTO_[A-Z0-9]+",
         r"^IPPROTO_MAX$"),
    Spec("sockopt_level", ("include/uapi/asm-generic/socket.h", *_SOCKET), r"SOL_[A-Z0-9]+"),
    Spec("sockopt_socket", ("include/uapi/asm-generic/socket.h",), r"SO_[A-Z0-9_]+"),
    Spec("sockopt_ip", ("include/uapi/linux/in.h",), r"(IP|MCAST)_[A-Z_]+",
         r"^(IP_PMTUDISC_|IP_DEFAULT_|MCAST_(EXCLUDE|INCLUDE)$)"),
    Spec("sockopt_ipv6", ("include/uapi/linux/in6.h",), r"IPV6_[A-Z0-9_]+",
         r"^IPV6_(FL_|FLOWINFO_(FLOWLABEL|PRIORITY)$|PRIORITY_|TLV_|PMTUDISC_|PREFER_)"),
    Spec("sockopt_tcp", ("include/uapi/linux/tcp.h",), r"TCP_[A-Z0-9_]+",
         r"^TCP_(MSS_|REPAIR_(ON|OFF)|MD5SIG_(MAXKEYLEN|FLAG_))", defines_only=True),
    Spec("msg_flags", _SOCKET, r"MSG_[A-Z_]+", r"^MSG_CMSG_COMPAT$",
         extra=("MSG_SOCK_DEVMEM", "MSG_SPLICE_PAGES")),
    Spec("open_access", _FCNTL, r"O_(RDONLY|WRONLY|RDWR)"),
    Spec("open_flags", _FCNTL, r"(__)?O_[A-Z]+|FASYNC", r"^(O_ACCMODE|O_RDONLY|O_WRONLY|O_RDWR|O_NDELAY)$",
         composites_first=True),
    Spec("fcntl_cmd", _FCNTL, r"F_[A-Z0-9_]+",
         r"^F_(RDLCK|WRLCK|UNLCK|EXLCK|SHLCK|OWNER_|LINUX_SPECIFIC_BASE|SEAL_|GETLK64|SETLK64|SETLKW64)"),
    Spec("fcntl_fd_flags", _FCNTL, r"FD_CLOEXEC"),
    Spec("fcntl_seals", _FCNTL, r"F_SEAL_[A-Z]+"),
    Spec("flock_op", _FCNTL, r"LOCK_(SH|EX|NB|UN)"),
    Spec("at_fdcwd", _FCNTL, r"AT_FDCWD"),
    Spec("at_flags", _FCNTL, r"AT_[A-Z_]+", r"^AT_FDCWD$",
         extra=("AT_EACCESS", "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC", "AT_RECURSIVE")),
    Spec("ioctl_tty", ("include/uapi/asm-generic/ioctls.h",), r"(TC|TIO|FIO)[A-Z0-9_]+",
         r"^(TIOCPKT_|TIOCSER_TEMT)"),
    Spec("ioctl_misc", ("include/uapi/linux/fs.h", "include/uapi/linux/random.h"),
         r"(BLK|FI|FS_IOC|RND)[A-Z0-9_]+", r"^(BLOCK_|FILE_|FS_IOC32_)"),
    Spec("futex_cmd", ("include/uapi/linux/futex.h",),
         r"FUTEX_(WAIT|WAKE|FD|REQUEUE|CMP_REQUEUE|WAKE_OP|LOCK_PI|UNLOCK_PI|TRYLOCK_PI|WAIT_BITSET"
         r"|WAKE_BITSET|WAIT_REQUEUE_PI|CMP_REQUEUE_PI|LOCK_PI2)"),
    Spec("futex_flags", ("include/uapi/linux/futex.h",), r"FUTEX_(PRIVATE_FLAG|CLOCK_REALTIME)"),
    Spec("prctl_option", ("include/uapi/linux/prctl.h",), r"PR_[A-Z0-9_]+", top_level=True,
         extra=("PR_SET_IO_FLUSHER", "PR_GET_IO_FLUSHER", "PR_SET_SYSCALL_USER_DISPATCH",
                "PR_SCHED_CORE", "PR_SET_MDWE", "PR_GET_MDWE", "PR_GET_AUXV")),
    Spec("arch_prctl_option", ("arch/x86/include/uapi/asm/prctl.h",), r"ARCH_[A-Z0-9_]+",
         r"^ARCH_(XCOMP_TILE|SHSTK_SHSTK$)"),
    Spec("rlimit_resource", ("include/uapi/asm-generic/resource.h",), r"RLIMIT_[A-Z]+"),
    Spec("sigprocmask_how", ("include/uapi/asm-generic/signal-defs.h",), r"SIG_(BLOCK|UNBLOCK|SETMASK)"),
    Spec("wait_options", ("include/uapi/linux/wait.h",), r"(__)?W[A-Z]+"),
    Spec("waitid_idtype", ("include/uapi/linux/wait.h",), r"P_[A-Z]+", extra=("P_PIDFD",)),
    Spec("statx_mask", ("include/uapi/linux/stat.h",), r"STATX_[A-Z_]+",
         r"^STATX_(ATTR_|_RESERVED|ALL$)", composites_first=True),
    Spec("getrandom_flags", ("include/uapi/linux/random.h",), r"GRND_[A-Z]+", extra=("GRND_INSECURE",)),
    Spec("epoll_ctl_op", ("include/uapi/linux/eventpoll.h",), r"EPOLL_CTL_[A-Z]+"),
    Spec("epoll_create_flags", ("include/uapi/linux/eventpoll.h", *_FCNTL), r"EPOLL_CLOEXEC"),
    Spec("epoll_events", ("include/uapi/linux/eventpoll.h",), r"EPOLL[A-Z]+", r"^EPOLL_"),
    Spec("clone_flags", ("include/uapi/linux/sched.h",), r"CLONE_[A-Z_]+", low=0x100, high=0xFFFFFFFF),
    Spec("clone3_flags", ("include/uapi/linux/sched.h",), r"CLONE_[A-Z_]+", r"^CLONE_ARGS_"),
    Spec("memfd_flags", ("include/uapi/linux/memfd.h",), r"MFD_(CLOEXEC|ALLOW_SEALING|HUGETLB|NOEXEC_SEAL|EXEC)",
         extra=("MFD_NOEXEC_SEAL", "MFD_EXEC")),
    Spec("eventfd_flags", ("include/uapi/linux/eventfd.h", *_FCNTL), r"EFD_[A-Z]+"),
    Spec("timerfd_create_flags", ("include/uapi/linux/timerfd.h", *_FCNTL), r"TFD_(CLOEXEC|NONBLOCK)"),
    Spec("timerfd_settime_flags", ("include/uapi/linux/timerfd.h",), r"TFD_TIMER_[A-Z_]+"),
    Spec("signalfd_flags", ("include/uapi/linux/signalfd.h", *_FCNTL), r"SFD_[A-Z]+"),
    Spec("inotify_init_flags", ("include/uapi/linux/inotify.h", *_FCNTL), r"IN_(CLOEXEC|NONBLOCK)"),
    Spec("seek_whence", ("include/uapi/linux/fs.h",), r"SEEK_[A-Z]+", r"^SEEK_MAX$"),
    Spec("clock_id", ("include/uapi/linux/time.h",), r"CLOCK_[A-Z_]+"),
    Spec("clock_flags", ("include/uapi/linux/time.h",), r"TIMER_ABSTIME"),
    Spec("itimer_which", ("include/uapi/linux/time.h",), r"ITIMER_[A-Z]+"),
)

# sizeof() on x86_64 of the argument types the fetched ioctl headers use;
# an ioctl whose type is not listed is left out, never guessed.
IOCTL_ARG_SIZES = {
    "int": 4, "unsigned int": 4, "__s32": 4, "__u64": 8, "long": 8, "size_t": 8, "int [2]": 8,
    "struct termios2": 44, "struct fstrim_range": 24, "struct file_clone_range": 32,
    "struct fsxattr": 28, "struct serial_iso7816": 40,
}
# The asm-generic _IOC encoding x86 uses: nr bits 0-7, type 8-15, size 16-29, dir 30-31.
IOC_DIRS = {"_IO": 0, "_IOW": 1, "_IOR": 2, "_IOWR": 3}
_IOC_RE = re.compile(r"^(_IO|_IOR|_IOW|_IOWR)\s*\(\s*('.'|0x[0-9a-fA-F]+|\d+)\s*,\s*(0x[0-9a-fA-F]+|\d+)\s*"
                     r"(?:,\s*([^)]*?)\s*)?\)")  # fmt: skip

_DEFINE_RE = re.compile(r"^#(\s*)define\s+([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?[ \t]*(.*)$")
_ENUM_RE = re.compile(r"\benum\b[^{;]*\{([^}]*)\}", re.S)
_COMMENT_RE = re.compile(r"/\*.*?\*/", re.S)
_IF0_RE = re.compile(r"^#\s*if\s+0\b.*?^#\s*endif[^\n]*$", re.S | re.M)
_CAST_RE = re.compile(r"\(\s*(?:__force\s+)?(?:unsigned\s+long(?:\s+int)?|__poll_t|__sighandler_t)\s*\)")


def logical_lines(text: str) -> list[str]:
    """Header lines with comments, `#if 0` blocks and backslash continuations resolved."""
    text = _COMMENT_RE.sub(" ", text)
    text = _IF0_RE.sub("", text)
    return re.sub(r"\\\n", " ", text).splitlines()


class Symbols:
    """Macro and enum values across every header read, in the order they are defined."""

    def __init__(self) -> None:
        self.exprs: dict[str, str] = {}
        # (header, name, kind) in header order, for the table specs; kind is
        # "define" at column 0, "indented" for `# define`, or "enum".
        self.order: list[tuple[str, str, str]] = []

    def add_header(self, path: str, text: str) -> None:
        lines = logical_lines(text)
        for line in lines:
            match = _DEFINE_RE.match(line)
            if match is None or match.group(3) is not None:
                continue
            name = match.group(2)
            # The first definition wins: later ones sit under #if branches a
            # 64-bit user build does not take (MSG_CMSG_COMPAT 0).
            if name not in self.exprs:
                self.exprs[name] = match.group(4).strip()
            self.order.append((path, name, "indented" if match.group(1) else "define"))
        for body in _ENUM_RE.findall("\n".join(lines)):
            counter = 0
            for item in body.split(","):
                item = item.strip()
                if not re.match(r"^[A-Za-z_]\w*(\s*=.*)?$", item, re.S):
                    continue
                name, _, explicit = item.partition("=")
                name = name.strip()
                if explicit.strip():
                    value = self.evaluate(explicit.strip())
                    if value is None:
                        continue
                    counter = value
                self.exprs.setdefault(name, str(counter))
                self.order.append((path, name, "enum"))
                counter += 1

    def value(self, name: str, depth: int = 0) -> int | None:
        if depth > 20 or name not in self.exprs:
            return None
        return self.evaluate(self.exprs[name], depth + 1)

    def evaluate(self, expr: str, depth: int = 0) -> int | None:
        expr = _CAST_RE.sub("", expr).strip()
        ioc = _IOC_RE.match(expr)
        if ioc is not None:
            return self._ioc(*ioc.groups())
        expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)
        expr = re.sub(r"\b0([0-7]+)\b", r"0o\1", expr)
        if not expr:
            return None
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError:
            return None
        return self._eval(tree.body, depth)

    @staticmethod
    def _ioc(macro: str, group: str, number: str, argtype: str | None) -> int | None:
        if macro == "_IO":
            size = 0
        else:
            size_or_none = IOCTL_ARG_SIZES.get(" ".join((argtype or "").split()))
            if size_or_none is None:
                return None
            size = size_or_none
        kind = ord(group[1]) if group.startswith("'") else int(group, 0)
        return IOC_DIRS[macro] << 30 | size << 16 | kind << 8 | int(number, 0)

    def _eval(self, node: ast.AST, depth: int) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return self.value(node.id, depth)
        if isinstance(node, ast.UnaryOp):
            inner = self._eval(node.operand, depth)
            if inner is None:
                return None
            if isinstance(node.op, ast.USub):
                return -inner
            if isinstance(node.op, ast.Invert):
                return ~inner
            return None
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, depth), self._eval(node.right, depth)
            if left is None or right is None:
                return None
            ops: dict[type, Callable[[int, int], int]] = {
                ast.BitOr: lambda a, b: a | b, ast.LShift: lambda a, b: a << b,
                ast.RShift: lambda a, b: a >> b, ast.Add: lambda a, b: a + b,
                ast.BitAnd: lambda a, b: a & b,
            }  # fmt: skip
            fn = ops.get(type(node.op))
            return None if fn is None else fn(left, right)
        return None


def _covers(big: int, small: int) -> bool:
    return big != small and small != 0 and big & small == small


def order_composites(rows: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Move each multi-bit entry just before the first earlier-listed entry it covers."""
    out = list(rows)
    for value, name in rows:
        if value & (value - 1) == 0:
            continue
        here = out.index((value, name))
        first = next((i for i, (v, _n) in enumerate(out) if _covers(value, v)), None)
        if first is not None and first < here:
            out.insert(first, out.pop(here))
    return out


def build(symbols: Symbols) -> list[tuple[str, int, str]]:
    """Every (table, value, name) row, table by table, names in header order."""
    rows: list[tuple[str, int, str]] = []
    for spec in SPECS:
        pattern = re.compile(f"^(?:{spec.names})$")
        exclude = re.compile(spec.exclude) if spec.exclude else None
        seen: set[str] = set()
        table: list[tuple[int, str]] = []
        kinds = {"define"} if spec.top_level else {"define", "indented"} if spec.defines_only else None
        names = [n for h, n, kind in symbols.order if h in spec.headers and (kinds is None or kind in kinds)]
        for name in [*names, *spec.extra]:
            if name in seen or not pattern.match(name) or (exclude and exclude.search(name)):
                continue
            seen.add(name)
            value = symbols.value(name)
            if value is None:
                if name.startswith(("BLK", "FI", "FS_IOC", "RND")):
                    continue  # an ioctl whose argument size is not known
                raise SystemExit(f"{spec.table}: cannot evaluate {name} = {symbols.exprs.get(name)!r}")
            if not spec.low <= value <= spec.high:
                continue
            table.append((value, RENAMES.get(name, name)))
        if not table:
            raise SystemExit(f"{spec.table}: no names matched")
        if spec.composites_first:
            table = order_composites(table)
        rows.extend((spec.table, value, name) for value, name in table)
    return rows


def render(rows: list[tuple[str, int, str]]) -> str:
    head = [
        "# Linux x86_64 flag and value tables for Linux-ABI CALL arguments: table TAB value TAB name",
        f"# generated by tools/{Path(__file__).name}; do not edit by hand",
        f"# repository: {REPOSITORY}",
        *(f"# header: {path} @ {commit}" for path, commit in HEADERS.items()),
        *(f"# supplement: {name} = {expr} ({where}; newer than the copy read)"
          for name, (expr, where) in SUPPLEMENT.items()),
    ]  # fmt: skip
    body = [f"{table}\t{value:#x}\t{name}" for table, value, name in rows]
    return "\n".join(head + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: read the headers under ROOT, write OUTPUT."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="directory holding the HEADERS paths")
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    symbols = Symbols()
    for path in HEADERS:
        try:
            text = (args.root / path).read_text(encoding="utf-8")
        except OSError as exc:
            parser.error(f"{path}: {exc.strerror}")
        symbols.add_header(path, text)
    for name, (expr, _where) in SUPPLEMENT.items():
        if name in symbols.exprs:
            raise SystemExit(f"supplement {name} is now in the headers; drop it")
        symbols.exprs[name] = expr
    args.output.write_text(render(build(symbols)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
