"""--calls and call filters on the real FreeBSD trace files of tests/fixtures/real (exact lines)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.kdump_helpers import run_pykdump_args

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
NFSP = str(REAL / "freebsd-i386-v0-nfsp" / "ktrace.out")
DENOBLE = str(REAL / "freebsd-amd64-v0-denoble" / "ktrace.out")


def out(*args: str) -> list[str]:
    result = run_pykdump_args(*args)
    assert result.status == 0, result.err
    return result.text.splitlines()


def test_i386_file_descriptor_paths() -> None:
    h = " 17990 proxy.ganesha.nfsd "
    assert out("-f", NFSP, "--calls", "--path=/etc/hosts")[:4] == [
        f'{h}open("/etc/hosts",0<O_RDONLY>) = 3</etc/hosts> <0.000022>',
        f"{h}compat11.fstat(3</etc/hosts>,0xbfbfdbe0) = 0 <0.000010>",
        f'{h}read(3</etc/hosts>,"192.168.213.141 fb-client fb-cli"...,0x8000) = 1170 <0.000870>',
        f"{h}close(3</etc/hosts>) = 0 <0.000018>",
    ]
    assert out("-f", NFSP, "--calls", "-e", "@net")[:3] == [
        f"{h}socket(PF_INET,0x2<SOCK_DGRAM>,IPPROTO_UDP) = 3<socket:[AF_INET]> <0.000015>",
        f"{h}connect(3<socket:[AF_INET]>,0xbfbfe2b8,0x10) = 0 <0.000031>",
        f"{h}getsockname(3<socket:[AF_INET->2.2.2.2:1]>,0x289b0200,0xbfbfe18c) = 0 <0.000007>",
    ]


def test_amd64_calls_and_failed_filter() -> None:
    h = "   825 ldpreload "
    lines = out("-f", DENOBLE, "--calls")
    assert lines[:2] == [
        "   825 ktrace   <... ktrace resumed> = 0",
        '   825 ktrace   execve("./ldpreload",0x7fffffffe9c8,0x7fffffffe9d8) = 0 <0.000155>',
    ]
    assert f"{h}open(\"/etc/libmap.conf\",0x100000<O_RDONLY|O_CLOEXEC>) = 3</etc/libmap.conf> <0.000006>" in lines
    assert f"{h}mmap(0,0x6d,0x1<PROT_READ>,0x2<MAP_PRIVATE>,3</etc/libmap.conf>,0) = 0x800623000 <0.000004>" in lines
    failed = out("-f", DENOBLE, "--failed", "-e", "trace=compat11.lstat")
    assert failed == [
        f"{h}CALL  compat11.lstat(0x80061f800,0x7fffffffc568)",
        f'{h}NAMI  "/usr/local/etc/libmap.d"',
        f"{h}RET   compat11.lstat -1 errno 2 No such file or directory",
    ]


def test_json_objects_carry_paths_and_descriptors() -> None:
    (o,) = [json.loads(x) for x in out("-f", NFSP, "--calls", "--json", "--path=/etc/hosts", "--fd=3",
                                          "-e", "compat11.fstat", "--until=1344416745.660603")]  # fmt: skip
    assert (o["syscall"], o["fd"], o["fd_path"], o["ret"], o["dur_ns"], o["abi"]) == (
        "compat11.fstat", 3, "/etc/hosts", 0, 10000, "freebsd")
    assert o["structs"][0]["name"] == "stat" and o["structs"][0]["fields"]["size"] == 1170
