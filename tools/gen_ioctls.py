"""Generate ktrace_cli/abi/data/freebsd_ioctls.tsv: the request names kdump prints.

FreeBSD's libsysdecode builds sysdecode_ioctlname() with mkioctls: it greps every
installed header for `#define NAME _IO...`, runs them through `cpp -dM` and emits an
if/else chain `if (val == NAME) str = "NAME";` that the compiler evaluates, so the
argument sizes come from the compiler.  Without a FreeBSD compiler this generator
works from committed data:

* tools/data/freebsd_ioctl_defs.tsv: the `_IO*` definitions read from the headers
  (name, macro, group, number, argument type), with the upstream repository, commit
  and path of every header;
* tools/data/freebsd_ioctl_types.tsv: the amd64 layout of each argument type: a
  scalar's size, a struct's or union's member types (laid out here with natural
  alignment, bit-fields `TYPE:WIDTH` packed into units of their type; a `packed`
  struct, the header's __packed or #pragma pack(1), without any padding and with
  its bit-fields back to back), an alias,
  or a size taken from a published value or from the header's own assertion;
* tools/data/freebsd_ioctl_crosscheck.tsv: request values that golang.org/x/sys and
  Rust's libc publish for FreeBSD amd64, each checked against what is computed here.

A definition whose argument size cannot be worked out is left out and counted, with
its reason, in the output's header; a computed value that disagrees with a published
one stops the generator.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MKIOCTLS = "freebsd/freebsd-src lib/libsysdecode/mkioctls @ ec014502eee7a7d3a7e4d71e41a1e1dbc8a69dce"

# <sys/ioccom.h>: direction bits, and the 13-bit parameter length field.
IOC_VOID, IOC_OUT, IOC_IN = 0x20000000, 0x40000000, 0x80000000
IOCPARM_MASK = (1 << 13) - 1
DIRECTIONS = {"_IO": IOC_VOID, "_IOWINT": IOC_VOID, "_IOR": IOC_OUT, "_IOW": IOC_IN,
              "_IOWR": IOC_IN | IOC_OUT}

# amd64 (LP64) sizes of C scalars and FreeBSD's typedefs of them; alignment = size.
_SCALARS = {
    1: "char signed_char unsigned_char u_char int8_t uint8_t u_int8_t bool _Bool "
       "sa_family_t __uint8_t __int8_t",
    2: "short unsigned_short u_short int16_t uint16_t u_int16_t mode_t __uint16_t __int16_t",
    4: "int unsigned unsigned_int u_int int32_t uint32_t u_int32_t enum pid_t uid_t gid_t "
       "in_addr_t socklen_t float lwpid_t fflags_t blksize_t __uint32_t __int32_t "
       "in_port_t_pad clock_t",
    8: "long unsigned_long u_long long_long unsigned_long_long int64_t uint64_t u_int64_t "
       "quad_t u_quad_t off_t size_t ssize_t time_t suseconds_t dev_t ino_t nlink_t id_t "
       "caddr_t vm_offset_t vm_paddr_t vm_size_t vm_ooffset_t uintptr_t intptr_t ptr double "
       "__uint64_t __int64_t daddr_t sbintime_t key_t rlim_t register_t",
}
SCALARS = {name: size for size, names in _SCALARS.items() for name in names.split()}
SCALARS["in_port_t"] = 2
del SCALARS["in_port_t_pad"]

# Published values that are older than the headers read, with the reason; any other
# disagreement stops the generator.
KNOWN_DIFFERENCES = {
    ("golang.org/x/sys", "SIOCAIFADDR"):
        "x/sys predates ifra_vhid in struct ifaliasreq (64 bytes then, 68 now) and the "
        "renumbering to 43; the old request is OSIOCAIFADDR in the headers read",
    ("golang.org/x/sys", "SIOCSIFPHYADDR"):
        "x/sys predates ifra_vhid in struct ifaliasreq (64 bytes then, 68 now)",
    ("golang.org/x/sys", "DIOCSKERNELDUMP"):
        "x/sys has the older request, _IOW('d', 144) of an 80-byte struct; the headers "
        "read number it 145, with kda_index and the netdump addresses in the struct",
}


@dataclass
class Layout:
    size: int
    align: int


@dataclass
class Types:
    """The type table: scalars built in, the rest from freebsd_ioctl_types.tsv."""

    rows: dict[str, tuple[str, str]]
    seen: set[str] = field(default_factory=set)

    def layout(self, name: str, depth: int = 0) -> Layout | None:
        name = " ".join(name.split())
        if depth > 30:
            return None
        if name.endswith("*"):
            return Layout(8, 8)
        match = re.fullmatch(r"(.+?)\s*((?:\[\d+\])+)", name)
        if match:
            inner = self.layout(match.group(1), depth + 1)
            if inner is None:
                return None
            count = 1
            for dim in re.findall(r"\d+", match.group(2)):
                count *= int(dim)
            return Layout(inner.size * count, inner.align)
        key = name.replace(" ", "_") if name.split()[0] in ("unsigned", "signed", "long") \
            else name
        if key in SCALARS:
            return Layout(SCALARS[key], SCALARS[key])
        if name.startswith("enum "):
            return Layout(4, 4)
        if name not in self.rows:
            return None
        self.seen.add(name)
        kind, body = self.rows[name]
        if kind == "=":
            return self.layout(body, depth + 1)
        if kind == "size":
            size, _, align = body.partition(" ")[0].partition("/")
            return Layout(int(size), int(align) if align else 8)
        split = [_bit_field(m) for m in _split_members(body)]
        members = [self.layout(m, depth + 1) for m, _ in split]
        if any(m is None for m in members) or not members:
            return None
        laid = [m for m in members if m is not None]
        align = max(m.align for m in laid)
        if kind == "union":
            if any(width is not None for _, width in split):
                return None
            return Layout(_round(max(m.size for m in laid), align), align)
        if kind == "packed":
            # __packed: no padding anywhere, alignment 1; its bit-fields follow one
            # another bit by bit, across storage units, and a member that is not a
            # bit-field starts at the next byte
            bits = 0
            for member, (_, width) in zip(laid, split, strict=True):
                bits = _round(bits, 8) + member.size * 8 if width is None else bits + width
            return Layout(_round(bits, 8) // 8, 1)
        bits = 0
        for member, (_, width) in zip(laid, split, strict=True):
            unit = member.size * 8
            if width is None:
                bits = _round(bits, member.align * 8) + unit
            elif width == 0 or bits // unit != (bits + width - 1) // unit:
                # The amd64 ABI packs a bit-field into the storage unit of its declared
                # type and starts a new unit only when it would straddle one (or at :0).
                bits = _round(bits, unit) + width
            else:
                bits += width
        return Layout(_round(_round(bits, 8) // 8, align), align)


def _round(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def _split_members(body: str) -> list[str]:
    return [m.strip() for m in body.split(",") if m.strip()]


def _bit_field(member: str) -> tuple[str, int | None]:
    """`u_char:3` is a bit-field of 3 bits of a u_char unit; other members have no width."""
    typ, colon, width = member.partition(":")
    return (typ.strip(), int(width)) if colon else (member, None)


@dataclass
class Definition:
    name: str
    macro: str
    group: int
    number: int | None  # None: a macro of a header not read
    argtype: str
    header: str


@dataclass
class Defs:
    sources: list[str]
    headers: list[tuple[str, str, str]]  # installed name, source path, repository @ commit
    definitions: list[Definition]


def read_defs(path: Path) -> Defs:
    defs = Defs([], [], [])
    source = header = ""
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0] == "%source":
            source = fields[1]
            defs.sources.append(source)
        elif fields[0] == "%header":
            header = fields[1]
            defs.headers.append((header, fields[2], source))
        else:
            name, macro, group, number, argtype = (fields + [""])[:5]
            num = None if number.startswith("?") else int(number, 0)
            defs.definitions.append(Definition(name, macro, _char(group), num, argtype, header))
    return defs


def _char(text: str) -> int:
    if len(text) == 3 and text[0] == text[2] == "'":
        return ord(text[1])
    return int(text, 0)


def read_types(path: Path) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, kind, body = line.split("\t")[:3]
        if name in rows:
            raise SystemExit(f"{path.name}: {name} described twice")
        rows[name] = (kind, body)
    return rows


def read_crosscheck(path: Path) -> dict[str, dict[str, int]]:
    """name -> {source: value} for the published values."""
    out: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        source, name, value = line.split("\t")
        out.setdefault(name, {})[source] = int(value, 16)
    return out


@dataclass
class Result:
    entries: list[tuple[str, int]]
    skipped: Counter[str]
    skipped_names: dict[str, list[str]]
    checked: Counter[str]
    by_header: Counter[str]
    differ: list[str] = field(default_factory=list)


def compute(defs: Defs, types: Types, published: dict[str, dict[str, int]]) -> Result:
    result = Result([], Counter(), {}, Counter(), Counter())
    for d in defs.definitions:
        if d.number is None:
            reason = "number is a mode of sys/fbio.h, which was not read"
            result.skipped[d.header] += 1
            result.skipped_names.setdefault(reason, []).append(d.name)
            continue
        if d.macro == "_IO":
            size: int | None = 0
        elif d.macro == "_IOWINT":
            size = 4
        else:
            layout = types.layout(d.argtype)
            size = None if layout is None else layout.size
        if size is None:
            reason = f"size of {d.argtype} not known"
            result.skipped[d.header] += 1
            result.skipped_names.setdefault(reason, []).append(d.name)
            continue
        value = DIRECTIONS[d.macro] | ((size & IOCPARM_MASK) << 16) | (d.group << 8) | d.number
        row = types.rows.get(d.argtype, ("", ""))
        for source, other in published.get(d.name, {}).items():
            if row[0] == "size" and d.name in row[1].split():
                continue  # the value this type's size was taken from checks nothing
            if other == value:
                result.checked[source] += 1
            elif (source, d.name) in KNOWN_DIFFERENCES:
                result.differ.append(f"{d.name} ({source} {other:#x}: "
                                     f"{KNOWN_DIFFERENCES[source, d.name]})")
            else:
                raise SystemExit(f"{d.name}: computed {value:#x}, {source} says {other:#x}")
        result.entries.append((d.name, value))
        result.by_header[d.header] += 1
    # mkioctls' chain is in `cpp -dM` order, which clang sorts by macro name: of two
    # names with one value, the first in byte order is the one kdump prints.
    result.entries.sort(key=lambda entry: entry[0].encode())
    names = [name for name, _ in result.entries]
    if len(names) != len(set(names)):
        dup = sorted(n for n, c in Counter(names).items() if c > 1)
        raise SystemExit(f"defined twice: {dup}")
    return result


def render(defs: Defs, result: Result) -> str:
    total = len(defs.definitions)
    skipped = sum(result.skipped.values())
    lines = [
        "# FreeBSD ioctl request names (sysdecode_ioctlname), amd64: value TAB name",
        "# Generated by tools/gen_ioctls.py from tools/data/freebsd_ioctl_*.tsv; do not edit.",
        f"# rules: {MKIOCTLS}",
        "# Rows sorted by name in byte order (clang's cpp -dM order, which mkioctls'",
        "#   if/else chain keeps): of two names sharing a value, the first is kdump's.",
        f"# definitions read: {total}; computed: {len(result.entries)}; skipped: {skipped}",
        "# checked against published values: " + ", ".join(
            f"{source} {count}" for source, count in sorted(result.checked.items())),
    ]
    lines += [f"# published value older than the headers: {item}" for item in result.differ]
    lines.append("# headers (installed name: computed/skipped):")
    for header, _, _ in defs.headers:
        lines.append(f"#   {header}: {result.by_header[header]}/{result.skipped[header]}")
    lines += [f"{value:#x}\t{name}" for name, value in result.entries]
    return "\n".join(lines) + "\n"


def report(result: Result) -> str:
    lines = []
    for reason, names in sorted(result.skipped_names.items()):
        lines.append(f"{len(names):4d}  {reason}: {' '.join(names[:6])}"
                     + (" ..." if len(names) > 6 else ""))
    return "\n".join(lines)


def clang_check_source(rows: dict[str, tuple[str, str]]) -> str:
    """C declaring every listed type with the same members, and a _Static_assert of
    the size computed here: compiled for x86_64-unknown-freebsd, it checks the layout
    rules against a real compiler's (the member lists themselves are the data's)."""
    types = Types(rows)
    sized = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}
    scalars = {name: sized[size] for name, size in SCALARS.items()}

    def ident(name: str) -> str:
        return "T_" + re.sub(r"\W", "_", name)

    def decl(typ: str, name: str) -> str:
        typ = " ".join(typ.split())
        match = re.fullmatch(r"(.+?)\s*((?:\[\d+\])+)", typ)
        typ, dims = (match.group(1), match.group(2)) if match else (typ, "")
        key = typ.replace(" ", "_") if typ.split()[0] in ("unsigned", "signed", "long") else typ
        if typ.endswith("*"):
            return f"void *{name}{dims}"
        if key in scalars:
            return f"{scalars[key]} {name}{dims}"
        return f"int {name}{dims}" if typ.startswith("enum ") else f"{ident(typ)} {name}{dims}"

    out: list[str] = []
    done: set[str] = set()

    def emit(name: str) -> None:
        if name in done or name not in rows:
            return
        done.add(name)
        kind, body = rows[name]
        members = [body] if kind == "=" else [] if kind == "size" else _split_members(body)
        for member in members:
            base = re.sub(r"\s*(\[\d+\])+$", "", " ".join(_bit_field(member)[0].split()))
            if not base.endswith("*"):
                emit(base)
        if kind == "=":
            out.append(f"typedef {decl(body, ident(name))};")
        elif kind == "size":
            # a type known only by its size: an opaque block of that size and alignment
            lay = types.layout(name)
            assert lay is not None
            out.append(f"typedef struct {{ _Alignas({lay.align}) unsigned char b[{lay.size}]; }} "
                       f"{ident(name)};")
        elif kind in ("struct", "union", "packed"):
            fields = " ".join(
                decl(typ, f"f{i}") + ("" if width is None else f" : {width}") + ";"
                for i, (typ, width) in enumerate(map(_bit_field, members)))
            head = "struct __attribute__((packed))" if kind == "packed" else kind
            out.append(f"typedef {head} {{ {fields} }} {ident(name)};")

    for name in rows:
        emit(name)
    for name in rows:
        layout = types.layout(name)
        if layout is not None and rows[name][0] != "size":
            out.append(f'_Static_assert(sizeof({ident(name)}) == {layout.size}, "{name}");')
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path,
                        default=ROOT / "ktrace_cli/abi/data/freebsd_ioctls.tsv")
    parser.add_argument("--skipped", action="store_true",
                        help="list the skipped definitions by reason on stdout")
    parser.add_argument("--clang-check", type=Path, metavar="FILE",
                        help="also write C that asserts each computed size, for "
                        "clang --target=x86_64-unknown-freebsd -fsyntax-only")
    args = parser.parse_args(argv)
    defs = read_defs(DATA / "freebsd_ioctl_defs.tsv")
    types = Types(read_types(DATA / "freebsd_ioctl_types.tsv"))
    result = compute(defs, types, read_crosscheck(DATA / "freebsd_ioctl_crosscheck.tsv"))
    args.output.write_text(render(defs, result))
    if args.skipped:
        print(report(result))
    if args.clang_check:
        args.clang_check.write_text(clang_check_source(types.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
