"""FreeBSD's ioctl request names: the table mkioctls builds, regenerated from committed data.

The table is tools/gen_ioctls.py's output from the definitions, argument layouts
and published values under tools/data/; docs/TABLES.md says where each came from.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ktrace_cli.abi import sysdecode
from ktrace_cli.format.records import Syscall
from tests.kdump_helpers import ctor, rec, run_pykdump, run_pykdump_args, trace_bytes

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "real"
SYS_IOCTL = 54

sys.path.insert(0, str(ROOT / "tools"))
try:
    import gen_ioctls as gen
finally:
    sys.path.pop(0)


def test_committed_table_is_the_generators_output(tmp_path: Path) -> None:
    out = tmp_path / "ioctls.tsv"
    assert gen.main(["-o", str(out)]) == 0
    committed = ROOT / "ktrace_cli" / "abi" / "data" / "freebsd_ioctls.tsv"
    assert out.read_text() == committed.read_text()


def test_header_counts_add_up() -> None:
    text = (ROOT / "ktrace_cli" / "abi" / "data" / "freebsd_ioctls.tsv").read_text()
    head = [line for line in text.splitlines() if line.startswith("#")]
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    summary = next(line for line in head if line.startswith("# definitions read:"))
    read, computed, skipped = (int(part.split(": ")[1]) for part in summary[2:].split("; "))
    assert computed == len(rows) and read == computed + skipped
    start = head.index("# headers (installed name: computed/skipped):") + 1
    per_header = [line.rsplit(": ", 1)[1] for line in head[start:]]
    assert sum(int(c.split("/")[0]) for c in per_header) == computed
    assert sum(int(c.split("/")[1]) for c in per_header) == skipped


def test_layout_follows_natural_alignment() -> None:
    types = gen.Types({
        "struct a": ("struct", "char, int"),          # 1 + 3 padding + 4
        "struct b": ("struct", "int, char *"),         # 4 + 4 padding + 8
        "struct c": ("struct", "char[30], int, u_long, int"),  # 32 + 4 + 8 + 4, padded to 8
        "union u": ("union", "u_char[5], int"),         # 5 rounded to int's alignment
        "alias_t": ("=", "struct a"),
        "struct d": ("struct", "u_short, struct a"),   # 2 + 2 padding + 8
        "struct e": ("struct", "int, struct unknown"),
    })
    sizes = {name: types.layout(name) for name in
             ("struct a", "struct b", "struct c", "union u", "alias_t", "struct d", "struct e",
              "unsigned long long", "oss_x[3]", "int[2][3]", "struct anything *")}
    assert {name: (lay.size if lay else None) for name, lay in sizes.items()} == {
        "struct a": 8, "struct b": 16, "struct c": 56, "union u": 8, "alias_t": 8,
        "struct d": 12, "struct e": None, "unsigned long long": 8, "oss_x[3]": None,
        "int[2][3]": 24, "struct anything *": 8}


def _definition(name: str, macro: str, argtype: str = "", number: int = 1) -> gen.Definition:
    return gen.Definition(name, macro, ord("x"), number, argtype, "x.h")


def test_generator_encodes_skips_and_orders_as_mkioctls() -> None:
    defs = gen.Defs([], [("x.h", "sys/x.h", "repo @ c")], [
        _definition("XB", "_IOW", "int"),
        _definition("XA", "_IOW", "int"),  # same value: the first name in byte order wins
        _definition("XC", "_IOWR", "struct nobody"),
        _definition("XD", "_IOWINT", number=2),
        _definition("XE", "_IOR", "=300", number=3),
        gen.Definition("XF", "_IO", ord("x"), None, "", "x.h"),
    ])
    result = gen.compute(defs, gen.Types({}), {"XD": {"somewhere": 0x20047802}})
    assert result.entries == [("XA", 0x80047801), ("XB", 0x80047801), ("XD", 0x20047802),
                              ("XE", 0x412C7803)]
    assert result.skipped["x.h"] == 2 and result.checked["somewhere"] == 1
    with pytest.raises(SystemExit, match="XA: computed 0x80047801, elsewhere says 0x80087801"):
        gen.compute(defs, gen.Types({}), {"XA": {"elsewhere": 0x80087801}})


def test_published_values_agree_with_the_table() -> None:
    published = gen.read_crosscheck(gen.DATA / "freebsd_ioctl_crosscheck.tsv")
    by_name = {name: value for value, name in sysdecode.ioctl_table().rows}
    checked = 0
    for name, sources in published.items():
        for source, value in sources.items():
            if (source, name) not in gen.KNOWN_DIFFERENCES:
                assert by_name[name] == value, (name, source)
                checked += 1
    assert checked > 200


def test_table_keeps_mkioctls_order_and_counts() -> None:
    rows = sysdecode.ioctl_table().rows
    names = [name for _, name in rows]
    assert names == sorted(names, key=str.encode)
    assert len(rows) == 765
    # _IOW('c', 9, <4 bytes>) in sys/cdio.h and sys/consio.h: the if/else chain of
    # sorted macro names reaches CDIOCSETPATCH first.
    assert sysdecode.ioctlname(0x80046309) == "CDIOCSETPATCH"
    assert sysdecode.ioctlname(0x2000630D) == "CDIOCSETSTEREO"
    # _IOW('P', 4, int) is both acpiio.h's ACPIIO_REQSLPSTATE and soundcard.h's
    # SNDCTL_DSP_SETBLKSIZE: kdump names an OSS call after the ACPI request.
    assert sysdecode.ioctlname(0x80045004) == "ACPIIO_REQSLPSTATE"


# Requests from headers the first table lacked, each value worked out by hand from
# <sys/ioccom.h> and the amd64 layout of its argument.
NEW_REQUESTS = [
    # sys/mdioctl.h: struct md_ioctl, 448 bytes (two pointers, off_t, int md_pad[96])
    (0xC1C06D00, "MDIOCATTACH"),
    # sys/soundcard.h: _IOWR('P', 2, int); _IOR('P', 12, audio_buf_info) of 4 ints
    (0xC0045002, "SNDCTL_DSP_SPEED"),
    (0x4010500C, "SNDCTL_DSP_GETOSPACE"),
    (0xC0045005, "SNDCTL_DSP_SETFMT"),
    # sys/kbio.h: _IOR('K', 6, int); _IOR('K', 101, keyboard_info_t) of 36 bytes
    (0x40044B06, "KDGKBMODE"),
    (0x40244B65, "KDGKBINFO"),
    # sys/consio.h: _IOWR('c', 73, vid_info_t) of 24 bytes; _IOWINT('v', 5)
    (0xC0186349, "CONS_GETINFO"),
    (0x20047605, "VT_ACTIVATE"),
    # sys/cdio.h: _IO('c', 24)
    (0x20006318, "CDIOCEJECT"),
    # sys/mouse.h: _IOR('M', 1, mousehw_t) of 5 ints
    (0x40144D01, "MOUSE_GETHWINFO"),
    # sys/mtio.h: struct mtget, 4 shorts and 17 int32_t (the __FreeBSD__ members)
    (0x404C6D02, "MTIOCGET"),
    # sys/fbio.h: struct video_info, 192 bytes; consio.h's SW_VGA13 is _IO('S', M_VGA13)
    (0xC0C04667, "FBIO_MODEINFO"),
    (0x2000531C, "SW_VGA13"),
    # sys/pciio.h: struct pci_io, a 4-aligned struct pcisel (7 bytes + 1) and 3 ints
    (0xC0147002, "PCIOCREAD"),
    # sys/ioctl_compat.h (mkioctls defines COMPAT_43TTY): struct sgttyb of 6 bytes
    (0x40067408, "TIOCGETP"),
    # dev/evdev/input.h: struct ff_effect, 14 bytes then an 8-aligned union of 32
    (0x80304580, "EVIOCSFF"),
    (0x20044590, "EVIOCGRAB"),
    # dev/usb/usb_ioctl.h: struct usb_fs_open, 13 bytes padded to 16
    (0xC01055C5, "USB_FS_OPEN"),
    # sys/gpio.h: struct gpio_pin, uint32_t, char[64], two uint32_t
    (0xC04C4701, "GPIOGETCONFIG"),
    # dev/acpica/acpiio.h: union acpi_battery_ioctl_arg, led by the 256-byte acpi_bix
    (0xC1004210, "ACPIIO_BATT_GET_BIX"),
    # sys/cpuctl.h: cpuctl_msr_args_t, an int padded before a uint64_t
    (0xC0106301, "CPUCTL_RDMSR"),
    # netinet6/in6_var.h, which the first table left out: struct in6_ndireq of 72 bytes
    (0xC048696C, "SIOCGIFINFO_IN6"),
]


@pytest.mark.parametrize(("request_", "name"), NEW_REQUESTS)
def test_new_requests_print_as_kdump_names_them(tmp_path: Path, request_: int, name: str) -> None:
    result = run_pykdump(tmp_path, [ctor(), rec(Syscall(SYS_IOCTL, (3, request_, 0x7FFFFFFFE000)))])
    assert (result.status, result.err) == (0, "")
    assert result.text == f"  2035 cat      CALL  ioctl(0x3,{name},0x7fffffffe000)\n"


def test_a_skipped_request_stays_a_number(tmp_path: Path) -> None:
    # CONS_MODEINFO takes video_info_t from sys/fbio.h, which was not read: its size is
    # unknown, so the request is left out rather than guessed, and prints as kdump's %#lx.
    result = run_pykdump(tmp_path, [ctor(), rec(Syscall(SYS_IOCTL, (3, 0xC0646366, 0)))])
    assert result.text == "  2035 cat      CALL  ioctl(0x3,0xc0646366,0)\n"


def test_real_freebsd_ioctl_lines() -> None:
    def ioctls(folder: str) -> list[str]:
        result = run_pykdump_args("-f", str(REAL / folder / "ktrace.out"))
        return [line for line in result.text.splitlines() if "CALL  ioctl(" in line]

    assert ioctls("freebsd-amd64-v0-denoble") == [
        "   825 ldpreload CALL  ioctl(0x1,TIOCGETA,0x7fffffffe370)"]
    assert ioctls("freebsd-amd64-v1-mcsh") == [
        f" 56520 mcsh     CALL  ioctl({fd},TIOCGETA,0x8203f9114)" for fd in ("0x12", "0x11", "0x10")]
    nfsp = " 17990 proxy.ganesha.nfsd CALL  ioctl(0x3,"
    assert ioctls("freebsd-i386-v0-nfsp") == [
        nfsp + "TIOCGETA,0xbfbcb910)", nfsp + "TIOCGETA,0xbfbcb8c0)",
        nfsp + "TIOCGETA,0xbfbfe0c0)", nfsp + "TIOCGETA,0xbfbfe0c0)",
        *[nfsp + "SIOCGIFAFLAG_IN6,0xbfbfe198)"] * 3]


def test_table_is_read_only_when_an_ioctl_is_decoded(tmp_path: Path) -> None:
    # Start-up: a trace without ioctl never reads the file; the first ioctl does.
    code = (
        "import sys\n"
        "from ktrace_cli.abi import sysdecode\n"
        "from ktrace_cli.cli import pykdump\n"
        "pykdump.main(['-f', sys.argv[1]])\n"
        "print(sysdecode.ioctl_table.cache_info().currsize, file=sys.stderr)\n"
    )
    counts = []
    for call in (Syscall(4, (1, 0, 0)), Syscall(SYS_IOCTL, (1, 0x40087468, 0))):
        path = tmp_path / "t.out"
        path.write_bytes(trace_bytes([ctor(), rec(call)]))
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                             text=True, check=True, cwd=ROOT)
        counts.append(out.stderr.strip())
    assert counts == ["0", "1"]


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_layouts_agree_with_clang_for_freebsd_amd64(tmp_path: Path) -> None:
    # The member lists are data; this checks the generator lays them out as a FreeBSD
    # amd64 compiler does (padding, union and array alignment, the typedef sizes).
    source = tmp_path / "layouts.c"
    source.write_text(gen.clang_check_source(gen.read_types(gen.DATA / "freebsd_ioctl_types.tsv")))
    assert source.read_text().count("_Static_assert") > 150
    result = subprocess.run(["clang", "--target=x86_64-unknown-freebsd14", "-fsyntax-only",
                             str(source)], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
    # and a wrong size is caught
    source.write_text(source.read_text() + '_Static_assert(sizeof(T_struct_mtget) == 72, "x");\n')
    result = subprocess.run(["clang", "--target=x86_64-unknown-freebsd14", "-fsyntax-only",
                             str(source)], capture_output=True, text=True)
    assert result.returncode != 0
