"""Hostile Corefile regexes (issue 23 class 3): rewrite and template patterns run with RE2's
linear-time semantics (toolkit/corefile/regex.py), like CoreDNS's Go regexp, so no pattern
makes trace, lint or diagnose --corefile backtrack; patterns Go refuses are lint refusals."""
from __future__ import annotations

import time

import pytest

from toolkit.corefile.lint import lint
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.trace import trace_name

# Catastrophic for a backtracking engine: nested and overlapping quantifiers, alternation
# under a star, long chains of .* (polynomial), with a subject that never matches.
BOMBS = [r"^([a-z.]|[a-z.]|[a-z.]|[a-z.])*!$", r"^(a+)+!$", r"^(a|a)*!$", r"^(a|ab)*c!$",
         r"^" + r".*" * 30 + r"!$", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"^(\w+\s?)*!$"]


@pytest.mark.parametrize("pattern", BOMBS)
def test_regex_bombs_run_in_linear_time(pattern):
    name = "a" * 120 + ".example"
    for directive in (f"rewrite name regex {pattern} x.example.", f'template IN A {{\n    match "{pattern}"\n  }}'):
        cf = parse_corefile(f".:53 {{\n  {directive}\n  forward . 10.0.0.1\n}}\n")
        t0 = time.monotonic()
        trace_name(name, [cf])
        lint([cf])
        assert time.monotonic() - t0 < 1.0, pattern


@pytest.mark.parametrize("pattern", [r"(?=a)b", r"(a)\1", r"a{1001}", r"(?<=x)y", "x" * 10_001])
def test_patterns_go_refuses_are_refusals(pattern):
    cf = parse_corefile(f".:53 {{\n  rewrite name regex {pattern} x.example.\n  forward . 10.0.0.1\n}}\n")
    found = [f for f in lint([cf]).findings if f.code == "coredns-refuses"]
    assert found and found[0].data["line"] == 2 and "regex" in found[0].summary
