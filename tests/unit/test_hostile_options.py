"""Hostile option values (issue 10): every bad value is Typer's usage error (exit 2), never an
exception deep in the library (exit 4).

The commands' bodies run with ``run`` replaced by a stub, so option parsing, Typer parsers
and the checks a body makes before building (``--read`` with ``--write``, ``--type`` lists,
``--env``) all run, but nothing is sent. The stub then checks that what reached the library
is sound: finite seconds, names the DNS code accepts, servers ``parse_servers`` accepts.
Hypothesis fuzzes whole argv lists the way tests/unit/test_capture_fuzz.py fuzzes decoders.
"""

from __future__ import annotations

import math

import pytest
import typer
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import toolkit.cli.capture
import toolkit.cli.conntrack
import toolkit.cli.corefile
import toolkit.cli.diagnose
import toolkit.cli.merge
import toolkit.cli.reach
import toolkit.cli.resolve
import toolkit.cli.resolvconf
from toolkit.cli import app
from toolkit.names import NameProblem, check_address, check_name

from tests import hostile as H

_MODULES = (toolkit.cli.capture, toolkit.cli.conntrack, toolkit.cli.corefile, toolkit.cli.diagnose,
            toolkit.cli.reach, toolkit.cli.resolve, toolkit.cli.resolvconf, toolkit.cli.merge)
_FLOAT_PARAMS = {"deadline", "timeout", "interval", "duration", "capture"}
_NAME_PARAMS = {"name"}


class Reached(Exception):
    """The command body got as far as ``run``: the options were accepted."""


def _check_params(params: dict) -> None:
    """What the library receives after the CLI accepted the options."""
    from toolkit.triage.resolve import parse_servers

    for key, value in params.items():
        if key in _FLOAT_PARAMS and value is not None:
            assert isinstance(value, float) and math.isfinite(value) and value >= 0, (key, value)
        if key in _NAME_PARAMS and value:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                check_name(v)
        if key == "target" and value:
            try:
                check_address(value)
            except NameProblem:
                check_name(value)
        if key in ("server", "reference") and value:
            parse_servers(value, key)
        if key in ("service_ip", "nameserver") and value:
            check_address(value)
        if key == "port" and value is not None:
            for p in value if isinstance(value, (list, tuple)) else [value]:
                assert 1 <= p <= 65535, (key, p)


def _stub_run(build, output, **kw):
    from typer._click.globals import get_current_context

    ctx = get_current_context()
    while ctx is not None:  # the command's options, then its group's (conntrack --port ...)
        _check_params(ctx.params)
        ctx = ctx.parent
    raise Reached()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    for mod in _MODULES:
        monkeypatch.setattr(mod, "run", _stub_run)


runner = CliRunner()


def invoke(argv: list[str]) -> int:
    """Exit code of the parse (2: usage error), or 0 when the body reached ``run``."""
    res = runner.invoke(app, argv)
    exc = res.exception
    if isinstance(exc, Reached):
        return 0
    if exc is not None and not isinstance(exc, SystemExit):
        raise AssertionError(f"{argv!r} raised {type(exc).__name__}: {exc}") from exc
    assert "Traceback" not in res.output, (argv, res.output)
    return res.exit_code


