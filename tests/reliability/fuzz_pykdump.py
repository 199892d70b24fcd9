"""Coverage-guided fuzzing of pykdump with atheris, seeded from the real trace fixtures.

Run:  python tests/reliability/fuzz_pykdump.py -atheris_runs=100000 [CORPUS_DIR ...]

The first byte of each input picks the renderer's options, the rest is the
trace file.  An input fails if pykdump raises, exits with a status other
than 0 or 1, writes more than one line to stderr or one not starting
"pykdump: ", or leaves a partial line on stdout; libFuzzer's -timeout
(10 s here unless given) catches hangs and -rss_limit_mb memory growth.
Without a corpus directory on the command line the seeds are the first
4 KiB of every tests/fixtures/real/*/ktrace.out.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ktrace_cli.cli import pykdump
    from ktrace_cli.decode import abi, events, freebsd_args, linux_args, structs  # noqa: F401
    from ktrace_cli.format import reader, records  # noqa: F401
    from ktrace_cli.render import bodies, dump, json_lines, kdump_text, summary  # noqa: F401

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
SEED_BYTES = 4096
OPTION_SETS: list[tuple[str, ...]] = [
    (), ("-n",), ("-d",), ("-H", "-T", "-E", "-R", "-c", "-A"), ("-r",), ("-S",), ("-s",),
    ("-m", "3"), ("--json",), ("--summary",), ("-t", "cnistuy"), ("-p", "1"), ("-t", "+wfp"),
]  # fmt: skip

_WORKDIR = tempfile.mkdtemp(prefix="fuzz-pykdump-")
_TRACE = os.path.join(_WORKDIR, "ktrace.out")


class _Bytes(io.BytesIO):
    def isatty(self) -> bool:
        return False


def run_one(data: bytes) -> None:
    """pykdump over `data`; AssertionError when an invariant breaks."""
    options = OPTION_SETS[data[0] % len(OPTION_SETS)] if data else ()
    with open(_TRACE, "wb") as f:
        f.write(data[1:])
    out = _Bytes()
    err = io.StringIO()
    saved = sys.stdout, sys.stderr
    wrapper = io.TextIOWrapper(out, encoding="utf-8")
    sys.stdout, sys.stderr = wrapper, err
    try:
        status = pykdump.main(["-f", _TRACE, *options])
        wrapper.flush()
    finally:
        sys.stdout, sys.stderr = saved
        wrapper.detach()
    text = err.getvalue()
    assert status in (0, 1), (options, status)
    assert (status == 1) == bool(text), (options, status, text)
    assert not text or (text.startswith("pykdump: ") and text.count("\n") == 1 and text.endswith("\n")), text
    stdout = out.getvalue()
    assert not stdout or stdout.endswith(b"\n"), (options, stdout[-80:])


def seed_corpus() -> str:
    """A directory holding the first SEED_BYTES of each real fixture, once per option set."""
    corpus = os.path.join(_WORKDIR, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for path in sorted(REAL.glob("*/ktrace.out")):
        head = path.read_bytes()[:SEED_BYTES]
        for i in range(len(OPTION_SETS)):
            with open(os.path.join(corpus, f"{path.parent.name}-{i}"), "wb") as f:
                f.write(bytes([i]) + head)
    return corpus


def main() -> None:
    argv = list(sys.argv)
    if not any(a.startswith("-timeout=") for a in argv):
        argv.append("-timeout=10")
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        argv.append(f"-artifact_prefix={_WORKDIR}/")
    if not any(a.startswith("-max_len=") for a in argv):
        argv.append(f"-max_len={2 * SEED_BYTES}")
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(seed_corpus())
    atheris.Setup(argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
