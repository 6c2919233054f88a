"""Pure rules: thresholds, moving counters, unreplied DNS entries, race results; plus the
race engine against an in-process responder that mimics the race (drops the second query of
a 5-tuple) and the netns classification."""
import json
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from toolkit.sysinfo.procs import Libc
from toolkit.conntrack.entries import from_netlink_dict
from toolkit.conntrack.findings import conntrack_findings, race_findings
from toolkit.conntrack.kernel import assess
from toolkit.conntrack.race import ModeResult, RaceResult, race_test
from toolkit.conntrack.snapshot import ConntrackSnapshot
from toolkit.conntrack.stats import from_netlink
from toolkit.deadline import Deadline
from toolkit.model import Severity, Verdict, derive_verdict
from toolkit.sysinfo.netns import PROC_NET_INIT_INO, PROC_PID_INIT_INO, NetnsInfo, classify
from toolkit.sysinfo.procs import ProcInfo

DATA = Path(__file__).parent / "data" / "conntrack"
NODE = NetnsInfo(inode=PROC_NET_INIT_INO, is_init=True, method="test")
POD = NetnsInfo(inode=4026532999, is_init=False, method="test")


def snap(count=100, cmax=1000, stats="netlink_stats_before.json", entries=None, netns=NODE, mono=0.0,
         kernel="6.1.0"):
    counters = from_netlink(json.loads((DATA / stats).read_text())) if stats else None
    return ConntrackSnapshot(
        taken_at=datetime.now(timezone.utc), netns=netns, kernel=assess(kernel), net_admin=True,
        counters=counters, count=count, count_source="test", max=cmax, sysctls={}, entries=entries,
        entries_source="test" if entries is not None else None, entries_scanned=len(entries or ()),
        entries_truncated=False, port=53, sources=(), _monotonic=mono)


def codes(fs):
    return {f.code: f for f in fs}


@pytest.mark.parametrize("count,code,sev", [(749, None, None), (750, "conntrack-table-pressure", Severity.WARNING),
                                            (899, "conntrack-table-pressure", Severity.WARNING),
                                            (900, "conntrack-table-full", Severity.CRITICAL),
                                            (1000, "conntrack-table-full", Severity.CRITICAL)])
def test_table_thresholds(count, code, sev):
    s = snap(count=count)
    fs = codes(conntrack_findings(s, s))
    table = {c: f for c, f in fs.items() if c.startswith("conntrack-table")}
    if code is None:
        assert not table
    else:
        assert set(table) == {code} and table[code].severity is sev
        assert table[code].verdict is Verdict.CONNTRACK and "maxPerCore" in table[code].remedy


def test_moving_insert_failed_is_critical_conntrack():
    fs = conntrack_findings(snap(mono=0.0), snap(stats="netlink_stats_after.json", mono=2.0))
    f = codes(fs)["conntrack-insert-failed-moving"]
    assert f.severity is Severity.CRITICAL and f.verdict is Verdict.CONNTRACK
    assert "insert_failed +3" in f.summary and "2.0 s" in f.summary
    assert "NodeLocal" in f.remedy and "single-request-reopen" in f.remedy
    assert derive_verdict(fs) is Verdict.CONNTRACK


def test_old_totals_are_not_evidence():
    fs = codes(conntrack_findings(snap(mono=0.0), snap(mono=1.0)))
    assert "conntrack-insert-failed-moving" not in fs
    assert fs["conntrack-old-totals"].severity is Severity.INFO
    assert derive_verdict(fs.values()) is Verdict.OK


def test_same_snapshot_says_nothing_about_movement():
    s = snap()
    assert not {c for c in codes(conntrack_findings(s, s)) if "moving" in c}


def test_early_drop_and_clash_resolved():
    before = snap(mono=0)
    rows = json.loads((DATA / "netlink_stats_before.json").read_text())
    rows[0] = {**rows[0], "early_drop": 40, "clash_resolve": rows[0]["clash_resolve"] + 9}
    after = replace(snap(mono=1), counters=from_netlink(rows))
    fs = codes(conntrack_findings(before, after))
    assert fs["conntrack-early-drop-moving"].verdict is Verdict.CONNTRACK
    assert fs["conntrack-clash-resolved"].severity is Severity.INFO
    assert "conntrack-insert-failed-moving" not in fs


