"""`diagnose` in the lab: one scenario per verdict, each asserting the key evidence."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from tests import hostile as H
from tests.integration.test_resolve_lab import PODTRIAGE, pt

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
COREFILES = ROOT / "tests" / "lab" / "corefiles"
REF = ("--reference", "192.168.60.53")


def diagnose(lab, *args, timeout=40):
    t0 = time.monotonic()
    p = pt(lab, "diagnose", *args, "-o", "json", timeout=timeout)
    took = time.monotonic() - t0
    assert p.returncode in (0, 1, 5), (p.returncode, p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert (p.returncode == 0) == (doc["verdict"] == "ok")
    return doc, took


def codes(doc):
    return [f["code"] for f in doc["findings"]]


def test_seed_with_reference_is_bad_answer(lab):
    doc, took = diagnose(lab, "api.corp.example", "--port", "80", *REF)
    assert doc["verdict"] == "bad-answer" and doc["confidence"] == "high"
    top = doc["findings"][0]
    assert top["code"] == "stale-answer"
    assert "169.254.25.10" in top["data"]["servers"]
    assert top["data"]["addresses"] == ["192.168.50.77"]
    dead = next(a for a in doc["addresses"] if a["address"] == "192.168.50.77")
    assert dead["state"] == "host-unreachable"
    # The node (the pod's gateway) said so, after its ARP gave up, as in the seed's ping.
    assert any(p["target"] == "192.168.50.77" and p["result"] == "host-unreachable"
               and p["from"] == "10.244.1.1" for p in doc["probes"])
    alive = next(a for a in doc["addresses"] if a["address"] == "192.168.50.20")
    assert alive["state"] == "up"
    for key in ("name", "verdict", "confidence", "findings", "answers", "probes"):
        assert key in doc
    assert {"server", "transport", "addresses"} <= set(doc["answers"][0])
    assert {"address", "kind", "result", "from"} <= set(doc["probes"][0])
    # The SOA of the answered name's zone, not the cluster zone's that the real kubernetes
    # plugin puts into the search walk's NXDOMAINs (issue 21 item 5a)
    differs = next(f for f in doc["findings"] if f["code"] == "answer-differs-from-reference")
    soa = [e for e in differs["evidence"] if e.startswith("SOA seen via")]
    assert soa == ["SOA seen via 169.254.25.10: zone corp.example. serial 2017010101 mname ns1.corp.example.",
                   "SOA seen via 192.168.60.53: zone corp.example. serial 2026110101 mname ns1.corp.example."], soa


def test_seed_without_reference_is_not_confidently_wrong(lab):
    doc, _ = diagnose(lab, "api.corp.example", "--port", "80")
    assert doc["verdict"] == "indeterminate" and doc["confidence"] == "low"
    assert "--reference" in doc["settle"]


def test_seed_with_corefiles_names_the_block_and_upstream(lab):
    doc, _ = diagnose(lab, "api.corp.example", "--port", "80",
                      "--corefile", str(COREFILES / "nodelocaldns-configmap.yaml"),
                      "--corefile", str(COREFILES / "coredns-configmap.yaml"))
    assert doc["verdict"] == "bad-answer"
    top = doc["findings"][0]
    text = json.dumps(top)
    assert "corp.example" in text and "192.168.50.53" in text


def test_host_down_is_unreachable_host(clean_lab):
    clean_lab.app_down()
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80", *REF)
    assert doc["verdict"] == "unreachable-host" and doc["confidence"] == "high"
    assert doc["findings"][0]["code"] == "host-down"


def test_port_closed(lab):
    doc, _ = diagnose(lab, "www.example.org", "--port", "81", *REF)
    assert doc["verdict"] == "port-closed"


def test_admin_prohibited_is_filtered(clean_lab):
    clean_lab.reject_admin("192.168.50.20")
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80", *REF)
    assert doc["verdict"] == "filtered"
    assert any(p["result"] == "admin-prohibited" for p in doc["probes"])


def test_nodelocal_stopped_coredns_answers(clean_lab):
    clean_lab.stop("nodelocal")
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80", "--server", "10.233.0.3")
    assert doc["verdict"] == "dns-unavailable"
    top = doc["findings"][0]
    assert top["code"] == "cache-broken-hop"
    assert top["data"]["failing"] == ["169.254.25.10"] and top["data"]["behind"] == ["10.233.0.3"]
    refused = next(f for f in doc["findings"] if f["code"] == "server-refused")
    assert refused["data"]["server"] == "169.254.25.10"


def test_nodelocal_stopped_found_through_corefile(clean_lab):
    clean_lab.stop("nodelocal")
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80",
                      "--corefile", str(COREFILES / "nodelocaldns-configmap.yaml"))
    assert doc["verdict"] == "dns-unavailable"
    assert doc["findings"][0]["code"] == "cache-broken-hop"


def test_nodelocal_silently_dropping(clean_lab):
    clean_lab.drop_udp53("nodelocal")
    clean_lab.block_tcp53("nodelocal")
    doc, took = diagnose(clean_lab, "www.example.org", "--port", "80", "--deadline", "6")
    assert doc["verdict"] == "dns-unavailable"
    f = next(f for f in doc["findings"] if f["code"] == "server-timeout")
    assert sorted(f["data"]["transports"]) == ["tcp", "udp"]
    assert took <= H.deadline_limit(6), took


def test_nxdomain_only_from_stub_path(clean_lab):
    clean_lab.force_rcode("api.corp.example", "NXDOMAIN", server="legacy")
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF)
    assert doc["verdict"] == "dns-error"
    assert doc["findings"][0]["code"] == "error-only-on-path"


def test_healthy_name_is_ok(lab):
    # How fast (the 1.5 s target) is scripts/benchmarks/diagnose.py's business.
    doc, _ = diagnose(lab, "www.example.org", "--port", "80", *REF)
    assert doc["verdict"] == "ok", doc["findings"]


def test_all_dead_ends_by_the_deadline(clean_lab):
    clean_lab.drop_udp53("nodelocal")
    clean_lab.block_tcp53("nodelocal")
    doc, took = diagnose(clean_lab, "api.corp.example", "--port", "80", "--deadline", "3",
                         "--server", "10.244.1.1")
    assert doc["verdict"] == "dns-unavailable"
    assert took <= H.deadline_limit(3), took


def test_without_net_raw_still_gives_a_verdict(lab):
    cmd = " ".join(shlex.quote(x) for x in ([PODTRIAGE] if PODTRIAGE else ["python3", "-m", "toolkit"])
                   + ["diagnose", "api.corp.example", "--port", "80", *REF, "-o", "json"])
    p = lab.exec("pod", "capsh", "--drop=cap_net_raw", "--", "-c", cmd, timeout=40)
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "bad-answer"
    assert "NET_RAW" in json.dumps(doc["notes"]) + p.stderr


def test_application_socket_stuck_on_the_dead_address(lab):
    import subprocess

    # The application (curl in the pod) is connecting to the stale address while we run.
    app = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "curl", "-s", "-m", "8",
                            "http://api.corp.example/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        doc, _ = diagnose(lab, "api.corp.example", "--port", "80", *REF)
    finally:
        app.kill()
        app.wait(timeout=10)
    f = next(f for f in doc["findings"] if f["code"] == "app-syn-sent")
    assert "192.168.50.77:80" in f["data"]["sockets"]
    assert "dead address" in f["summary"]
    assert any(s["process"] == "curl" for s in doc["app_sockets"])


def test_capture_during_diagnose_sees_the_5_second_signature(clean_lab):
    import subprocess

    lab = clean_lab
    lab.drop_aaaa("nodelocal")
    # The application keeps looking the name up while podtriage watches the wire.
    # (it starts once podtriage's capture socket is open, ~0.5 s after podtriage itself).
    app = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "sh", "-c",
                            "sleep 1.5; exec getent ahosts www.example.org"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        doc, took = diagnose(lab, "www.example.org", "--port", "80", *REF, "--capture", "8",
                             "--deadline", "12", timeout=60)
    finally:
        app.kill()
        app.wait(timeout=10)
    # The wire shows the 5-second signature (the application's A/AAAA from one socket, the
    # AAAA resent after 5 s) ...
    sig = next(f for f in doc["findings"] if f["code"] == "capture-5s-signature")
    assert sig["verdict"] == "conntrack"
    assert any(n.startswith("capture: ") for n in doc["notes"])
    # ... but podtriage's own lone AAAA, from its own socket, is lost too: not the race, a
    # path that drops AAAA (dns-failure-catalog F10). That decides.
    lost = next(f for f in doc["findings"] if f["code"] == "aaaa-unanswered")
    assert lost["data"]["server"] == "169.254.25.10" and lost["data"]["transport"] == "udp"
    assert doc["verdict"] == "dns-unavailable"


def test_race_test_during_diagnose(lab):
    doc, _ = diagnose(lab, "www.example.org", "--port", "80", *REF, "--race-test", "30")
    assert doc["verdict"] == "ok"  # no race on the lab's path (NodeLocal is not DNATed)


def test_corefiles_through_pipes_as_the_kubectl_plugin_passes_them(lab):
    """kubectl-podtriage --corefiles hands the ConfigMaps over as env vars that bash turns
    into /dev/fd pipes: diagnose must read them like files."""
    env = {"CM_NL": (COREFILES / "nodelocaldns-configmap.yaml").read_text(),
           "CM_CD": (COREFILES / "coredns-configmap.yaml").read_text()}
    exe = PODTRIAGE or "podtriage"
    script = (f'{shlex.quote(exe)} diagnose api.corp.example --port 80 -o json '
              '--corefile <(printf "%s\\n" "$CM_NL") --corefile <(printf "%s\\n" "$CM_CD")')
    import os

    p = lab.exec("pod", "bash", "-c", script, timeout=40, env={**os.environ, **env})
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "bad-answer"
    assert "192.168.50.53" in json.dumps(doc["findings"][0])


# --- the real stack's own failure modes (issue 21 item 5) ---------------------------------

def test_upstream_silent_cache_alive_is_not_a_dead_cache(clean_lab):
    """The upstream drops everything: NodeLocal answers the cluster's candidates (CoreDNS's
    kubernetes plugin) and SERVFAIL for the name only after its forwarders give up (4-6 s)."""
    clean_lab.drop_udp53("upstream")
    clean_lab.block_tcp53("upstream")
    for extra in ((), REF):
        clean_lab.flush("coredns")          # no SERVFAIL kept from the last run
        doc, took = diagnose(clean_lab, "www.example.org", "--port", "80", *extra)
        assert doc["verdict"] == "dns-unavailable" and doc["confidence"] == "high", codes(doc)
        top = doc["findings"][0]
        assert top["code"] == "upstream-silent", codes(doc)
        assert top["data"]["servers"] == ["169.254.25.10"] and top["data"]["alive_answers"] >= 6
        assert "not the cache" in top["summary"]
        assert took <= H.deadline_limit(10), took
    assert top["data"]["silent_references"] == ["192.168.60.53"]
    assert not any(f["code"] == "server-timeout" for f in doc["findings"])
    # the name as written: the cache answers nothing in time; asked once more, patiently, it
    # answers SERVFAIL when its forwarders give up: alive
    clean_lab.flush("coredns")
    doc, took = diagnose(clean_lab, "www.example.org.", "--port", "80")
    assert doc["verdict"] == "dns-unavailable", codes(doc)
    top = doc["findings"][0]
    assert top["code"] == "upstream-silent" and top["data"]["alive_answers"] == 0, codes(doc)
    assert top["data"]["patient"]["outcome"] == "SERVFAIL" and doc["patient_query"]["rcode"] == "SERVFAIL"
    assert took <= H.deadline_limit(10), took


def test_tcp_blocked_at_the_upstream_names_the_tcp_propagation(clean_lab):
    """NodeLocal forwards with force_tcp, CoreDNS with the transport it was asked on: a TCP
    block at the upstream fails every lookup through the cache while UDP to it works."""
    clean_lab.block_tcp53("upstream")
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80", *REF)
    assert doc["verdict"] == "dns-unavailable" and doc["confidence"] == "high", codes(doc)
    top = doc["findings"][0]
    assert top["code"] == "forward-tcp-blocked" and top["data"]["tcp_blocked"] == ["192.168.60.53"], codes(doc)
    # the reference answers over UDP: it vouches, it is not "unavailable"
    assert not any(f["code"] == "reference-unavailable" for f in doc["findings"])
    ref = next(f for f in doc["findings"] if f["code"] == "tcp-fails-udp-works")
    assert ref["verdict"] is None and "[reference]" in ref["summary"]
    # with the Corefiles: the server behind the cache (CoreDNS) fails over TCP only, and the
    # last hop, CoreDNS's forward, is named; the cache is not blamed
    clean_lab.flush("coredns")
    doc, _ = diagnose(clean_lab, "www.example.org", "--port", "80",
                      "--corefile", str(COREFILES / "nodelocaldns-configmap.yaml"),
                      "--corefile", str(COREFILES / "coredns-configmap.yaml"))
    top = doc["findings"][0]
    assert top["code"] == "forward-tcp-blocked", codes(doc)
    assert top["data"]["tcp_blocked"] == ["10.233.0.3"] and top["data"]["last_tcp_hop"] == "192.168.60.53:53"
    assert not any(f["code"] == "cache-broken-hop" for f in doc["findings"])
