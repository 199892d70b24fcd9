"""--calls: one line per system call, strace-like, built from a decoded Call.

` 4564 cat      openat(AT_FDCWD,"/etc/hostname",0x80000<O_RDONLY|O_CLOEXEC>) = 3</etc/hostname> <0.000012>`

The arguments are the ABI's decoded arguments (the same printers as kdump's
CALL lines), with each path argument replaced by the NAMI string the call
looked up, a buffer argument by the data its GIO records carry, and a
descriptor argument shown in decimal with what it is (`3</etc/hostname>`)
when the rebuilt descriptor table knows.
"""

from __future__ import annotations

from functools import cache

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.calls import Call, base_name
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.fdtable import PAIRS
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import Syscall, Sysret
from ktrace_cli.render.bodies import SyscallText
from ktrace_cli.render.dump import vis
from ktrace_cli.render.options import KdumpOptions

STRING_LIMIT = 32  # bytes of a buffer shown inline, as strace's default -s
BODY_CACHE = 8192  # call texts kept (cleared when full: memory stays flat)
_OPEN = "([{"
_CLOSE = ")]}"
_POINTERS = frozenset({"mmap", "mmap2", "mremap", "brk", "sbrk", "shmat"})  # results shown in hex
_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def split_args(text: str) -> list[str]:
    """`(a,b<X|Y>,c)` -> ["a", "b<X|Y>", "c"]: commas inside brackets or quotes do not split."""
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    if not text:
        return []
    parts = text.split(",")
    if '"' in text:
        return _split_quoted(text)
    if "(" not in text and "[" not in text and "{" not in text:
        return parts  # the usual case: flags join with '|', never with ','
    # Rejoin the pieces a comma inside brackets split.
    out: list[str] = []
    depth = 0
    for part in parts:
        if depth > 0:
            out[-1] += "," + part
        else:
            out.append(part)
        depth += part.count("(") + part.count("[") + part.count("{")
        depth -= part.count(")") + part.count("]") + part.count("}")
        depth = max(depth, 0)
    return out


def _split_quoted(text: str) -> list[str]:
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if quoted:
            if ch == '"' and text[i - 1] != "\\":
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


