"""`diagnose --corefile` in the lab says what it took each Corefile for, and --corefile-role
overrides it. Runs inside the lab's namespaces only (diagnose sends queries)."""

from __future__ import annotations

import pytest

from tests.integration.test_diagnose_lab import COREFILES, diagnose

pytestmark = pytest.mark.lab


def test_diagnose_shows_roles_and_takes_an_override(lab):
    nl, cd = str(COREFILES / "nodelocaldns-configmap.yaml"), str(COREFILES / "coredns-configmap.yaml")
    doc, _ = diagnose(lab, "api.corp.example", "--port", "80", "--corefile", nl, "--corefile", cd)
    notes = "\n".join(doc["notes"])
    assert "nodelocaldns:Corefile]: taken for node-cache (content: block alpha.pm.k8s:53 binds " \
           "the link-local address 169.254.25.10" in notes
    assert "coredns:Corefile]: taken for cluster-dns (content" in notes
    assert doc["verdict"] == "bad-answer"  # the seed's stale stub, still found
    doc, _ = diagnose(lab, "api.corp.example", "--port", "80", "--corefile", nl, "--corefile", cd,
                      "--corefile-role", "coredns=server")
    assert "coredns:Corefile]: taken for server (flag: --role)" in "\n".join(doc["notes"])
