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


def _in_cluster(suffix: str) -> bool:
    """A search domain of the cluster's own (``<ns>.svc.<zone>``, ``svc.<zone>``): kubelet
    writes it; it cannot come out of the node's search list."""
    return "svc" in suffix.split(".") or suffix.endswith("cluster.local")


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
    what the capture saw of the name itself (before or after)."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], _Hit] = {}
        self._itself: OrderedDict[str, _Itself] = OrderedDict()

    def seen(self, lk: Lookup) -> None:
        """Tally one closed lookup."""
        base = lk.base.rstrip(".").lower()
        if "." not in base:
            return  # one label: the search list is how it is meant to resolve
        suffix = lk.search_suffix
        if suffix is not None and lk.answered_name is not None:
            key = (base, lk.answered_name.rstrip(".").lower())
            hit = self._hits.get(key)
            if hit is None:
                if len(self._hits) >= _MAX_HITS:
                    return
                hit = self._hits[key] = _Hit(lk.ts)
            hit.lookups += 1
            _add(hit.addresses, lk.addresses)
            if lk.client not in hit.clients and len(hit.clients) < 8:
                hit.clients.append(lk.client)
            return
        answered_itself = lk.answered_name is not None and lk.answered_name.rstrip(".").lower() == base
        nx_itself = lk.outcome == "NXDOMAIN" and base in lk.candidates
        if not answered_itself and not nx_itself:
            return
        own = self._itself.pop(base, None) or _Itself()
        self._itself[base] = own  # the most recent last: the oldest go first
        if len(self._itself) > _MAX_NAMES:
            self._itself.popitem(last=False)
        if answered_itself:
            _add(own.addresses, lk.addresses)
        else:
            own.nxdomain += 1

    def answers(self) -> tuple[SearchAnswer, ...]:
        """The suspects: not a Kubernetes name, or the name itself resolved elsewhere."""
        out = []
        for (name, candidate), hit in self._hits.items():
            own = self._itself.get(name)
            a = SearchAnswer(
                name=name, candidate=candidate, suffix=candidate[len(name) + 1:],
                addresses=tuple(hit.addresses), lookups=hit.lookups, clients=tuple(hit.clients),
                first_ts=hit.first_ts, itself=tuple(own.addresses) if own else (),
                itself_nxdomain=own.nxdomain if own else 0, cluster_shaped=cluster_shaped(candidate))
            if not a.cluster_shaped or a.differs:
                out.append(a)
        return tuple(out)


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
    return text


def remedy(a: SearchAnswer) -> str:
    """What to do, in order (toolkit.triage.another_name's order): the application's name, the
    pod's ndots, the node's search list, the wildcard itself."""
    dots = a.name.count(".")
    steps = [f"write the name with a trailing dot in the application's config ({a.name}.): glibc and musl then "
             "ask it as is and never through the search list",
             f"or lower ndots for the pod: dnsConfig: {{options: [{{name: ndots, value: \"{dots}\"}}]}} "
             "(a name with at least ndots dots is asked as is first)"]
    if not _in_cluster(a.suffix):
        steps.append(f"or remove {a.suffix} from the node's search list: the kubelet copies it from the node's "
                     "resolv.conf (point kubelet --resolv-conf at a file without it)")
    steps.append(f"or remove the wildcard *.{a.suffix} (or the record {a.candidate}) from its zone; "
                 f"`podtriage resolve {a.name} --reference 8.8.8.8` compares")
    return "; ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))


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
