"""kdump's argument text for a FreeBSD-ABI CALL record (ktrsyscall_freebsd), one table row per syscall."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ktrace_cli.abi import sysdecode as sd
from ktrace_cli.abi.freebsd import signal_name
from ktrace_cli.decode.cfmt import c_hex, c_int32

_U32 = 0xFFFFFFFF


class _State:
    """The running state of kdump's decoder: slots, position and separator.

    A plain class: a dataclass here loaded dataclasses and inspect into
    every pykdump run, a third of its start-up.
    """

    def __init__(self, args: Sequence[int], decimal: bool, ilp32: bool, register_bits: int) -> None:
        self.args, self.decimal, self.ilp32, self.register_bits = args, decimal, ilp32, register_bits
        self.pos = 0
        self.sep = "("
        # Slots are kdump's register_t: 64 bits in an amd64 file even for a freebsd32
        # process (whose arguments the kernel zero-extends), so -d never sees them
        # as negative there; ilp32 only decides how 64-bit arguments are split.
        self.bits = self.register_bits
        self.mask = (1 << self.bits) - 1
        self.out: list[str] = []

    def slot(self, offset: int = 0) -> int:
        """The slot at pos+offset; kdump reads past a short record, we read 0."""
        index = self.pos + offset
        return self.args[index] & self.mask if index < len(self.args) else 0

    def signed(self, value: int) -> int:
        return value - (1 << self.bits) if value >> (self.bits - 1) & 1 else value

    def emit(self, text: str) -> None:
        self.out.append(text)

    def number(self, decimal: bool) -> None:
        """print_number / print_decimal_number: separator, then %#jx or %jd."""
        value = self.slot()
        text = str(self.signed(value)) if decimal else c_hex(value)
        self.emit(self.sep + text)
        self.pos += 1
        self.sep = ","

    def number64(self, decimal: bool) -> None:
        """print_number64: a 64-bit argument, two slots (lo, hi) on ILP32."""
        if self.ilp32:
            value = (self.slot() & _U32) | (self.slot(1) & _U32) << 32
            self.pos += 2
        else:
            value = self.slot()
            self.pos += 1
        if decimal:
            text = str(value - (1 << 64) if value >> 63 else value)
        else:
            text = c_hex(value)
        self.emit(self.sep + text)
        self.sep = ","


Op = Callable[[_State], None]

# -- primitive ops (kdump.h / kdump.c print helpers) ---------------------------------


def N(st: _State) -> None:  # noqa: N802 - kdump's name for the primitive
    st.number(st.decimal)


def D(st: _State) -> None:  # noqa: N802
    st.number(True)


def N64(st: _State) -> None:  # noqa: N802
    st.number64(st.decimal)


def D64(st: _State) -> None:  # noqa: N802
    st.number64(True)


def PID(st: _State) -> None:  # noqa: N802
    """kill/wait4 narrow the slot to pid_t before print_decimal_number."""
    st.emit(st.sep + str(c_int32(st.slot())))
    st.pos += 1
    st.sep = ","


def lit(text: str) -> Op:
    """A literal putchar()/printf() of kdump's template."""
    def op(st: _State) -> None:
        st.emit(text)
    return op


C = lit(",")
P = lit("(")


def S(st: _State) -> None:  # noqa: N802
    """c = ','; the separator after a template that opened with a literal '('."""
    st.sep = ","


def _int_text(name: str | None, value: int, decimal: bool, valid: bool) -> str:
    if name is not None:
        return name
    if valid:
        return str(c_int32(value)) if decimal else c_hex(value & _U32)
    return f"<invalid={c_int32(value)}>" if decimal else f"<invalid={c_hex(value & _U32)}>"


def INT(table: str) -> Op:  # noqa: N802
    """print_integer_arg(): the name, else <invalid=%#x>.

    A table the data file does not carry (a documented subset) prints the bare
    number instead of claiming the value is invalid.
    """
    def op(st: _State) -> None:
        value = st.slot()
        known = table in sd.table_names()
        st.emit(_int_text(sd.table(table).lookup(c_int32(value)), value, st.decimal, not known))
        st.pos += 1
    return op


