"""Answers that belong to another name (issue 28, in `capture`): lookups of a name meant
absolute that a search-suffixed candidate answered first.

With ``ndots:5`` (the Kubernetes default) glibc and musl ask ``www.example.org.<search
domain>`` for every search domain before ``www.example.org`` itself, and stop at the first
candidate with records (glibc resolv/res_query.c, __res_context_search; musl
src/network/lookup_name.c, name_from_dns_search). A wildcard under a search domain (the
node's or a corporate domain in the list, ``*.corp.example``) or a resolver that rewrites
NXDOMAIN answers there, and the application connects to that address. The capture sees the
walk: the candidate that answered is ``base.suffix``, not ``base``.

What makes it suspect: the base name has a dot (a single label is meant to go through the
search list, ``kubernetes`` -> ``kubernetes.default.svc.cluster.local``), and the candidate
is not a Kubernetes service or pod name (``redis.shop`` -> ``redis.shop.svc.cluster.local``
is the cluster DNS working as designed). What proves it: the same capture shows the name
itself, asked as is (by another lookup, another client, or a resolver with a trailing dot),
resolving to other addresses.

``SearchAnswers`` tallies the lookups as they close (bounded tables); ``answered_by_search_candidate``
is the rule (its row is in toolkit.capture.rules).
"""

from __future__ import annotations

from collections import OrderedDict

from toolkit.capture.records import CaptureResult, Lookup, SearchAnswer
from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.resolvconf.remedies import search_candidate_remedy

CODE = "capture-answered-by-search-candidate"
_MAX_NAMES = 4096  # names whose own answers are remembered (the oldest go first)
_MAX_HITS = 64  # distinct (name, candidate) pairs reported
_MAX_ADDRESSES = 16


def cluster_shaped(name: str) -> bool:
    """``name`` is one the Kubernetes DNS specification defines: ``<service>.<ns>.svc.<zone>``,
    ``<hostname>.<service>.<ns>.svc.<zone>`` or ``<a-b-c-d>.<ns>.pod.<zone>``."""
    labels = name.rstrip(".").lower().split(".")
    for i, label in enumerate(labels):
        if label == "svc":
            return i in (2, 3)
        if label == "pod":
            return i == 2
    return False


class _Hit:
    __slots__ = ("lookups", "addresses", "clients", "first_ts")

    def __init__(self, ts: float) -> None:
        self.lookups = 0
        self.addresses: list[str] = []
        self.clients: list[str] = []
        self.first_ts = ts


class _Itself:
    __slots__ = ("addresses", "nxdomain")

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.nxdomain = 0


def _add(into: list[str], items: tuple[str, ...] | list[str]) -> None:
    for a in items:
        if a not in into and len(into) < _MAX_ADDRESSES:
            into.append(a)


