"""cli/fastargs.py: a command line read without click gives exactly what click gives, or nothing.

Both commands read a plain command line without importing click. These
tests hold that reading to click's: the option tables against the click
commands' declarations, and the parameters (or pyktrace's error) on
command lines generated from the options, their values and malformed
variants. A line the fast reading declines is click's alone.
"""

from __future__ import annotations

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrace_cli.cli import fastargs, pykdump, pykdump_click, pyktrace, pyktrace_args, pyktrace_click
from ktrace_cli.cli.fastargs import COUNT, FLAG, MULTIPLE, VALUE
from ktrace_cli.cli.options import Options

# pykdump options the fast reading leaves to click: they convert their values.
PYKDUMP_CLICK_ONLY = {"--diff", "--sort", "--color"}


def _kind(param: click.Option) -> int:
    if param.count:
        return COUNT
    if param.is_flag:
        return FLAG
    assert param.nargs == 1, param.opts
    return MULTIPLE if param.multiple else VALUE


def _declared(command: click.Command) -> dict[str, tuple[str, int]]:
    """Every option string of the command's value-exposing options, as a fastargs table."""
    table = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value:
            for opt in param.opts:
                if param.nargs == 1 or param.is_flag:
                    table[opt] = (str(param.name), _kind(param))
                else:
                    table[opt] = (str(param.name), -1)
    return table


def test_pyktrace_table_is_the_click_commands() -> None:
    assert pyktrace_args.OPTIONS == _declared(pyktrace_click.command)
    operands = [p for p in pyktrace_click.command.params if isinstance(p, click.Argument)]
    assert [(p.name, p.nargs) for p in operands] == [(pyktrace_args.OPERANDS, -1)]


def test_pykdump_table_is_the_click_commands_but_the_converting_options() -> None:
    declared = _declared(pykdump_click.command)
    assert set(declared) - set(pykdump.OPTIONS) == PYKDUMP_CLICK_ONLY
    assert pykdump.OPTIONS == {k: v for k, v in declared.items() if k not in PYKDUMP_CLICK_ONLY}


def test_pykdump_defaults_are_click_defaults() -> None:
    assert pykdump._fast([]) == pykdump_click.command.main(args=[], prog_name="pykdump", standalone_mode=False)


@pytest.mark.parametrize("argv", [
    ["/bin/true"], ["-f", "t.out", "ls", "-l"], ["-dip", "123"], ["-ait", "cn", "-ft.out", "sh", "-c", "x"],
    ["-C"], ["-c", "-f", "x"], ["--live", "--calls", "ls"], ["--genio-size=64", "--engine", "ptrace", "cat"],
    ["-ft", "--", "-x"], ["-"],
])  # fmt: skip
def test_pyktrace_plain_lines_skip_click(argv: list[str]) -> None:
    opts = pyktrace_args.fast(argv)
    assert opts is not None
    assert opts == pyktrace_click.parse(argv)


@pytest.mark.parametrize("argv", [
    ["--help"], ["--version"], ["-x"], ["-f"], ["-cC"], ["-p", "1", "-g", "2"], ["-p", "0"], ["-t", "z"],
    ["--live=1"], ["--nope"], ["--genio-size", "x"],
])  # fmt: skip
def test_pyktrace_help_version_and_errors_are_clicks(argv: list[str]) -> None:
    assert pyktrace_args.fast(argv) is None


def test_pyktrace_own_rule_errors_are_the_same() -> None:
    # Errors of the rules checked after the callbacks come from the same function either way.
    for argv in (["-C", "ls"], [], ["-p", "5", "ls"], ["--seccomp", "maybe", "ls"], ["--color", "never", "ls"]):
        with pytest.raises(pyktrace.Fatal) as fast:
            pyktrace_args.fast(argv)
        with pytest.raises(pyktrace.Fatal) as slow:
            pyktrace_click.parse(argv)
        assert (str(fast.value), fast.value.usage) == (str(slow.value), slow.value.usage)


def test_shell_completion_is_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_PYKTRACE_COMPLETE", "bash_source")
    assert pyktrace_args.fast(["ls"]) is None
    monkeypatch.setenv("_PYKDUMP_COMPLETE", "bash_source")
    assert pykdump._fast([]) is None


def test_unreadable_trace_file_is_left_to_click(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pykdump.os, "access", lambda path, mode: False)
    assert pykdump._fast(["-f", __file__]) is None
    assert pykdump._fast(["-f", "-"]) is not None


def _tokens(table: fastargs.OptionTable) -> st.SearchStrategy[str]:
    """Option strings (alone, clustered, with attached or `=` values), operands and odd values."""
    shorts = [o[1] for o in table if not o.startswith("--")]
    longs = [o for o in table if o.startswith("--")]
    values = st.sampled_from(["1", "77", "0", "+5", "x", "", "-", "--", "cn", "t.out", "ktrace.out", "=",
                              "on", "off", "ptrace", "auto", "always", "-1", "2147483648", "4096", "a=b"])
    cluster = st.text(st.sampled_from(shorts + ["x", "=", "1"]), min_size=1, max_size=4).map(lambda s: "-" + s)
    long_eq = st.tuples(st.sampled_from(longs + ["--nope", "--help", "--version"]), values).map("=".join)
    return st.one_of(values, cluster, st.sampled_from(longs + ["--help", "--version", "--nope"]), long_eq,
                     st.sampled_from(["ls", "/bin/true", "-l"]))  # fmt: skip


def _click_outcome(parse: object, argv: list[str]) -> object:
    try:
        return parse(argv)  # type: ignore[operator]
    except pyktrace.Fatal as e:
        return ("Fatal", str(e), e.usage)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_tokens(pyktrace_args.OPTIONS), max_size=6))
def test_pyktrace_fast_reading_agrees_with_click(argv: list[str]) -> None:
    fast = _click_outcome(pyktrace_args.fast, argv)
    if fast is None:
        return
    slow = _click_outcome(pyktrace_click.parse, argv)
    assert fast == slow
    assert isinstance(fast, (Options, tuple))


def _pykdump_click(argv: list[str]) -> object:
    try:
        return pykdump_click.command.main(args=argv, prog_name="pykdump", standalone_mode=False)
    except (click.ClickException, click.exceptions.Exit) as e:
        return type(e)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_tokens({**pykdump.OPTIONS, **{o: ("", FLAG) for o in PYKDUMP_CLICK_ONLY}}), max_size=6))
def test_pykdump_fast_reading_agrees_with_click(argv: list[str]) -> None:
    fast = pykdump._fast(argv)
    if fast is None:
        return
    assert fast == _pykdump_click(argv)
