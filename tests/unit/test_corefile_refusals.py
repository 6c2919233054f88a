"""What the corpus differential suite found CoreDNS 1.12.1 and 1.14.7 refuse (or the line
they name), as unit tests: tests/integration/test_corefile_corpus_differential.py checks them
against the real binaries."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app
from toolkit.corefile.document import CorefileError
from toolkit.corefile.lint import lint
from toolkit.corefile.loadcheck import syntax_refusal
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.plugins.base import Semantics
from toolkit.corefile.plugins.versions import coredns_build
from toolkit.model import Severity


def refusals(text: str, version: str) -> list[tuple[int | None, str]]:
    res = lint([parse_corefile(text)], semantics=Semantics(coredns_build(version)))
    return [(f.data.get("line"), str(f.data["coredns_error"])) for f in res.findings
            if f.severity is Severity.CRITICAL and "coredns_error" in f.data]


@pytest.mark.parametrize("text,line", [
    ("example.org:0 {\n\t\tfile \n", 2),              # Unexpected token 'file', expecting '}'
    ("org:0 {\n\tauto {\n\t\tdirectory \n", 3),       # Unexpected EOF
    (".:0 {\n\tacl x. {\n\t\tblock\n\t}\n\tautopath \n", 5),
    ("(s) {\n whoami\n", 2),                          # a snippet left open
])
def test_eof_names_the_last_token_line(text, line):
    with pytest.raises(CorefileError) as ei:
        parse_corefile(text)
    assert ei.value.line == line
    assert "CoreDNS says" in ei.value.detail


def test_unknown_directive_before_a_syntax_error_is_what_coredns_says(tmp_path):
    text = ".:0 {\n\t\tunready\n        whoami\n        ready \n"
    with pytest.raises(CorefileError) as ei:
        parse_corefile(text)
    assert ei.value.line == 4
    said = syntax_refusal(ei.value, coredns_build("1.12.1"))
    assert said.line == 2 and "Unknown directive 'unready'" in said.detail
    p = tmp_path / "Corefile"
    p.write_text(text)
    res = CliRunner().invoke(app, ["corefile", "lint", str(p)])
    assert res.exit_code == 3 and "line 2" in res.output and "unready" in res.output


def test_key_with_nothing_after_the_colon_is_refused():
    got = refusals("split-type:\n", "1.14.7")
    assert got and 'expecting data after last colon: "split-type:"' in got[0][1]
    assert not refusals("example.org:1053 {\n whoami\n}\n", "1.14.7")


@pytest.mark.parametrize("text,line", [
    (". {\n etcd {\n  path /skydns\n  min-lease-ttl 30\n }\n}\n", 4),
    (". {\n grpc . 127.0.0.1 {\n  fallthrough\n }\n}\n", 3),
    ("example.org {\n secondary {\n  transfer from 10.0.0.1\n  catalog\n }\n}\n", 4),
    (". {\n errors {\n  consolidate 5m \".* i/o timeout$\" warning show_first\n }\n}\n", 3),
    (". {\n forward . https://9.9.9.9 {\n  tls_servername dns.quad9.net\n }\n}\n", 2),
    (".:0 {\n bind 127.0.0.1 {\n  except 127.0.0.1\n }\n trace\n whoami\n}\n", 5),
])
def test_newer_options_are_refused_by_1_12_only(text, line):
    got = refusals(text, "1.12.1")
    assert got and got[0][0] == line, got
    assert not refusals(text, "1.14.7")


def test_trace_with_a_listen_address_left_loads():
    assert not refusals(".:0 {\n bind 127.0.0.1 127.0.0.2 {\n  except 127.0.0.1\n }\n trace\n}\n",
                        "1.12.1")


@pytest.mark.parametrize("text,line", [
    (".:0 {\n whoami }\n", 2), (".:0 { whoami }\n", 1), (".:0 {\n hosts {\n  fallthrough } }\n", 3)])
def test_close_brace_on_a_directive_line_is_refused(text, line):
    with pytest.raises(CorefileError) as ei:
        parse_corefile(text)
    assert ei.value.line == line and "no matching opening brace" in ei.value.detail


@pytest.mark.parametrize("text", [
    ".:0 { }\n", "(s) { whoami }\n.:0 {\n import s\n}\n", ".:0 {\n log { class all }\n}\n"])
def test_one_line_blocks_caddy_reads(text):
    parse_corefile(text)
