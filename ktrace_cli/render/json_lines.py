"""Records as JSON lines: one object per printed record, numbers as numbers."""

from __future__ import annotations

import base64
import functools
import json
import struct
from collections.abc import Callable
from typing import Any

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.events import Dropped, Shown, Unpack
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import (
    Csw,
    Fault,
    Genio,
    Payload,
    PayloadError,
    Psig,
    Record,
    Strings,
    Struct,
    StructArray,
    Syscall,
    Sysret,
)  # fmt: skip
from ktrace_cli.render import bodies
from ktrace_cli.render.kdump_text import TYPE_TAGS
from ktrace_cli.render.options import KdumpOptions

# The kdump tags without their padding ("RET ", "GIO " ...).
JSON_TYPES = {rtype: tag.rstrip() for rtype, tag in TYPE_TAGS.items()}


def _text(raw: bytes) -> str:
    """Bytes as a JSON string: UTF-8, undecodable bytes as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


Fields = Callable[[dict[str, Any], Any, A.Abi], None]


def compact_encoder() -> Callable[[Any], str]:
    """A JSON encoder to compact ASCII text, as JSONEncoder(separators=(",", ":")).encode.

    The C encoder, called directly when Python has it: JSONEncoder.encode and
    iterencode are two Python calls per object, and there is an object per
    record.  No circular-reference check: the objects are trees built here.
    """
    reference = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    ascii_string = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make is None or ascii_string is None:
        return reference.encode
    chunks = make(None, reference.default, ascii_string, None, ":", ",", False, False, True)
    join = "".join

    def encode(obj: Any) -> str:
        return join(chunks(obj, 0))

    return encode


class JsonLines:
    """Renders `select` events as NDJSON lines (Dropped events print nothing)."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self._encode = compact_encoder()
        self._comm_cache: dict[bytes, str] = {}
        self._text_body = bodies.SyscallText(options, arch)
        self._unpack = Unpack(arch)
        self._abis: dict[int, A.Abi] = {}
        self._json_abi = functools.cache(A.json_abi)
        self._fields: dict[int, Fields] = {
            K.KTR_SYSCALL: _syscall,
            K.KTR_SYSRET: _sysret,
            K.KTR_NAMEI: lambda out, p, abi: out.__setitem__("path", _text(p.path.split(b"\0", 1)[0])),
            K.KTR_SYSCTL: lambda out, p, abi: out.__setitem__("path", _text(p.name)),
            K.KTR_GENIO: self._genio,
            K.KTR_PSIG: _psig,
            K.KTR_CSW: _csw,
            K.KTR_USER: lambda out, p, abi: out.__setitem__("data", _b64(p.data)),
            K.KTR_STRUCT: self._struct,
            K.KTR_STRUCT_ARRAY: _struct_array,
            K.KTR_FAULT: _fault,
            K.KTR_FAULTEND: lambda out, p, abi: out.__setitem__("result", p.result),
            K.KTR_ARGS: _strings,
            K.KTR_ENVS: _strings,
            K.KTR_CAPFAIL: lambda out, p, abi: out.__setitem__(
                "text", bodies.capfail(p, self._text_body).rstrip("\n")
            ),
            K.KTR_EXTERR: lambda out, p, abi: out.__setitem__("text", bodies.exterr(p).rstrip("\n")),
        }

    def render(self, event: Shown | Dropped) -> str:
        if isinstance(event, Dropped):
            return ""
        payload = event.payload if event.payload is not None else self._unpack(event.record)
        return self._encode(self.as_dict(event.record, event.sv_flags, payload)) + "\n"

    def comm(self, r: Record) -> str:
        comm = self._comm_cache.get(r.comm)
        if comm is None:
            comm = self._comm_cache[r.comm] = _text(r.comm_name)
        return comm

    def as_dict(self, r: Record, sv_flags: int, payload: Payload | None = None) -> dict[str, Any]:
        comm = self._comm_cache.get(r.comm)  # comm(), inlined: once per record
        if comm is None:
            comm = self.comm(r)
        out: dict[str, Any] = {
            "pid": r.pid,
            "tid": r.tid,
            "comm": comm,
            "type": JSON_TYPES.get(r.type, f"UNKNOWN({r.type})"),
            "sec": r.sec,
            "nsec": r.frac if r.version else r.frac * 1000,
            "cpu": r.cpu if r.version else None,
            "drop": r.drop,
            "abi": self._json_abi(sv_flags),
        }
        fields = self._fields.get(r.type)
        if fields is None:
            return out
        if payload is None:
            out["invalid"] = True
            return out
        abi = self._abis.get(sv_flags)
        if abi is None:
            abi = self._abis[sv_flags] = A.syscall_abi(sv_flags)
        try:
            fields(out, payload, abi)
        except (PayloadError, struct.error):
            out["invalid"] = True
        return out

    def _genio(self, out: dict[str, Any], p: Genio, abi: A.Abi) -> None:
        data = p.data
        out["fd"] = p.fd
        out["rw"] = "read" if p.rw == K.UIO_READ else "wrote"
        out["len"] = len(data)
        if self.o.maxdata > 0:
            data = data[: self.o.maxdata]
        out["data"] = _b64(data)

    def _struct(self, out: dict[str, Any], p: Struct, abi: A.Abi) -> None:
        from ktrace_cli.decode.stru import struct_fields_of  # loaded when a STRU comes

        name, fields = struct_fields_of(p.name, p.data, word=self.arch.word)
        out["name"] = name
        out["data"] = _b64(p.data)
        out["fields"] = fields


def _syscall(out: dict[str, Any], p: Syscall, abi: A.Abi) -> None:
    out["code"] = p.code
    out["syscall"] = A.syscall_name(abi, p.code) if p.code >= 0 else None
    out["args"] = list(p.args)


def _sysret(out: dict[str, Any], p: Sysret, abi: A.Abi) -> None:
    out["code"] = p.code
    out["syscall"] = A.syscall_name(abi, p.code) if p.code >= 0 else None
    out["retval"] = p.retval
    out["error"] = p.error
    out["errno"], out["errname"] = errno_fields(p.error, abi)


def errno_fields(error: int, abi: A.Abi) -> tuple[int | None, str | None]:
    """(errno number, name) of a RET in its ABI's numbering; (None, None) for no error."""
    if error in (0, K.ERESTART, K.EJUSTRETURN):
        return None, None
    info = A.error_info(abi, error)
    return info.number, info.name


def _psig(out: dict[str, Any], p: Psig, abi: A.Abi) -> None:
    out["signo"] = p.signo
    out["signame"] = A.signal_name(abi, p.signo)
    out["action"] = p.action
    out["code"] = p.code
    out["mask"] = list(p.mask)


def _csw(out: dict[str, Any], p: Csw, abi: A.Abi) -> None:
    out["out"] = bool(p.out)
    out["user"] = bool(p.user)
    out["wmesg"] = _text(p.wmesg) if p.wmesg is not None else None


def _struct_array(out: dict[str, Any], p: StructArray, abi: A.Abi) -> None:
    out["name"] = _text(p.name)
    out["struct_size"] = p.struct_size
    out["data"] = _b64(p.data)
    out["fields"] = None


def _fault(out: dict[str, Any], p: Fault, abi: A.Abi) -> None:
    out["vaddr"] = p.vaddr
    out["fault_type"] = p.type


def _strings(out: dict[str, Any], p: Strings, abi: A.Abi) -> None:
    out["strings"] = [_text(s) for s in p.strings]
