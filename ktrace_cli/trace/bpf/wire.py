"""What both sides of the bpf engine share and the client needs cheaply:
the runtime directory, the message format, and whether the engine can load.

Kept apart from service.py and loader.py so that pyktrace's side imports
neither the daemon's machinery nor ctypes: a client that finds the engine
running pays only for this module (start-up, docs/DESIGN.md).
"""

from __future__ import annotations

import os

from ktrace_cli.trace import fastjson
from ktrace_cli.trace.runtime import Runtime, open_runtime, own_subdir

RUNTIME_SUBDIR = "bpf"
OBJECT_NAME = "ktrace.bpf.o"
BTF_VMLINUX = "/sys/kernel/btf/vmlinux"
LIBBPF = "libbpf.so.1"
# Where a distribution keeps libbpf.so.1 (its loader's default paths); the
# daemon, which dlopen()s it, is the last word.
# capabilities(7): loading tracing programs takes CAP_BPF and CAP_PERFMON
# (CAP_SYS_ADMIN implies both).
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
NEEDS = "root, or CAP_BPF and CAP_PERFMON"
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64",
            "/usr/lib", "/lib", "/usr/local/lib", "/usr/local/lib64")  # fmt: skip


def runtime(create: bool = True) -> Runtime | None:
    """The bpf engine's own directory, `bpf` inside the per-user runtime directory (opened);
    None if it does not exist and `create` is false (then no bpf engine runs)."""
    base = open_runtime()
    try:
        if not create:
            try:
                os.stat(RUNTIME_SUBDIR, dir_fd=base.fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
        return own_subdir(base.fd, base.dir, RUNTIME_SUBDIR)
    finally:
        base.close()


def message(data: dict[str, object]) -> bytes:
    return fastjson.dumps(data).encode() + b"\n"


def parse(line: bytes | None) -> dict[str, object] | None:
    """One JSON object of a line, None if it is not one."""
    if line is None:
        return None
    try:
        msg = fastjson.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def object_path() -> str:
    """The committed BPF object, package data beside this module."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), OBJECT_NAME)


def _libbpf_present() -> bool:
    if any(os.path.exists(os.path.join(d, LIBBPF)) for d in LIB_DIRS):
        return True
    ld_path = os.environ.get("LD_LIBRARY_PATH", "")
    return any(d and os.path.exists(os.path.join(d, LIBBPF)) for d in ld_path.split(":"))


def _opens(name: str) -> bool:
    import ctypes  # only here: the usual client finds the library by its file

    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def find_libbpf() -> str | None:
    """The name under which libbpf opens (dlopen), or None."""
    if _opens(LIBBPF):
        return LIBBPF
    import ctypes.util

    name = ctypes.util.find_library("bpf")  # runs ldconfig: only when the usual name fails
    return name if name and _opens(name) else None


def effective_caps() -> int:
    """This process's effective capability set (CapEff of /proc/self/status); 0 if unreadable."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def may_load() -> bool:
    """Whether this process may load and attach the engine's tracing programs.

    The programs see every process on the machine, but the engine records
    only the processes its owner may trace (FreeBSD's rule, applied by the
    daemon): a capability holder is not root there.
    """
    if os.geteuid() == 0:
        return True
    caps = effective_caps()
    both = 1 << CAP_BPF | 1 << CAP_PERFMON
    return bool(caps & 1 << CAP_SYS_ADMIN) or caps & both == both


def why_unavailable() -> str | None:
    """None when the engine can be tried here, else the reason it cannot.

    Files are looked at first; libbpf is opened (ctypes) only when it is not
    where distributions put it, so pyktrace pays no dlopen per request.
    """
    if not may_load():
        return f"the bpf engine needs {NEEDS}"
    if not os.path.exists(BTF_VMLINUX):
        return f"the kernel exposes no BTF ({BTF_VMLINUX} is missing)"
    if not _libbpf_present() and find_libbpf() is None:
        return f"{LIBBPF} is not installed (Debian: apt-get install libbpf1)"
    if not os.path.isfile(object_path()):
        return f"{OBJECT_NAME} is missing from the package (make bpf)"
    return None
