"""The records beyond CALL/RET: NAMI, GIO, STRU, SCTL, USER and CSW, read from the stopped tracee."""

from __future__ import annotations

import struct

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import FDPAIR, FDPAIR_PIPE, FDPAIR_SOCKET
from ktrace_cli.format.writer import GENIO_FIXED, csw
from ktrace_cli.trace import convert, procfs, sigsets
from ktrace_cli.trace import rules as R
from ktrace_cli.trace.tracee import Thread

# The `u` convention: prctl(UTRACE_PRCTL, addr, len, 0, 0) is a harmless
# EINVAL for the kernel; the engine records the bytes as a KTR_USER record.
UTRACE_PRCTL = 0x6B747275  # "ktru"
PR_SET_NAME = 15
PR_SET_SECCOMP = 22
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_FILTER = 2

_U32 = struct.Struct("<I")
_FDS = struct.Struct("<ii")  # the int[2] pipe, pipe2 and socketpair fill
_U64x2 = struct.Struct("<QQ")
_MSGHDR_IOV = struct.Struct("<QQ")  # msg_iov, msg_iovlen at offset 16 of struct msghdr
_MMSGHDR_SIZE = 64
_NAMEI_PREFIX_SYSCTL = b"/proc/sys/"
# ARGS and ENVS hold at most this many bytes each (strings and their NULs),
# FreeBSD's historical ARG_MAX for its whole exec argument area; Linux lets
# argv and envp together reach a quarter of the stack limit (2 MiB by
# default), so a larger vector is recorded up to its last string that fits.
EXEC_VECTOR_MAX = 256 * 1024
# Where argv and envp are among the arguments of execve and execveat.
_EXEC_VECTORS = {"execve": (1, 2), "execveat": (2, 3)}


def entry_records(t: Thread, rule: R.SyscallRule, args: tuple[int, ...], ns: int) -> None:
    """Records a syscall produces at entry, after its CALL."""
    p = t.proc
    tf = p.file
    if tf is None:
        return
    facs = p.facs
    pid, tid, comm = p.tgid, t.tid, t.comm
    if rule.special == R.SPECIAL_EXEC and facs & (K.KTRFAC_ARGS | K.KTRFAC_ENVS):
        # As FreeBSD's kern_execve() logs them: after the CALL, before the
        # exec looks its path up.
        argv, envp = _EXEC_VECTORS.get(rule.name, (1, 2))
        if facs & K.KTRFAC_ARGS:
            tf.record(K.KTR_ARGS, pid, tid, comm, ns,
                      p.mem.read_strings(args[argv], EXEC_VECTOR_MAX, rule.ptr))  # fmt: skip
        if facs & K.KTRFAC_ENVS:
            tf.record(K.KTR_ENVS, pid, tid, comm, ns,
                      p.mem.read_strings(args[envp], EXEC_VECTOR_MAX, rule.ptr))  # fmt: skip
    if rule.paths and facs & (K.KTRFAC_NAMEI | K.KTRFAC_SYSCTL):
        for i in rule.paths:
            path = p.mem.read_path(args[i])
            if not path:
                continue  # "" (AT_EMPTY_PATH): no name is looked up
            if facs & K.KTRFAC_NAMEI:
                tf.record(K.KTR_NAMEI, pid, tid, comm, ns, path)
            if (
                facs & K.KTRFAC_SYSCTL
                and rule.special == R.SPECIAL_OPEN
                and path.startswith(_NAMEI_PREFIX_SYSCTL)
            ):
                name = path[len(_NAMEI_PREFIX_SYSCTL) :].strip(b"/").replace(b"/", b".")
                tf.record(K.KTR_SYSCTL, pid, tid, comm, ns, name + b"\0")
    if rule.stru and facs & K.KTRFAC_STRUCT:
        if rule.stru == R.STRU_SOCKADDR_IN:
            addr, alen = args[rule.stru_arg], args[rule.stru_arg + 1]
            if addr and 0 < alen <= 4096:
                sa = convert.sockaddr_from_linux(p.mem.read(addr, alen))
                if sa is not None:
                    tf.record(K.KTR_STRUCT, pid, tid, comm, ns, b"sockaddr\0" + sa)
        elif rule.stru == R.STRU_ITIMERVAL and rule.name == "setitimer":
            data = p.mem.read(args[1], 32)
            if len(data) == 32:
                tf.record(K.KTR_STRUCT, pid, tid, comm, ns, b"itimerval\0" + data)
        elif rule.stru == R.STRU_SIGSET:
            stru = sigsets.entry_payload(rule.name, args, p.mem, rule.ptr)
            if stru is not None:
                tf.record(K.KTR_STRUCT, pid, tid, comm, ns, stru)
    if rule.special == R.SPECIAL_PRCTL and args[0] == UTRACE_PRCTL and facs & K.KTRFAC_USER:
        length = args[2]
        if 0 < length <= K.KTR_USER_MAXLEN:
            data = p.mem.read(args[1], length)
            if len(data) == length:
                tf.record(K.KTR_USER, pid, tid, comm, ns, data)
    if facs & K.KTRFAC_CSW:
        t.nvcsw = t.read_nvcsw()


