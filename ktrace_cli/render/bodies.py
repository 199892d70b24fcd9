"""The text after the type tag of each kdump line, one function per record type."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

from ktrace_cli.abi import freebsd
from ktrace_cli.decode import abi as A
from ktrace_cli.decode.cfmt import c_hex, c_ptr, c_string
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import (
    CapFail,
    Csw,
    Exterr,
    Fault,
    FaultEnd,
    Genio,
    Namei,
    Psig,
    Strings,
    Struct,
    StructArray,
    Syscall,
    Sysctl,
    Sysret,
    User,
)  # fmt: skip
from ktrace_cli.render.dump import gio_data
from ktrace_cli.render.options import KdumpOptions

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    import re
    from typing import Any, Literal


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


ArgsFormatter = Callable[..., str]


class SyscallText:
    """CALL and RET bodies: names from the process ABI, arguments per kdump."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self.bits = arch.word * 8
        self.mask = (1 << self.bits) - 1
        self._names: dict[tuple[A.Abi, int], tuple[str, str | None]] = {}
        self._decoders: dict[int, Callable[[str, Sequence[int]], str] | Literal[False]] = {}

    def _args_formatter(self, abi: A.Abi) -> ArgsFormatter | None:
        # Each ABI's printer is imported when a process of that ABI first
        # needs it: a FreeBSD trace never loads the Linux tables.
        if abi is A.Abi.FREEBSD:
            from ktrace_cli.decode.freebsd_args import format_freebsd_args

            return format_freebsd_args
        if abi is A.Abi.LINUX or abi is A.Abi.LINUX32:
            from ktrace_cli.decode.linux_calls import format_linux_args

            return format_linux_args
        return None

    def name(self, abi: A.Abi, code: int) -> tuple[str, str | None]:
        """(what kdump prints for the syscall, the bare name or None)."""
        key = (abi, code)
        names = self._names.get(key)
        if names is None:
            if len(self._names) > 65536:
                self._names.clear()  # hostile files: any number of distinct codes
            names = self._names[key] = self._name(abi, code)
        return names

    def _name(self, abi: A.Abi, code: int) -> tuple[str, str | None]:
        name = A.syscall_name(abi, code) if code >= 0 else None
        if name is None:
            return f"[{code}]", None
        if self.o.syscall_numbers:
            return f"{name}[{code}]", name
        return name, name

    def _decoder(self, abi: A.Abi, sv_flags: int) -> Callable[[str, Sequence[int]], str] | Literal[False]:
        """The argument printer for a process's sv_flags, False for raw numbers."""
        if not self.o.fancy or sv_flags & K.SV_ABI_MASK not in (K.SV_ABI_FREEBSD, K.SV_ABI_LINUX):
            return False
        formatter = self._args_formatter(abi)
        if formatter is None:
            return False
        decimal = self.o.decimal
        ilp32 = bool(sv_flags & K.SV_ILP32) or self.arch.word == 4
        if abi is A.Abi.FREEBSD:  # slots are the file's register_t, not the process's
            return functools.partial(formatter, decimal=decimal, ilp32=ilp32, register_bits=self.bits)
        return functools.partial(formatter, decimal=decimal, ilp32=ilp32)

    def raw_args(self, args: Sequence[int], start: str = "(") -> str:
        if self.o.decimal:
            bits = self.bits
            return start + ",".join(str(_signed(a, bits)) for a in args) + ")"
        return start + ",".join(f"{a:#x}" if a else "0" for a in args) + ")"

    def call(self, p: Syscall, abi: A.Abi, sv_flags: int) -> str:
        shown, name = self.name(abi, p.code)
        args = p.args
        if not args:
            return shown + "\n"
        if name is not None:
            decode = self._decoders.get(sv_flags)
            if decode is None:
                decode = self._decoders[sv_flags] = self._decoder(abi, sv_flags)
            if decode is not False:
                return shown + decode(name, args) + "\n"
        return shown + self.raw_args(args) + "\n"

    def ret(self, p: Sysret, abi: A.Abi, sv_flags: int = 0) -> str:
        shown, _ = self.name(abi, p.code)
        return f"{shown} {self.ret_value(p, abi)}\n"

    def ret_value(self, p: Sysret, abi: A.Abi) -> str:
        """What kdump prints after the syscall name on a RET line."""
        o = self.o
        error = p.error
        retval = p.retval
        if error == 0:
            if o.fancy:
                value = str(retval)
                if retval < 0 or retval > 9:
                    value += "/" + c_hex(retval & self.mask)
            elif o.decimal:
                value = str(retval)
            else:
                value = c_hex(retval & self.mask)
        elif error == K.ERESTART:
            value = "RESTART"
        elif error == K.EJUSTRETURN:
            value = "JUSTRETURN"
        else:
            info = A.error_info(abi, error)
            value = f"-1 errno {info.number}"
            if o.fancy:
                value += " " + info.text
        return value


