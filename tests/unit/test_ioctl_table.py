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
        # bit-fields share their type's unit until one would straddle it
        "struct f": ("struct", "u_char, u_int8_t:2, u_int8_t:7, u_int32_t"),  # 1+1+1, pad, 4
        "struct g": ("struct", "u_int:8, u_int:4, u_int:4, u_char, u_int:8, int"),  # 4 + 4
        "union h": ("union", "int:3, char"),
        # __packed: no padding, alignment 1, so an int after it is padded to 4 again
        "struct p": ("packed", "u_int16_t, u_int8_t, u_int32_t, u_int8_t"),  # 2+1+4+1
        "struct q": ("struct", "struct p, int"),  # 8 + 4
        # a packed struct's bit-fields run on across units (24 + 6 + 2 bits, then 3 + 6
        # bits straddling a byte), and a plain member starts at the next byte
        "struct r": ("packed", "u_int32_t:24, u_int32_t:6, u_int32_t:2, u_int8_t"),  # 4+1
        "struct s": ("packed", "u_int8_t:3, u_int8_t:6, u_int16_t"),  # 2 + 2
    })
    sizes = {name: types.layout(name) for name in
             ("struct a", "struct b", "struct c", "union u", "alias_t", "struct d", "struct e",
              "struct f", "struct g", "union h", "struct p", "struct q", "struct r", "struct s",
              "unsigned long long", "oss_x[3]", "int[2][3]", "struct anything *")}
    assert {name: (lay.size if lay else None) for name, lay in sizes.items()} == {
        "struct a": 8, "struct b": 16, "struct c": 56, "union u": 8, "alias_t": 8,
        "struct d": 12, "struct e": None, "struct f": 8, "struct g": 8, "union h": None,
        "struct p": 8, "struct q": 12, "struct r": 5, "struct s": 4,
        "unsigned long long": 8, "oss_x[3]": None,
        "int[2][3]": 24, "struct anything *": 8}


def _definition(name: str, macro: str, argtype: str = "", number: int = 1) -> gen.Definition:
    return gen.Definition(name, macro, ord("x"), number, argtype, "x.h")


