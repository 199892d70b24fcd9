"""The package's import graph: no cycle, no borrowed private names, no cycle dodged inside a function.

Every import counts as an edge, wherever it is written (module level, under
TYPE_CHECKING or inside a function), so an import moved into a function
to break a cycle still shows the cycle. Imports inside functions are
allowed only for start-up speed, each one listed in LAZY with the reason,
so that a command loads only what its options need.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ktrace_cli

ROOT = Path(ktrace_cli.__file__).parent
PACKAGE = "ktrace_cli"

# (importing module, imported module): imports written inside a function
# only so that a command does not load what it may never use.
LAZY = {
    # pykdump loads each stage of the pipeline only when its options need it.
    ("cli.pykdump", "decode.filters"),
    ("cli.pykdump", "format.reader"),
    ("cli.pykdump", "render.options"),
    ("cli.pykdump", "decode.events"),
    ("cli.pykdump", "decode.fdtable"),
    ("cli.pykdump", "decode.pipeline"),
    ("cli.pykdump", "decode.select_calls"),
    ("cli.pykdump", "decode.calls"),
    ("cli.pykdump", "render.calls_json"),
    ("cli.pykdump", "render.calls_text"),
    ("cli.pykdump", "render.json_lines"),
    ("cli.pykdump", "render.kdump_text"),
    ("cli.pykdump", "render.color"),
    ("cli.pykdump", "format.layouts"),
    ("cli.pykdump", "render.summary"),
    ("cli.pykdump", "render.summary_more"),
    # The whole-trace views (--tree, --errors, --timeline, --diff) load only when asked.
    ("cli.pykdump", "cli.kdump_views"),
    ("cli.pykdump", "views.progress"),
    # Root's running bpf engine is asked to flush before a read (its socket exists).
    ("cli.pykdump", "trace.bpf.flush"),
    ("cli.kdump_views", "format.reader"),
    ("cli.kdump_views", "views.diff"),
    ("cli.kdump_views", "views.errors"),
    ("cli.kdump_views", "views.progress"),
    ("cli.kdump_views", "views.timeline"),
    ("cli.kdump_views", "views.tree"),
    ("views.timeline", "decode.abi"),
    # pyktrace: the client and the seccomp filter only when a request is made.
    ("cli.pyktrace", "trace.client"),
    ("cli.pyktrace", "trace.seccomp"),
    ("cli.pyktrace", "trace.ptrace"),
    ("cli.pyktrace", "cli.live"),
    # The eBPF backend (libbpf loader, its daemon) only with --engine=bpf or
    # auto, or for root's clear, which clears a running bpf engine too.
    ("cli.pyktrace", "trace.bpf.client"),
    # pyktrace's bpf client loads the daemon's modules only to start one.
    ("trace.bpf.client", "trace.bpf.service"),
    # --live: kdump's renderers and the seccomp filter only as its options need.
    ("cli.live", "cli.pykdump"),
    ("cli.live", "format.layouts"),
    ("cli.live", "format.reader"),
    ("cli.live", "render.calls_text"),
    ("cli.live", "render.color"),
    ("cli.live", "render.kdump_text"),
    ("cli.live", "render.options"),
    ("cli.live", "trace.ptrace"),
    ("cli.live", "trace.seccomp"),
    ("cli.pyktrace_args", "format.writer"),
    # click (its own start-up is larger than the rest of a plain run's) only
    # for a command line cli/fastargs.py cannot read: --help, --version, errors.
    ("cli.pyktrace", "cli.pyktrace_click"),
    ("cli.pykdump", "cli.pykdump_click"),
    # A client that finds the engine running never loads the double fork,
    # nor ctypes unless Yama asks it to name its tracer; the engine's own
    # modules are loaded by the engine's process, after the fork.
    ("trace.client", "trace.detach"),
    ("trace.client", "trace.ptrace_daemon"),
    ("trace.client", "trace.ptrace"),
    # The Linux tables (a few ms) load only in the engine, not in the client;
    # the i386 rules only once a process makes an int $0x80 call.
    ("trace.rules", "abi.linux_i386"),
    ("trace.engine", "trace.abi32"),
    # The engine's cold start: typed records only for tests and tools, the
    # diagnosis of a refusal only when one is refused.
    ("format.writer", "format.records"),
    ("trace.ktrops", "trace.diagnose"),
    ("trace.ptrace_backend", "trace.diagnose"),
    ("trace.signals", "abi.linux"),
    ("trace.signals", "abi.linuxulator"),
    ("trace.convert", "abi.linux"),
    ("trace.bpf.service", "abi.linux"),
    ("trace.bpf.service", "abi.linuxulator"),
    ("trace.bpf.service", "abi.linux_i386"),
    # Name tables and decoders load when the first record needing them comes.
    ("decode.abi", "abi.linuxulator"),
    ("render.calls_text", "abi.linux"),
    ("render.calls_text", "decode.filters"),
    ("render.calls_text", "render.kdump_text"),
    ("render.bodies", "decode.freebsd_args"),
    ("render.bodies", "decode.linux_calls"),
    ("render.bodies", "abi.linux"),
    ("render.bodies", "render.stru_text"),
    ("render.bodies", "abi.sysdecode"),
    ("render.json_lines", "decode.stru"),
    ("decode.filters", "abi.freebsd"),
    ("decode.filters", "abi.linux"),
    ("decode.fdtable", "decode.stru"),
    ("decode.calls", "abi.linux"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(base: str, name: str | None) -> str | None:
    """The package module `from base import name` loads (base itself if name is not a module)."""
    if base != PACKAGE and not base.startswith(PACKAGE + "."):
        return None
    short = base[len(PACKAGE) + 1 :] if base != PACKAGE else ""
    if name is not None:
        sub = f"{short}.{name}" if short else name
        if sub in MODULES:
            return sub
    return short


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.edges: list[tuple[str, int, bool]] = []  # (module, line, inside a function)
        self.private: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {}  # local name -> package module
        self.depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            target = _resolve(a.name, None)
            if target is not None:
                self.edges.append((target, node.lineno, self.depth > 0))
                if a.asname:
                    self.aliases[a.asname] = target

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module is None or node.level:
            self.private.append((node.lineno, "relative import"))
            return
        for a in node.names:
            target = _resolve(node.module, a.name)
            if target is None:
                continue
            self.edges.append((target, node.lineno, self.depth > 0))
            if a.name.startswith("_") and not a.name.startswith("__"):
                self.private.append((node.lineno, f"{node.module}.{a.name}"))
            if target != _resolve(node.module, None):  # a module, not a name in one
                self.aliases[a.asname or a.name] = target

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (isinstance(node.value, ast.Name) and node.value.id in self.aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):  # fmt: skip
            self.private.append((node.lineno, f"{self.aliases[node.value.id]}.{node.attr}"))
        self.generic_visit(node)


def _scan() -> dict[str, _Imports]:
    out = {}
    for mod, path in MODULES.items():
        v = _Imports()
        v.visit(ast.parse(path.read_text(), str(path)))
        out[mod] = v
    return out


SCAN = _scan()


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in v.edges if t != m and t in MODULES} - {""} for m, v in SCAN.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_private_names_of_other_modules() -> None:
    borrowed = [f"{m}:{line}: {what}" for m, v in SCAN.items() for line, what in v.private
                if not what.startswith(m + ".")]  # fmt: skip
    assert borrowed == []


def test_imports_inside_functions_are_listed_start_up_ones() -> None:
    lazy = {(m, t) for m, v in SCAN.items() for t, _, inside in v.edges if inside and t != m}
    assert sorted(lazy - LAZY) == []


def test_lazy_list_has_no_stale_entries() -> None:
    lazy = {(m, t) for m, v in SCAN.items() for t, _, inside in v.edges if inside}
    assert sorted(LAZY - lazy) == []
