"""--summary --detail / --histogram / --sort: percentiles, errnos, threads and files from joined calls."""

from __future__ import annotations

from pathlib import Path

from ktrace_cli.format.records import Genio, Namei, ProcCtor, Syscall, Sysret
from ktrace_cli.render.summary_more import Latency
from tests.kdump_helpers import LINUX64, rec, run_pykdump, run_pykdump_args
from tests.unit.test_views_tree_errors import REAL

READ, OPENAT, GETPID = 0, 257, 39
EAGAIN = 35  # as the record stores it (FreeBSD numbering); EAGAIN on Linux


def _at(payload: object, ns: int, tid: int = 50, comm: str = "cat") -> object:
    return rec(payload, pid=50, tid=tid, comm=comm, sec=1700000000, frac=ns)  # type: ignore[arg-type]


def records() -> list[object]:
    out = [_at(ProcCtor(LINUX64), 0)]
    out += [_at(Syscall(OPENAT, (0xFFFFFF9C, 1, 0)), 1000), _at(Namei(b"/data/file"), 1000),
            _at(Sysret(OPENAT, 0, 3), 5000)]  # fmt: skip
    t = 10_000
    for dur, error in ((1000, 0), (2000, 0), (500, EAGAIN), (3000, 0), (4000, 0), (100_000, 0)):
        out += [_at(Syscall(READ, (3, 0x1000, 16)), t)]
        if not error:
            out.append(_at(Genio(3, 0, b"x"), t + dur))
        out.append(_at(Sysret(READ, error, 1), t + dur))
        t += 200_000
    out += [_at(Syscall(GETPID, ()), t, tid=51, comm="worker"), _at(Sysret(GETPID, 0, 50), t + 10, tid=51, comm="worker")]
    return out


def test_detail_tables(tmp_path: Path) -> None:
    res = run_pykdump(tmp_path, records(), "--summary", "--detail")  # type: ignore[arg-type]
    assert res.status == 0, res.err
    text = res.text
    added = text[text.index("call times\n"):]
    assert added.splitlines() == [
        "call times",
        "syscall                  calls min (us) p50 (us) p95 (us) p99 (us) max (us)",
        "------------------------ ----- -------- -------- -------- -------- --------",
        "read                         6    0.500    2.000  100.000  100.000  100.000",
        "openat                       1    4.000    4.000    4.000    4.000    4.000",
        "getpid                       1    0.010    0.010    0.010    0.010    0.010",
        "",
        "errors by errno",
        "syscall                   errno calls",
        "------------------------ ------ -----",
        "read                     EAGAIN     1",
        "",
        "threads",
        "thread                   calls errors total (s)",
        "------------------------ ----- ------ ---------",
        "50 cat                       7      1  0.000115",
        "51 (pid 50) worker           1      0  0.000000",
        "",
        "files",
        "path                     calls errors total (s)",
        "------------------------ ----- ------ ---------",
        "/data/file                   7      1  0.000115",
        "",
    ]


def test_sort_keys_order_every_table(tmp_path: Path) -> None:
    def first_rows(*args: str) -> list[str]:
        text = run_pykdump(tmp_path, records(), "--summary", "--detail", *args).text  # type: ignore[arg-type]
        blocks = text.split("\n\n")
        return [block.splitlines()[3].split()[0] for block in blocks if block.startswith(("all processes", "call times"))]

    assert first_rows() == ["read", "read"]
    assert first_rows("--sort=name") == ["getpid", "getpid"]
    assert first_rows("--sort=count") == ["read", "read"]
    assert first_rows("--sort=errors") == ["read", "read"]
    # --sort applies to the per-process tables of the plain summary too.
    plain = run_pykdump(tmp_path, records(), "--summary", "--sort=name").text  # type: ignore[arg-type]
    assert [line.split()[0] for line in plain.splitlines()[3:6]] == ["getpid", "openat", "read"]
    assert "call times" not in plain


def test_histogram(tmp_path: Path) -> None:
    text = run_pykdump(tmp_path, records(), "--summary", "--histogram").text  # type: ignore[arg-type]
    hist = text[text.index("call time histograms"):].splitlines()
    assert hist[:9] == [
        "call time histograms (log2 buckets)",
        "read (6 timed calls)",
        "  [  256ns,   512ns)         1 ####################",
        "  [  512ns,   1.0us)         1 ####################",
        "  [  1.0us,   2.0us)         1 ####################",
        "  [  2.0us,   4.1us)         2 ########################################",
        "  [ 65.5us, 131.1us)         1 ####################",
        "",
        "openat (1 timed calls)",
    ]


def test_percentiles_are_nearest_rank_within_buckets() -> None:
    lat = Latency()

    class FakeCall:
        failed = False

        def __init__(self, dur: int) -> None:
            self.dur_ns = dur

    for d in [100, 110, 120, 130, 1000]:
        lat.add(FakeCall(d))  # type: ignore[arg-type]
    # 100..130 share the bucket [64, 128) but 130 is in [128, 256).
    assert (lat.percentile(50), lat.percentile(80), lat.percentile(99)) == (120.0, 130.0, 1000.0)
    assert (lat.min_ns, lat.max_ns, Latency().percentile(50)) == (100, 1000, None)


def test_freebsd_summary_detail() -> None:
    text = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-rkhack" / "ktrace.out"), "--summary", "--detail").text
    added = text[text.index("errors by errno\n"):].splitlines()
    assert added[:21] == [
        "errors by errno",
        "syscall                   errno calls",
        "------------------------ ------ -----",
        "open                     ENOENT     1",
        "execve                   ENOENT     1",
        "readlink                 ENOENT     1",
        "",
        "threads",
        "thread                   calls errors total (s)",
        "------------------------ ----- ------ ---------",
        "100048 (pid 1077) ls       109      3  0.008083",
        "",
        "files",
        "path                     calls errors total (s)",
        "------------------------ ----- ------ ---------",
        "/bin/ls                      1      0  0.003492",
        "/lib/libncurses.so.8         7      0  0.000789",
        "/sbin/ls                     1      1  0.000687",
        "/lib/libutil.so.8            7      0  0.000676",
        "/var/run/ld-elf.so.hints     5      0  0.000387",
        ".                           15      0  0.000102",  # the directory ls read through its descriptor
    ]
