"""--calls --json: one JSON object per system call (schema documented in pykdump(1))."""

from __future__ import annotations

import base64
from typing import Any

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.structs import struct_fields_of
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import Genio, Psig, Struct
from ktrace_cli.render.calls_text import CallText
from ktrace_cli.render.json_lines import compact_encoder, errno_fields
from ktrace_cli.render.options import KdumpOptions

SCHEMA = 1  # bump when a member changes meaning or goes away


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _ret(call: Call) -> int | None:
    """What the call returned to the program: -1 on an error, null while it is unfinished."""
    ret = call.ret
    if ret is None or ret.error == K.ERESTART:
        return None
    if ret.error == K.EJUSTRETURN:
        return 0  # a successful exec, as pyktrace records it
    return ret.retval if ret.error == 0 else -1


class CallsJson:
    """Renders Calls as NDJSON; records outside calls and drops print nothing."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self.text = CallText(options, arch)
        self._encode = compact_encoder()

    def render(self, item: Call | Shown | Dropped) -> str:
        if not isinstance(item, Call):
            return ""
        return self._encode(self.as_dict(item)) + "\n"

    def as_dict(self, call: Call) -> dict[str, Any]:
        first = call.first.record
        ns = call.ns
        ret = call.ret
        pieces = self.text.arg_pieces(call)
        args = [{"raw": raw, "decoded": pieces[i] if i < len(pieces) else None} for i, raw in enumerate(call.args)]
        errno_number, errno_name = errno_fields(ret.error, call.abi) if ret is not None else (None, None)
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "pid": call.pid,
            "tid": call.tid,
            "comm": _text(first.comm_name),
            "sec": ns // 1_000_000_000,
            "nsec": ns % 1_000_000_000,
            "abi": A.json_abi(call.sv_flags),
            "syscall": call.name,
            "code": call.code,
            "args": args,
            "paths": [_text(p) for p in call.paths],
            "ret": _ret(call),
            "errno": errno_name,
            "errno_number": errno_number,
            "strerror": None,
            "dur_ns": call.dur_ns,
            "fd": call.fd,
            "fd_path": call.fd_path,
            "ret_fd_path": call.ret_path,
            "structs": [],
            "data": [],
            "signals": [],
            "unfinished": call.start is not None and call.end is None,
            "resumed": call.start is None,
        }
        if errno_number is not None and ret is not None:
            out["strerror"] = A.error_info(call.abi, ret.error).text
        maxdata = self.o.maxdata
        for s in call.parts:
            p = s.payload
            if isinstance(p, Struct):
                name, fields = struct_fields_of(p.name, p.data, word=self.arch.word)
                out["structs"].append({"name": name, "fields": fields})
            elif isinstance(p, Genio):
                data = p.data
                cut = maxdata > 0 and len(data) > maxdata
                if cut:
                    data = data[:maxdata]
                # pyktrace records at most its size limit of each transfer: a
                # shorter record than the call's result is marked truncated too.
                short = ret is not None and ret.error == 0 and 0 <= len(p.data) < ret.retval
                out["data"].append({
                    "fd": p.fd, "rw": "read" if p.rw == 0 else "wrote", "len": len(p.data),
                    "data": base64.b64encode(data).decode("ascii"), "truncated": cut or short,
                })  # fmt: skip
            elif isinstance(p, Psig):
                out["signals"].append({"signo": p.signo, "signame": A.signal_name(call.abi, p.signo)})
        return out
