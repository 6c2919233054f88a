"""Conntrack evidence: counters, table occupancy, DNS flow entries, the A/AAAA race test.

Public API for ``diagnose``:

* ``read_snapshot(...) -> ConntrackSnapshot``: never raises for a missing source; the
  snapshot records which sources worked and why the others did not.
* ``conntrack_findings(before, after, *, race=None) -> list[Finding]``.
* ``race_test(...) -> RaceResult`` and ``race_findings(result) -> list[Finding]``.

Everything here is per network namespace: ``snapshot.netns`` says which one.
"""

from toolkit.conntrack.findings import conntrack_findings, race_findings  # noqa: F401
from toolkit.conntrack.snapshot import ConntrackSnapshot, read_snapshot  # noqa: F401
