"""Corefile regular expressions with CoreDNS's semantics: Go's regexp is RE2 (syntax and
linear-time matching), so ``rewrite ... regex`` and ``template ... match`` patterns are
compiled and run with RE2 (google-re2), never with Python's backtracking ``re``: a pattern
such as ``^([a-z.]|[a-z.]|[a-z.]|[a-z.])*!$`` takes microseconds instead of hours, and a pattern
Go refuses (look-around, back-references, repeat counts over 1000) is refused here too.

plugin/rewrite/name.go caps a pattern at 10,000 characters (maxRegexpLen); the same cap holds
here for every Corefile regex.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

MAX_PATTERN = 10_000


class RegexError(ValueError):
    """A pattern CoreDNS's Go regexp would refuse (CoreDNS then refuses the Corefile)."""


@dataclass(frozen=True)
class Match:
    """A match: the whole match and its groups ('' for a group that did not take part, as
    Go's FindStringSubmatch gives)."""

    groups: tuple[str, ...]  # groups[0] is the whole match


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:  # Any: re2._Regexp has no type stubs
    import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"regex pattern too long: {len(pattern)} > {MAX_PATTERN}")
    options = re2.Options()
    options.log_errors = False  # RE2 writes every refused pattern to stderr otherwise
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexError(f"invalid regex {pattern[:80]!r}: {detail}") from None


def check(pattern: str) -> int:
    """The number of groups of PATTERN; RegexError when Go's regexp would refuse it."""
    n: int = _compiled(pattern).groups
    return n


def search(pattern: str, text: str) -> Match | None:
    """The leftmost-first match of PATTERN in TEXT (RE2, linear time), None when none."""
    m = _compiled(pattern).search(text)
    if m is None:
        return None
    return Match(tuple(g or "" for g in (m.group(0), *m.groups())))
