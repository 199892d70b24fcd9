"""kdump's argument text for a FreeBSD-ABI CALL record (ktrsyscall_freebsd): the rows of its table.

The cursor and the primitives (N, D, INT, MASK, FILEMODE, SIG, ...) are the
ones every ABI prints with (decode/kdump_args.py); this module holds the
FreeBSD rows and the few ops whose template branches on an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ktrace_cli.abi import sysdecode as sd
from ktrace_cli.abi.freebsd import signal_name
from ktrace_cli.decode.cfmt import c_hex, c_int32
from ktrace_cli.decode.kdump_args import (
    ATFD,
    D64,
    FILEMODE,
    INT,
    INTV,
    MASK,
    MASK0,
    N64,
    PID,
    Args,
    C,
    N,
    Op,
    P,
    S,
    int_text,
    invalid_text,
    mask_text,
    run,
    settings,
)
from ktrace_cli.decode.kdump_args import SIG as _SIG

_U32 = 0xFFFFFFFF


def _table_mask(name: str) -> Callable[[int], sd.MaskResult]:
    return lambda value: sd.mask_int(name, value)


FILEFLAGS = MASK0(lambda value: sd.mask_0("fileflags", value))
SIG = _SIG(signal_name)  # print_signal with FreeBSD's names


def IOCTL(a: Args) -> None:  # noqa: N802
    """ioctlname(): the ioctl's name, else %#lx (%lu with -d) of the whole slot."""
    value = a.take()
    if value is not None:
        name = sd.ioctlname(value)
        a.emit(name if name is not None else (str(value) if a.decimal else c_hex(value)))


# -- ops for the syscalls whose templates branch on an argument ----------------------


def OPEN_FLAGS_MODE(a: Args) -> None:  # noqa: N802
    """open/openat: the flags; the mode only with O_CREAT; both slots consumed."""
    flags = a.peek()
    a.emit(mask_text(flags & _U32, sd.open_flags(flags)))
    a.pos += 1
    if flags & 0x200:  # O_CREAT
        a.emit(",")
        FILEMODE(a)
    else:
        a.pos += 1


def FCNTL_CMD_ARG(a: Args) -> None:  # noqa: N802
    """fcntl: the command, and its argument unless the command takes none."""
    cmd, arg = a.peek(), a.peek(1)
    a.emit(int_text(sd.table("fcntlcmd").lookup(c_int32(cmd)), cmd, a.decimal, False))
    if c_int32(cmd) not in (1, 3, 5):  # F_GETFD, F_GETFL, F_GETOWN
        a.emit(",")
        if cmd == 4:  # F_SETFL
            a.emit(mask_text(arg & _U32, sd.fcntl_fileflags(arg)))
        else:
            a.emit(sd.fcntl_arg(c_int32(cmd), arg, a.decimal))
    a.pos += 2


_IP_PROTO = INT("sockipproto")


def SOCKET_PROTO(a: Args) -> None:  # noqa: N802
    """socket: the protocol is decoded only for PF_INET and PF_INET6."""
    if c_int32(a.peek(-2)) in (2, 28):
        a.emit(",")
        _IP_PROTO(a)


def SOCKOPT_NAME(a: Args) -> None:  # noqa: N802
    """[gs]etsockopt: the option name when the level's table knows it."""
    level, optname = a.peek(-1), a.peek()
    name = sd.sockopt_name(c_int32(level), c_int32(optname))
    if name is not None:
        a.emit("," + name)
        a.pos += 1


_OPEN_FLAGS = MASK(sd.open_flags)
_SHM_FLAGS = MASK(lambda value: sd.mask_0("shmflags", value))


def SHM_OPEN(with_shmflags: bool) -> Op:  # noqa: N802
    """shm_open2 / compat12.shm_open: path (SHM_ANON for the pointer 1), flags, mode
    and, for shm_open2, the shm flags.

    kdump's SHM_ANON branch prints "(SHM_ANON" and steps past the path slot without
    counting it or setting the separator, so its trailing print_number loop starts
    with '(' and prints one slot past the end of the record (0 here; stale bytes of
    kdump's buffer there).
    """
    fixed = 3 if with_shmflags else 2

    def op(a: Args) -> None:
        anon = a.peek() == 1
        if anon:
            a.emit("(SHM_ANON")
            a.pos += 1
        else:
            N(a)
        a.emit(",")
        _OPEN_FLAGS(a)
        a.emit(",")
        FILEMODE(a)
        if with_shmflags:
            a.emit(",")
            _SHM_FLAGS(a)
        if anon:
            for _ in range(a.n - fixed):
                N(a)
    return op


def QUOTACTL_CMD(a: Args) -> None:  # noqa: N802
    value = a.peek()
    text = sd.quotactl_cmd(value)
    a.emit(text if text is not None else invalid_text(value, a.decimal))
    a.pos += 1