def INTV(lookup: Callable[[int], str | None]) -> Op:  # noqa: N802
    """print_integer_arg_valid(): the name, else the number."""
    def op(st: _State) -> None:
        value = st.slot()
        st.emit(_int_text(lookup(c_int32(value)), value, st.decimal, True))
        st.pos += 1
    return op


ATFD = INTV(sd.atfd)


def _mask_text(value: int, result: sd.MaskResult) -> str:
    text, printed, rem = result
    return f"{c_hex(value)}<{text}>" + ("" if printed else f"<invalid>{rem & _U32}")


def MASK(decoder: Callable[[int], sd.MaskResult]) -> Op:  # noqa: N802
    """print_mask_arg(): %#x<names>, <invalid>%u when nothing was printed."""
    def op(st: _State) -> None:
        value = st.slot() & _U32
        st.emit(_mask_text(value, decoder(value)))
        st.pos += 1
    return op


def MASK0(decoder: Callable[[int], sd.MaskResult]) -> Op:  # noqa: N802
    """print_mask_arg0(): as MASK, but 0 prints as 0."""
    def op(st: _State) -> None:
        value = st.slot() & _U32
        st.emit("0" if value == 0 else _mask_text(value, decoder(value)))
        st.pos += 1
    return op


def _table_mask(name: str) -> Callable[[int], sd.MaskResult]:
    return lambda value: sd.mask_int(name, value)


def FILEMODE(st: _State) -> None:  # noqa: N802
    """decode_filemode(): 0, or %#o<S_ names>."""
    value = st.slot() & _U32
    if value == 0:
        st.emit("0")
    else:
        text, printed, rem = sd.mask_0("filemode", value)
        st.emit(f"0{value:o}<{text}>" + ("" if printed else f"<invalid>{rem}"))
    st.pos += 1


FILEFLAGS = MASK0(lambda value: sd.mask_0("fileflags", value))


def SIG(st: _State) -> None:  # noqa: N802
    """print_signal(): the FreeBSD signal name, else "SIG %d"."""
    signo = c_int32(st.slot())
    name = signal_name(signo)
    st.emit(name if name is not None else f"SIG {signo}")
    st.pos += 1


def IOCTL(st: _State) -> None:  # noqa: N802
    """ioctlname(): the ioctl's name, else %#lx (%lu with -d) of the whole slot."""
    value = st.slot()
    name = sd.ioctlname(value)
    st.emit(name if name is not None else (str(value) if st.decimal else c_hex(value)))
    st.pos += 1


# -- ops for the syscalls whose templates branch on an argument ----------------------


def OPEN_FLAGS_MODE(st: _State) -> None:  # noqa: N802
    """open/openat: the flags; the mode only with O_CREAT; both slots consumed."""
    flags = st.slot()
    st.emit(_mask_text(flags & _U32, sd.open_flags(flags)))
    st.pos += 1
    if flags & 0x200:  # O_CREAT
        st.emit(",")
        FILEMODE(st)
    else:
        st.pos += 1


def FCNTL_CMD_ARG(st: _State) -> None:  # noqa: N802
    """fcntl: the command, and its argument unless the command takes none."""
    cmd, arg = st.slot(), st.slot(1)
    st.emit(_int_text(sd.table("fcntlcmd").lookup(c_int32(cmd)), cmd, st.decimal, False))
    if c_int32(cmd) not in (1, 3, 5):  # F_GETFD, F_GETFL, F_GETOWN
        st.emit(",")
        if cmd == 4:  # F_SETFL
            st.emit(_mask_text(arg & _U32, sd.fcntl_fileflags(arg)))
        else:
            st.emit(sd.fcntl_arg(c_int32(cmd), arg, st.decimal))
    st.pos += 2