def test_pod_netns_scope_finding():
    s = snap(count=0, netns=POD)
    f = codes(conntrack_findings(s, s))["conntrack-scope-not-node"]
    assert "clears nothing" in f.summary and f.verdict is None
    assert any("kubectl debug node/" in e for e in f.evidence)
    assert any("node_nf_conntrack_stat_insert_failed" in e for e in f.evidence)
    assert "conntrack-scope-not-node" not in codes(conntrack_findings(snap(), snap()))


def lab_entries():
    return tuple(e for e in (from_netlink_dict(d) for d in json.loads(
        (DATA / "netlink_entries_lab.json").read_text())) if e is not None)


def test_one_backend_collecting_unreplied():
    s = snap(entries=lab_entries())
    f = codes(conntrack_findings(s, s))["conntrack-dns-backend-unreplied"]
    assert f.data["backend"] == "10.245.92.2:53" and f.verdict is Verdict.DNS_UNAVAILABLE


def test_unreplied_spread_over_backends():
    es = lab_entries()
    b1 = [e for e in es if e.reply_src == "10.245.91.2" and e.proto == "udp"][:3]
    spread = es + tuple(replace(e, status=("CONFIRMED", "DST_NAT"), orig_sport=e.orig_sport + 1) for e in b1)
    s = snap(entries=spread)
    fs = codes(conntrack_findings(s, s))
    assert "conntrack-dns-backend-unreplied" not in fs
    assert fs["conntrack-dns-unreplied"].severity is Severity.WARNING


def test_unobservable_snapshot():
    s = replace(snap(stats=None, count=None), sources=())
    fs = conntrack_findings(s, s)
    assert [f.code for f in fs] == ["conntrack-unobservable"]


def test_old_kernel_reported():
    s = snap(kernel="4.14.200")
    f = codes(conntrack_findings(s, s))["conntrack-kernel-race-fixes"]
    assert len(f.evidence) == 5 and f.verdict is None


def mode(name, lost, queries=200, lookups=100, delta_=None):
    return ModeResult(mode=name, lookups=lookups, queries=queries, answered=queries - lost, lost=lost, stalled=min(lost, lookups), not_run=0, errors={}, latency_ms_p50=1.0, latency_ms_p99=3.0, latency_ms_max=4.0, duration_s=1.0,
                      counters_delta=delta_)


@pytest.mark.parametrize("p,r,t,code,verdict", [
    (100, 0, 0, "race-parallel-loss", Verdict.CONNTRACK),
    (6, 0, 0, "race-parallel-loss", Verdict.CONNTRACK),
    (1, 0, 0, "race-no-loss", None),
    (50, 48, 0, "race-udp-loss", Verdict.DNS_UNAVAILABLE),
    (200, 200, 200, "race-all-loss", Verdict.DNS_UNAVAILABLE),
    (0, 0, 200, "race-tcp-loss", Verdict.DNS_UNAVAILABLE),
    (0, 0, 0, "race-no-loss", None),
])
def test_race_classification(p, r, t, code, verdict):
    res = RaceResult(target="10.96.0.10", port=53, name="x.", count=100, timeout_s=1.0,
                     modes=(mode("parallel", p, delta_={"insert_failed": p}), mode("reopen", r), mode("tcp", t)))
    fs = codes(race_findings(res))
    assert code in fs and fs[code].verdict is verdict
    if code == "race-parallel-loss":
        assert any("insert_failed" in e for e in fs[code].evidence)
        assert "single-request-reopen" in fs[code].remedy and "use-vc" in fs[code].remedy


def test_controls_that_sent_nothing_prove_nothing():
    res = RaceResult(target="10.96.0.10", port=53, name="x.", count=100, timeout_s=1.0,
                     modes=(mode("parallel", 100), mode("reopen", 0, queries=0, lookups=0), mode("tcp", 0, queries=0, lookups=0)))
    assert [f.code for f in race_findings(res)] == ["race-test-incomplete"]


