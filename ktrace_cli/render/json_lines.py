"""Records as JSON lines: one object per printed record, numbers as numbers."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import CSW_NEW, CSW_OLD, FAULTEND, Arch
from ktrace_cli.format.records import PayloadError, Record
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


class JsonLines:
    """Renders `select` events as NDJSON lines (Dropped events print nothing)."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self._encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
        self._comm_cache: dict[bytes, str] = {}
        self._text_body = bodies.SyscallText(options, arch)

    def render(self, event: Shown | Dropped) -> str:
        if isinstance(event, Dropped):
            return ""
        return self._encode(self.as_dict(event.record, event.sv_flags)) + "\n"

    def as_dict(self, r: Record, sv_flags: int) -> dict[str, Any]:
        comm = self._comm_cache.get(r.comm)
        if comm is None:
            comm = self._comm_cache[r.comm] = _text(r.comm_name)
        out: dict[str, Any] = {
            "pid": r.pid,
            "tid": r.tid,
            "comm": comm,
            "type": JSON_TYPES.get(r.type, f"UNKNOWN({r.type})"),
            "sec": r.sec,
            "nsec": r.frac if r.version else r.frac * 1000,
            "cpu": r.cpu if r.version else None,
            "drop": r.drop,
            "abi": A.json_abi(sv_flags),
        }
        try:
            self._body(out, r, A.syscall_abi(sv_flags))
        except (PayloadError, struct.error):
            out["invalid"] = True
        return out

    def _body(self, out: dict[str, Any], r: Record, abi: A.Abi) -> None:
        arch = self.arch
        p = r.payload
        t = r.type
        if t == K.KTR_SYSCALL:
            code, narg = arch.syscall_fixed.unpack_from(p)
            narg = max(narg, 0)
            if len(p) < arch.syscall_fixed.size + narg * arch.word:
                raise PayloadError("short SYSCALL")
            out["code"] = code
            out["syscall"] = A.syscall_name(abi, code) if code >= 0 else None
            out["args"] = list(arch.args_struct(narg).unpack_from(p, arch.syscall_fixed.size))
        elif t == K.KTR_SYSRET:
            code, _eosys, error, retval = arch.sysret.unpack_from(p)
            out["code"] = code
            out["syscall"] = A.syscall_name(abi, code) if code >= 0 else None
            out["retval"] = retval
            out["error"] = error
            if error in (0, K.ERESTART, K.EJUSTRETURN):
                out["errno"] = out["errname"] = None
            else:
                info = A.error_info(abi, error)
                out["errno"] = info.number
                out["errname"] = info.name
        elif t in (K.KTR_NAMEI, K.KTR_SYSCTL):
            out["path"] = _text(p.split(b"\0", 1)[0])
        elif t == K.KTR_GENIO:
            fd, rw = arch.genio_fixed.unpack_from(p)
            data = p[arch.genio_fixed.size :]
            out["fd"] = fd
            out["rw"] = "read" if rw == K.UIO_READ else "wrote"
            out["len"] = len(data)
            if self.o.maxdata > 0:
                data = data[: self.o.maxdata]
            out["data"] = _b64(data)
        elif t == K.KTR_PSIG:
            signo, action, code, *mask = arch.psig.unpack_from(p)
            out["signo"] = signo
            out["signame"] = A.signal_name(abi, signo)
            out["action"] = action
            out["code"] = code
            out["mask"] = mask
        elif t == K.KTR_CSW:
            if len(p) == CSW_OLD.size:
                o_, u_ = CSW_OLD.unpack_from(p)
                wmesg = None
            else:
                o_, u_, raw = CSW_NEW.unpack_from(p)
                wmesg = _text(raw.split(b"\0", 1)[0])
            out["out"] = bool(o_)
            out["user"] = bool(u_)
            out["wmesg"] = wmesg
        elif t == K.KTR_USER:
            out["data"] = _b64(p)
        elif t == K.KTR_STRUCT:
            from ktrace_cli.decode.structs import struct_fields

            name, fields = struct_fields(p, word=arch.word)
            out["name"] = name
            nul = p.find(b"\0")
            out["data"] = _b64(p[nul + 1 :] if nul >= 0 else b"")
            out["fields"] = fields
        elif t == K.KTR_STRUCT_ARRAY:
            fixed = arch.struct_array_fixed
            (size,) = fixed.unpack_from(p)
            nul = p.find(b"\0", fixed.size)
            out["name"] = _text(p[fixed.size : nul if nul >= 0 else len(p)])
            out["struct_size"] = size
            out["data"] = _b64(p[nul + 1 :] if nul >= 0 else b"")
            out["fields"] = None
        elif t == K.KTR_FAULT:
            vaddr, ftype = arch.fault.unpack_from(p)
            out["vaddr"] = vaddr
            out["fault_type"] = ftype
        elif t == K.KTR_FAULTEND:
            out["result"] = FAULTEND.unpack_from(p)[0]
        elif t in (K.KTR_ARGS, K.KTR_ENVS):
            parts = p.split(b"\0")
            if parts and parts[-1] == b"":
                parts.pop()
            out["strings"] = [_text(s) for s in parts]
        elif t == K.KTR_CAPFAIL:
            out["text"] = bodies.capfail(p, self._text_body, arch).rstrip("\n")
        elif t == K.KTR_EXTERR:
            out["text"] = bodies.exterr(p, arch).rstrip("\n")