BAD = [
    # addresses
    ("resolve", "x.example", "--server", "127.0.0.53:\u00b2"),
    ("resolve", "x.example", "--server", "127.0.0.53:\u0663"),
    ("resolve", "x.example", "--server", "%lo"),
    ("resolve", "x.example", "--server", "127.0.0.1%lo"),
    ("resolve", "x.example", "--server", "fe80::1%bogus0"),
    ("resolve", "x.example", "--server", "::1%lo"),
    ("resolve", "x.example", "--server", "[::1"),
    ("resolve", "x.example", "--server", "[::1]x"),
    ("resolve", "x.example", "--server", "[::1]:0"),
    ("resolve", "x.example", "--server", "[::1]:65536"),
    ("resolve", "x.example", "--server", "10.0.0.1:99999999999999999999"),
    ("resolve", "x.example", "--server", "10.0.0.1:-1"),
    ("resolve", "x.example", "--server", "10.0.0.1: 53"),
    ("resolve", "x.example", "--server", "dns.example"),
    ("resolve", "x.example", "--server", ","),
    ("resolve", "x.example", "--server", "10.0.0.1,bogus"),
    ("resolve", "x.example", "--server", "1.2.3.4\x00"),
    ("resolve", "x.example", "--reference", "256.1.1.1"),
    ("diagnose", "x.example", "--server", "127.0.0.53:\u00b2"),
    ("diagnose", "x.example", "--reference", "fe80::1%bogus0"),
    ("corefile", "trace", "x.", "-c", "f", "--service-ip", "1.2.3"),
    ("corefile", "trace", "x.", "-c", "f", "--nameserver", "127.0.0.1%lo"),
    ("conntrack", "race-test", "not-an-ip"),
    ("conntrack", "race-test", "10.0.0.1%lo"),
    # names
    ("resolve", "a..b"),
    ("resolve", ".a"),
    ("resolve", ""),
    ("resolve", "foo bar.test"),
    ("resolve", "foo\tbar.test"),
    ("resolve", "x\x1b]0;pwned\x07.test"),
    ("resolve", "x\n.test"),
    ("resolve", "a" * 64 + ".test"),
    ("resolve", ".".join(["a" * 60] * 5)),
    ("resolve", "x/y.test"),
    ("resolve", "x:53"),
    ("resolve", "\udcff.test"),
    ("resolve", "\u202e.test"),
    ("diagnose", "a..b"),
    ("diagnose", "x" * 300),
    ("reach", "a b"),
    ("reach", "a..b"),
    ("resolvconf", "--name", ""),
    ("resolvconf", "--name", "a..b"),
    ("corefile", "trace", "", "-c", "f"),
    ("corefile", "trace", "a..b", "-c", "f"),
    ("corefile", "check", "f", "--name", "a..b"),
    ("corefile", "check", "f", "--name", "a" * 300),
    ("conntrack", "race-test", "10.0.0.1", "--name", "a..b"),
    ("conntrack", "race-test", "10.0.0.1", "--name", "x" * 300),
    # record types
    ("corefile", "trace", "x.", "-c", "f", "--type", "BOGUS"),
    ("corefile", "trace", "x.", "-c", "f", "--type", ""),
    ("corefile", "trace", "x.", "-c", "f", "--type", "TYPE99999"),
    ("corefile", "trace", "x.", "-c", "f", "--type", "AXFR"),
    ("resolve", "x.example", "--type", "BOGUS"),
    ("resolve", "x.example", "--type", ","),
    ("resolve", "x.example", "--transport", "quic"),
    # ports
    ("corefile", "trace", "x.", "-c", "f", "--port", "0"),
    ("corefile", "trace", "x.", "-c", "f", "--port", "65536"),
    ("diagnose", "x.example", "--port", "-1"),
    ("reach", "x.example", "--port", "\u00b2"),
    ("capture", "--port", "0"),
    ("conntrack", "--port", "70000"),
    ("conntrack", "race-test", "10.0.0.1", "--port", "x"),
    # counts
    ("conntrack", "race-test", "10.0.0.1", "--count", "0"),
    ("conntrack", "race-test", "10.0.0.1", "--concurrency", "100000"),
    ("diagnose", "x.example", "--race-test", "-5"),
    ("capture", "--count", "0"),
    # interfaces and mixes
    ("capture", "-i", "a/b"),
    ("capture", "-i", "x" * 16),
    ("capture", "-i", ""),
    ("capture", "-i", ".."),
    ("capture", "-i", "eth0:1"),
    ("capture", "--read", "x.pcap", "--write", "y.pcap"),
    ("capture", "--read", "x.pcap", "--duration", "1"),
    ("corefile", "lint", "f", "--env", "novalue"),
    ("corefile", "lint", "f", "--env", "=x"),
    ("resolve", "x.example", "-o", "yaml"),
]

_SECONDS_OPTS = [
    ("resolve", "x.example", "--deadline"), ("resolve", "x.example", "--timeout"),
    ("diagnose", "x.example", "--deadline"), ("diagnose", "x.example", "--capture"),
    ("resolvconf", "--deadline"), ("reach", "x.example", "--deadline"),
    ("capture", "--deadline"), ("capture", "--duration"), ("capture", "--timeout"),
    ("conntrack", "--interval"), ("conntrack", "--deadline"),
    ("conntrack", "race-test", "10.0.0.1", "--timeout"), ("conntrack", "race-test", "10.0.0.1", "--deadline"),
    ("corefile", "lint", "f", "--deadline"), ("corefile", "trace", "x.", "-c", "f", "--deadline"),
    ("corefile", "check", "f", "--timeout"), ("corefile", "check", "f", "--deadline"),
]
_BAD_SECONDS = ["nan", "NaN", "-nan", "inf", "-inf", "infinity", "-1", "-0.5", "1e309", "1e999", "",
                "ten", "0x10", "\u00b2", "1,5"]
for _prefix in _SECONDS_OPTS:
    for _v in _BAD_SECONDS:
        BAD.append((*_prefix, _v))

