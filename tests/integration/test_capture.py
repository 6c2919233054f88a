"""`podtriage capture` live in the lab pod's namespace while real clients (glibc's getent)
resolve: the search chain grouped into one lookup, the 5-second signature with a dropped
AAAA, and a stopped NodeLocal server as unanswered queries with ICMP port-unreachable.
tshark reads the pcap podtriage wrote and must agree with its counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PODTRIAGE = ROOT / ".venv" / "bin" / "podtriage"
NAME = "api.corp.example"
NODELOCAL = "169.254.25.10"


def _cmd() -> list[str]:
    return [str(PODTRIAGE)] if PODTRIAGE.exists() else [sys.executable, "-m", "toolkit"]


def capture_while(lab, seconds: float, *commands, write: Path | None = None, extra=()) -> dict:
    """Run podtriage capture in the pod namespace; run ``commands`` there meanwhile."""
    args = ["ip", "netns", "exec", lab.ns("pod"), *_cmd(), "capture", "--duration", str(seconds), "-o", "json",
            *extra]
    if write is not None:
        args += ["--write", str(write)]
    env = dict(os.environ, PODTRIAGE_PROGRESS="1")
    cap = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    err_head = []
    try:
        # wait until the socket and its filter are in place (imports + BPF compile)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            line = cap.stderr.readline()
            err_head.append(line)
            if not line or "listening on" in line:
                break
        for cmd in commands:
            lab.exec("pod", *cmd, timeout=seconds + 20)
        out, err = cap.communicate(timeout=seconds + 30)
        err = "".join(err_head) + err
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait(timeout=10)
    assert cap.returncode in (0, 1), err
    return json.loads(out)


def tshark_queries(pcap: Path) -> list[tuple[str, str]]:
    exe = shutil.which("tshark")
    assert exe, "tshark is the oracle and must be installed"
    p = subprocess.run([exe, "-r", str(pcap), "-Y", "dns.flags.response == 0 && !icmp", "-T", "fields",
                        "-e", "dns.qry.name", "-e", "dns.qry.type"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [tuple(line.split("\t")[:2]) for line in p.stdout.splitlines() if line.strip()]


def test_search_chain_is_one_lookup(clean_lab, tmp_path):
    pcap = tmp_path / "walk.pcap"
    doc = capture_while(clean_lab, 5, ("getent", "ahosts", NAME), write=pcap)
    sent = [q for q in tshark_queries(pcap) if q[0].lower().startswith(NAME)]
    mine = [lk for lk in doc["lookups"] if lk["base"] == NAME]
    assert len(mine) == 1, doc["lookups"]
    lk = mine[0]
    # what glibc really sends, read back with tshark from podtriage's own pcap
    assert lk["amplification"] == len(sent)
    assert lk["amplification"] == 8  # (3 search domains + the name) x (A + AAAA)
    assert lk["nxdomain"] == 6
    assert lk["outcome"] == "answered"
    assert doc["queries"] == len(tshark_queries(pcap))
    assert doc["unanswered"] == 0
    assert doc["verdict"] == "ok"


def test_dropped_aaaa_gives_the_5s_signature(clean_lab):
    clean_lab.drop_aaaa("nodelocal")
    doc = capture_while(clean_lab, 16, ("getent", "ahosts", NAME))
    codes = {f["code"]: f for f in doc["findings"]}
    assert "capture-5s-signature" in codes, doc["findings"]
    f = codes["capture-5s-signature"]
    assert f["verdict"] == "conntrack"
    assert "single-request-reopen" in f["remedy"]
    assert doc["signature"]["lost_types"].get("AAAA")


def test_stopped_server_unanswered_with_icmp(clean_lab):
    clean_lab.stop("nodelocal")
    doc = capture_while(clean_lab, 14, ("getent", "ahosts", NAME))
    assert doc["unanswered"] > 0
    srv = next(s for s in doc["servers"] if s["server"] == NODELOCAL)
    assert srv["responses"] == 0
    assert srv["icmp"].get("port-unreachable", 0) > 0
    f = next(f for f in doc["findings"] if f["code"] == "capture-unanswered")
    assert f["verdict"] == "dns-unavailable" and NODELOCAL in f["summary"]
    assert doc["verdict"] == "dns-unavailable"


def test_no_net_raw_is_exit_3(lab):
    """Without CAP_NET_RAW: exit 3 with the kubectl debug --profile=netadmin hint."""
    capsh = shutil.which("capsh")
    if capsh is None:
        setpriv = shutil.which("setpriv")
        assert setpriv, "needs capsh or setpriv to drop capabilities"
        cmd = [setpriv, "--inh-caps=-all", "--bounding-set=-net_raw", *_cmd(), "capture", "--duration", "1"]
    else:
        cmd = [capsh, "--drop=cap_net_raw", "--", "-c", " ".join([*_cmd(), "capture", "--duration", "1"])]
    p = lab.exec("pod", *cmd, timeout=30)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "NET_RAW" in p.stderr and "netadmin" in p.stderr


CLIENT = """
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("169.254.25.10", 53))
s.settimeout(1)
for i in range(10):  # one long-lived socket, like a caching resolver library
    q = struct.pack("!HHHHHH", i + 1, 0x0100, 1, 0, 0, 0) + b"\\x03www\\x07example\\x03org\\x00" + struct.pack("!HH", 1, 1)
    s.send(q)
    try:
        s.recv(512)
    except OSError:
        pass
    time.sleep(0.25)
"""


def test_who_asked_names_the_process(lab):
    doc = capture_while(lab, 4, [sys.executable, "-c", CLIENT])
    procs = [lk.get("process") for lk in doc["lookups"] if lk.get("process")]
    assert procs, doc["lookups"]
    assert procs[0]["name"].startswith("python") and procs[0]["pid"] > 0
