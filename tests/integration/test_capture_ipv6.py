"""`podtriage capture` live over IPv6 in the dual-stack lab: glibc's getent asks NodeLocal on
fd00:25::10; with AAAA queries dropped there, the 5-second signature shows over IPv6 too."""

from __future__ import annotations

import pytest

from tests.integration.test_capture import capture_while

pytestmark = pytest.mark.lab
NL6 = "fd00:25::10"


def test_ipv6_nameserver_pairs_and_5s_signature(clean_lab6):
    lab = clean_lab6
    doc = capture_while(lab, 4, ("getent", "ahosts", "dual.example.org"))
    (srv,) = [s for s in doc["servers"] if s["server"] == NL6]
    assert doc["unanswered"] == 0 and doc["queries"] == doc["responses"] == 8

    lab.drop_aaaa6("nodelocal")
    doc = capture_while(lab, 16, ("getent", "ahosts", "dual.example.org"))
    codes = {f["code"]: f for f in doc["findings"]}
    assert "capture-5s-signature" in codes, doc["findings"]
    assert codes["capture-5s-signature"]["verdict"] == "conntrack"
    assert doc["signature"]["lost_types"].get("AAAA")