GOOD = [
    ("resolve", "x.example", "--server", "[::1]:5353"),
    ("resolve", "x.example", "--server", "::1"),
    ("resolve", "x.example", "--server", "[::1]"),
    ("resolve", "x.example", "--server", "127.0.0.53:5353,10.0.0.1"),
    ("resolve", "x.example", "--server", "fe80::1%lo"),
    ("resolve", "x.example", "--reference", "[fd00::53]:53"),
    ("resolve", "bücher.example"),
    ("resolve", "_sip._tcp.example."),
    ("resolve", "*.example"),
    ("resolve", "x.example."),
    ("resolve", "a" * 63 + ".example"),
    ("resolve", "x.example", "--deadline", "0.1"),
    ("resolve", "x.example", "--deadline", "3600"),
    ("resolve", "x.example", "--deadline", "1e1"),
    ("resolve", "x.example", "--type", "aaaa,A"),
    ("diagnose", "x.example", "--capture", "0"),
    ("corefile", "trace", ".", "-c", "f"),
    ("corefile", "trace", "x.", "-c", "f", "--type", "srv"),
    ("corefile", "trace", "x.", "-c", "f", "--type", "TYPE65280"),
    ("corefile", "trace", "x.", "-c", "f", "--service-ip", "fd00::10"),
    ("capture", "-i", "any"),
    ("capture", "-i", "eth0", "--duration", "0.5"),
    ("conntrack", "--interval", "0"),
    ("conntrack", "race-test", "::1", "--name", "kubernetes.default.svc.cluster.local."),
    ("reach", "10.0.0.1"),
    ("reach", "fe80::1%lo"),
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a)[:60] for a in BAD])
def test_bad_value_is_a_usage_error(argv):
    assert invoke(list(argv)) == 2


@pytest.mark.parametrize("argv", GOOD, ids=[" ".join(a)[:60] for a in GOOD])
def test_good_value_is_accepted(argv):
    assert invoke(list(argv)) == 0


# ----------------------------------------------------------------------------- fuzzing

HOSTILE_VALUES = [
    "", " ", "-", "--", "nan", "inf", "-inf", "-1", "0", "1e309", "\u00b2", "\u0663", "%lo", "%bogus0",
    "[::1]:5353", "[::1", "::1%lo", "fe80::1%lo", "127.0.0.53:\u00b2", "a..b", ".", "..", "x" * 300,
    "a" * 64, "foo bar", "\x1b]0;t\x07", "\n", "\udcff", "\u202e", "\x00", "bücher.example",
    "10.0.0.1:0", "10.0.0.1:65536", "A", "AAAA", "BOGUS", "udp", "json", "=", "A=B", "/dev/zero",
    "99999999999999999999999", "-5", "0x1f", "1_0", "１２３",
]


def _command_paths():
    root = typer.main.get_command(app)
    out = []
    for name, cmd in root.commands.items():
        out.append(((name,), cmd))
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            out.append(((name, sub), subcmd))
    return out


COMMANDS = _command_paths()
values = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=20),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.integers(min_value=-2**70, max_value=2**70).map(str))


@st.composite
def argvs(draw):
    path, cmd = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    params = [p for p in cmd.params if p.name not in ("output",)]
    for _ in range(draw(st.integers(0, 5))):
        p = draw(st.sampled_from(params)) if params else None
        if p is None:
            break
        if not p.opts or not p.opts[0].startswith("-"):
            argv.append(draw(values))
            continue
        opt = draw(st.sampled_from(p.opts + getattr(p, "secondary_opts", [])))
        argv.append(opt)
        if not getattr(p, "is_flag", False):
            argv.append(draw(values))
    if draw(st.booleans()):
        argv.append(draw(values))
    return argv


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argvs())
def test_fuzz_argv_never_crashes(argv):
    """Any argv: usage error (2), help (0), or accepted with sound values; never an
    exception, never exit 4."""
    assert invoke(argv) in (0, 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COMMANDS), st.lists(st.text(max_size=12), max_size=6))
def test_fuzz_random_tokens(command, tokens):
    path, _ = command
    assert invoke([*path, *tokens]) in (0, 2)


def test_fuzz_counts():
    """Keep the counts in the report honest: how many explicit hostile option cases."""
    assert len(BAD) >= 250 and len(GOOD) >= 20


# --------------------------------------------------- end to end, as processes (no network)

E2E = [
    ("resolve", "x.example", "--server", "127.0.0.53:\u00b2"),
    ("resolve", "foo bar.test"),
    ("resolve", "x.example", "--deadline", "nan"),
    ("corefile", "trace", "", "-c", "/dev/null"),
    ("corefile", "trace", "x.", "-c", "/dev/null", "--type", "BOGUS"),
    ("conntrack", "race-test", "10.0.0.1", "--name", "a..b"),
    ("capture", "--duration", "-1"),
    ("diagnose", "x.example", "--reference", "fe80::1%bogus0"),
]


@pytest.mark.parametrize("argv", E2E, ids=[" ".join(a)[:50] for a in E2E])
def test_usage_error_as_a_process(argv):
    out = H.run_cli(list(argv), timeout=30)
    H.check(out, codes={2}, deadline=1.0)
    assert "Invalid value" in out.stderr