def namei(p: Namei | Sysctl) -> str:
    """NAMI and SCTL: the bytes up to the first NUL, in double quotes."""
    raw = p.path if isinstance(p, Namei) else p.name
    return '"' + raw.split(b"\0", 1)[0].decode("latin-1") + '"\n'


def _namei_body(p: Namei, abi: A.Abi, sv_flags: int) -> str:
    return '"' + p.path.split(b"\0", 1)[0].decode("latin-1") + '"\n'


def genio(p: Genio, o: KdumpOptions) -> str:
    data = p.data
    datalen = len(data)
    line = f"fd {p.fd} {'read' if p.rw == K.UIO_READ else 'wrote'} {datalen} byte{'' if datalen == 1 else 's'}\n"
    if o.suppress_data:
        return line
    shown = datalen
    if o.maxdata > 0 and datalen > o.maxdata:
        shown = o.maxdata
    lookahead = data[shown] if shown < datalen else 0
    return line + gio_data(data[:shown], lookahead, o.screenwidth)


def psig(p: Psig, abi: A.Abi) -> str:
    signo = p.signo
    action = p.action
    text = A.signal_name(abi, signo)
    if action == 0:
        text += " SIG_DFL"
    else:
        if abi is A.Abi.LINUX or abi is A.Abi.LINUX32:
            from ktrace_cli.abi import linux

            mask = linux.linux_sigmask_from_freebsd(p.mask)
        else:
            mask = p.mask[0]
        text += f" caught handler=0x{action:x} mask=0x{mask:x}"
    name = A.sigcode_name(abi, signo, p.code)
    text += " code=" + (name if name is not None else f"<invalid={c_hex(p.code & 0xFFFFFFFF)}>")
    return text + "\n"


def csw(p: Csw) -> str:
    head = f"{'stop' if p.out else 'resume'} {'user' if p.user else 'kernel'}"
    if p.wmesg is None:
        return head + "\n"
    return f'{head} "{p.wmesg.decode("latin-1")}"\n'


# -- USER: the utrace(2) payloads libsysdecode recognises ---------------------

_RTLD64 = struct.Struct("<4siQQQi1024s4x")
_RTLD32 = struct.Struct("<4siIIIi1024s")
_MALLOC64 = struct.Struct("<QQQ")
_MALLOC32 = struct.Struct("<III")
assert _RTLD64.size == 1064 and _RTLD32.size == 1048

RTLD_MODEMASK, RTLD_LAZY, RTLD_NOW, RTLD_GLOBAL, RTLD_TRACE = 3, 1, 2, 0x100, 0x200


