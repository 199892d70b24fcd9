"""Records and their typed payloads, with symmetric pack and unpack.

The classes are plain __slots__ classes over value.Fields rather than
dataclasses: building eighteen dataclasses was most of pykdump's start-up
cost for this module.

A `Record` is one header plus its raw payload bytes, exactly as stored.  The
payload classes give the payload its FreeBSD fields; `unpack_payload` picks
the class by record type.  `pack()` of a payload followed by `unpack()` gives
back an equal payload (round-trip tested for every type).
"""

from __future__ import annotations

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import CSW_NEW, CSW_OLD, EXTERR, FAULTEND, PROCCTOR, Arch
from ktrace_cli.value import Fields


class PayloadError(ValueError):
    """A payload too short or too long for its fixed layout."""


class Record(Fields):
    """One trace record: the header fields and the raw payload."""

    __slots__ = ("type", "pid", "tid", "comm", "sec", "frac", "payload", "version", "cpu", "drop")
    type: int  # record type, flag bits removed
    pid: int
    tid: int
    comm: bytes  # the 20-byte ktr_comm field (NUL-padded)
    sec: int
    frac: int  # microseconds in a v0 header, nanoseconds in a v1 header
    payload: bytes
    version: int
    cpu: int  # meaningful only when version != 0
    drop: bool

    def __init__(self, type: int, pid: int, tid: int, comm: bytes, sec: int, frac: int, payload: bytes,
                 version: int = K.KTR_VERSION1, cpu: int = 0, drop: bool = False) -> None:
        self.type = type
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.sec = sec
        self.frac = frac
        self.payload = payload
        self.version = version
        self.cpu = cpu
        self.drop = drop

    @property
    def comm_name(self) -> bytes:
        """ktr_comm up to its first NUL, at most MAXCOMLEN bytes (as kdump prints it)."""
        return self.comm.split(b"\0", 1)[0][: K.MAXCOMLEN]

    @property
    def nsec(self) -> int:
        return self.frac if self.version else self.frac * 1000


def comm_field(name: bytes | str) -> bytes:
    """A thread name as the kernel stores it: at most 19 bytes, NUL-padded to 20."""
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    return name[: K.MAXCOMLEN].ljust(K.MAXCOMLEN + 1, b"\0")