def test_musl_process_named():
    res = RaceResult(target="10.96.0.10", port=53, name="x.", count=100, timeout_s=1.0, modes=(mode("parallel", 100), mode("reopen", 0), mode("tcp", 0)),
                     processes=(ProcInfo(7, "node", "node server.js", Libc.MUSL), ProcInfo(8, "java", "java", Libc.GLIBC)))
    f = codes(race_findings(res))["race-musl-process"]
    assert "node[7]" in f.summary and "java" not in f.summary and f.severity is Severity.WARNING


class RacyResponder:
    """Answers DNS on 127.0.0.1 but, like a lost conntrack insert race, drops a query that
    follows another from the same client 5-tuple within 20 ms; TCP always answered."""

    def __init__(self):
        import dns.message

        self.dns = dns.message
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self.seen = {}
        self.stop = False
        self.threads = [threading.Thread(target=self._udp, daemon=True), threading.Thread(target=self._tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def _answer(self, data):
        q = self.dns.from_wire(data)
        return self.dns.make_response(q).to_wire()

    def _udp(self):
        self.udp.settimeout(0.2)
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(2048)
            except OSError:
                continue
            now = time.monotonic()
            last, self.seen[peer] = self.seen.get(peer), now
            if last is not None and now - last < 0.02:
                continue  # the second packet of the tuple loses the race
            self.udp.sendto(self._answer(data), peer)

    def _tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                continue
            c.settimeout(2)
            buf = b""
            try:
                for _ in range(20):
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                        n = int.from_bytes(buf[:2], "big")
                        ans = self._answer(buf[2:2 + n])
                        c.sendall(len(ans).to_bytes(2, "big") + ans)
                        buf = buf[2 + n:]
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(1)
        self.udp.close()
        self.tcp.close()


def test_race_engine_against_racy_responder():
    srv = RacyResponder()
    try:
        res = race_test("127.0.0.1", port=srv.port, name="x.test.", count=20, timeout=0.3, concurrency=8,
                        deadline=Deadline(15))
    finally:
        srv.close()
    m = {x.mode: x for x in res.modes}
    assert m["parallel"].lost == 20 and m["parallel"].stalled == 20 and m["parallel"].queries == 40
    assert m["reopen"].lost == 0 and m["reopen"].answered == 40
    assert m["tcp"].lost == 0 and m["tcp"].answered == 40
    assert codes(race_findings(res))["race-parallel-loss"].verdict is Verdict.CONNTRACK


def test_race_engine_bounded_by_deadline():
    # nothing listens: refused at once over UDP/TCP, all lost, quickly
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dl = Deadline(3)
    res = race_test("127.0.0.1", port=port, count=5000, timeout=0.2, deadline=dl)
    assert dl.elapsed() < 4
    assert all(x.lost == x.queries for x in res.modes)
    assert "race-all-loss" in codes(race_findings(res)), [(x.mode, x.lookups, x.queries, x.lost, dict(x.errors)) for x in res.modes]


def test_race_test_rejects_names_and_huge_counts():
    from toolkit.errors import UsageError

    with pytest.raises(UsageError):
        race_test("kube-dns", deadline=Deadline(1))
    with pytest.raises(UsageError):
        race_test("10.0.0.1", count=5001, deadline=Deadline(1))


@pytest.mark.parametrize("inode,pid1,pidns,kernel,expect", [
    (PROC_NET_INIT_INO, None, None, None, True),
    (4026532100, 4026532100, PROC_PID_INIT_INO, (5, 10), True),
    (4026532100, 4026531992, PROC_PID_INIT_INO, (5, 10), False),
    (4026532100, None, PROC_PID_INIT_INO, (6, 18), False),
    (4026532100, 4026532100, 4026532555, (5, 10), None),  # a pod: PID 1 is the pause process
    (4026532100, None, 4026532555, (6, 1), None),
    (None, None, None, None, None),
])
def test_netns_classify(inode, pid1, pidns, kernel, expect):
    assert classify(inode, pid1, pidns, kernel)[0] is expect