def _utrace_rtld(fields: tuple[int | bytes, ...], word_mask: int) -> str | None:
    _sig, event, handle, mapbase, mapsize, refcnt, raw_name = fields
    assert isinstance(event, int) and isinstance(handle, int) and isinstance(mapbase, int)
    assert isinstance(mapsize, int) and isinstance(refcnt, int) and isinstance(raw_name, bytes)
    name = c_string(raw_name)
    last = c_ptr((mapbase + mapsize - 1) & word_mask)
    if event == 1:
        mode = refcnt
        kind = mode & RTLD_MODEMASK
        text = f"dlopen({name}, " + (
            "RTLD_NOW" if kind == RTLD_NOW else "RTLD_LAZY" if kind == RTLD_LAZY else c_hex(kind)
        )
        if mode & RTLD_GLOBAL:
            text += " | RTLD_GLOBAL"
        if mode & RTLD_TRACE:
            text += " | RTLD_TRACE"
        rest = mode & ~(RTLD_MODEMASK | RTLD_GLOBAL | RTLD_TRACE) & 0xFFFFFFFF
        if rest:
            text += f" | {rest:#x}"
        return text + ")"
    formats = {
        2: lambda: f"{c_ptr(handle)} = dlopen({name}) ref {refcnt}",
        3: lambda: f"dlclose({c_ptr(handle)}) ({name}, {refcnt})",
        4: lambda: f"dlclose({c_ptr(handle)}) finished",
        5: lambda: f"RTLD: loaded   {c_ptr(handle)} @ {c_ptr(mapbase)} - {last} ({name})",
        6: lambda: f"RTLD: unloaded {c_ptr(handle)} @ {c_ptr(mapbase)} - {last} ({name})",
        7: lambda: f"RTLD: {c_ptr(mapbase)} now depends on {c_ptr(handle)} ({name}, {refcnt})",
        8: lambda: "RTLD: LD_PRELOAD finished",
        9: lambda: f"RTLD: init {c_ptr(mapbase)} for {c_ptr(handle)} ({name})",
        10: lambda: f"RTLD: fini {c_ptr(mapbase)} for {c_ptr(handle)} ({name})",
        11: lambda: f"RTLD: dlsym({c_ptr(handle)}, {name})",
        12: lambda: f"RTLD: {c_ptr(mapbase)} = dlsym({c_ptr(handle)}, {name})",
        # UTRACE_RTLD_ERROR: libsysdecode's format ends in a newline of its own.
        13: lambda: f"RTLD: error: {name}\n",
    }
    fmt = formats.get(event)
    return fmt() if fmt is not None else None


def _utrace_malloc(p: int, s: int, r: int, word_mask: int) -> str:
    if p == word_mask:
        return "malloc_init()"
    if s == 0:
        return f"free({c_ptr(p)})"
    if p == 0:
        return f"{c_ptr(r)} = malloc({s})"
    return f"{c_ptr(r)} = realloc({c_ptr(p)}, {s})"


def utrace_text(payload: bytes, arch: Arch) -> str | None:
    """libsysdecode's reading of a utrace payload (rtld or malloc events), if any."""
    n = len(payload)
    forms: list[tuple[struct.Struct, struct.Struct, int]] = []
    if arch.word == 8:
        forms.append((_RTLD64, _MALLOC64, (1 << 64) - 1))
    forms.append((_RTLD32, _MALLOC32, (1 << 32) - 1))
    for rtld, malloc, word_mask in forms:
        if n == rtld.size and payload[:4] == b"RTLD":
            text = _utrace_rtld(rtld.unpack(payload), word_mask)
            if text is not None:
                return text
        if n == malloc.size:
            p, s, r = malloc.unpack(payload)
            return _utrace_malloc(p, s, r, word_mask)
    return None


def user(p: User, decimal: bool, arch: Arch) -> str:
    payload = p.data
    text = utrace_text(payload, arch)
    if text is not None:
        return text + "\n"
    if decimal:
        return f"{len(payload)} " + "".join(f" {b}" for b in payload) + "\n"
    return f"{len(payload)} " + "".join(f" {b:02x}" for b in payload) + "\n"


# -- STRU ------------------------------------------------------------------


def stru(p: Struct, o: KdumpOptions, arch: Arch) -> str:
    from ktrace_cli.render.stru_text import struct_text  # its tables load only when a STRU comes

    # kdump built with Linux support decodes l_sigset_t whatever the ABI.
    return struct_text(p.name, p.data, word=arch.word, resolve=o.resolve, linux=True) + "\n"


def stru_array(p: StructArray, o: KdumpOptions, arch: Arch) -> str:
    from ktrace_cli.render.stru_text import struct_array_text

    return struct_array_text(p.struct_size, p.name, p.data, word=arch.word, decimal=o.decimal) + "\n"


# -- CAP ---------------------------------------------------------------------

CAPFAIL_NOTCAPABLE, CAPFAIL_INCREASE, CAPFAIL_SYSCALL, CAPFAIL_SIGNAL = 0, 1, 2, 3
CAPFAIL_PROTO, CAPFAIL_SOCKADDR, CAPFAIL_NAMEI, CAPFAIL_CPUSET = 4, 5, 6, 7
_RIGHTS = struct.Struct("<QQ")


