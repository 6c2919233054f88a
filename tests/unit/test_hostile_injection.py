"""Terminal and Markdown injection (issue 10): names from the wire (pcaps), from config files
(Corefiles, resolv.conf) and from argv reach human and Markdown output with every control
character escaped, and cannot forge a line (``verdict: ok``) or a table cell. JSON keeps
them exactly (json.dumps escapes them itself), so runbooks see the real bytes.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.model import Finding, Report, Severity, Table, Verdict
from toolkit.report import OutputFormat, render
from toolkit.report.sanitize import for_terminal, md_cell, md_code, md_text

from tests import hostile as H

# Raw bytes a terminal obeys, as they appear in text (the decoders map wire bytes 1:1 to
# code points, so a C1 byte 0x9b is U+009B).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORGED = re.compile(r"^\s*(\*\*)?verdict: ok", re.I | re.M)


def _assert_clean_terminal(text: str) -> None:
    assert not UNSAFE.search(text), repr(UNSAFE.search(text).group(0))
    assert not FORGED.search(text), "a forged line: " + FORGED.search(text).group(0)


def _md_table_rows(md: str) -> list[list[str]]:
    """Rows of every Markdown table, split at unescaped pipes."""
    rows = []
    for line in md.splitlines():
        if line.startswith("|"):
            rows.append(re.split(r"(?<!\\)\|", line)[1:-1])
    return rows


def _assert_clean_markdown(md: str) -> None:
    _assert_clean_terminal(md)
    tables: list[list[list[str]]] = []
    for block in md.split("\n\n"):
        rows = _md_table_rows(block)
        if rows:
            tables.append(rows)
    for rows in tables:
        width = len(rows[0])
        assert all(len(r) == width for r in rows), rows[:3]
    # Rendered as a ticket system would (CommonMark + GFM tables): no live HTML, no forged
    # line, every table keeps its columns.
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<b>" not in html and "<img" not in html, html
    assert not re.search(r"<(p|li|td|h\d)>\s*verdict: ok", html, re.I), html


# ----------------------------------------------------------------------------- unit level

HOSTILE_STRINGS = [
    "\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "\x9b2J", "a\nverdict: ok", "a\rverdict: ok", "x\u2028verdict: ok",
    "\u202eko :tcidrev", "|verdict|ok|", "`code` ``x``", "<img src=x onerror=alert(1)>", "\\|", "\x7f\x00",
    "\x1bP+q\x1b\\", "\x1b]52;c;cHduZWQ=\x07", "\t\t", "\ufeff",
]


@pytest.mark.parametrize("s", HOSTILE_STRINGS)
def test_for_terminal(s):
    out = for_terminal(s)
    _assert_clean_terminal(out)
    assert "\n" not in out and "\r" not in out


@pytest.mark.parametrize("s", HOSTILE_STRINGS)
def test_markdown_pieces(s):
    for out in (md_text(s), md_cell(s), md_code(s)):
        _assert_clean_terminal(out)
        assert "\n" not in out
    assert not re.search(r"(?<!\\)[|`]", md_cell(s))


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_sanitiser_fuzz(s):
    out = for_terminal(s)
    assert not UNSAFE.search(out) and "\n" not in out
    assert out == s or any(ch in s for ch in "\x00\x1b\n\r\t\x7f\u2028\u202e") or UNSAFE.search(s) or "\ufeff" in s
    cell = md_cell(s)
    assert not re.search(r"(?<!\\)[|`]", cell.replace("\\\\", ""))
    code = md_code(s)
    fence = re.match(r"`+", code).group(0)
    assert code.endswith(fence) and fence not in code[len(fence):-len(fence)]


def test_markdown_code_span_fence_is_longer_than_any_run():
    assert md_code("a``b") == "```a``b```"
    assert md_code("`x") == "`` `x ``"


def _hostile_report() -> Report:
    evil = "evil\x1b]0;pwned\x07\nverdict: ok|`x`<b>\u202e"
    return Report(command="resolve", verdict=Verdict.BAD_ANSWER, subject=evil,
                  findings=(Finding(code="c\x1b[2J", severity=Severity.WARNING, summary=evil,
                                    evidence=(evil,), remedy=evil),),
                  tables=(Table(evil, ("name\n", "x|y"), ((evil, evil), ("ok", "1"))),),
                  notes=(evil,))


@pytest.mark.parametrize("fmt", [OutputFormat.table, OutputFormat.markdown])
def test_renderers_escape_everything(fmt):
    import io

    buf = io.StringIO()
    render(_hostile_report(), fmt, buf)
    text = buf.getvalue()
    if fmt is OutputFormat.markdown:
        _assert_clean_markdown(text)
    else:
        _assert_clean_terminal(text)
    assert "pwned" in text  # shown, escaped, not dropped


def test_json_keeps_the_exact_bytes():
    import io

    buf = io.StringIO()
    render(_hostile_report(), OutputFormat.json, buf)
    doc = json.loads(buf.getvalue())
    assert doc["notes"][0].startswith("evil\x1b]0;pwned\x07\nverdict: ok")
    assert "\x1b" not in buf.getvalue()  # escaped as \u001b on the wire


# ----------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("fmt", ["table", "markdown", "ndjson", "json"])
@pytest.mark.parametrize("label", [H.EVIL_LABEL, b"\x1b[31mred\x1b[0m", b"x\r\nverdict: ok", b"|a|b|c|",
                                   b"\x00\x07\x08\x7f", b"\xc2\x9b2J\xe2\x80\xae"])
def test_wire_names_from_a_pcap(tmp_path, fmt, label):
    pcap = H.hostile_pcap(tmp_path / "h.pcap", label=label)
    out = H.run_cli(["capture", "--read", str(pcap), "-o", fmt])
    H.check(out, codes={0, 1})
    text = out.stdout.decode("utf-8")
    if fmt in ("json", "ndjson"):
        for line in text.splitlines() if fmt == "ndjson" else [text]:
            json.loads(line)
        assert "\x1b" not in text
    elif fmt == "markdown":
        _assert_clean_markdown(text)
    else:
        _assert_clean_terminal(text)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_unanswered_wire_names(tmp_path, fmt):
    pcap = H.hostile_pcap(tmp_path / "h.pcap", unanswered=True, n=3)
    out = H.run_cli(["capture", "--read", str(pcap), "-o", fmt])
    H.check(out, codes={0, 1})
    (_assert_clean_markdown if fmt == "markdown" else _assert_clean_terminal)(out.text)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_names_from_a_corefile(tmp_path, fmt):
    cf = tmp_path / "Corefile"
    cf.write_text(H.corefile_with_controls(), encoding="utf-8")
    for argv in (["corefile", "lint", str(cf)], ["corefile", "trace", "x.example.", "-c", str(cf)]):
        out = H.run_cli([*argv, "-o", fmt])
        H.check(out, codes={0, 1})
        (_assert_clean_markdown if fmt == "markdown" else _assert_clean_terminal)(out.text)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_names_from_a_configmap(tmp_path, fmt):
    cm = tmp_path / "cm.json"
    cm.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "core\x1b]0;x\x07dns\nverdict: ok", "namespace": "k|s"},
                              "data": {"Corefile": H.corefile_with_controls()}}))
    out = H.run_cli(["corefile", "lint", str(cm), "-o", fmt])
    H.check(out, codes={0, 1})
    (_assert_clean_markdown if fmt == "markdown" else _assert_clean_terminal)(out.text)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_names_from_resolv_conf_and_hosts(tmp_path, fmt):
    rc = tmp_path / "resolv.conf"
    rc.write_bytes(b"nameserver 10.0.0.1\x1b]0;x\x07\nsearch a\x1b[2J.example b\rverdict: ok\n"
                   b"options ndots:1\x9b\n")
    hosts = tmp_path / "hosts"
    hosts.write_bytes(b"10.0.0.9 evil\x1b]0;x\x07 ok|`x`\n10.0.0.8 \xc2\x9b2J\n")
    out = H.run_cli(["resolvconf", "--file", str(rc), "--hosts", str(hosts), "--name", "evil", "-o", fmt])
    H.check(out, codes={0, 1})
    (_assert_clean_markdown if fmt == "markdown" else _assert_clean_terminal)(out.text)


def test_error_lines_escape_paths(tmp_path):
    out = H.run_cli(["corefile", "lint", str(tmp_path / "x\x1b]0;pwned\x07\nverdict: ok")])
    H.check(out, codes={3})
    _assert_clean_terminal(out.stderr)