# Each byte as it appears inside a C string literal (latin-1 str in, text out).
_QUOTE_TABLE = {
    b: _ESCAPES.get(b, chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in range(256)
}


def c_quote(raw: bytes, limit: int | None = None) -> str:
    """Bytes as a C string literal; `...` after it when cut at `limit` bytes."""
    cut = limit is not None and len(raw) > limit
    if cut:
        raw = raw[:limit]
    return '"' + raw.decode("latin-1").translate(_QUOTE_TABLE) + '"' + ("..." if cut else "")


@cache
def _arg_roles(abi: A.Abi, name: str) -> tuple[tuple[int, ...], int]:
    """(indexes of path arguments, index of the data buffer or -1), from the Linux prototypes."""
    from ktrace_cli.abi import linux
    from ktrace_cli.decode.filters import FREEBSD_TWINS

    name = base_name(name)
    proto_name = FREEBSD_TWINS.get(name, name) if abi is A.Abi.FREEBSD else name
    paths = linux.path_arg_indexes(proto_name)
    proto = linux.syscall_prototype(proto_name)
    buf = -1
    if proto is not None:
        for i, (_t, argname) in enumerate(proto[1]):
            if argname in ("buf", "ubuf", "buff"):
                buf = i
                break
    return paths, buf


def _fd_text(fd: int, path: str | None) -> str:
    if path is None:
        return str(fd)
    # Text lines are latin-1 str holding the recorded bytes one per character;
    # a path chose by the traced program must not carry control characters.
    return f"{fd}<{vis(path.encode('utf-8', 'surrogateescape').decode('latin-1'))}>"


class CallText:
    """The pieces of a --calls line, shared by the text and the JSON views."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self.syscalls = SyscallText(options, arch)
        self.mask = (1 << (8 * arch.word)) - 1
        self._heads: dict[tuple[int, int, bytes], str] = {}
        self._decoded: dict[tuple[int, int, tuple[int, ...]], list[str]] = {}
        self._quoted: dict[bytes, str] = {}
        self._fd_texts: dict[tuple[int, str | None], str] = {}
        self._shown_data: dict[bytes, str] = {}
        self._errors: dict[tuple[A.Abi, int], str] = {}
        self._plans: dict[tuple[int, int], tuple[str, tuple[int, ...], int, bool]] = {}
        self._bodies: dict[tuple[object, ...], str] = {}
        self._durations: dict[int, str] = {}  # microseconds -> ` <S.UUUUUU>` and the newline
        self._timestamps = bool(options.timestamps)

    def name(self, call: Call) -> str:
        return self._plan(call)[0]

    def _plan(self, call: Call) -> tuple[str, tuple[int, ...], int, bool]:
        """(the name shown, path argument indexes, buffer index, result is an address), per call."""
        plan = self._plans.get((call.sv_flags, call.code))
        return plan if plan is not None else self._plan_of(call.sv_flags, call.code, call.abi, call.name)

    def _plan_of(self, sv_flags: int, code: int, abi: A.Abi, name: str | None) -> tuple[str, tuple[int, ...], int, bool]:
        key = (sv_flags, code)
        plan = self._plans.get(key)
        if plan is None:
            shown = self.syscalls.name(abi, code)[0]
            if name is None:
                plan = (shown, (), -1, False)
            else:
                paths, buf = _arg_roles(abi, name) if self.o.fancy else ((), -1)
                plan = (shown, paths, buf, base_name(name) in _POINTERS)
            if len(self._plans) < 65536:  # bounded: a damaged trace may hold any numbers
                self._plans[key] = plan
        return plan

    def raw_pieces(self, call: Call) -> list[str]:
        return split_args(self.syscalls.raw_args(call.args)) if call.args else []

    def _decoded_args(self, sv_flags: int, code: int, abi: A.Abi, args: tuple[int, ...], shown: str) -> list[str]:
        """The decoded arguments, one piece per slot, from a bounded cache (`shown`: the plan's name)."""
        key = (sv_flags, code, args)
        decoded = self._decoded.get(key)
        if decoded is None:
            # Calls repeat their arguments (descriptors, sizes, buffers): decode once.
            if len(self._decoded) > 4096:
                self._decoded.clear()
            body = self.syscalls.call(Syscall(code, args), abi, sv_flags)
            decoded = split_args(body[len(shown) :].rstrip("\n"))
            if len(decoded) > len(args):
                # not one piece per slot: index by slot instead
                decoded = split_args(self.syscalls.raw_args(args))
            self._decoded[key] = decoded
        return decoded

    def arg_pieces(self, call: Call) -> list[str]:
        """Each argument as text: decoded, strings inline, descriptors with their paths."""
        p = call.syscall
        if p is None or not p.args:
            return []
        return list(self._pieces(call, p.args, self._plan(call)))

    def _pieces(self, call: Call, args: tuple[int, ...], plan: tuple[str, tuple[int, ...], int, bool]) -> list[str]:
        """As arg_pieces, but may be the cached list itself: read it, never change it."""
        if call.pair is not None and call.name is not None and self.o.fancy:
            return self._pair_pieces(call, args, plan)
        paths: list[bytes] = []
        data: list[bytes] = []
        if call.parts and (plan[1] or plan[2] >= 0):
            for shown in call.parts:
                rtype = shown.record.type
                if rtype == K.KTR_NAMEI:
                    paths.append(shown.payload.path)  # type: ignore[union-attr]
                elif rtype == K.KTR_GENIO:
                    data.append(shown.payload.data)  # type: ignore[union-attr]
        return self._pieces_of(
            call.sv_flags, call.code, call.abi, call.name, args, plan, call.fd, call.fd_index, call.fd_path, paths, data
        )

    def _pair_pieces(self, call: Call, args: tuple[int, ...], plan: tuple[str, tuple[int, ...], int, bool]) -> list[str]:
        """pipe*, socketpair: the int[2] shown as the descriptors it received (no other
        descriptor, path or buffer argument to put in)."""
        pieces = self._decoded_args(call.sv_flags, call.code, call.abi, args, plan[0]).copy()
        where = PAIRS[base_name(call.name or "")][0]
        if where < len(pieces) and call.pair is not None:
            pieces[where] = f"[{','.join(self.fd_text(fd, path) for fd, path in call.pair)}]"
        return pieces

    def _pieces_of(
        self, sv_flags: int, code: int, abi: A.Abi, name: str | None, args: tuple[int, ...],
        plan: tuple[str, tuple[int, ...], int, bool], fd: int | None, fd_index: int, fd_path: str | None,
        paths: list[bytes], data: list[bytes],
    ) -> list[str]:  # fmt: skip
        """_pieces from a call's fields: its NAMI `paths` and GIO `data`, in order."""
        pieces = self._decoded.get((sv_flags, code, args))
        if pieces is None:
            pieces = self._decoded_args(sv_flags, code, abi, args, plan[0])
        if name is None or not self.o.fancy:
            return pieces
        path_i = plan[1]
        buf_i = plan[2]
        if fd is None and not path_i and buf_i < 0:
            return pieces  # nothing to put in: the decoded text as it is
        pieces = pieces.copy()
        n = len(pieces)
        if paths and path_i:
            quoted = self._quoted
            for k, i in enumerate(path_i):
                if k < len(paths) and i < n:
                    text = quoted.get(paths[k])
                    if text is None:
                        if len(quoted) > 4096:
                            quoted.clear()
                        text = quoted[paths[k]] = c_quote(paths[k].split(b"\0", 1)[0])
                    pieces[i] = text
        if data and 0 <= buf_i < n:
            # What is shown depends only on the first STRING_LIMIT + 1 bytes.
            head = data[0][: STRING_LIMIT + 1] if len(data) == 1 else b"".join(data)[: STRING_LIMIT + 1]
            text = self._shown_data.get(head)
            if text is None:
                if len(self._shown_data) > 4096:
                    self._shown_data.clear()
                text = self._shown_data[head] = c_quote(head, STRING_LIMIT)
            pieces[buf_i] = text
        if fd is not None and 0 <= fd_index < n:
            text = self._fd_texts.get((fd, fd_path))
            pieces[fd_index] = text if text is not None else self.fd_text(fd, fd_path)
        return pieces

    def fd_text(self, fd: int, path: str | None) -> str:
        """`3</etc/hosts>`, from a bounded cache (descriptors are used over and over)."""
        key = (fd, path)
        text = self._fd_texts.get(key)
        if text is None:
            if len(self._fd_texts) > 4096:
                self._fd_texts.clear()
            text = self._fd_texts[key] = _fd_text(fd, path)
        return text

    def ret_text(self, call: Call) -> str:
        """`3`, `3</etc/hostname>`, `-1 ENOENT (No such file or directory)`, `?`."""
        ret = call.ret
        if ret is None:
            return "?"
        return self._result(call.abi, self._plan(call), ret.error, ret.retval, call.ret_path)

    def _result(
        self, abi: A.Abi, plan: tuple[str, tuple[int, ...], int, bool], error: int, value: int, ret_path: str | None
    ) -> str:
        """ret_text from a RET's fields."""
        if error == 0 or error == K.EJUSTRETURN:
            if error:
                value = 0
            if ret_path is not None:
                return self.fd_text(value, ret_path)
            if -4096 < value < 1 << 16 or (value < 1 << 32 and not plan[3]):
                return str(value)
            return f"{value & self.mask:#x}"
        if error == K.ERESTART:
            return "? ERESTART (To be restarted)"
        return self._error_text(abi, error)

    def _error_text(self, abi: A.Abi, error: int) -> str:
        key = (abi, error)
        text = self._errors.get(key)
        if text is None:
            info = A.error_info(abi, error)
            name = info.name or f"E{info.number}"
            text = f"-1 {name} ({info.text})" if self.o.fancy else f"-1 errno {info.number}"
            if len(self._errors) < 4096:
                self._errors[key] = text
        return text

    def head(self, pid: int, tid: int, comm: bytes, ns: int) -> str:
        o = self.o
        key = (pid, tid, comm)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 65536:
                self._heads.clear()  # memory stays flat with any number of threads
            name = comm.split(b"\0", 1)[0][: K.MAXCOMLEN].decode("latin-1")
            if o.terminal:
                name = vis(name)
            head = f"{pid:6d} {tid:6d} " if o.tid else f"{pid:6d} "
            head = self._heads[key] = head + f"{name:<8} "
        if o.timestamps:
            head += f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d} "
        return head

    def line(self, call: Call) -> str:
        # Runs once per printed call: caches read inline, _body's work written
        # out here (a frame per call costs more than the rest of its lookups),
        # one string built at the end.
        start = call.start
        end = call.end
        sv_flags = call.sv_flags
        code = call.code
        plan = self._plans.get((sv_flags, code))
        if plan is None:
            plan = self._plan(call)
        first = (start if start is not None else end).record  # type: ignore[union-attr]
        cached = None if self._timestamps else self._heads.get((call.pid, call.tid, first.comm))
        head = cached if cached is not None else self.head(call.pid, call.tid, first.comm, call.ns)
        parts = call.parts
        if start is None:
            body = f"<... {plan[0]} resumed>"
            for s in parts:
                if s.record.type == K.KTR_PSIG:
                    body += f" [{A.signal_name(call.abi, s.payload.signo)}]"  # type: ignore[union-attr]
        else:
            p = start.payload
            args = p.args if p.__class__ is Syscall else ()
            signals = ""
            if not args:
                body = f"{plan[0]}()"
                for s in parts:
                    if s.record.type == K.KTR_PSIG:
                        signals += f" [{A.signal_name(call.abi, s.payload.signo)}]"  # type: ignore[union-attr]
            else:
                # _body, inlined: the same key, from the same parts.
                shown_paths: tuple[bytes, ...] | None = None
                shown_data: bytes | None = None
                if len(parts) == 1:  # the usual case: one NAMI or one GIO, no lists to build
                    s = parts[0]
                    rtype = s.record.type
                    if rtype == K.KTR_NAMEI:
                        if plan[1]:
                            shown_paths = (s.payload.path,)  # type: ignore[union-attr]
                    elif rtype == K.KTR_GENIO:
                        if plan[2] >= 0:
                            shown_data = s.payload.data[: STRING_LIMIT + 1]  # type: ignore[union-attr]
                    elif rtype == K.KTR_PSIG:
                        signals = f" [{A.signal_name(call.abi, s.payload.signo)}]"  # type: ignore[union-attr]
                elif parts:
                    paths: list[bytes] | None = None
                    data: list[bytes] | None = None
                    for s in parts:
                        rtype = s.record.type
                        if rtype == K.KTR_NAMEI:
                            if paths is None:
                                paths = []
                            paths.append(s.payload.path)  # type: ignore[union-attr]
                        elif rtype == K.KTR_GENIO:
                            if data is None:
                                data = []
                            data.append(s.payload.data)  # type: ignore[union-attr]
                        elif rtype == K.KTR_PSIG:
                            signals += f" [{A.signal_name(call.abi, s.payload.signo)}]"  # type: ignore[union-attr]
                    if paths is not None and plan[1]:
                        shown_paths = tuple(paths)
                    if data is not None and plan[2] >= 0:
                        shown_data = (
                            data[0][: STRING_LIMIT + 1] if len(data) == 1 else b"".join(data)[: STRING_LIMIT + 1]
                        )
                key: tuple[object, ...] = (sv_flags, code, args, call.fd, call.fd_path, shown_paths, shown_data)
                if call.pair is not None:  # pipe*, socketpair: the descriptors the call made show too
                    key += (call.pair,)
                body = self._bodies.get(key)  # type: ignore[assignment]
                if body is None:
                    if len(self._bodies) >= BODY_CACHE:
                        self._bodies.clear()
                    body = self._bodies[key] = f"{plan[0]}({','.join(self._pieces(call, args, plan))})"
            if signals:
                body += signals
        ret = end.payload if end is not None else None
        # ret_text, its usual cases written out: a number, a descriptor with
        # its path (an open), an error already seen.
        result = None
        if ret.__class__ is Sysret:
            error = ret.error
            if not error:
                value = ret.retval
                ret_path = call.ret_path
                if ret_path is not None:
                    result = self._fd_texts.get((value, ret_path))
                elif -4096 < value < 1 << 16 or (value < 1 << 32 and not plan[3]):
                    result = str(value)
                else:
                    result = f"{value & self.mask:#x}"
            else:
                result = self._errors.get((call.abi, error))  # holds no ERESTART or EJUSTRETURN
        if result is None:
            result = self.ret_text(call)
        if start is None or end is None:
            return f"{head}{body} = {result}\n"
        r, q = start.record, end.record
        # Record.nsec, inlined: a v0 header counts microseconds.
        dur = (q.sec - r.sec) * 1_000_000_000 + (q.frac if q.version else q.frac * 1000)
        dur -= r.frac if r.version else r.frac * 1000
        if dur <= 0:
            return f"{head}{body} = {result} <0.000000>\n"
        shown = self._durations.get(dur // 1000)
        if shown is None:
            shown = self._duration(dur // 1000)
        return f"{head}{body} = {result}{shown}"

    def _duration(self, us: int) -> str:
        """` <S.UUUUUU>` and the newline, for `us` microseconds, into the bounded cache."""
        if len(self._durations) >= BODY_CACHE:
            self._durations.clear()
        shown = self._durations[us] = f" <{us // 1_000_000}.{us % 1_000_000:06d}>\n"
        return shown

    def quick(
        self, pid: int, tid: int, comm: bytes, sv_flags: int, code: int, abi: A.Abi, name: str, args: tuple[int, ...],
        fd: int | None, fd_index: int, fd_path: str | None, path: bytes | None, data: bytes | None, error: int,
        retval: int, ret_path: str | None, ns: int, dur: int,
    ) -> str:  # fmt: skip
        """`line` of a call given as fields, for select_calls' quick path: a CALL
        with arguments, at most one NAMI `path` or GIO `data` record, its RET."""
        plan = self._plans.get((sv_flags, code))
        if plan is None:
            plan = self._plan_of(sv_flags, code, abi, name)
        if self._timestamps:
            head = self.head(pid, tid, comm, ns)
        else:
            head = self._heads.get((pid, tid, comm))  # type: ignore[assignment]
            if head is None:
                head = self.head(pid, tid, comm, ns)
        # line's body key, from the same one part.
        shown_path = (path,) if path is not None and plan[1] else None
        shown_data = data[: STRING_LIMIT + 1] if data is not None and plan[2] >= 0 else None
        key = (sv_flags, code, args, fd, fd_path, shown_path, shown_data)
        body = self._bodies.get(key)
        if body is None:
            if len(self._bodies) >= BODY_CACHE:
                self._bodies.clear()
            pieces = self._pieces_of(sv_flags, code, abi, name, args, plan, fd, fd_index, fd_path,
                                     [path] if path is not None else [], [data] if data is not None else [])  # fmt: skip
            body = self._bodies[key] = f"{plan[0]}({','.join(pieces)})"
        # _result, its usual cases first, as in line.
        result = None
        if error:
            result = self._errors.get((abi, error))  # holds no ERESTART or EJUSTRETURN
        elif ret_path is not None:
            result = self._fd_texts.get((retval, ret_path))
        elif -4096 < retval < 1 << 16 or (retval < 1 << 32 and not plan[3]):
            result = str(retval)
        if result is None:
            result = self._result(abi, plan, error, retval, ret_path)
        if dur <= 0:
            return f"{head}{body} = {result} <0.000000>\n"
        shown = self._durations.get(dur // 1000)
        if shown is None:
            shown = self._duration(dur // 1000)
        return f"{head}{body} = {result}{shown}"


class CallsText:
    """Renders the items of `decode.select_calls` as --calls lines (latin-1 text)."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        from ktrace_cli.render.kdump_text import KdumpText

        self.text = CallText(options, arch)
        self.line = self.text.line
        self.kdump = KdumpText(options, arch)

    def render(self, item: Call | Shown | Dropped) -> str:
        if isinstance(item, Call):
            return self.line(item)
        if isinstance(item, Dropped):
            return self.kdump.dropped(item.record)
        # A record outside any call: its kdump body, marked off as strace marks signals.
        r = item.record
        body = self.kdump.body(r.type, item.payload, item.sv_flags).rstrip("\n")
        tag = self.kdump_tag(r.type)
        return self.text.head(r.pid, r.tid, r.comm, r.sec * 1_000_000_000 + r.nsec) + f"--- {tag} {body} ---\n"

    @staticmethod
    def kdump_tag(rtype: int) -> str:
        from ktrace_cli.render.kdump_text import TYPE_TAGS

        return TYPE_TAGS.get(rtype, f"UNKNOWN({rtype})").rstrip()
