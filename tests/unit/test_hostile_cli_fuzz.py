"""Fuzz the commands that send nothing, end to end (parse, build, render): `corefile lint`,
`corefile trace` and `resolvconf` with generated names, types, ports, addresses, env values
and output formats, against generated Corefiles and resolv.conf files. Exit 0/1/2/3/5 only;
never an exception, never 4 (issue 10)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app

runner = CliRunner()

WORDS = ["", ".", "..", "a..b", "x.example.", "bücher.example", "\x1b]0;x\x07", "foo bar", "*",
         "_sip._tcp.example", "a" * 64, "x" * 300, "\u00b2", "%lo", "[::1]:53", "::1", "10.0.0.1:\u00b2",
         "{$A}", "import", "forward", "{", "}", "\n", "\\", "\"", "#", "dns://", "tls://.:853"]
tokens = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
corefiles = st.lists(st.one_of(tokens, st.sampled_from([" ", "\n", "{", "}", "forward .", "cache 30"])),
                     max_size=40).map("".join)
fmts = st.sampled_from(["table", "json", "ndjson", "markdown"])


def _ok(res, argv):
    exc = res.exception
    assert exc is None or isinstance(exc, SystemExit), (argv, repr(exc))
    assert res.exit_code in (0, 1, 2, 3, 5), (argv, res.exit_code, res.output[-500:])
    assert "Traceback" not in res.output and "internal error" not in res.output, (argv, res.output[-500:])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(corefiles, tokens, st.one_of(st.sampled_from(["A", "AAAA", "BOGUS", "srv", "", "TYPE1"]), tokens),
       st.one_of(st.integers(-5, 70000).map(str), tokens), st.one_of(st.none(), tokens),
       st.lists(tokens, max_size=2), fmts)
def test_corefile_trace_fuzz(tmp_path_factory, text, name, qtype, port, ip, env, fmt):
    cf = tmp_path_factory.mktemp("t") / "Corefile"
    cf.write_text(text, encoding="utf-8", errors="surrogateescape")
    argv = ["corefile", "trace", name, "-c", str(cf), "--type", qtype, "--port", port, "-o", fmt]
    if ip is not None:
        argv += ["--service-ip", ip]
    for e in env:
        argv += ["--env", e]
    _ok(runner.invoke(app, argv), argv)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(corefiles, st.lists(tokens, max_size=2), fmts)
def test_corefile_lint_fuzz(tmp_path_factory, text, env, fmt):
    cf = tmp_path_factory.mktemp("l") / "Corefile"
    cf.write_text(text, encoding="utf-8", errors="surrogateescape")
    argv = ["corefile", "lint", str(cf), "-o", fmt]
    for e in env:
        argv += ["--env", e]
    _ok(runner.invoke(app, argv), argv)


resolv_lines = st.lists(st.one_of(
    st.sampled_from(["nameserver 10.0.0.1", "nameserver ::1%lo", "nameserver \u00b2", "search a b",
                     "options ndots:\u00b2", "options ndots:99999999999", "domain x", "search " + "a." * 200,
                     "options timeout:nan attempts:-1", "sortlist 10.0.0.0/8"]),
    st.text(max_size=30)), max_size=12).map("\n".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(resolv_lines, st.one_of(st.none(), tokens), fmts)
def test_resolvconf_fuzz(tmp_path_factory, text, name, fmt):
    d = tmp_path_factory.mktemp("r")
    (d / "resolv.conf").write_text(text, encoding="utf-8", errors="surrogateescape")
    (d / "hosts").write_text(text.replace("nameserver", "10.0.0.9"), encoding="utf-8", errors="surrogateescape")
    argv = ["resolvconf", "--file", str(d / "resolv.conf"), "--hosts", str(d / "hosts"),
            "--nsswitch", "/dev/null", "-o", fmt]
    if name is not None:
        argv += ["--name", name]
    _ok(runner.invoke(app, argv), argv)
