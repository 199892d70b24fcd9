"""The man pages: mandoc-lint clean, and every option the CLIs declare is documented (and no other)."""

from __future__ import annotations

import importlib
import re
import shutil
import string
import subprocess
from pathlib import Path
from types import ModuleType

import click
import pytest

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = ("pykdump.1", "pyktrace.1")

# An option entry of an mdoc options list: `.It Fl A` or `.It Fl \-json ...`.
_OPTION_ENTRY = re.compile(r"^\.It Fl (\S+)", re.MULTILINE)


def documented_options(page: str) -> set[str]:
    """The options a page describes in `.It Fl` entries, spelled as on the command line."""
    text = (MAN / page).read_text(encoding="utf-8")
    return {"-" + token.replace("\\-", "-") for token in _OPTION_ENTRY.findall(text)}


def declared_options(command: click.Command) -> set[str]:
    """Every option string click accepts for `command`, --help included."""
    opts: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            opts.update(param.opts)
            opts.update(param.secondary_opts)
    help_option = command.get_help_option(click.Context(command))
    if help_option is not None:
        opts.update(help_option.opts)
    return opts


def getopt_options(module: ModuleType) -> set[str]:
    """The options a getopt-style CLI (`parse` raising on "illegal option") accepts.

    Every letter is tried against the real parser, so the answer is the
    getopt string in force, not what its usage text claims.
    """
    fatal = module.Fatal
    opts: set[str] = set()
    for letter in string.ascii_letters:
        try:
            module.parse([f"-{letter}", "1"])
        except fatal as e:
            if str(e).startswith("illegal option"):
                continue
        opts.add(f"-{letter}")
    opts.update("--" + name.rstrip("=") for name in module.LONG_OPTIONS)
    return opts


def cli_options(module_name: str) -> set[str]:
    """Every option the CLI module declares: click introspection, or its getopt parser."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            pytest.skip(f"{module_name} does not exist yet")
        raise
    command = getattr(module, "command", None)
    if isinstance(command, click.Command):
        return declared_options(command)
    if all(hasattr(module, name) for name in ("parse", "Fatal", "LONG_OPTIONS")):
        return getopt_options(module)
    pytest.skip(f"{module_name} has neither a click `command` nor a getopt `parse` to introspect")


@pytest.mark.parametrize("page", PAGES)
def test_mandoc_lint_clean(page: str) -> None:
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.skip("mandoc is not installed (apt-get install mandoc)")
    result = subprocess.run(
        [mandoc, "-Tlint", "-W", "warning", str(MAN / page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


def test_option_entry_parsing() -> None:
    # The helper itself: short, long and long-with-value entries.
    text = ".Bl -tag\n.It Fl A\n.It Fl \\-color Ns = Ns Ar when\n.It Fl f Ar trfile\n.El\n"
    tokens = {"-" + t.replace("\\-", "-") for t in _OPTION_ENTRY.findall(text)}
    assert tokens == {"-A", "--color", "-f"}


@pytest.mark.parametrize(
    ("page", "module_name"),
    [("pykdump.1", "ktrace_cli.cli.pykdump_click"), ("pyktrace.1", "ktrace_cli.cli.pyktrace_click")],
)
def test_every_option_documented(page: str, module_name: str) -> None:
    declared = cli_options(module_name)
    documented = documented_options(page)
    assert declared - documented == set(), f"options missing from man/{page}"
    assert documented - declared == set(), f"man/{page} documents options the CLI lacks"


def test_pykdump_usage_line_in_page() -> None:
    from ktrace_cli.cli import pykdump

    text = (MAN / "pykdump.1").read_text(encoding="utf-8")
    assert pykdump.USAGE.strip() in text


def test_pykdump_json_keys_documented() -> None:
    # Every member name json_lines.py writes appears in the JSON LINES section.
    source = (Path(__file__).resolve().parents[2] / "ktrace_cli/render/json_lines.py").read_text()
    keys = set(re.findall(r'out\["(\w+)"\]', source)) | set(
        re.findall(r'^\s+"(\w+)": ', source, re.M)
    )
    text = (MAN / "pykdump.1").read_text(encoding="utf-8")
    section = text[text.index(".Sh JSON LINES") : text.index(".Sh COLOUR")]
    missing = {k for k in keys if f"\\(dq{k}\\(dq" not in section}
    assert keys and missing == set()
