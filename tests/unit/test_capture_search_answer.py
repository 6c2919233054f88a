"""Issue 28 item 3: `capture` flags lookups of a name meant absolute that a search-suffixed
candidate answered (a wildcard under a search domain), and leaves the cluster DNS working as
designed alone.

Generated with scapy (the pattern of test_capture_truth.py): no public trace holds a wildcard
under a search domain, and the walk's exact shape (which candidate answered, whether the name
itself was asked) is the point of each test.
"""

from __future__ import annotations

import json
from pathlib import Path

from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, Ether, wrpcap

from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.othername import CODE, cluster_shaped
from toolkit.capture.report import capture_report
from toolkit.capture.session import analyze_file
from toolkit.model import Verdict
from tests.unit.test_capture_truth import cli

C, C2, S = "10.244.1.10", "10.244.2.20", "10.96.0.10"
T0 = 1_700_000_000.0
WALK = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example")


def pkt(t: float, txid: int, name: str, *, client: str = C, port: int = 40000, qtype: str = "A",
        response: bool = False, rcode: int = 0, address: str | None = None):
    if response:
        an = [DNSRR(rrname=name, type=qtype, rdata=address)] if address else []
        p = Ether() / IP(src=S, dst=client) / UDP(sport=53, dport=port) / DNS(
            id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an)
    else:
        p = Ether() / IP(src=client, dst=S) / UDP(sport=port, dport=53) / DNS(
            id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    p.time = T0 + t
    return p


def exchange(t: float, txid: int, name: str, *, rcode: int = 0, a: str | None = None, client: str = C,
             port: int = 40000) -> list:
    """glibc's shape: A and AAAA of one candidate from one socket, answered within 1 ms
    (the AAAA NODATA when the name has an A record only)."""
    return [pkt(t, txid, name, client=client, port=port),
            pkt(t + 0.0001, txid + 1, name, client=client, port=port, qtype="AAAA"),
            pkt(t + 0.0008, txid, name, client=client, port=port, response=True, rcode=rcode, address=a),
            pkt(t + 0.0009, txid + 1, name, client=client, port=port, qtype="AAAA", response=True, rcode=rcode)]


def walk(t: float, base: str, answers: dict[str, str | None], domains: tuple[str, ...] = WALK,
         client: str = C, port: int = 40000) -> list:
    """A search walk of ``base`` (ndots:5): each candidate NXDOMAIN unless ``answers`` has it;
    it stops at the first that answers, as glibc and musl do."""
    out: list = []
    for i, d in enumerate(domains):
        cand = f"{base}.{d}" if d else base
        addr = answers.get(cand)
        out += exchange(t + i * 0.002, 0x100 + 2 * i, cand, rcode=0 if addr else 3, a=addr, client=client,
                        port=port + i)
        if addr:
            break
    return out


def run(tmp_path: Path, packets: list, config: AnalyzerConfig | None = None):
    path = tmp_path / "walk.pcap"
    wrpcap(str(path), sorted(packets, key=lambda p: p.time))
    res = analyze_file(str(path), config=config)
    return path, res, capture_report(res)


def finding(rep):
    found = [f for f in rep.findings if f.code == CODE]
    return found[0] if found else None


def test_wildcard_under_a_search_domain_is_flagged_with_the_name_meant(tmp_path):
    """The walk of www.example.org ends at www.example.org.corp.example (a wildcard
    *.corp.example): flagged as a warning; no verdict while the capture says nothing of the
    name itself (it may be exactly what the application means)."""
    _, res, rep = run(tmp_path, walk(0.0, "www.example.org", {"www.example.org.corp.example": "10.9.9.9"}))
    (lk,) = res.summary.lookups
    assert lk.base == "www.example.org" and lk.answered_name is not None
    assert lk.search_suffix == "corp.example"
    f = finding(rep)
    assert f is not None and f.severity == "warning" and f.verdict is None
    assert "www.example.org was answered as www.example.org.corp.example (10.9.9.9)" in f.summary
    assert "not asked in this capture" in f.summary
    assert "trailing dot" in f.remedy and "ndots" in f.remedy and "*.corp.example" in f.remedy
    assert "kubelet --resolv-conf" in f.remedy  # corp.example is not a cluster domain
    assert f.data["names"][0]["candidate"] == "www.example.org.corp.example"
    assert rep.verdict == Verdict.OK


def test_the_name_itself_answering_elsewhere_makes_it_a_bad_answer(tmp_path):
    """A later lookup (another pod, a trailing dot) asks www.example.org as is and gets
    93.184.215.14: the wildcard's 10.9.9.9 was another name's answer -> bad-answer."""
    packets = walk(0.0, "www.example.org", {"www.example.org.corp.example": "10.9.9.9"})
    packets += exchange(3.0, 0x900, "www.example.org", a="93.184.215.14", client=C2, port=41000)
    _, _, rep = run(tmp_path, packets)
    f = finding(rep)
    assert f is not None and f.verdict == Verdict.BAD_ANSWER
    assert "www.example.org itself resolves to 93.184.215.14 in this capture" in f.summary
    assert f.data["names"][0]["differs"] is True
    assert rep.verdict == Verdict.BAD_ANSWER


def test_the_name_itself_nxdomain_is_said_and_stays_a_warning(tmp_path):
    packets = walk(0.0, "www.example.org", {"www.example.org.corp.example": "10.9.9.9"})
    packets += exchange(3.0, 0x900, "www.example.org", rcode=3, client=C2, port=41000)
    _, _, rep = run(tmp_path, packets)
    f = finding(rep)
    assert f is not None and f.verdict is None
    assert "www.example.org itself was NXDOMAIN in this capture (1 lookup(s))" in f.summary


def test_short_cluster_name_through_the_search_list_is_not_flagged(tmp_path):
    """``kubernetes`` (no dot) answered as kubernetes.default.svc.cluster.local: the search
    list doing its job. With the pod's search list known (live), the base is ``kubernetes``."""
    search = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
    packets = walk(0.0, "kubernetes", {"kubernetes.default.svc.cluster.local": "10.96.0.1"}, domains=search)
    _, res, rep = run(tmp_path, packets, AnalyzerConfig(search=search))
    (lk,) = res.summary.lookups
    assert lk.base == "kubernetes" and lk.search_suffix == "default.svc.cluster.local"
    assert finding(rep) is None and res.summary.search_answers == ()


def test_service_dot_namespace_is_not_flagged(tmp_path):
    """``redis.cache`` (one dot) answered as redis.cache.svc.cluster.local: a Kubernetes
    service name, as the DNS specification defines it."""
    packets = walk(0.0, "redis.cache", {"redis.cache.svc.cluster.local": "10.96.7.7"})
    _, res, rep = run(tmp_path, packets)
    (lk,) = res.summary.lookups
    assert lk.base == "redis.cache" and lk.search_suffix == "svc.cluster.local"
    assert finding(rep) is None


def test_a_name_answered_as_itself_is_not_flagged(tmp_path):
    """The walk reaches www.example.org itself and it answers: nothing to flag."""
    packets = walk(0.0, "www.example.org", {"www.example.org": "93.184.215.14"}, domains=(*WALK[:3], ""))
    path, res, rep = run(tmp_path, packets)
    (lk,) = res.summary.lookups
    assert lk.answered_name is not None and lk.search_suffix is None
    assert finding(rep) is None
    out = cli(path, "-o", "json")
    doc = json.loads(out.stdout)
    assert doc["lookups"][0]["search_suffix"] is None


def test_cluster_shape():
    assert cluster_shaped("kubernetes.default.svc.cluster.local")
    assert cluster_shaped("web-0.nginx.shop.svc.cluster.local")
    assert cluster_shaped("10-244-1-10.shop.pod.cluster.local")
    assert not cluster_shaped("www.example.org.shop.svc.cluster.local")
    assert not cluster_shaped("www.example.org.corp.example")


def test_json_names_the_candidate_on_the_lookup(tmp_path):
    path, _, _ = run(tmp_path, walk(0.0, "api.partner.io", {"api.partner.io.corp.example": "10.9.9.9"}))
    doc = json.loads(cli(path, "-o", "json").stdout)
    lk = doc["lookups"][0]
    assert lk["answered_name"].rstrip(".") == "api.partner.io.corp.example"
    assert lk["search_suffix"] == "corp.example"
    assert CODE in {f["code"] for f in doc["findings"]}


def test_wildcard_at_the_first_search_domain_is_found_from_the_other_walks(tmp_path):
    """Read from a file the search list is unknown, and a wildcard *.shop.svc.cluster.local
    answers the walk's first candidate: it looks like a name asked as is. Another walk of the
    capture shows shop.svc.cluster.local is the first search domain: flagged, and said how."""
    packets = walk(0.0, "www.google.com", {"www.google.com": "142.250.1.1"}, domains=(*WALK[:3], ""))
    packets += walk(2.0, "www.example.org", {"www.example.org.shop.svc.cluster.local": "10.9.9.9"},
                    client=C2, port=41000)
    # asked as is under later domains, and a pod of a headless service: not flagged
    packets += exchange(4.0, 0x700, "x.y.corp.example", a="10.1.1.1")
    packets += exchange(6.0, 0x800, "web-0.nginx.shop.svc.cluster.local", a="10.244.3.3")
    _, res, rep = run(tmp_path, packets)
    (a,) = res.summary.search_answers
    assert (a.name, a.candidate, a.suffix, a.learnt_suffix) == (
        "www.example.org", "www.example.org.shop.svc.cluster.local", "shop.svc.cluster.local", True)
    f = finding(rep)
    assert f is not None and "the first search domain of the other walks here" in f.summary
    assert "kubelet --resolv-conf" not in f.remedy  # the cluster's own domain: not the node's to drop


def test_no_walk_no_learnt_domain(tmp_path):
    """Without a walk to learn the first search domain from, a one-candidate answer is a name
    asked as is."""
    _, res, rep = run(tmp_path, exchange(0.0, 0x10, "www.example.org.shop.svc.cluster.local", a="10.9.9.9"))
    assert res.summary.search_answers == () and finding(rep) is None


def test_wildcard_flagged_with_the_search_list_known(tmp_path):
    """Live in the pod the search list is known: the same walk, the same finding."""
    _, res, rep = run(tmp_path, walk(0.0, "www.example.org", {"www.example.org.corp.example": "10.9.9.9"}),
                      AnalyzerConfig(search=WALK))
    (lk,) = res.summary.lookups
    assert lk.base == "www.example.org" and lk.search_suffix == "corp.example"
    f = finding(rep)
    assert f is not None and f.data["names"][0]["candidate"] == "www.example.org.corp.example"
