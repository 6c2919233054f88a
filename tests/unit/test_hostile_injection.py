"""Terminal and Markdown injection (issue 10): names from the wire (pcaps), from config files
(Corefiles, resolv.conf) and from argv reach human and Markdown output with every control
character escaped, and cannot forge a line (``verdict: ok``) or a table cell. JSON keeps
them exactly (json.dumps escapes them itself), so runbooks see the real bytes.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.model import Finding, Report, Severity, Table, Verdict
from toolkit.report import OutputFormat, render
from toolkit.report.sanitize import for_terminal, md_cell, md_code, md_text

from tests import hostile as H

# What must never reach a person raw, defined here independently of the sanitiser (from the
# Unicode character database): controls, format characters (bidi, zero-width, tags...),
# surrogates, private use, line/paragraph separators, spaces other than U+0020, and the
# Default_Ignorable_Code_Point ranges of Unicode 15's DerivedCoreProperties.txt (fillers and
# variation selectors that render as nothing), plus the braille blank U+2800.
DEFAULT_IGNORABLE = [(0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                     (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                     (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                     (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                     (0xE0000, 0xE0FFF)]


def invisible(ch: str) -> bool:
    """A character a terminal obeys or a reader cannot see (newline aside: it ends lines)."""
    cat = unicodedata.category(ch)
    code = ord(ch)
    return (cat in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") or (cat == "Zs" and ch != " ")
            or code == 0x2800 or any(lo <= code <= hi for lo, hi in DEFAULT_IGNORABLE))


INVISIBLE = [chr(c) for c in range(0x110000) if invisible(chr(c))]
FORGED = re.compile(r"^\s*(\*\*)?verdict: ok", re.I | re.M)


def _assert_clean_terminal(text: str) -> None:
    bad = next((ch for ch in text if ch != "\n" and invisible(ch)), None)
    assert bad is None, f"U+{ord(bad):04X} reached the output raw"
    assert not FORGED.search(text), "a forged line: " + FORGED.search(text).group(0)


def _md_table_rows(md: str) -> list[list[str]]:
    """Rows of every Markdown table, split at unescaped pipes."""
    rows = []
    for line in md.splitlines():
        if line.startswith("|"):
            rows.append(re.split(r"(?<!\\)\|", line)[1:-1])
    return rows


# The tags and emphasis the Markdown renderer itself writes; anything else came from data.
OWN_TAGS = {"h3", "h4", "p", "strong", "em", "code", "ul", "li", "table", "thead", "tbody", "tr",
            "th", "td", "blockquote", "br"}
OWN_STRONG = re.compile(r"Verdict: <code>[a-z-]+</code>|INFO|WARNING|CRITICAL")
OWN_EM = re.compile(r"[0-9TZ:.-]+, \d+ ms|Remedy:")


def _assert_clean_markdown(md: str) -> None:
    """Markdown as a ticket system renders it (CommonMark + GFM tables): nothing from data is
    live (no link, image, HTML, emphasis, entity, emoji code, autolink), nothing invisible,
    every table keeps its columns."""
    import html as htmllib

    _assert_clean_terminal(md)
    for block in md.split("\n\n"):
        rows = _md_table_rows(block)
        if rows:
            assert all(len(r) == len(rows[0]) for r in rows), rows[:3]
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").enable("table").render(md)
    tags = set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", out))
    assert tags <= OWN_TAGS, (tags - OWN_TAGS, out[:2000])
    for inner in re.findall(r"<strong>(.*?)</strong>", out):
        assert OWN_STRONG.fullmatch(inner), inner
    for inner in re.findall(r"<em>(.*?)</em>", out):
        assert OWN_EM.fullmatch(inner), inner
    text = htmllib.unescape(re.sub(r"<[^>]+>", "", out))      # what a reader sees
    bad = next((ch for ch in text if ch != "\n" and invisible(ch)), None)
    assert bad is None, f"U+{ord(bad):04X} in the rendered text"
    # <, > and & from data only ever appear inside code spans (our own prose has none)
    assert not re.search(r"&(lt|gt|amp);", re.sub(r"<code>.*?</code>", "C", out)), out
    outside_code = htmllib.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "C", out)))
    assert not FORGED.search(outside_code), "a forged line in the rendered text"
    assert not re.search(r":[a-z][a-z0-9_+-]*:", outside_code), "an emoji code outside code spans"
    assert "://" not in outside_code and "www." not in outside_code, "an autolink outside code"


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
    assert "|" not in re.sub(r"\\\|", "", md_cell(s))


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_sanitiser_fuzz(s):
    out = for_terminal(s)
    assert "\n" not in out
    _assert_clean_terminal(out)
    assert out == s or any(invisible(ch) or ch == "\n" for ch in s)
    _assert_clean_markdown("- " + md_text(s) + "\n")
    cell = md_cell(s)
    assert "|" not in re.sub(r"\\\|", "", cell)
    code = md_code(s)
    fence = re.match(r"`+", code).group(0)
    assert code.endswith(fence) and fence not in code[len(fence):-len(fence)]


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="`*_[]()<>&#;:!|\\ -.1aZ\u200b\x1b\n", max_size=40))
def test_markdown_fuzz_with_markdown_syntax(s):
    for where in (f"- {md_text(s)}\n", f"- x {md_text(s)} `y`\n",
                  f"| h | i |\n|---|---|\n| {md_cell(s)} | {md_cell(s)} |\n"):
        _assert_clean_markdown(where)


def test_every_invisible_character_is_escaped_visibly():
    # The class, not instances: every code point the Unicode database calls a control,
    # format, surrogate, private-use, separator or default-ignorable character.
    assert len(INVISIBLE) > 130_000           # the private-use planes are most of them
    for ch in INVISIBLE:
        out = for_terminal(ch)
        assert out != ch and out.isascii() and out.startswith("\\"), f"U+{ord(ch):04X}"


def test_plain_text_and_printable_unicode_pass_unchanged():
    for s in ("api.corp.example", "bücher.example", "例え.テスト", "10.0.0.1:53", "a b", "ok: 1 of 2"):
        assert for_terminal(s) == s


ZERO_WIDTH_LOOKALIKES = ["corp\u200b.example", "corp\u2060.example", "corp\ufeff.example", "corp\u200c.example",
                         "corp\u200d.example", "corp\u00ad.example", "corp\u034f.example", "corp\u180e.example",
                         "corp\ufe0f.example", "corp\U000e0041.example", "corp\u3164.example", "corp\u2800.example",
                         "corp\u00a0.example", "corp\u2007.example", "corp\u061c.example", "corp\u2066.example"]


@pytest.mark.parametrize("s", ZERO_WIDTH_LOOKALIKES)
def test_a_name_with_an_invisible_character_never_looks_like_the_real_one(s):
    for out in (for_terminal(s), md_text(s), md_cell(s), md_code(s)):
        assert "corp.example" not in out and "corp" in out and "\\u" in out or "\\x" in out or "\\U" in out


LIVE_MARKDOWN = ["<img src=x onerror=alert(1)>", "[click](http://evil.example)", "![i](http://evil.example/x.png)",
                 "**verdict: ok**", "__verdict: ok__", "*ok*", "_ok_", "~~gone~~", "&#x202e;", "&ZeroWidthSpace;",
                 "&lt;b&gt;", "&#8203;", "&#x200B;", ":white_check_mark:", ":tada:", "<https://evil.example>",
                 "http://evil.example", "www.evil.example", "mail@evil.example", "<!-- x -->", "<b>bold</b>",
                 "[x]: http://evil.example", "[x][y]", "`code`", "\\*not escaped*", "# verdict: ok", "1. ok",
                 "- ok", "> quoted", "+ ok", "=== ", "| a | b |", "<details open>", "&amp;", "x\\|y|z"]


@pytest.mark.parametrize("s", LIVE_MARKDOWN)
def test_markdown_from_data_is_never_live(s):
    for where in (f"- {md_text(s)}\n", f"- a {md_text(s)} b\n", f"#### {md_text(s)}\n",
                  f"| h | i |\n|---|---|\n| {md_cell(s)} | {md_cell(s + ' ' + s)} |\n"):
        _assert_clean_markdown(where)


@pytest.mark.parametrize("s", LIVE_MARKDOWN + ["[bold red]x[/]", "[link=http://evil.example]x[/link]", "\\[b]x"])
def test_table_output_shows_markup_and_emoji_codes_as_written(s):
    import io

    rep = Report(command="resolve", verdict=Verdict.OK, subject=s,
                 findings=(Finding(code="c", severity=Severity.INFO, summary=s, evidence=(s,), remedy=s),),
                 tables=(Table("t " + s, ("a", "b"), ((s, s),)),), notes=(s,))
    buf = io.StringIO()
    render(rep, OutputFormat.table, buf)
    text = buf.getvalue()
    _assert_clean_terminal(text)
    assert "\u2705" not in text and "\U0001f389" not in text        # no emoji from :codes:
    assert text.count(s) >= 5, text                                 # shown as written


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
    H.check(out, codes={0, 1, 5})   # no response to them: indeterminate (5)
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


@pytest.mark.parametrize("markdown", [False, True])
def test_sanitiser_as_a_filter_for_the_runbooks(markdown):
    # How a runbook prints a line it took from podtriage's JSON or from the cluster:
    #   printf '%s\n' "$text" | python3 -m toolkit.report.sanitize [--markdown]
    import subprocess
    import sys

    lines = ["cm\x1b[2J\x1b[Hservice-unreachable: x: verdict ok (exit 0)", "corp\u200b.example",
             "**ok** <img src=x> :white_check_mark:", "plain line"]
    raw = ("\n".join(lines) + "\n").encode() + b"\xff\xfe bytes\n"
    p = subprocess.run([sys.executable, "-m", "toolkit.report.sanitize", *(["--markdown"] if markdown else [])],
                       input=raw, capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    out = p.stdout.decode("ascii")
    assert len(out.splitlines()) == 5
    (_assert_clean_markdown if markdown else _assert_clean_terminal)(out)
    assert "\\x1b[2J" in out and "\\u200b" in out and "\\xff\\xfe" in out and "plain line" in out