def UMTX_OP(a: Args) -> None:  # noqa: N802
    """_umtx_op: %#x<flags|op>, plus the CV_WAIT / RW_RDLOCK flag word."""
    value = a.peek()
    text, printed, op = sd.umtx_op_flags(value)
    name = sd.table("umtxop").lookup(c_int32(op))
    a.emit(f"{c_hex(value & _U32)}<{text}{'|' if printed else ''}"
           f"{int_text(name, op, a.decimal, False)}>")
    extra = {8: "umtxcvwaitflags", 12: "umtxrwlockflags"}.get(value)
    if extra is not None:
        a.pos += 1
        flags = a.peek()
        if flags == 0:
            a.emit(",0")
        else:
            text, printed, rem = sd.mask_0ul(extra, flags)
            a.emit(f",{c_hex(flags)}<{text}>" + ("" if printed else f"<invalid>{rem}"))
    a.pos += 1


_CLOSE_RANGE = MASK0(_table_mask("closerangeflags"))


def CLOSE_RANGE_FLAGS(a: Args) -> None:  # noqa: N802
    """close_range: kdump steps ip by 3 here, past every slot, so nothing trails."""
    _CLOSE_RANGE(a)
    a.pos += 2


# -- the table ------------------------------------------------------------------------

_atflags = MASK0(lambda value: sd.mask_int("atflags", value))

# Pass A: the first argument is a directory descriptor.
PASS_A = frozenset({
    "bindat", "chflagsat", "connectat", "faccessat", "fchmodat", "fchownat", "fstatat",
    "futimesat", "linkat", "mkdirat", "mkfifoat", "mknodat", "openat", "readlinkat",
    "renameat", "unlinkat", "utimensat",
})

# Pass C: a trailing AT_ flag argument.
PASS_C = frozenset({
    "chflagsat", "fchownat", "faccessat", "fchmodat", "fstatat", "linkat", "unlinkat",
    "utimensat",
})

_acl = (N, C, INT("acltype"))
_mount = (N, N, C, MASK0(_table_mask("mountflags")))

