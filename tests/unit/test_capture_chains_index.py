"""The search-list chains' index by first label (ChainTracker._neg_first) changes nothing but
speed: real lab traffic (many concurrent walks from one pod) analysed with the index and with
every open negative walk scanned, as before it, gives the same lookups, with the search list
unknown and known."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.capture.chains import Chain, ChainTracker
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.session import analyze_file

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "lab-coredns-nodelocal-burst.pcap"
SEARCH = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s")


def _lookups(search: tuple[str, ...]) -> list[tuple[object, ...]]:
    s = analyze_file(str(SAMPLE), config=AnalyzerConfig(search=search, keep_lookups=100_000)).summary
    return [(x.ts, x.client, x.base, x.candidates, x.qtypes, x.queries, x.outcome, x.client_ports)
            for x in s.lookups]


@pytest.mark.parametrize("search", [(), SEARCH], ids=["search-unknown", "search-known"])
def test_the_index_gives_the_lookups_a_full_scan_gives(monkeypatch, search):
    indexed = _lookups(search)

    def full_scan(self: ChainTracker, client: str, qn: str) -> tuple[list[Chain] | None, None]:
        return self._negative.get(client), None

    monkeypatch.setattr(ChainTracker, "_negative_of", full_scan)
    scanned = _lookups(search)
    assert len(indexed) > 500 and indexed == scanned