def SOCKET_PROTO(st: _State) -> None:  # noqa: N802
    """socket: the protocol is decoded only for PF_INET and PF_INET6."""
    if c_int32(st.slot(-2)) in (2, 28):
        st.emit(",")
        INT("sockipproto")(st)


def SOCKOPT_NAME(st: _State) -> None:  # noqa: N802
    """[gs]etsockopt: the option name when the level's table knows it."""
    level, optname = st.slot(-1), st.slot()
    name = sd.sockopt_name(c_int32(level), c_int32(optname))
    if name is not None:
        st.emit("," + name)
        st.pos += 1


def SHM_OPEN(with_shmflags: bool) -> Op:  # noqa: N802
    """shm_open2 / compat12.shm_open: path (SHM_ANON for the pointer 1), flags, mode
    and, for shm_open2, the shm flags.

    kdump's SHM_ANON branch prints "(SHM_ANON" and steps past the path slot without
    counting it or setting the separator, so its trailing print_number loop starts
    with '(' and prints one slot past the end of the record (0 here; stale bytes of
    kdump's buffer there).
    """
    fixed = 3 if with_shmflags else 2

    def op(st: _State) -> None:
        anon = st.slot() == 1
        if anon:
            st.emit("(SHM_ANON")
            st.pos += 1
        else:
            N(st)
        st.emit(",")
        MASK(sd.open_flags)(st)
        st.emit(",")
        FILEMODE(st)
        if with_shmflags:
            st.emit(",")
            MASK(lambda value: sd.mask_0("shmflags", value))(st)
        if anon:
            for _ in range(len(st.args) - fixed):
                st.number(st.decimal)
    return op


def QUOTACTL_CMD(st: _State) -> None:  # noqa: N802
    value = st.slot()
    text = sd.quotactl_cmd(value)
    if text is None:
        text = f"<invalid={c_int32(value)}>" if st.decimal else f"<invalid={c_hex(value & _U32)}>"
    st.emit(text)
    st.pos += 1


def UMTX_OP(st: _State) -> None:  # noqa: N802
    """_umtx_op: %#x<flags|op>, plus the CV_WAIT / RW_RDLOCK flag word."""
    value = st.slot()
    text, printed, op = sd.umtx_op_flags(value)
    name = sd.table("umtxop").lookup(c_int32(op))
    st.emit(f"{c_hex(value & _U32)}<{text}{'|' if printed else ''}"
            f"{_int_text(name, op, st.decimal, False)}>")
    extra = {8: "umtxcvwaitflags", 12: "umtxrwlockflags"}.get(value)
    if extra is not None:
        st.pos += 1
        flags = st.slot()
        if flags == 0:
            st.emit(",0")
        else:
            text, printed, rem = sd.mask_0ul(extra, flags)
            st.emit(f",{c_hex(flags)}<{text}>" + ("" if printed else f"<invalid>{rem}"))
    st.pos += 1


def CLOSE_RANGE_FLAGS(st: _State) -> None:  # noqa: N802
    """close_range: kdump steps ip by 3 here, past every slot, so nothing trails."""
    MASK0(lambda value: sd.mask_int("closerangeflags", value))(st)
    st.pos += 2


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


def format_freebsd_args(name: str, args: Sequence[int], *, decimal: bool, ilp32: bool,
                        register_bits: int = 0) -> str:
    """kdump's text after the syscall name for a CALL of a FreeBSD-ABI process, e.g.
    '(AT_FDCWD,0x80104a00c,0x100000<O_RDONLY|O_CLOEXEC>)'; '' when there are no args.

    `register_bits` is the width of the file's argument slots (64 in an amd64 file);
    0 means the process's own width (32 with `ilp32`).
    """
    if not args:
        return ""
    st = _State(args, decimal, ilp32, register_bits or (32 if ilp32 else 64))
    for op in ROWS.get(name, ()):
        op(st)
    while st.pos < len(args):
        st.number(decimal)
    st.emit(")")
    return "".join(st.out)