def _rights(raw: bytes) -> str:
    return freebsd.cap_rights_text(_RIGHTS.unpack_from(raw))


def capfail(p: CapFail, syscalls: SyscallText) -> str:
    cap_type = p.cap_type
    if not p.new:
        needed, held = p.cap_data[:16], p.cap_data[16:32]
        if cap_type == CAPFAIL_NOTCAPABLE:
            text = f"operation requires {_rights(needed)}, descriptor holds {_rights(held)}"
        elif cap_type == CAPFAIL_INCREASE:
            text = f"attempt to increase capabilities from {_rights(held)} to {_rights(needed)}"
        elif cap_type == CAPFAIL_SYSCALL:
            text = "disallowed system call"
        elif cap_type == 3:  # CAPFAIL_LOOKUP in the old enumeration
            text = "restricted VFS lookup"
        else:
            text = f"unknown capability failure: {_rights(needed)} {_rights(held)}"
        return text + "\n"
    code, data = p.cap_code, p.cap_data
    abi = A.syscall_abi(p.cap_svflags)
    name, _ = syscalls.name(abi, code)
    cap_int = struct.unpack_from("<i", data)[0]
    if cap_type == CAPFAIL_NOTCAPABLE:
        text = f"operation requires {_rights(data[:16])}, descriptor holds {_rights(data[16:32])}"
    elif cap_type == CAPFAIL_INCREASE:
        text = f"attempt to increase capabilities from {_rights(data[16:32])} to {_rights(data[:16])}"
    elif cap_type == CAPFAIL_SYSCALL:
        text = f"system call not allowed: {name}"
        if abi is A.Abi.FREEBSD:
            from ktrace_cli.abi import sysdecode

            bare = A.syscall_name(abi, code)
            if bare == "sysarch":
                text += ", op: " + sysdecode.int_name("sysarchnum", cap_int, syscalls.o.decimal)
            elif bare == "fcntl":
                text += ", cmd: " + sysdecode.int_name("fcntlcmd", cap_int, syscalls.o.decimal)
    elif cap_type == CAPFAIL_SIGNAL:
        sig = freebsd.signal_name(cap_int)
        text = f"{name}: signal delivery not allowed: " + (
            sig if sig is not None else f"<invalid={c_hex(cap_int & 0xFFFFFFFF)}>"
        )
    elif cap_type == CAPFAIL_PROTO:
        from ktrace_cli.abi import sysdecode

        text = f"{name}: protocol not allowed: " + sysdecode.int_name(
            "sockipproto", cap_int, syscalls.o.decimal
        )
    elif cap_type == CAPFAIL_SOCKADDR:
        from ktrace_cli.render.stru_text import format_sockaddr

        return f"{name}: restricted address lookup: " + format_sockaddr(data) + "\n"
    elif cap_type == CAPFAIL_NAMEI:
        text = f"{name}: restricted VFS lookup: {c_string(data)}"
    elif cap_type == CAPFAIL_CPUSET:
        text = f"{name}: restricted cpuset operation"
    else:
        text = f"{name}: unknown capability failure"
    return text + "\n"


# -- PFLT, PRET, ARGS/ENVS, EERR --------------------------------------------

# vm/vm.h VM_PROT_* and vm/vm_param.h KERN_* (FreeBSD), in header order.
VM_PROT = (("VM_PROT_NONE", 0), ("VM_PROT_READ", 1), ("VM_PROT_WRITE", 2), ("VM_PROT_EXECUTE", 4), ("VM_PROT_COPY", 8))
KERN_RESULTS = {
    0: "KERN_SUCCESS", 1: "KERN_INVALID_ADDRESS", 2: "KERN_PROTECTION_FAILURE", 3: "KERN_NO_SPACE",
    4: "KERN_INVALID_ARGUMENT", 5: "KERN_FAILURE", 6: "KERN_RESOURCE_SHORTAGE",
    7: "KERN_NOT_RECEIVER", 8: "KERN_NO_ACCESS", 9: "KERN_OUT_OF_BOUNDS", 10: "KERN_RESTART",
}  # fmt: skip


