"""rewrite: changes the question's name before the later plugins see it (coredns/coredns
plugin/rewrite). Evaluated here: ``rewrite [continue|stop] name [exact|prefix|suffix|
substring|regex] FROM TO`` and the block form ``rewrite [stop] { name ... ; answer ... }`` (its
``name`` line rewrites the question, ``answer`` lines only the response). Other rewrites
(type, class, edns0...) leave the name as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from toolkit.corefile.document import Directive
from toolkit.corefile.names import fqdn
from toolkit.corefile.plugins.base import Action, Context, Handler, Query, Step, each


class MatchType(StrEnum):
    """How a ``name`` rule's FROM matches the name."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    SUBSTRING = "substring"
    REGEX = "regex"


_MATCH_TYPES = frozenset(m.value for m in MatchType)


class _NotEvaluated(Exception):
    """A regex FROM that Python cannot compile: the rule is not evaluated."""


def name_rule(d: Directive) -> tuple[tuple[str, ...], int] | None:
    """The arguments after ``name`` of D's name rule and the line they are on; None when D
    does not rewrite the name."""
    args = d.args
    if args and args[0] in ("continue", "stop"):
        args = args[1:]
    if not args and d.has_block:
        for sub in d.block:
            if sub.name == "name":
                return sub.args, sub.line
        return None
    if not args or args[0] != "name":
        return None
    return args[1:], d.line


def _exact(n: str, frm: str, to: str) -> str | None:
    return fqdn(to) if n == fqdn(frm) else None


def _prefix(n: str, frm: str, to: str) -> str | None:
    return to + n[len(frm):] if n.startswith(frm) else None


def _suffix(n: str, frm: str, to: str) -> str | None:
    f2 = frm if frm.endswith(".") else frm + "."
    t2 = to if to.endswith(".") else to + "."
    return n[: -len(f2)] + t2 if n.endswith(f2) else None


def _substring(n: str, frm: str, to: str) -> str | None:
    return n.replace(frm, to, 1) if frm in n else None


def _regex(n: str, frm: str, to: str) -> str | None:
    try:
        m = re.search(frm, n)
    except re.error:
        raise _NotEvaluated from None
    if not m:
        return None
    groups = m.re.groups or 0
    # {N} in TO is the Nth group of the match ({0} the whole match, unknown groups empty).
    return re.sub(r"\{(\d+)\}", lambda g: (m.group(int(g.group(1))) or "")
                  if int(g.group(1)) <= groups else "", to)


_MATCHERS: dict[MatchType, Callable[[str, str, str], str | None]] = {
    MatchType.EXACT: _exact, MatchType.PREFIX: _prefix, MatchType.SUFFIX: _suffix,
    MatchType.SUBSTRING: _substring, MatchType.REGEX: _regex,
}


def apply_rewrite(d: Directive, name: str) -> tuple[str, str | None]:
    """(new name, note) for one rewrite directive; forms not understood leave the name as it
    is, with a note when the rule could not be evaluated."""
    rule = name_rule(d)
    if rule is None:
        return name, None
    args, line = rule
    mtype = MatchType.EXACT
    if args and args[0] in _MATCH_TYPES:
        mtype, args = MatchType(args[0]), args[1:]
    if len(args) < 2:
        return name, f"rewrite at line {line} not evaluated (unexpected arguments)"
    n = fqdn(name)
    try:
        new = _MATCHERS[mtype](n, args[0].lower(), args[1].lower())
    except _NotEvaluated:
        return name, f"rewrite regex at line {line} not evaluated"
    if new is None or fqdn(new) == n:
        return name, None
    return fqdn(new), f"rewrite at line {line}: {n} -> {fqdn(new)}"


def step(d: Directive, query: Query, ctx: Context) -> Step:  # noqa: ARG001 - the Handler signature
    """The name after this rule; every rule is applied in turn (``continue`` semantics).
    CoreDNS's default is ``stop`` (the first rule that matches ends the rewriting): a known
    difference, left for the per-version semantics (``Semantics``)."""
    name, note = apply_rewrite(d, query.name)
    return Step(action=Action.REWRITE if name != query.name else Action.PASS, name=name,
                notes=(note,) if note else ())


handler: Handler = each(step)