def _need(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise PayloadError(f"{what} payload of {len(buf)} bytes, need {size}")


class Syscall(Fields):
    __slots__ = ("code", "args")
    code: int
    args: tuple[int, ...]  # unsigned register_t slots

    def __init__(self, code: int, args: tuple[int, ...]) -> None:
        self.code = code
        self.args = args

    def pack(self, arch: Arch) -> bytes:
        return arch.syscall_fixed.pack(self.code, len(self.args)) + arch.args_struct(
            len(self.args)
        ).pack(*self.args)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Syscall:
        fixed = arch.syscall_fixed
        _need(buf, fixed.size, "SYSCALL")
        code, narg = fixed.unpack_from(buf)
        if narg < 0:
            raise PayloadError(f"SYSCALL with narg {narg}")
        _need(buf, fixed.size + narg * arch.word, "SYSCALL")
        return cls(code, arch.args_struct(narg).unpack_from(buf, fixed.size))


class Sysret(Fields):
    __slots__ = ("code", "error", "retval", "eosys")
    code: int
    error: int
    retval: int  # signed register_t
    eosys: int

    def __init__(self, code: int, error: int, retval: int, eosys: int = 0) -> None:
        self.code = code
        self.error = error
        self.retval = retval
        self.eosys = eosys

    def pack(self, arch: Arch) -> bytes:
        return arch.sysret.pack(self.code, self.eosys, self.error, self.retval)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Sysret:
        _need(buf, arch.sysret.size, "SYSRET")
        code, eosys, error, retval = arch.sysret.unpack_from(buf)
        return cls(code, error, retval, eosys)


class Namei(Fields):
    __slots__ = ("path",)
    path: bytes

    def __init__(self, path: bytes) -> None:
        self.path = path

    def pack(self, arch: Arch) -> bytes:
        return self.path

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Namei:
        return cls(bytes(buf))


class Genio(Fields):
    __slots__ = ("fd", "rw", "data")
    fd: int
    rw: int  # UIO_READ 0, UIO_WRITE 1
    data: bytes

    def __init__(self, fd: int, rw: int, data: bytes) -> None:
        self.fd = fd
        self.rw = rw
        self.data = data

    def pack(self, arch: Arch) -> bytes:
        return arch.genio_fixed.pack(self.fd, self.rw) + self.data

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Genio:
        fixed = arch.genio_fixed
        _need(buf, fixed.size, "GENIO")
        fd, rw = fixed.unpack_from(buf)
        return cls(fd, rw, bytes(buf[fixed.size :]))


class Psig(Fields):
    __slots__ = ("signo", "action", "code", "mask")
    signo: int
    action: int  # handler address; SIG_DFL 0, SIG_IGN 1
    code: int
    mask: tuple[int, int, int, int]

    def __init__(self, signo: int, action: int, code: int,
                 mask: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        self.signo = signo
        self.action = action
        self.code = code
        self.mask = mask

    def pack(self, arch: Arch) -> bytes:
        return arch.psig.pack(self.signo, self.action, self.code, *self.mask)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Psig:
        _need(buf, arch.psig.size, "PSIG")
        signo, action, code, m0, m1, m2, m3 = arch.psig.unpack_from(buf)
        return cls(signo, action, code, (m0, m1, m2, m3))


class Csw(Fields):
    __slots__ = ("out", "user", "wmesg")
    out: int  # 1 switching out, 0 switching in
    user: int  # 1 user preemption, 0 kernel sleep
    wmesg: bytes | None  # None selects the old 8-byte layout

    def __init__(self, out: int, user: int, wmesg: bytes | None = None) -> None:
        self.out = out
        self.user = user
        self.wmesg = wmesg

    def pack(self, arch: Arch) -> bytes:
        if self.wmesg is None:
            return CSW_OLD.pack(self.out, self.user)
        return CSW_NEW.pack(self.out, self.user, self.wmesg[:7])

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Csw:
        if len(buf) == CSW_OLD.size:
            out, user = CSW_OLD.unpack_from(buf)
            return cls(out, user, None)
        _need(buf, CSW_NEW.size, "CSW")
        out, user, wmesg = CSW_NEW.unpack_from(buf)
        return cls(out, user, wmesg.split(b"\0", 1)[0])


class User(Fields):
    __slots__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        self.data = data

    def pack(self, arch: Arch) -> bytes:
        return self.data

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> User:
        return cls(bytes(buf))


class Struct(Fields):
    """KTR_STRUCT: a NUL-terminated structure name, then the structure bytes."""

    __slots__ = ("name", "data")
    name: bytes
    data: bytes

    def __init__(self, name: bytes, data: bytes) -> None:
        self.name = name
        self.data = data

    def pack(self, arch: Arch) -> bytes:
        return self.name + b"\0" + self.data

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Struct:
        nul = buf.find(b"\0")
        if nul < 0:
            raise PayloadError("STRUCT without a NUL-terminated name")
        return cls(bytes(buf[:nul]), bytes(buf[nul + 1 :]))


class Sysctl(Fields):
    __slots__ = ("name",)
    name: bytes  # without the terminating NUL the record carries

    def __init__(self, name: bytes) -> None:
        self.name = name

    def pack(self, arch: Arch) -> bytes:
        return self.name + b"\0"

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Sysctl:
        return cls(bytes(buf).split(b"\0", 1)[0])


class ProcCtor(Fields):
    __slots__ = ("sv_flags",)
    sv_flags: int

    def __init__(self, sv_flags: int) -> None:
        self.sv_flags = sv_flags

    def pack(self, arch: Arch) -> bytes:
        return PROCCTOR.pack(self.sv_flags)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> ProcCtor:
        _need(buf, PROCCTOR.size, "PROCCTOR")
        return cls(PROCCTOR.unpack_from(buf)[0])


class ProcDtor(Fields):
    __slots__ = ()

    def pack(self, arch: Arch) -> bytes:
        return b""

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> ProcDtor:
        return cls()


class CapFail(Fields):
    """KTR_CAPFAIL in either layout: `new` selects the 2024+ 1040-byte form."""

    __slots__ = ("cap_type", "new", "cap_code", "cap_svflags", "cap_data")
    cap_type: int
    new: bool
    cap_code: int
    cap_svflags: int
    cap_data: bytes  # 1024-byte union (new) or needed+held rights (old, 32 bytes)

    def __init__(self, cap_type: int, new: bool = True, cap_code: int = 0, cap_svflags: int = 0,
                 cap_data: bytes = b"") -> None:
        self.cap_type = cap_type
        self.new = new
        self.cap_code = cap_code
        self.cap_svflags = cap_svflags
        self.cap_data = cap_data

    def pack(self, arch: Arch) -> bytes:
        if self.new:
            return arch.capfail_new.pack(
                self.cap_type, self.cap_code, self.cap_svflags, self.cap_data.ljust(1024, b"\0")
            )
        data = self.cap_data.ljust(32, b"\0")
        return arch.capfail_old.pack(self.cap_type, data[:16], data[16:32])

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> CapFail:
        if len(buf) == arch.capfail_old.size:
            cap_type, needed, held = arch.capfail_old.unpack_from(buf)
            return cls(cap_type, False, 0, 0, needed + held)
        _need(buf, arch.capfail_new.size, "CAPFAIL")
        cap_type, code, svflags, data = arch.capfail_new.unpack_from(buf)
        return cls(cap_type, True, code, svflags, data)


class Fault(Fields):
    __slots__ = ("vaddr", "type")
    vaddr: int
    type: int

    def __init__(self, vaddr: int, type: int) -> None:
        self.vaddr = vaddr
        self.type = type

    def pack(self, arch: Arch) -> bytes:
        return arch.fault.pack(self.vaddr, self.type)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Fault:
        _need(buf, arch.fault.size, "FAULT")
        return cls(*arch.fault.unpack_from(buf))


class FaultEnd(Fields):
    __slots__ = ("result",)
    result: int

    def __init__(self, result: int) -> None:
        self.result = result

    def pack(self, arch: Arch) -> bytes:
        return FAULTEND.pack(self.result)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> FaultEnd:
        _need(buf, FAULTEND.size, "FAULTEND")
        return cls(FAULTEND.unpack_from(buf)[0])


class StructArray(Fields):
    __slots__ = ("struct_size", "name", "data")
    struct_size: int
    name: bytes
    data: bytes

    def __init__(self, struct_size: int, name: bytes, data: bytes) -> None:
        self.struct_size = struct_size
        self.name = name
        self.data = data

    def pack(self, arch: Arch) -> bytes:
        return arch.struct_array_fixed.pack(self.struct_size) + self.name + b"\0" + self.data

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> StructArray:
        fixed = arch.struct_array_fixed
        _need(buf, fixed.size, "STRUCT_ARRAY")
        (size,) = fixed.unpack_from(buf)
        nul = buf.find(b"\0", fixed.size)
        if nul < 0:
            raise PayloadError("STRUCT_ARRAY without a NUL-terminated name")
        return cls(size, bytes(buf[fixed.size : nul]), bytes(buf[nul + 1 :]))


class Strings(Fields):
    """KTR_ARGS / KTR_ENVS: NUL-terminated strings back to back."""

    __slots__ = ("strings",)
    strings: list[bytes]

    def __init__(self, strings: list[bytes] | None = None) -> None:
        self.strings = [] if strings is None else strings

    def pack(self, arch: Arch) -> bytes:
        return b"".join(s + b"\0" for s in self.strings)

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Strings:
        parts = bytes(buf).split(b"\0")
        if parts and parts[-1] == b"":
            parts.pop()
        return cls(parts)


class Exterr(Fields):
    __slots__ = ("ver", "error", "cat", "src_line", "flags", "p1", "p2", "msg")
    ver: int
    error: int
    cat: int
    src_line: int
    flags: int
    p1: int
    p2: int
    msg: bytes

    def __init__(self, ver: int, error: int, cat: int, src_line: int, flags: int, p1: int, p2: int,
                 msg: bytes) -> None:
        self.ver = ver
        self.error = error
        self.cat = cat
        self.src_line = src_line
        self.flags = flags
        self.p1 = p1
        self.p2 = p2
        self.msg = msg

    def pack(self, arch: Arch) -> bytes:
        return EXTERR.pack(
            self.ver, self.error, self.cat, self.src_line, self.flags, 0,
            self.p1, self.p2, 0, 0, 0, 0, self.msg[:127],
        )  # fmt: skip

    @classmethod
    def unpack(cls, arch: Arch, buf: bytes) -> Exterr:
        _need(buf, EXTERR.size, "EXTERR")
        v = EXTERR.unpack_from(buf)
        return cls(v[0], v[1], v[2], v[3], v[4], v[6], v[7], v[12].split(b"\0", 1)[0])


Payload = (
    Syscall | Sysret | Namei | Genio | Psig | Csw | User | Struct | Sysctl | ProcCtor
    | ProcDtor | CapFail | Fault | FaultEnd | StructArray | Strings | Exterr
)  # fmt: skip

PAYLOAD_CLASSES: dict[int, type] = {
    K.KTR_SYSCALL: Syscall,
    K.KTR_SYSRET: Sysret,
    K.KTR_NAMEI: Namei,
    K.KTR_GENIO: Genio,
    K.KTR_PSIG: Psig,
    K.KTR_CSW: Csw,
    K.KTR_USER: User,
    K.KTR_STRUCT: Struct,
    K.KTR_SYSCTL: Sysctl,
    K.KTR_PROCCTOR: ProcCtor,
    K.KTR_PROCDTOR: ProcDtor,
    K.KTR_CAPFAIL: CapFail,
    K.KTR_FAULT: Fault,
    K.KTR_FAULTEND: FaultEnd,
    K.KTR_STRUCT_ARRAY: StructArray,
    K.KTR_ARGS: Strings,
    K.KTR_ENVS: Strings,
    K.KTR_EXTERR: Exterr,
}

PAYLOAD_TYPES: dict[type, int] = {
    cls: t for t, cls in PAYLOAD_CLASSES.items() if t != K.KTR_ENVS
}


def unpack_payload(arch: Arch, rtype: int, buf: bytes) -> Payload:
    """The typed payload of a record; PayloadError if its bytes do not fit."""
    cls = PAYLOAD_CLASSES.get(rtype)
    if cls is None:
        raise PayloadError(f"unknown record type {rtype}")
    payload: Payload = cls.unpack(arch, buf)  # type: ignore[attr-defined]
    return payload
