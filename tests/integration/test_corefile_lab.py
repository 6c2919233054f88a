"""`corefile check` against the lab's real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_resolve_lab import pt

pytestmark = pytest.mark.lab
CF = Path(__file__).resolve().parents[2] / "tests" / "lab" / "corefiles"
FILES = (str(CF / "nodelocaldns-configmap.yaml"), str(CF / "coredns-configmap.yaml"))


def check(lab, *args):
    p = pt(lab, "corefile", "check", *FILES, *args, "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def test_retired_server_disagreement_is_found(lab):
    doc = check(lab, "--name", "api.corp.example")
    assert doc["verdict"] == "bad-answer"
    f = next(f for f in doc["findings"] if f["code"] == "stub-upstream-differs")
    assert f["data"]["target"] == "192.168.50.53" and f["data"]["compared_with"] == "192.168.60.53"
    assert f["data"]["block"] == "corp.example:53"
    assert f["data"]["file_line"] == 35  # the line of the forward in the ConfigMap file
    assert any("2017010101 vs 2026110101" in d for d in f["data"]["differences"])
    assert any("192.168.50.77 vs 192.168.50.20" in d for d in f["data"]["differences"])
    others = [t for t in doc["targets"] if t["target"] != "192.168.50.53"]
    assert all(t["status"] == "ok" for t in others), others


def test_stopped_upstream_is_refusing(clean_lab):
    clean_lab.stop("legacy")
    doc = check(clean_lab, "--name", "api.corp.example", "--timeout", "1")
    refusing = {f["data"]["target"] for f in doc["findings"] if f["code"] == "upstream-refusing"}
    assert "192.168.50.53" in refusing  # nothing listens: ICMP port-unreachable and RST
    assert doc["verdict"] == "dns-unavailable"


def test_silent_upstream_is_unreachable(clean_lab):
    clean_lab.drop_udp53("upstream")
    clean_lab.block_tcp53("upstream")
    doc = check(clean_lab, "--timeout", "0.5", "--deadline", "5")
    unreachable = {f["data"]["target"] for f in doc["findings"] if f["code"] == "upstream-unreachable"}
    # the upstream itself, and CoreDNS (10.233.0.3) whose forward to it now times out
    assert "192.168.60.53" in unreachable
