"""The parser never raises anything but CorefileError, never recurses, and stays fast."""
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.corefile.lint import lint
from toolkit.corefile.parser import CorefileError, parse_corefile
from toolkit.corefile.trace import trace_name

_WORDS = ["{", "}", "\n", " ", "\t", "#", '"', "\\", "import", "(s)", "(t)", ".:53", ".", ",",
          "forward", "cache", "loop", "errors", "kubernetes", "rewrite", "name", "template",
          "hosts", "fallthrough", "bind", "10.0.0.0/8", "tls://", "dns://", "{$ENV}", "{%X%}",
          "{args[0]}", "example.org:53", "1.2.3.4", "[::1]:53", ":", "xxx.xxx.xxx.xxx", "s", "t"]

tokens = st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=6)), max_size=200)


def _parse_ok_or_error(text):
    try:
        cf = parse_corefile(text)
    except CorefileError as exc:
        assert exc.line >= 1 and exc.column >= 1
        return None
    lint([cf])
    trace_name("a.example.org", [cf])
    return cf


@settings(max_examples=400, deadline=None)
@given(tokens)
def test_random_tokens(parts):
    _parse_ok_or_error(" ".join(parts))
    _parse_ok_or_error("".join(parts))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_text(text):
    _parse_ok_or_error(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300), st.booleans())
def test_unbalanced_braces(opens, closes, newline):
    sep = "\n" if newline else " "
    _parse_ok_or_error(". {" + sep + ("a {" + sep) * opens + ("}" + sep) * closes)


def test_deep_nesting_10k_levels():
    for text in (". {\n" + "a {\n" * 10_000 + "}\n" * 10_001,
                 "{" * 10_000, "(s) {\n" + "{\n" * 10_000,
                 ". {\n" + "a {\n" * 10_000):
        try:
            parse_corefile(text)
        except CorefileError:
            pass


def test_huge_file_parses_fast():
    block = ("zone{i}.example:53 {{\n    errors\n    cache 30\n    loop\n"
             "    forward . 10.0.{j}.1 10.0.{j}.2 {{\n        force_tcp\n    }}\n}}\n")
    text = "".join(block.format(i=i, j=i % 250) for i in range(50_000 // 8 + 1))
    assert text.count("\n") >= 50_000
    t0 = time.monotonic()
    cf = parse_corefile(text)
    elapsed = time.monotonic() - t0
    assert len(cf.blocks) > 6000
    assert elapsed < 3.0, elapsed
    t0 = time.monotonic()
    lint([cf])
    assert time.monotonic() - t0 < 10