def vmprot_mask(value: int) -> str:
    value &= 0xFFFFFFFF
    names = []
    rest = value
    for name, bits in VM_PROT:
        if bits == 0:
            if value == 0:
                names.append(name)
        elif rest & bits == bits:
            names.append(name)
            rest &= ~bits
    text = f"{c_hex(value)}<{'|'.join(names)}>"
    if not names:
        text += f"<invalid>{rest}"
    return text


def fault(p: Fault) -> str:
    return f"{c_hex(p.vaddr)} {vmprot_mask(p.type)}\n"


def faultend(p: FaultEnd) -> str:
    name = KERN_RESULTS.get(p.result)
    return (name if name is not None else f"<invalid={p.result}>") + "\n"


def strings(p: Strings) -> str:
    return ", ".join(f'"{s.decode("latin-1")}"' for s in p.strings) + "\n"




@functools.cache
def _printf_conversion() -> re.Pattern[str]:
    """Compiled on first use (an EXTERR record): re itself is not loaded at pykdump's start-up."""
    import re

    return re.compile(r"%([-#0 +]*)(\d*)(?:\.(\d+))?(hh|h|ll|l|j|z|t)?([diouxXcsp%])")


def _printf(fmt: str, args: Sequence[int]) -> str:
    """Enough of printf(3) for EXTERR messages: integer conversions of p1 and p2."""
    values = iter(args)

    def conv(m: re.Match[str]) -> str:
        flags, width, _prec, _size, kind = m.groups()
        if kind == "%":
            return "%"
        value = next(values, 0)
        if kind in "di":
            value = _signed(value & (2**64 - 1), 64)
        spec = {"d": "d", "i": "d", "u": "d", "o": "o", "x": "x", "X": "X", "c": "c", "s": "d", "p": "x"}[kind]
        text = format(value, spec) if kind != "c" else chr(value & 0xFF)
        if "#" in flags and kind in "xX" and value:
            text = "0" + kind + text
        if kind == "p":
            text = "0x" + text
        pad = min(int(width or 0), 1024)  # a hostile width must not build a huge string
        return text.ljust(pad) if "-" in flags else text.rjust(pad)

    return _printf_conversion().sub(conv, fmt)


def exterr(p: Exterr) -> str:
    p1, p2 = p.p1, p.p2
    msg = _printf(p.msg.decode("latin-1"), (p1, p2))
    return f'{{ errno {p.error} sys/unknown:{p.src_line} "{msg}" (category {p.cat} p1 {c_hex(p1)} p2 {c_hex(p2)}) }}\n'


if TYPE_CHECKING:
    Body = Callable[[Any, A.Abi, int], str]


def body_table(o: KdumpOptions, arch: Arch, syscalls: SyscallText) -> dict[int, Body]:
    """Record type -> the function giving the text after its tag, from its typed payload."""
    decimal = o.decimal
    return {
        K.KTR_SYSCALL: syscalls.call,
        K.KTR_SYSRET: syscalls.ret,
        K.KTR_NAMEI: _namei_body,
        K.KTR_SYSCTL: lambda p, abi, sv: namei(p),
        K.KTR_GENIO: lambda p, abi, sv: genio(p, o),
        K.KTR_PSIG: lambda p, abi, sv: psig(p, abi),
        K.KTR_CSW: lambda p, abi, sv: csw(p),
        K.KTR_USER: lambda p, abi, sv: user(p, decimal, arch),
        K.KTR_STRUCT: lambda p, abi, sv: stru(p, o, arch),
        K.KTR_STRUCT_ARRAY: lambda p, abi, sv: stru_array(p, o, arch),
        K.KTR_CAPFAIL: lambda p, abi, sv: capfail(p, syscalls),
        K.KTR_FAULT: lambda p, abi, sv: fault(p),
        K.KTR_FAULTEND: lambda p, abi, sv: faultend(p),
        K.KTR_ARGS: lambda p, abi, sv: strings(p),
        K.KTR_ENVS: lambda p, abi, sv: strings(p),
        K.KTR_EXTERR: lambda p, abi, sv: exterr(p),
    }
