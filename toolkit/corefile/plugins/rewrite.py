"""rewrite: changes the question before the later plugins see it (coredns/coredns
plugin/rewrite). All ``rewrite`` lines of a block are one plugin with a list of rules, tried
in line order (rewrite.go ServeDNS): a rule that does not match is skipped; one that matches
applies and, in its mode, ends the rewriting (``stop``, the default) or lets the next rule see
the new question (``continue``).

Evaluated here: ``rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO
[answer ...]``, its block form ``rewrite [stop|continue] { name ...; answer ... }`` (the block's
tokens are the rule's arguments, setup.go rewriteParse), and ``type FROM TO`` (the query type
seen by later plugins). Every other rule type (class, edns0, ttl, cname, rcode...) is not
evaluated: it is taken not to match, with a note.

As name.go does: FROM and TO of exact/prefix/suffix/substring are lower-cased FQDNs
(plugin.Name.Normalize adds the trailing dot, so ``prefix foo`` matches ``foo.`` only),
substring replaces every occurrence, a regex is matched against the lower-cased FQDN and its
replacement is normalized after ``{N}`` are filled (an unknown ``{N}`` stays as written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.corefile import regex
from toolkit.corefile.document import Directive
from toolkit.corefile.plugins.base import Action, Context, Query, Step, at

_MATCH_TYPES = ("exact", "prefix", "suffix", "substring", "regex")
_MODES = ("continue", "stop")


@dataclass(frozen=True)
class Rule:
    """One rewrite rule: its mode, its type and its arguments after the type."""

    mode: str
    kind: str
    args: tuple[str, ...]
    line: int


def rule_of(d: Directive) -> Rule:
    """The rule one ``rewrite`` directive gives (setup.go rewriteParse, rewrite.go newRule)."""
    args = list(d.args)
    if len(args) < 2:
        for sub in d.block:
            args.extend((sub.name, *sub.args))
    mode = "stop"
    if args and args[0].lower() in _MODES:
        mode, args = args[0].lower(), args[1:]
    kind = args[0].lower() if args else ""
    return Rule(mode=mode, kind=kind, args=tuple(args[1:]), line=d.line)


def _normalize(s: str) -> str:
    """plugin.Name.Normalize: lower case, with the trailing dot."""
    s = s.lower()
    return s if s.endswith(".") else s + "."


def valid_name(name: str) -> bool:
    """miekg/dns IsDomainName, as rewrite.go checks the new name: no empty label but the
    root's, labels of at most 63 octets, at most 255 octets in all."""
    if name == ".":
        return True
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return (all(0 < len(x.encode()) <= 63 for x in labels)
            and len(name.encode()) + (0 if name.endswith(".") else 1) <= 255)


def _name_rewrite(rule: Rule, name: str) -> str | None:
    """The question name after RULE, None when it does not match (name.go)."""
    args = rule.args
    if len(args) < 2:
        return None
    if len(args) == 2 or args[0].lower() not in _MATCH_TYPES:
        mtype, frm, to = "exact", args[0], args[1]
    else:
        mtype, frm, to = args[0].lower(), args[1], args[2]
    if mtype == "regex":
        m = regex.search(frm, name)
        if m is None:
            return None
        out = _normalize(to)
        for i, g in enumerate(m.groups):
            out = out.replace("{" + str(i) + "}", g)
        return out
    frm, to = _normalize(frm), _normalize(to)
    if mtype == "exact":
        return to if name == frm else None
    if mtype == "prefix":
        return to + name[len(frm):] if name.startswith(frm) else None
    if mtype == "suffix":
        return name[: -len(frm)] + to if name.endswith(frm) else None
    return name.replace(frm, to) if frm in name else None


def apply_rule(rule: Rule, query: Query) -> tuple[Query | None, str | None]:
    """(the query after RULE, None when it does not match; a note for a rule not evaluated)."""
    if rule.kind == "name":
        try:
            new = _name_rewrite(rule, query.name)
        except regex.RegexError as exc:
            return None, f"rewrite at line {rule.line} not evaluated ({exc})"
        return (None if new is None else Query(new, query.qtype)), None
    if rule.kind == "type" and len(rule.args) == 2:
        if query.qtype == rule.args[0].upper():
            return Query(query.name, rule.args[1].upper()), None
        return None, None
    return None, f"rewrite {rule.kind or '(empty)'} at line {rule.line} not evaluated"


def _responds(rule: Rule) -> bool:
    """Whether a matching RULE adds response rules (name.go: an exact rule always rewrites
    the answer back, the others with ``answer ...`` arguments; type rules never)."""
    if rule.kind != "name":
        return False
    typed = len(rule.args) >= 3 and rule.args[0].lower() in _MATCH_TYPES
    return (not typed and len(rule.args) == 2) or (typed and rule.args[0].lower() == "exact") \
        or len(rule.args) > 3


def handler(directives: Sequence[Directive], query: Query, ctx: Context) -> Step:  # noqa: ARG001
    """Apply the block's rules in line order until a matching ``stop`` rule.

    rewrite.go ServeDNS restores the client's question in the answer only when a ``stop``
    rule ended the rewriting or a matching rule added response rules; rules that matched in
    ``continue`` mode alone (no ``answer``) leave the rewritten question in the answer, and
    clients that check it (glibc, musl, Go, dig, dnspython) drop the answer: a timeout."""
    notes: list[str] = []
    cur = query
    matched = responds = stopped = False
    for d in directives:
        rule = rule_of(d)
        new, note = apply_rule(rule, cur)
        if note:
            notes.append(note)
        if new is None:
            continue
        if not valid_name(new.name):
            return Step(action=Action.ERROR, name=cur.name, directive=d, rcode="SERVFAIL",
                        notes=tuple(notes),
                        outcome=f"rewrite ({at(d)}) makes {new.name!r}, not a domain name: "
                                "SERVFAIL (rewrite.go: invalid name after rewrite)")
        if new != cur:
            change = f"{cur.name} -> {new.name}" if new.name != cur.name else \
                f"type {cur.qtype} -> {new.qtype}"
            notes.append(f"rewrite ({at(d)}, {rule.mode}): {change}")
        cur = new
        matched = True
        responds = responds or _responds(rule)
        if rule.mode == "stop":
            stopped = True
            break
    unreverted = matched and not stopped and not responds and cur != query
    if unreverted:
        notes.append(f"rewrite: the rules matched in 'continue' mode only, without 'answer': "
                     f"the answer keeps the question {cur.name} ({cur.qtype}), so clients "
                     "drop it as an answer to another question (rewrite.go): a timeout")
    action = Action.REWRITE if cur != query else Action.PASS
    return Step(action=action, name=cur.name, notes=tuple(notes), qtype=cur.qtype,
                unreverted=unreverted)
