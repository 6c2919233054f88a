"""The remedy for an answer that belongs to another name (a search-suffixed candidate answered
instead of the name meant): one builder for `diagnose`/`resolve` (toolkit.triage.another_name)
and `capture` (toolkit.capture.othername), beside ``cluster_domain`` which decides whether the
search domain is the cluster's own (the kubelet writes it) or the node's (the kubelet copies it).
Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.sysinfo.resolvconf.wildcards import cluster_domain


def _under(name: str, zone: str | None) -> bool:
    if zone is None:
        return False
    n, z = name.strip(".").lower(), zone.strip(".").lower()
    return n == z or n.endswith("." + z)


def in_cluster(domain: str, search: Sequence[str] | None) -> bool:
    """``domain`` is a search domain of the cluster's own. With the pod's search list, under its
    cluster domain; without one (a capture file), by shape: ``<ns>.svc.<zone>``, ``svc.<zone>``
    or under ``cluster.local``."""
    if search is not None:
        return _under(domain, cluster_domain(search))
    d = domain.strip(".").lower()
    return "svc" in d.split(".") or d.endswith("cluster.local")


def search_candidate_remedy(*, name: str, domain: str, search: Sequence[str] | None, last: str) -> str:
    """What to do, in order: the application's name (a trailing dot), the pod's ndots, the
    node's search list (only for a domain that is not the cluster's), then ``last`` (the
    wildcard, the record or the rewriting resolver: the caller knows which)."""
    bare = name.rstrip(".")
    dots = bare.count(".")
    steps = [f"write the name with a trailing dot in the application's config ({bare}.): glibc and musl then "
             "ask it as is and never through the search list"]
    if dots:
        steps.append(f"or lower ndots for the pod: dnsConfig: {{options: [{{name: ndots, value: \"{dots}\"}}]}} "
                     "(a name with at least ndots dots is asked as is first)")
    if not in_cluster(domain, search):
        steps.append(f"or remove {domain.rstrip('.')} from the node's search list: the kubelet copies it from "
                     "the node's resolv.conf (point kubelet --resolv-conf at a file without it)")
    steps.append(last)
    return "; ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))