class SearchAnswers:
    """Every closed lookup goes through ``seen``; ``answers`` gives the suspects, each with
    what the capture saw of the name itself (before or after).

    Reading a file, the search list is unknown: a lookup's base is what its candidates share,
    so a walk answered at its first candidate looks like a name asked as is. The first search
    domain is learnt from the walks that went past it (every walk starts there), and a
    one-candidate lookup under it is judged with it at the end: ``www.example.org.shop.svc.
    cluster.local`` answered by a wildcard ``*.shop.svc.cluster.local``. Only the first domain:
    a name asked as is (``ndots:1``, a trailing dot) under a later domain is common and fine.
    """

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], _Hit] = {}
        self._single: dict[str, _Hit] = {}  # answered at their only candidate, 3 dots or more
        self._first_domains: dict[str, int] = {}  # the first search domain of walks -> walks
        self._itself: OrderedDict[str, _Itself] = OrderedDict()

    def seen(self, lk: Lookup) -> None:
        """Tally one closed lookup."""
        base = lk.base.rstrip(".").lower()
        if len(lk.candidates) > 1:
            self._learn(base, lk.candidates[0])
        if "." not in base:
            return  # one label: the search list is how it is meant to resolve
        answered = lk.answered_name.rstrip(".").lower() if lk.answered_name else None
        if lk.search_suffix is not None and answered is not None:
            if (base, answered) in self._hits or len(self._hits) < _MAX_HITS:
                _tally(self._hits.setdefault((base, answered), _Hit(lk.ts)), lk)
            return
        single = answered == base and len(lk.candidates) == 1 and base.count(".") >= 3
        if single and (base in self._single or len(self._single) < 4 * _MAX_HITS):
            _tally(self._single.setdefault(base, _Hit(lk.ts)), lk)
        nx_itself = lk.outcome == "NXDOMAIN" and base in lk.candidates
        if answered != base and not nx_itself:
            return
        own = self._itself.pop(base, None) or _Itself()
        self._itself[base] = own  # the most recent last: the oldest go first
        if len(self._itself) > _MAX_NAMES:
            self._itself.popitem(last=False)
        if answered == base:
            _add(own.addresses, lk.addresses)
        else:
            own.nxdomain += 1

    def _learn(self, base: str, first: str) -> None:
        if first.startswith(base + ".") and base:
            domain = first[len(base) + 1:]
            if domain in self._first_domains or len(self._first_domains) < 16:
                self._first_domains[domain] = self._first_domains.get(domain, 0) + 1

    def _answer(self, name: str, candidate: str, hit: _Hit, learnt: bool) -> SearchAnswer:
        own = self._itself.get(name)
        return SearchAnswer(
            name=name, candidate=candidate, suffix=candidate[len(name) + 1:], addresses=tuple(hit.addresses),
            lookups=hit.lookups, clients=tuple(hit.clients), first_ts=hit.first_ts,
            itself=tuple(own.addresses) if own else (), itself_nxdomain=own.nxdomain if own else 0,
            cluster_shaped=cluster_shaped(candidate), learnt_suffix=learnt)

    def answers(self) -> tuple[SearchAnswer, ...]:
        """The suspects: not a Kubernetes name, or the name itself resolved elsewhere."""
        found = [self._answer(name, cand, hit, False) for (name, cand), hit in self._hits.items()]
        for cand, hit in self._single.items():
            for domain in self._first_domains:
                rest = cand[: -len(domain) - 1]
                if cand.endswith("." + domain) and "." in rest:
                    found.append(self._answer(rest, cand, hit, True))
                    break
        return tuple(a for a in found if not a.cluster_shaped or a.differs)


def _tally(hit: _Hit, lk: Lookup) -> None:
    hit.lookups += 1
    _add(hit.addresses, lk.addresses)
    if lk.client not in hit.clients and len(hit.clients) < 8:
        hit.clients.append(lk.client)


def _fmt(addrs: tuple[str, ...]) -> str:
    return ", ".join(addrs) if addrs else "(no address)"


def _line(a: SearchAnswer) -> str:
    text = (f"{a.name} was answered as {a.candidate} ({_fmt(a.addresses)}), a name the search domain "
            f"{a.suffix} made, not the name meant: {a.lookups} lookup(s) from {', '.join(a.clients)}")
    if a.itself:
        text += f"; {a.name} itself resolves to {_fmt(a.itself)} in this capture"
    elif a.itself_nxdomain:
        text += f"; {a.name} itself was NXDOMAIN in this capture ({a.itself_nxdomain} lookup(s))"
    else:
        text += f"; {a.name} itself was not asked in this capture"
    if a.learnt_suffix:
        text += f" ({a.suffix}: the first search domain of the other walks here; the search list is not known)"
    return text


def remedy(a: SearchAnswer) -> str:
    """What to do, in order (the same builder as diagnose's): the application's name, the pod's
    ndots, the node's search list, the wildcard itself. The search list is unknown in a capture:
    the domain's shape says whether it is the cluster's."""
    return search_candidate_remedy(
        name=a.name, domain=a.suffix, search=None,
        last=(f"or remove the wildcard *.{a.suffix} (or the record {a.candidate}) from its zone; "
              f"`podtriage resolve {a.name} --reference <resolver outside the cluster>` compares"))


def answered_by_search_candidate(res: CaptureResult) -> Finding | None:
    """Names meant absolute answered by a search-suffixed candidate: a warning; bad-answer
    when the capture also shows the name itself resolving to other addresses."""
    found = sorted(res.summary.search_answers, key=lambda a: (not a.differs, -a.lookups))
    if not found:
        return None
    proven = [a for a in found if a.differs]
    first = found[0]
    more = f" (and {len(found) - 1} more name(s))" if len(found) > 1 else ""
    return Finding(
        code=CODE, severity=Severity.WARNING, summary=_line(first) + more,
        evidence=tuple(_line(a) for a in found[:5]), remedy=remedy(first),
        verdict=Verdict.BAD_ANSWER if proven else None, addresses=first.addresses,
        data={"names": [{"name": a.name, "candidate": a.candidate, "domain": a.suffix, "addresses": list(a.addresses),
                         "lookups": a.lookups, "clients": list(a.clients), "itself": list(a.itself),
                         "itself_nxdomain": a.itself_nxdomain, "differs": a.differs} for a in found]})