# Pass B, one row per syscall (kdump.c ktrsyscall_freebsd; docs/FORMAT.md, CALL text).
PASS_B: dict[str, tuple[Op, ...]] = {
    "ioctl": (N, C, IOCTL, S),
    "ptrace": (P, INT("ptraceop"), S),
    "access": (N, C, MASK(_table_mask("accessmode"))),
    "eaccess": (N, C, MASK(_table_mask("accessmode"))),
    "faccessat": (N, C, MASK(_table_mask("accessmode"))),
    "close_range": (N, N, C, CLOSE_RANGE_FLAGS),
    "open": (N, C, OPEN_FLAGS_MODE),
    "openat": (N, C, OPEN_FLAGS_MODE),
    "wait4": (PID, N, C, MASK0(sd.wait4_options)),
    "wait6": (P, INT("idtypes"), S, D64, N, C, MASK(_table_mask("wait6opt"))),
    "chmod": (N, C, FILEMODE),
    "fchmod": (N, C, FILEMODE),
    "lchmod": (N, C, FILEMODE),
    "fchmodat": (N, C, FILEMODE),
    "mknodat": (N, C, FILEMODE),
    "getfsstat": (N, N, C, INT("getfsstatmode")),
    "mount": _mount,
    "unmount": (N, C, MASK0(_table_mask("mountflags"))),
    "recvmsg": (N, N, C, MASK0(lambda value: sd.mask_0("msgflags", value))),
    "sendmsg": (N, N, C, MASK0(lambda value: sd.mask_0("msgflags", value))),
    "recvfrom": (N, N, N, C, MASK0(lambda value: sd.mask_0("msgflags", value))),
    "sendto": (N, N, N, C, MASK0(lambda value: sd.mask_0("msgflags", value))),
    "chflags": (N, C, FILEFLAGS),
    "chflagsat": (N, C, FILEFLAGS),
    "fchflags": (N, C, FILEFLAGS),
    "lchflags": (N, C, FILEFLAGS),
    "kill": (PID, C, SIG),
    "reboot": (P, MASK(sd.reboot_howto)),
    "umask": (P, FILEMODE),
    "msync": (N, N, C, MASK(_table_mask("msyncflags"))),
    "freebsd6_mmap": (N, N, C, MASK(sd.mmap_prot), C, MASK(sd.mmap_flags)),
    "mmap": (N, N, C, MASK(sd.mmap_prot), C, MASK(sd.mmap_flags)),
    "mprotect": (N, N, C, MASK(sd.mmap_prot)),
    "madvise": (N, N, C, INT("madvisebehav")),
    "pathconf": (N, C, INT("pathconfname")),
    "lpathconf": (N, C, INT("pathconfname")),
    "fpathconf": (N, C, INT("pathconfname")),
    "getpriority": (P, INT("prio"), S),
    "setpriority": (P, INT("prio"), S),
    "fcntl": (N, C, FCNTL_CMD_ARG),
    "socket": (P, INT("sockdomain"), C, MASK(sd.socket_type), SOCKET_PROTO, S),
    "setsockopt": (N, C, INTV(sd.sockopt_level), SOCKOPT_NAME),
    "getsockopt": (N, C, INTV(sd.sockopt_level), SOCKOPT_NAME),
    "freebsd6_lseek": (N, N, N64, C, INT("seekwhence")),
    "lseek": (N, N64, C, INT("seekwhence")),
    "flock": (N, C, MASK(_table_mask("flockops"))),
    "mkfifo": (N, C, FILEMODE),
    "mkfifoat": (N, C, FILEMODE),
    "mkdir": (N, C, FILEMODE),
    "mkdirat": (N, C, FILEMODE),
    "shutdown": (N, C, INT("shutdownhow")),
    "socketpair": (P, INT("sockdomain"), C, MASK(sd.socket_type), S),
    "getrlimit": (P, INT("rlimit"), S),
    "setrlimit": (P, INT("rlimit"), S),
    "getrusage": (P, INT("rusage"), S),
    "quotactl": (N, C, QUOTACTL_CMD, S),
    "rtprio": (P, INT("rtpriofuncs"), S),
    "rtprio_thread": (P, INT("rtpriofuncs"), S),
    "__semctl": (N, N, C, INT("semctlops")),
    "semget": (N, N, C, MASK(_table_mask("semgetflags"))),
    "msgctl": (N, C, INT("shmctlops")),
    "shmat": (N, N, C, MASK(_table_mask("shmatflags"))),
    "shmctl": (N, C, INT("shmctlops")),
    # SYS_freebsd12_shm_open, named compat12.shm_open in the syscall table.
    "compat12.shm_open": (SHM_OPEN(False),),
    "shm_open2": (SHM_OPEN(True),),
    "minherit": (N, N, C, INT("minheritflags")),
    "rfork": (P, MASK(_table_mask("rforkflags")), S),
    "lio_listio": (P, INT("lio_listiomodes"), S),
    "mlockall": (P, MASK(_table_mask("mlockallflags"))),
    "sched_setscheduler": (N, C, INT("schedpolicy")),
    "sched_get_priority_max": (P, INT("schedpolicy")),
    "sched_get_priority_min": (P, INT("schedpolicy")),
    "sendfile": (N, N, N, N, N, N, C, MASK(_table_mask("sendfileflags"))),
    "kldsym": (N, C, INT("kldsymcmd")),
    "sigprocmask": (P, INT("sigprocmaskhow"), S),
    **{f"__acl_{op}_{kind}": _acl
       for op in ("get", "set", "delete", "aclcheck") for kind in ("file", "fd", "link")},
    "sigaction": (P, SIG, S),
    "extattrctl": (N, C, INT("extattrns")),
    "nmount": _mount,
    "thr_create": (N, N, C, MASK(_table_mask("thrcreateflags"))),
    "thr_kill": (N, C, SIG),
    "kldunloadf": (N, C, INT("kldunloadfflags")),
    "linkat": (N, C, ATFD, N),
    "renameat": (N, C, ATFD, N),
    "symlinkat": (N, C, ATFD, N),
    "cap_fcntls_limit": (N, C, MASK(_table_mask("capfcntl"))),
    "posix_fadvise": (N, N, N, C, INT("fadvisebehav")),
    "procctl": (P, INT("idtypes"), S, N64, C, INT("procctlcmd")),
    "_umtx_op": (N, C, UMTX_OP),
    "ftruncate": (N, N64),
    "truncate": (N, N64),
    "fchownat": (N, N, N),
    "fstatat": (N, N),
    "utimensat": (N, N),
    "unlinkat": (N,),
    "sysarch": (P, INT("sysarchnum"), S),
    "getitimer": (P, INT("itimerwhich"), S),
    "setitimer": (P, INT("itimerwhich"), S),
}


def _row(name: str) -> tuple[Op, ...]:
    ops: tuple[Op, ...] = ()
    if name in PASS_A:
        ops += (P, ATFD, S)
    ops += PASS_B.get(name, ())
    if name in PASS_C:
        ops += (C, _atflags)
    return ops


# Every decoded syscall's full template, precomputed so a CALL costs one dict lookup.
ROWS: dict[str, tuple[Op, ...]] = {
    name: _row(name) for name in sorted(PASS_A | PASS_C | PASS_B.keys())
}


# kdump reads past a short record: the rows read zeros there.
_CURSORS = {bits: settings(bits=bits, pad=True) for bits in (32, 64)}


def format_freebsd_args(name: str, args: Sequence[int], *, decimal: bool, ilp32: bool,
                        register_bits: int = 0) -> str:
    """kdump's text after the syscall name for a CALL of a FreeBSD-ABI process, e.g.
    '(AT_FDCWD,0x80104a00c,0x100000<O_RDONLY|O_CLOEXEC>)'; '' when there are no args.

    `register_bits` is the width of the file's argument slots (64 in an amd64 file);
    0 means the process's own width (32 with `ilp32`).  Slots are kdump's
    register_t: 64 bits in an amd64 file even for a freebsd32 process (whose
    arguments the kernel zero-extends), so -d never sees them as negative
    there; ilp32 only decides how 64-bit arguments are split.
    """
    if not args:
        return ""
    cls = _CURSORS.get(register_bits or (32 if ilp32 else 64))
    if cls is None:
        cls = settings(bits=register_bits, pad=True)
    return run(ROWS.get(name, ()), cls(args, decimal, ilp32))
