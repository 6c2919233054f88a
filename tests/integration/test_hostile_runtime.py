"""Issue 10, runtime half, against the real lab: SIGINT/SIGTERM end every command within
about a second with its partial report; every command ends within --deadline plus a small
grace; the false oks (corefile check SERVFAIL, race test that sent nothing, a capture read
cut short) are not ok; the pending-query memory bound holds; live capture counts what it
left unread.

Each case runs a real `podtriage` subprocess inside a lab namespace against hostile
servers (tests/lab/stubdns.py: one that never answers, one that SERVFAILs everything).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PODTRIAGE = ROOT / ".venv" / "bin" / "podtriage"
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable

STUB_ADDR = "192.168.60.53"  # the upstream namespace's address; the stubs use other ports
SILENT_PORT, SERVFAIL_PORT = 5300, 5301
SILENT = f"{STUB_ADDR}:{SILENT_PORT}"
DEAD_HOST = "192.168.50.77"  # on the legacy LAN, nobody there: ARP fails, probes wait

# Limits. The promise is "about a second" after a signal and --deadline + 0.5 s; the margins
# are for a loaded 2-core CI machine (interpreter start alone takes 0.2-0.5 s there).
SIGNAL_LIMIT_S = 1.5
DEADLINE_GRACE_S = 0.5
LOAD_MARGIN_S = 0.5


def _cmd() -> list[str]:
    return [str(PODTRIAGE)] if PODTRIAGE.exists() else [PY, "-m", "toolkit"]


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def stubs(lab):
    """A silent and a SERVFAIL-everything DNS server in the lab's upstream namespace."""
    procs = []
    try:
        for port, mode in ((SILENT_PORT, "silent"), (SERVFAIL_PORT, "servfail")):
            p = subprocess.Popen(["ip", "netns", "exec", lab.ns("upstream"), PY, "-m", "tests.lab.stubdns",
                                  "--listen", STUB_ADDR, "--port", str(port), "--mode", mode,
                                  "--lifetime", "900"],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        yield
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def corefiles(tmp_path_factory):
    d = tmp_path_factory.mktemp("corefiles")
    (d / "silent.Corefile").write_text(f".:53 {{\n    forward . {SILENT}\n}}\n")
    (d / "servfail.Corefile").write_text(f".:53 {{\n    forward . {STUB_ADDR}:{SERVFAIL_PORT}\n}}\n")
    return d


@pytest.fixture(scope="module")
def big_pcap(tmp_path_factory):
    """200k DNS queries nobody answers, all within one second: several seconds to read."""
    path = tmp_path_factory.mktemp("pcap") / "unanswered.pcap"
    write_unanswered_pcap(path)
    return path


def write_unanswered_pcap(path: Path, n: int = 200_000) -> None:
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import LINKTYPE_RAW, PcapWriter

    w = PcapWriter(str(path), LINKTYPE_RAW, flush_each=False)
    t0 = 1_700_000_000 * 10**9
    for i in range(n):
        src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        w.write(t0 + i * 5_000, S.udp(src, "10.96.0.10", 1024 + i % 60000, 53,
                                      S.dns_query(i & 0xFFFF, f"n{i}.example.com"), checksum=False))
    w.close()


# ----------------------------------------------------------------------------- helpers

def _caught(pid: int, sig: int) -> bool:
    """True once the process catches ``sig`` (SigCgt in /proc/PID/status): podtriage's
    handlers are installed, so a signal now tests them rather than the interpreter's start."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        return False
    return False


def start(lab, ns: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PODTRIAGE_PROGRESS="0")
    # `ip netns exec` execs the command: the pid is podtriage's own
    return subprocess.Popen(["ip", "netns", "exec", lab.ns(ns), *_cmd(), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(lab, ns: str, args: tuple[str, ...], sig: int, *, busy_s: float = 0.7):
    """Start podtriage, wait until it handles signals and is busy, send ``sig``; return
    (seconds from the signal to the exit, returncode, stdout, stderr)."""
    p = start(lab, ns, *args)
    try:
        end = time.monotonic() + 30
        while not _caught(p.pid, signal.SIGTERM) and p.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        assert p.poll() is None, f"ended before the signal: {p.communicate()}"
        time.sleep(busy_s)
        assert p.poll() is None, f"ended before the signal: {p.communicate()}"
        t_sig = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        took = time.monotonic() - t_sig
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    return took, p.returncode, out, err


def timed(lab, ns: str, *args: str, timeout: float = 120):
    t0 = time.monotonic()
    p = start(lab, ns, *args)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    return time.monotonic() - t0, p.returncode, out, err


def no_traceback(err: str) -> None:
    assert "Traceback" not in err, err
    assert "internal error" not in err, err


# ----------------------------------------------------------------------------- signals

SIGNAL_CASES = {
    "resolve": ("pod", ("resolve", "x.test", "--no-resolv-conf", "--server", SILENT, "--timeout", "30",
                        "--deadline", "60")),
    "corefile-check": ("pod", ("corefile", "check", "{silent}", "--timeout", "30", "--deadline", "60")),
    "reach": ("pod", ("reach", DEAD_HOST, "--port", "80", "--deadline", "60")),
    "diagnose": ("pod", ("diagnose", "api.corp.example", "--server", SILENT, "--deadline", "60")),
    "race-test": ("pod", ("conntrack", "race-test", STUB_ADDR, "--port", str(SILENT_PORT), "--timeout", "10",
                          "--count", "500", "--deadline", "60")),
    "conntrack": ("pod", ("conntrack", "--interval", "30", "--deadline", "60")),
    "capture-read": ("pod", ("capture", "--read", "{pcap}")),
    "capture-live": ("pod", ("capture", "--duration", "60", "--write", "{write}")),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("case", list(SIGNAL_CASES))
def test_signal_ends_any_command_with_its_partial_report(clean_lab, stubs, corefiles, big_pcap, tmp_path,
                                                         case, sig):
    ns, args = SIGNAL_CASES[case]
    pcap_out = tmp_path / "live.pcap"
    args = tuple(a.format(silent=corefiles / "silent.Corefile", pcap=big_pcap, write=pcap_out)
                 for a in args)
    took, rc, out, err = interrupt(clean_lab, ns, (*args, "-o", "json"), sig)
    print(f"{case} {sig.name}: ended {took:.2f} s after the signal, exit {rc}")
    no_traceback(err)
    assert took <= SIGNAL_LIMIT_S, f"{case}: {took:.2f} s after {sig.name}"
    assert rc == 128 + sig, (rc, err)
    doc = json.loads(out)  # the partial summary, in the chosen format
    assert doc["interrupted"] == sig.name
    assert doc["verdict"] != "ok"
    assert doc["findings"][0]["code"] == "interrupted"
    if case == "capture-read":
        assert doc["cut_short"] is True and doc["unanswered"] == 0
    if case == "capture-live":
        assert doc["stopped_by"] == "signal"
        _assert_valid_pcap(pcap_out)


def test_signal_while_live_capture_starts(clean_lab, tmp_path):
    """A signal while scapy/libpcap still load (before any packet is read) still gives a
    report and a valid (empty) pcap, at once."""
    out_pcap = tmp_path / "early.pcap"
    took, rc, out, err = interrupt(clean_lab, "pod", ("capture", "--duration", "60", "--write", str(out_pcap),
                                                      "-o", "json"), signal.SIGTERM, busy_s=0.05)
    no_traceback(err)
    assert took <= SIGNAL_LIMIT_S and rc == 143
    doc = json.loads(out)
    assert doc["interrupted"] == "SIGTERM" and doc["stopped_by"] == "signal"
    _assert_valid_pcap(out_pcap)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_startup_still_reports(clean_lab, stubs, sig):
    """The handlers are in place before the imports (0.1-0.3 s): a signal the moment they
    are, while typer/dnspython still load, gives the report, not a traceback or a kill."""
    took, rc, out, err = interrupt(clean_lab, "pod", (*SIGNAL_CASES["resolve"][1], "-o", "json"), sig,
                                   busy_s=0.0)
    no_traceback(err)
    assert took <= SIGNAL_LIMIT_S and rc == 128 + sig, (rc, err)
    assert json.loads(out)["interrupted"] == sig.name


def test_signal_table_output_is_rendered(clean_lab, stubs):
    took, rc, out, err = interrupt(clean_lab, "pod", SIGNAL_CASES["resolve"][1], signal.SIGINT)
    no_traceback(err)
    assert took <= SIGNAL_LIMIT_S and rc == 130
    assert "indeterminate" in out.splitlines()[0] and "interrupted" in out


def _assert_valid_pcap(path: Path) -> None:
    exe = shutil.which("tshark")
    assert exe, "tshark is the oracle and must be installed"
    p = subprocess.run([exe, "-r", str(path), "-T", "fields", "-e", "frame.number"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "cut short" not in p.stderr and "appears to have been cut" not in p.stderr, p.stderr


# ----------------------------------------------------------------------------- deadlines

DEADLINE_CASES = {
    "resolve": ("resolve", "x.test", "--no-resolv-conf", "--server", SILENT, "--timeout", "30"),
    "corefile-check": ("corefile", "check", "{silent}", "--timeout", "30"),
    "reach": ("reach", DEAD_HOST, "--port", "80"),
    "diagnose": ("diagnose", "api.corp.example", "--server", SILENT),
    "race-test": ("conntrack", "race-test", STUB_ADDR, "--port", str(SILENT_PORT), "--timeout", "10",
                  "--count", "500"),
    "conntrack": ("conntrack", "--interval", "30"),
    "capture-read": ("capture", "--read", "{pcap}"),
    "capture-live": ("capture", "--duration", "60"),
}


@pytest.mark.parametrize("case", list(DEADLINE_CASES))
def test_every_command_ends_within_its_deadline(clean_lab, stubs, corefiles, big_pcap, case):
    deadline = 3.0
    args = tuple(a.format(silent=corefiles / "silent.Corefile", pcap=big_pcap) for a in DEADLINE_CASES[case])
    took, rc, out, err = timed(clean_lab, "pod", *args, "--deadline", str(deadline), "-o", "json")
    print(f"{case}: --deadline {deadline:g} took {took:.2f} s (overshoot {took - deadline:+.2f} s), exit {rc}")
    no_traceback(err)
    assert rc in (0, 1, 5), err
    json.loads(out)
    assert took <= deadline + DEADLINE_GRACE_S + LOAD_MARGIN_S, f"{case}: {took:.2f} s"


# ----------------------------------------------------------------------------- false oks

def test_corefile_check_upstream_that_servfails_everything_is_not_ok(clean_lab, stubs, corefiles):
    _took, rc, out, err = timed(clean_lab, "pod", "corefile", "check", str(corefiles / "servfail.Corefile"),
                                "--name", "api.corp.example", "-o", "json")
    no_traceback(err)
    doc = json.loads(out)
    assert rc == 1 and doc["verdict"] == "dns-error"
    assert [f["code"] for f in doc["findings"]] == ["upstream-servfail"]
    assert doc["targets"][0]["status"] == "servfail"


def test_race_test_that_could_not_send_is_indeterminate(clean_lab):
    _took, rc, out, err = timed(clean_lab, "pod", "conntrack", "race-test", "169.254.25.10",
                                "--deadline", "0.1", "-o", "json")
    no_traceback(err)
    doc = json.loads(out)
    assert rc == 5 and doc["verdict"] == "indeterminate"
    assert all(m["queries"] == 0 for m in doc["modes"])
    inc = next(f for f in doc["findings"] if f["code"] == "race-test-incomplete")
    assert "--deadline" in inc["remedy"]


def test_capture_read_cut_short_is_not_ok(clean_lab, big_pcap):
    took, rc, out, err = timed(clean_lab, "pod", "capture", "--read", str(big_pcap), "--deadline", "1.5",
                               "-o", "json")
    no_traceback(err)
    doc = json.loads(out)
    assert rc == 5 and doc["verdict"] == "indeterminate"
    assert doc["stopped_by"] == "deadline" and doc["cut_short"] is True
    assert doc["packets"] < 200_000
    assert doc["unanswered"] == 0 and doc["pending_at_cut"] > 0  # pending at the cut: not unanswered
    assert "capture-cut-short" in {f["code"] for f in doc["findings"]}
    assert took <= 1.5 + DEADLINE_GRACE_S + LOAD_MARGIN_S


# ----------------------------------------------------------------------------- memory

MEMORY_BOUND_KB = 200 * 1024  # README: at most 65,536 pending queries, ~2 KB each with their state


def test_pending_queries_stay_within_the_memory_bound(lab, big_pcap):
    """200k unanswered queries within one second (3x the pending cap): peak RSS bounded,
    the evictions counted in the summary."""
    p = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), *_cmd(), "capture", "--read", str(big_pcap),
                          "-o", "json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PODTRIAGE_PROGRESS="0"))
    out = p.stdout.read()  # stderr stays empty (no progress): no pipe deadlock
    err = p.stderr.read()
    # `ip netns exec` execs podtriage: this child's own rusage is podtriage's peak RSS
    _pid, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    no_traceback(err)
    assert p.returncode in (1, 5), err   # a problem, or indeterminate (queries pending at the end)
    doc = json.loads(out)
    print(f"peak RSS {usage.ru_maxrss / 1024:.0f} MB, evicted {doc['evicted_pending']}")
    assert doc["max_pending"] == 65_536
    assert doc["evicted_pending"] == 200_000 - 65_536
    assert "capture-pending-evicted" in {f["code"] for f in doc["findings"]}
    assert usage.ru_maxrss <= MEMORY_BOUND_KB, f"peak RSS {usage.ru_maxrss} KB"


# ----------------------------------------------------------------------------- unread ring

@pytest.fixture
def replay_ns(lab):
    """A namespace of its own with a veth pair: tcpreplay sends on rp0, podtriage reads rp1."""
    name = f"{lab.prefix}-rp"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for cmd in (["ip", "netns", "add", name],
                ["ip", "-n", name, "link", "add", "rp0", "type", "veth", "peer", "name", "rp1"],
                ["ip", "-n", name, "link", "set", "rp0", "up"],
                ["ip", "-n", name, "link", "set", "rp1", "up"]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=20)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def _record_real_dns(lab, path: Path) -> None:
    """Real DNS traffic: the lab pod asking NodeLocal (unbound) for a mix of names."""
    dump = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "tcpdump", "-i", "eth0", "-U", "-n", "-w",
                             str(path), "udp port 53"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "listening" in dump.stderr.readline()
        code = ("import dns.message, dns.query, time\n"
                "names=['api.corp.example','kubernetes.default.svc.alpha.pm.k8s','nope.corp.example',"
                "'ns1.corp.example','www.example.org']\n"
                "t=time.monotonic()\n"
                "while time.monotonic()-t<1.5:\n"
                "  for n in names:\n"
                "    for qt in ('A','AAAA'):\n"
                "      try: dns.query.udp(dns.message.make_query(n,qt),'169.254.25.10',timeout=0.5)\n"
                "      except Exception: pass\n")
        lab.exec("pod", PY, "-c", code, check=True, timeout=30)
        time.sleep(0.3)
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)


def test_live_capture_accounts_for_every_packet_the_kernel_queued(lab, replay_ns, tmp_path):
    """Replay real DNS at 40k packets/s while capturing: whatever the analysis could not
    keep up with is drained at the stop or counted as unread, never reported as no loss."""
    assert shutil.which("tcpreplay"), "tcpreplay (Debian) must be installed"
    real = tmp_path / "real.pcap"
    _record_real_dns(lab, real)
    duration = 4.0
    replay = subprocess.Popen(["ip", "netns", "exec", replay_ns, "tcpreplay", "-q", "-i", "rp0", "--pps", "40000",
                               "--duration", str(int(duration + 6)), "--loop", "0", str(real)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        args = ["ip", "netns", "exec", replay_ns, *_cmd(), "capture", "-i", "rp1", "--duration", str(duration),
                "-o", "json"]
        cap = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env=dict(os.environ, PODTRIAGE_PROGRESS="0"))
    finally:
        replay.terminate()
        replay.wait(timeout=10)
    no_traceback(cap.stderr)
    doc = json.loads(cap.stdout)
    k = doc["kernel"]
    print(f"read {doc['packets']}, kernel {k}, elapsed {doc['elapsed_s']:.2f} s")
    assert doc["stopped_by"] == "duration"
    assert k["packets"] > 40_000  # the replay really ran during the capture
    # Every packet the filter accepted is read, dropped by the kernel, or reported unread.
    assert isinstance(doc["unread"], int) and doc["unread"] == k["unread"]
    accounted = doc["packets"] + doc["unread"] + k["drops"]
    assert abs(accounted - k["packets"]) <= max(50, k["packets"] // 1000), (accounted, k)
    if doc["unread"]:
        assert "capture-unread" in {f["code"] for f in doc["findings"]}
    # the drain is bounded (0.25 s)
    assert doc["elapsed_s"] <= duration + 0.25 + LOAD_MARGIN_S
