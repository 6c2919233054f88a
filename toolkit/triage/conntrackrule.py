"""The diagnose row of issue 26: DNS flows that conntrack still DNATs to a DNS endpoint that is
gone (toolkit.conntrack.stale). They explain a silent DNS path whatever the pod's resolvers
show, so the row sits above the path rules; its confidence comes from the finding's
``confirmed_by`` (the live endpoints exclude the target; the entries are in the table now)."""

from __future__ import annotations

from toolkit.model import Finding
from toolkit.triage.evidence import Facts

CODE = "stale-dns-conntrack"


def stale_dns_conntrack(f: Facts) -> Finding | None:
    """The stale-dns-conntrack finding with the most entries (one exists per dead target)."""
    stale = [x for x in f.base if x.code == CODE]
    return max(stale, key=lambda x: int(x.data.get("entries", 0))) if stale else None