def exit_records(
    t: Thread, rule: R.SyscallRule, args: tuple[int, ...], rval: int, error: bool, ns: int
) -> None:
    """Records a syscall produces before its RET: CSW, GIO and STRU."""
    p = t.proc
    tf = p.file
    if tf is None:
        return
    facs = p.facs
    pid, tid, comm = p.tgid, t.tid, t.comm
    if facs & K.KTRFAC_CSW and t.nvcsw >= 0:
        # The entry stop was already counted when we read it; the exit stop
        # adds one more; anything beyond means the thread slept in the call.
        now = t.read_nvcsw()
        if now - t.nvcsw >= 2:
            wmesg = rule.name.encode()[:7]
            tf.record(K.KTR_CSW, pid, tid, comm, t.entry_ns, csw(1, wmesg))
            tf.record(K.KTR_CSW, pid, tid, comm, ns, csw(0, wmesg))
        t.nvcsw = -1
    if error:
        return
    if rule.gio and facs & K.KTRFAC_GENIO and rval > 0:
        _genio(t, rule, args, rval, ns)
    if rule.stru and facs & K.KTRFAC_STRUCT:
        _stru_exit(t, rule, args, ns)


def _genio(t: Thread, rule: R.SyscallRule, args: tuple[int, ...], rval: int, ns: int) -> None:
    p = t.proc
    tf = p.file
    assert tf is not None
    cap = tf.genio_size
    mem = p.mem
    fd = args[0] & 0xFFFFFFFF
    if fd >= 0x80000000:
        fd -= 0x100000000
    chunks: list[bytes] = []
    if rule.gio == R.GIO_BUF:
        chunks.append(mem.read(args[1], min(rval, cap)))
    elif rule.gio == R.GIO_IOV:
        chunks.append(mem.read_iov(args[1], args[2], min(rval, cap)))
    elif rule.gio == R.GIO_MSG:
        hdr = mem.read(args[1] + 16, 16)
        if len(hdr) == 16:
            iov, iovlen = _MSGHDR_IOV.unpack(hdr)
            chunks.append(mem.read_iov(iov, iovlen, min(rval, cap)))
    elif rule.gio == R.GIO_MMSG:
        vec = mem.read(args[1], _MMSGHDR_SIZE * min(rval, 1024))
        for off in range(0, len(vec) - _MMSGHDR_SIZE + 1, _MMSGHDR_SIZE):
            iov, iovlen = _MSGHDR_IOV.unpack_from(vec, off + 16)
            (msg_len,) = _U32.unpack_from(vec, off + 56)
            if msg_len:
                chunks.append(mem.read_iov(iov, iovlen, min(msg_len, cap)))
    for data in chunks:
        if data:
            tf.record(K.KTR_GENIO, p.tgid, t.tid, t.comm, ns,
                      GENIO_FIXED(fd, rule.gio_rw) + data)  # fmt: skip


def _stru_exit(t: Thread, rule: R.SyscallRule, args: tuple[int, ...], ns: int) -> None:
    p = t.proc
    tf = p.file
    assert tf is not None
    mem = p.mem
    kind = rule.stru
    out: bytes | None = None
    name = b""
    if kind == R.STRU_STAT:
        out = convert.stat_from_linux(mem.read(args[rule.stru_arg], convert.LINUX_STAT.size))
        name = b"stat"
    elif kind == R.STRU_STATX:
        out = convert.stat_from_statx(mem.read(args[rule.stru_arg], convert.STATX.size))
        name = b"stat"
    elif kind == R.STRU_SOCKADDR_OUT:
        addr, lenp = args[rule.stru_arg], args[rule.stru_arg + 1]
        if addr and lenp:
            raw_len = mem.read(lenp, 4)
            if len(raw_len) == 4:
                (alen,) = _U32.unpack(raw_len)
                if 0 < alen <= 4096:
                    out = convert.sockaddr_from_linux(mem.read(addr, alen))
                    name = b"sockaddr"
    elif kind == R.STRU_ITIMERVAL:
        where = args[2] if rule.name == "setitimer" else args[1]
        if where:
            data = mem.read(where, 32)
            if len(data) == 32:
                out, name = data, b"itimerval"
    elif kind == R.STRU_SIGSET:
        stru = sigsets.exit_payload(rule.name, args, mem, rule.ptr)
        if stru is not None:
            tf.record(K.KTR_STRUCT, p.tgid, t.tid, t.comm, ns, stru)
    elif kind == R.STRU_FDPAIR:
        out, name = _fdpair(t, rule, args), b"fdpair"
    if out is not None:
        tf.record(K.KTR_STRUCT, p.tgid, t.tid, t.comm, ns, name + b"\0" + out)


def _fdpair(t: Thread, rule: R.SyscallRule, args: tuple[int, ...]) -> bytes | None:
    """Our STRU `fdpair` (docs/FORMAT.md): the two descriptors the call wrote, named as /proc names them.

    Read at the exit stop, before the tracee can close or reuse them.
    """
    raw = t.proc.mem.read(args[rule.stru_arg], _FDS.size)
    if len(raw) != _FDS.size:
        return None
    fds = _FDS.unpack(raw)
    if rule.name == "socketpair":
        kind, family, what = FDPAIR_SOCKET, convert.FAMILY_TO_FREEBSD.get(args[0] & 0xFFFFFFFF, 0), b"socket"
    else:
        kind, family, what = FDPAIR_PIPE, 0, b"pipe"
    inodes = [procfs.fd_inode(t.proc.tgid, fd, what) if fd >= 0 else 0 for fd in fds]
    return FDPAIR.pack(*fds, kind, family, *inodes)