def test_generator_encodes_skips_and_orders_as_mkioctls() -> None:
    defs = gen.Defs([], [("x.h", "sys/x.h", "repo @ c")], [
        _definition("XB", "_IOW", "int"),
        _definition("XA", "_IOW", "int"),  # same value: the first name in byte order wins
        _definition("XC", "_IOWR", "struct nobody"),
        _definition("XD", "_IOWINT", number=2),
        _definition("XE", "_IOR", "char[300]", number=3),
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
    assert len(rows) == 1341
    # _IOW('c', 9, <4 bytes>) in sys/cdio.h and sys/consio.h: the if/else chain of
    # sorted macro names reaches CDIOCSETPATCH first.
    assert sysdecode.ioctlname(0x80046309) == "CDIOCSETPATCH"
    assert sysdecode.ioctlname(0x2000630D) == "CDIOCSETSTEREO"
    # _IOW('P', 4, int) is both acpiio.h's ACPIIO_REQSLPSTATE and soundcard.h's
    # SNDCTL_DSP_SETBLKSIZE: kdump names an OSS call after the ACPI request.
    assert sysdecode.ioctlname(0x80045004) == "ACPIIO_REQSLPSTATE"
    # x86/apm_bios.h's _IO('P', 1) and _IO('P', 8) are soundcard.h's SNDCTL_DSP_SYNC
    # and SNDCTL_DSP_POST too: APMIO_ sorts first, so kdump names the APM request.
    assert sysdecode.ioctlname(0x20005001) == "APMIO_SUSPEND"
    assert sysdecode.ioctlname(0x20005008) == "APMIO_NOTHALTCPU"
    # dev/veriexec's _IO('S', 2, 3, 4, 6) join the ENCIOC_/SW_ values, and ENCIOC_
    # still sorts first: no veriexec void request ever prints under its own name.
    assert [sysdecode.ioctlname(0x20005300 | n) for n in (2, 3, 4, 6)] == [
        "ENCIOC_GETELMMAP", "ENCIOC_GETENCSTAT", "ENCIOC_SETENCSTAT", "ENCIOC_SETELMSTAT"]


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
    # sys/cdio.h: struct cd_toc_entry packs three bit-fields and a u_char in 4 bytes
    (0xC00C6306, "CDIOREADTOCENTRY"),
    # sys/dvdio.h: struct dvd_authinfo, 8 bit-fields in 2 bytes, then a u_int32_t at 8
    (0xC01863C8, "DVDIOCREPORTKEY"),
    (0xC80C63CA, "DVDIOCREADSTRUCTURE"),
    # dev/iicbus/iic.h: struct iiccmd, a u_char padded before two ints and a pointer
    (0x80186901, "I2CSTART"),
    (0x80016908, "I2CSADDR"),
    # sys/kcov.h: _IOWINT('c', 2)
    (0x20046302, "KIOENABLE"),
    # sys/bus.h: struct devreq, char[128] and an int before an 8-aligned union
    (0x80984401, "DEV_ATTACH"),
    (0xC098440E, "DEV_GET_PATH"),
    # net/if_lagg.h: struct lagg_reqport with the 32-byte struct lacp_opreq
    (0xC048698C, "SIOCGLAGGPORT"),
    (0xC050698F, "SIOCGLAGG"),
    # crypto/cryptodev.h: struct session_op of 48 bytes, struct crypt_aead of 64
    (0xC0306365, "CIOCGSESSION"),
    (0xC040636D, "CIOCCRYPTAEAD"),
    # dev/nvme/nvme.h: struct nvme_pt_command, the 64-byte command and 16-byte completion
    # the header asserts, a pointer, two uint32_t and a pointer
    (0xC0686E00, "NVME_PASSTHROUGH_CMD"),
    (0x41046E02, "NVME_GET_NSID"),
    # net/if_gre.h and net/if_ipsec.h: struct ifreq
    (0xC0206967, "GREGADDRS"),
    (0xC02069A0, "IPSECGREQID"),
    # netinet6/in6_var.h with netinet6/ip6_mroute.h's struct sioc_sg_req6 (80 bytes)
    (0xC050756A, "SIOCGETSGCNT_IN6"),
    # sys/efiio.h: struct efi_var_ioc, a uint32_t after the 16-byte struct uuid padded
    # before a pointer; struct efi_tm of 16 bytes
    (0xC0384504, "EFIIOC_VAR_GET"),
    (0x40104502, "EFIIOC_GET_TIME"),
    # sys/snoop.h: dev_t is 64 bits; sys/joystick.h and dev/ppbus/ppi.h: int and u_int8_t
    (0x40085459, "SNPGTTY"),
    (0x80044A01, "JOY_SETTIMEOUT"),
    (0x4001500A, "PPIGDATA"),
    # sys/chio.h: struct changer_set_voltag_request, three u_int16_t and a 36-byte voltag
    (0x802A6309, "CHIOSETVOLTAG"),
    # _IOR('c', 4, <4 bytes>) is sys/cdio.h's CDIOREADTOCHEADER and sys/chio.h's
    # CHIOGPICKER: the chain reaches the CD request first
    (0x40046304, "CDIOREADTOCHEADER"),
    # sys/cdrio.h: struct cdr_format_capacities, 12 bytes (a 32-bit unit of bit-fields)
    # then 32 entries of 8
    (0x410C6370, "CDRIOCREADFORMATCAPS"),
    (0x800C6371, "CDRIOCFORMAT"),
    # dev/hid/hidraw.h copies usb_ioctl.h's layouts and numbers: HIDRAW_ sorts before
    # USB_, so kdump names a USB report-descriptor request after hidraw
    (0xC0205515, "HIDRAW_GET_REPORT_DESC"),
    (0x41705570, "HIDRAW_GET_DEVICEINFO"),
    # sys/agpio.h: agp_info, three 32-bit fields then an off_t and four size_t
    (0x40384100, "AGPIOC_INFO"),
    # sys/fdcio.h: struct fd_formb, four ints and 4 + 36 * 4 bytes of format data
    (0x80A4463D, "FD_FORM"),
    # dev/evdev/uinput.h: struct uinput_ff_upload holds two 48-byte struct ff_effect
    (0xC06855C8, "UI_BEGIN_FF_UPLOAD"),
    (0x801C5504, "UI_ABS_SETUP"),
    (0x20045564, "UI_SET_EVBIT"),
    # security/audit/audit_ioctl.h: au_id_t and the 8-byte au_mask_t
    (0x400C410A, "AUDITPIPE_GET_PRESELECT_AUID"),
    # dev/smbus/smb.h: struct smbcmd, two 2-byte unions before an int and two pointers
    (0xC0306907, "SMB_READB"),
    # dev/filemon/filemon.h, dev/speaker/speaker.h, net/if_gif.h, dev/wg/if_wg.h
    (0xC0045302, "FILEMON_SET_PID"),
    (0x80085301, "SPKRTONE"),
    (0xC0206996, "GIFGOPTS"),
    (0xC02069D2, "SIOCSWG"),
    # _IO('S', 2) is consio.h's SW_B80x25, speaker.h's SPKRTUNE and cam/scsi/scsi_enc.h's
    # ENCIOC_GETELMMAP (its group ENCIOC is 's' - 040); _IOW('c', 7, <4 bytes>) is
    # consio.h's CONS_CURSORTYPE and chio.h's CHIOIELEM: the first in byte order is the
    # one kdump prints, so the enclosure requests now name consio.h's video modes
    (0x20005302, "ENCIOC_GETELMMAP"),
    (0x20005301, "ENCIOC_GETNELM"),
    (0x2000530E, "ENCIOC_GETENCID"),
    (0x20005310, "SW_CG640x350"),
    (0x80046307, "CHIOIELEM"),
    # sys/diskmbr.h: u_char[512]; sys/spigenio.h: two struct iovec
    (0x82004D81, "DIOCSMBR"),
    (0x80205300, "SPIGENIOC_TRANSFER"),
    (0x80047001, "PBIO_SETDIFF"),
    # netinet/ip_carp.h, net/if_pfsync.h: struct ifreq; net80211: struct ieee80211req,
    # three 16-bit fields after the name, padded before the pointer
    (0xC02069F5, "SIOCSVH"),
    (0xC02069F8, "SIOCGETPFSYNC"),
    (0xC02069EB, "SIOCG80211"),
    # fs/devfs/devfs.h: struct devfs_rule of 236 bytes; devfs_rsnum is a uint16_t
    (0xC0EC4400, "DEVFSIO_RADD"),
    (0x8002440A, "DEVFSIO_SUSE"),
    # dev/mmc/mmc_ioctl.h: a zero-length array of 8-aligned commands adds no size
    (0xC0084D01, "MMC_IOC_MULTI_CMD"),
    # sys/ipmi.h: struct ipmi_recv of 48 bytes, and the 24-byte struct ipmi_recv32 of
    # the requests amd64 keeps for 32-bit programs; IPMICTL_RECEIVE_MSG shares its
    # value with smb.h's SMB_OLD_TRANS and comes first
    (0xC030690C, "IPMICTL_RECEIVE_MSG"),
    (0xC018690C, "IPMICTL_RECEIVE_MSG_32"),
    # sys/iov.h and dev/usb/uftdiio.h
    (0x8010700A, "IOV_CONFIG"),
    (0xC084630A, "UFTDIIOC_READ_EEPROM"),
    # net/pfvar.h: struct pfioc_rule holds the 976-byte struct pf_rule after 2064 bytes
    # of tickets and anchors; pfioc_nv is a pointer and two size_t; pfioc_state's
    # pfsync_state_1301 is __packed (242 bytes); the altq and ifspeed requests are
    # versioned by size under one number
    (0xCBE04404, "DIOCADDRULE"),
    (0x20004401, "DIOCSTART"),
    (0xC0184413, "DIOCGETSTATENV"),
    (0xC0F24413, "DIOCGETSTATE"),
    (0xC04C4417, "DIOCNATLOOK"),
    (0xC100442D, "DIOCADDALTQV0"),
    (0xC130442D, "DIOCADDALTQV1"),
    (0xC020445C, "DIOCGIFSPEEDV1"),
    (0xC018445C, "DIOCKEEPCOUNTERS_FREEBSD13"),
    (0xC450443D, "DIOCRADDTABLES"),
    (0xC088444F, "DIOCOSFPADD"),
    (0xC080445B, "DIOCKILLSRCNODES"),
    (0xC0204432, "DIOCGETQSTATSV1"),
    # sys/ata.h: a union of an 8-aligned 24-byte struct and a 34-byte one with the
    # __packed atapi_sense; struct ata_params is 256 16-bit words
    (0xC0406164, "IOCATAREQUEST"),
    (0x42006165, "IOCATAGPARM"),
    (0xC4446105, "IOCATADEVICES"),
    (0xC09861CA, "IOCATARAIDSTATUS"),
    # cam/scsi: scsi_pass.h's group is CAM_VERSION (0x1a), scsi_sg.h's is '"'
    (0x20001A04, "CAMIOQUEUE"),
    (0xC0582285, "SG_IO"),
    (0x40202276, "SG_GET_SCSI_ID"),
    (0x80184305, "TARGIOCENABLE"),
    # net/netmap.h and net/netmap_legacy.h
    (0xC03C6992, "NIOCREGIF"),
    (0xC0586997, "NIOCCTRL"),
    (0x20006994, "NIOCTXSYNC"),
    (0xC1106996, "NIOCCONFIG"),
    # geom/geom_ctl.h and geom/gate/g_gate.h (NAME_MAX 255 strings between off_t)
    (0x80404702, "GEOM_CTL"),
    (0xCA306D00, "G_GATE_CMD_CREATE"),
    (0xC0386D04, "G_GATE_CMD_START"),
    # ipfilter (netinet/ip_*.h): struct ipfobj of 56 bytes; ip_scan.h's take a pointer.
    # _IOW('r', 60, ipfobj) is ip_fil.h's SIOCADAFR and ip_nat.h's SIOCADNAT; 61 is
    # SIOCRMAFR, SIOCRMNAT and ip_state.h's SIOCDELST, which sorts first
    (0xC0387240, "SIOCGETFS"),
    (0x8038723C, "SIOCADAFR"),
    (0x8038723D, "SIOCDELST"),
    (0xC0387256, "SIOCFUNCL"),
    (0xC030723C, "SIOCLOOKUPADDTABLE"),
    (0xC0487240, "SIOCPROXY"),
    (0xC008723C, "SIOCADSCA"),
    (0xC0387264, "SIOCPURGENAT"),
    # x86/apm_bios.h: struct apm_info of 16 u_int; the apmctl event request is group 'A'
    (0x4040500B, "APMIO_GETINFO"),
    (0x40185002, "APMIO_GETINFO_OLD"),
    (0xC018500A, "APMIO_BIOS"),
    (0x40284164, "APMIO_NEXTEVENT"),
    (0x20005065, "APMIO_REJECTLASTREQ"),
    (0x80045009, "APMIO_DISPLAY"),
    # ... and its _IO('P', 1) is now kdump's name for an OSS SNDCTL_DSP_SYNC call
    (0x20005001, "APMIO_SUSPEND"),
    # dev/ofw/openfirmio.h: struct ofiocdesc pads the int before each pointer (32
    # bytes); phandle_t is a uint32_t
    (0xC0204F01, "OFIOCGET"),
    (0xC0204F08, "OFIOCGETPROPLEN"),
    (0x40044F04, "OFIOCGETOPTNODE"),
    (0xC0044F06, "OFIOCGETCHILD"),
    # dev/veriexec/veriexec_ioctl.h: char arrays only, so no padding: 1 + 16 +
    # MAXPATHLEN + 64 bytes, 32 fingerprint bytes in the old form, 128 more with a label
    (0x84515301, "VERIEXEC_LOAD"),
    (0x8451530C, "VERIEXEC_SIGNED_LOAD"),
    (0x84315308, "VERIEXEC_SIGNED_LOAD32"),
    (0x84D1530B, "VERIEXEC_LABEL_LOAD"),
    (0xC0045305, "VERIEXEC_DEBUG_ON"),
    (0x4004530A, "VERIEXEC_GETVERSION"),
    # dev/pwm/pwmc.h: three 4-byte members and a bool, padded to 16
    (0xC0104700, "PWMGETSTATE"),
    (0xC0104701, "PWMSETSTATE"),
    # dev/ciss/cissio.h, all under #pragma pack(1): the passthrough command is 8 + 20 +
    # 48 + 2 bytes and a pointer (86), or a 4-byte buffer address in the 32-bit form
    # under one number; the 6-byte PCI info has no padding after its two bytes
    (0xC05643D2, "CCISS_PASSTHRU"),
    (0xC05243D2, "CCISS_PASSTHRU32"),
    (0x400643C8, "CCISS_GETPCIINFO"),
    (0x401043CB, "CCISS_GETNODENAME"),
    (0xC00843D3, "CCISS_GETQSTATS"),
    (0x200043D1, "CCISS_REVALIDVOLS"),
    # dev/hyperv/hv_snapshot.h: 4 + 4 + 8 + 48 bytes
    (0x40407602, "IOCHVVSSREAD"),
    (0x80407603, "IOCHVVSSWRITE"),
    # dev/mlx5/mlx5io.h: the 7-byte device address pads to 8 before a pointer; _IOWINT
    # requests carry an int's size with no direction bits for data
    (0xC0206D01, "MLX5_FWDUMP_GET"),
    (0x80086D02, "MLX5_FWDUMP_RESET"),
    (0xC0206D06, "MLX5_EEPROM_GET"),
    (0x20046D80, "MLX5_FPGA_ACCESS_TYPE"),
    (0x41006D85, "MLX5_FPGA_CAP"),
    (0xC0306D86, "MLX5_FPGA_TEMPERATURE"),
    (0xC0046D87, "MLX5_FPGA_CONNECT"),
    # dev/firewire/firewire.h: the 16-byte packet union of bit-field headers after a
    # 20-byte request and before 512 words; 70 12-byte device entries; 256 self-ID
    # words after three; a one-byte struct of two bit-fields. DUMPDMA and
    # FWOHCI_RDPHYREG share 82 with different sizes, so both keep their names
    (0xC824535C, "FW_ASYREQ"),
    (0xC34C5302, "FW_GDEVLST"),
    (0x440C5305, "FW_GTPMAP"),
    (0xC0015358, "FW_SRSTREAM"),
    (0xC0185307, "FW_GCROM"),
    (0xC0105303, "FW_SBINDADDR"),
    (0x40045301, "FW_IBUSRST"),
    (0xC0045352, "DUMPDMA"),
    (0xC0085352, "FWOHCI_RDPHYREG"),
    # dev/mfi/mfi_ioctl.h: the __packed command is 20 bytes, a 128-byte frame and 16
    # iovecs with no padding (the header's own MFI_LINUX_CMD, 0xc1144d01, is the same
    # with 8-byte iovec32s: 276 bytes); the passthrough is a 56-byte DCMD frame (its
    # scatter/gather union holds the 16-byte skinny element), a size and a pointer
    (0xC1944D01, "MFI_CMD"),
    (0x800C4D03, "MFI_SET_AEN"),
    (0xC0444366, "MFIIO_PASSTHRU"),
    (0xC1045166, "MFIIO_QUERY_DISK"),
    (0xC0085165, "MFIIO_STATS"),
    # netgraph/ng_message.h: two 32-byte names and two 32-bit fields
    (0x40484E28, "NGIOCGINFO"),
    (0x80204E29, "NGIOCSETNAME"),
    # first-generation requests, now computed from the types their headers name
    (0x402C7413, "TIOCGETA"),
    (0xC1206953, "SIOCGIFSTAT_IN6"),
    (0x80606967, "SIOCAIFPREFIX_IN6"),
]


def test_every_definition_names_its_header_and_type() -> None:
    defs = gen.read_defs(gen.DATA / "freebsd_ioctl_defs.tsv")
    headers = [installed for installed, _, _ in defs.headers]
    assert len(headers) == len(set(headers))
    # include/Makefile installs hv_snapshot.h from a directory of another name
    elsewhere = {"dev/hyperv/hv_snapshot.h": "sys/dev/hyperv/utilities/hv_snapshot.h"}
    assert all(" " not in h and (source.endswith(h.split("/", 1)[1]) or elsewhere.get(h) == source)
               for h, source, _ in defs.headers)
    untyped = [d.name for d in defs.definitions
               if d.macro not in ("_IO", "_IOWINT") and not d.argtype]
    assert untyped == []
    assert not any(d.argtype.startswith("=") for d in defs.definitions)


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


@pytest.mark.parametrize("request_", [0x8008A400, 0x801AA401, 0x8018A402,
                                      0xC0026264, 0xC0026600, 0x20006265])
def test_requests_of_headers_mkioctls_does_not_pick_stay_numbers(tmp_path: Path,
                                                                 request_: int) -> None:
    # mkioctls includes a header only if a `#define NAME _IO...` sits on one line.
    # machine/sgx.h (SGX_IOC_ENCLAVE_*) and netgraph/bluetooth's ng_btsocket.h
    # (SIOC_HCI_RAW_NODE_GET_STATE and _INIT, _IOWR('b', 100) and _IO('b', 101);
    # SIOC_L2CAP_NODE_GET_FLAGS, whose number 0x400 spills into the group byte) continue
    # every definition onto a second line, so kdump has no name for their requests.
    result = run_pykdump(tmp_path, [ctor(), rec(Syscall(SYS_IOCTL, (3, request_, 0)))])
    assert result.text == f"  2035 cat      CALL  ioctl(0x3,{request_:#x},0)\n"


def test_union_ccb_requests_are_skipped_with_their_reason() -> None:
    # union ccb is as large as cam_ccb.h's largest CCB, which is not transcribed: the
    # two requests that take it are counted as read and left out, never guessed.
    defs = gen.read_defs(gen.DATA / "freebsd_ioctl_defs.tsv")
    types = gen.Types(gen.read_types(gen.DATA / "freebsd_ioctl_types.tsv"))
    result = gen.compute(defs, types, {})
    assert result.skipped_names["size of union ccb not known"] == ["CAMIOCOMMAND",
                                                                  "CAMGETPASSTHRU"]
    assert result.skipped["cam/scsi/scsi_pass.h"] == 2
    assert result.by_header["cam/scsi/scsi_pass.h"] == 2


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
