"""Hostile inputs and outputs of the network commands (issue 10), inside the lab's pod
namespace only: a hostile DNS server on the pod's loopback (tests/integration/hostile_dns.py),
FIFOs and endless devices given to diagnose/corefile check/resolve, a live capture writing to
/dev/full. Same checks as the unit suite (tests/hostile.py): exit code, one error line, no
traceback, wall time within --deadline + grace, peak RSS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import hostile as H

pytestmark = pytest.mark.lab
STUB_PORT = 0  # set by the stub fixture: a free port on the pod's loopback
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


@pytest.fixture(scope="module")
def stub(lab):
    """The hostile DNS server on [::1]:5353 and 127.0.0.1:5353 of the pod namespace."""
    root = Path(__file__).resolve().parents[2]
    global STUB_PORT
    proc = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), sys.executable, "-m",
                             "tests.integration.hostile_dns", "0", "::1", "127.0.0.1"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready "), proc.stderr.read()
        STUB_PORT = int(line.split()[1])
        yield lab
    finally:
        proc.kill()
        proc.wait(timeout=10)


def in_pod(lab) -> tuple[str, ...]:
    return ("ip", "netns", "exec", lab.ns("pod"))


def run(lab, argv, **kw) -> H.Outcome:
    return H.run_cli(list(argv), prefix=in_pod(lab), timeout=kw.pop("timeout", 90), **kw)


def stub_servers() -> tuple[str, ...]:
    return ("--no-resolv-conf", "--server", f"[::1]:{STUB_PORT}", "--server", f"127.0.0.1:{STUB_PORT}")


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "ndjson"])
@pytest.mark.parametrize("name", ["evil.test", "loop.test", "flood.test"])
def test_resolve_against_a_hostile_server(stub, fmt, name):
    out = run(stub, ["resolve", name, *stub_servers(), "--deadline", "5", "-o", fmt])
    H.check(out, codes={0, 1}, deadline=5.0)
    text = out.stdout.decode("utf-8")
    assert not UNSAFE.search(text), repr(UNSAFE.search(text).group(0))
    assert not re.search(r"^\s*verdict: ok", text, re.M | re.I)
    if fmt == "json":
        doc = json.loads(text)
        assert {s["address"] for s in doc["servers"]} == {"::1", "127.0.0.1"}
        assert all(s["port"] == STUB_PORT for s in doc["servers"])


def test_diagnose_against_a_hostile_server(stub):
    for fmt in ("table", "markdown"):
        out = run(stub, ["diagnose", "evil.test", "--server", f"[::1]:{STUB_PORT}", "--deadline", "8",
                         "-o", fmt])
        H.check(out, codes={0, 1}, deadline=8.0, rss_mb=300)
        assert not UNSAFE.search(out.text)


def test_scoped_link_local_server_is_asked(lab):
    out = run(lab, ["resolve", "x.test", "--no-resolv-conf", "--server", "fe80::1%eth0", "--deadline", "2",
                    "-o", "json"])
    H.check(out, codes={0, 1}, deadline=2.0)
    assert json.loads(out.stdout)["servers"][0]["address"] == "fe80::1%eth0"


@pytest.mark.parametrize("argv", [
    ("resolve", "foo bar.test"), ("resolve", "a..b"), ("diagnose", "x" * 300),
    ("resolve", "x.test", "--server", "127.0.0.53:\u00b2"), ("resolve", "x.test", "--server", "fe80::1%bogus0"),
    ("corefile", "check", "/dev/null", "--name", "a..b"), ("conntrack", "race-test", "10.0.0.1", "--name", "a..b"),
    ("conntrack", "race-test", "10.0.0.1", "--deadline", "nan"), ("diagnose", "x.test", "--deadline", "nan"),
])
def test_bad_values_send_nothing(lab, argv):
    out = run(lab, argv)
    H.check(out, codes={2}, deadline=1.0)


@pytest.fixture
def files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "laughs.yaml").write_text(H.billion_laughs())
    (tmp_path / "deep.yaml").write_text(H.deep_yaml())
    (tmp_path / "deep.json").write_text(H.deep_json())
    return tmp_path


@pytest.mark.parametrize("argv,codes", [
    (("diagnose", "x.test", "--corefile", "{fifo}", "--deadline", "2"), {3}),
    (("diagnose", "x.test", "--corefile", "/dev/zero", "--deadline", "4"), {3}),
    (("diagnose", "x.test", "--corefile", "{d}/laughs.yaml", "--deadline", "4"), {3}),
    (("diagnose", "x.test", "--corefile", "{d}/deep.yaml", "--deadline", "4"), {3}),
    (("diagnose", "x.test", "--file", "{fifo}", "--deadline", "2"), {3}),
    (("corefile", "check", "{fifo}", "--deadline", "2"), {3}),
    (("corefile", "check", "/dev/zero"), {3}),
    (("corefile", "check", "{d}/laughs.yaml"), {3}),
    (("corefile", "check", "{d}/deep.json"), {3}),
    (("corefile", "check", "{d}"), {3}),
    (("resolve", "x.test", "--file", "{fifo}", "--deadline", "2"), {3}),
    (("resolve", "x.test", "--file", "/dev/zero", "--deadline", "3"), {0, 1}),
])
def test_hostile_files_for_network_commands(lab, files, argv, codes):
    argv = [a.replace("{fifo}", str(files / "fifo")).replace("{d}", str(files)) for a in argv]
    out = run(lab, argv)
    H.check(out, codes=codes, rss_mb=400)


def test_live_capture_writing_to_dev_full(lab):
    out = run(lab, ["capture", "-i", "any", "--duration", "2", "-w", "/dev/full", "--deadline", "5"])
    H.check(out, codes={3}, deadline=5.0, error_has="No space left on device")


def test_live_capture_to_a_missing_directory(lab, tmp_path):
    out = run(lab, ["capture", "-i", "any", "--duration", "1", "-w", str(tmp_path / "no" / "x.pcap")])
    H.check(out, codes={3}, deadline=2.0)


def test_live_capture_on_a_missing_interface(lab):
    out = run(lab, ["capture", "-i", "nosuch0", "--duration", "1"])
    H.check(out, codes={3}, deadline=2.0)


def test_live_capture_into_head(lab):
    """Lookups stream as they happen; a reader that goes away ends the capture quietly."""
    proc = subprocess.Popen([*in_pod(lab), *H.PODTRIAGE, "capture", "-i", "any", "--duration", "8",
                             "-o", "ndjson"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        time.sleep(1.5)
        for _ in range(3):
            lab.exec("pod", "getent", "ahosts", "kubernetes.default.svc.cluster.local", timeout=10)
        proc.stdout.readline()
        proc.stdout.close()
        for _ in range(3):
            lab.exec("pod", "getent", "ahosts", "kubernetes.default", timeout=10)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1, 141), err
    assert b"Traceback" not in err


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_live_capture_of_hostile_query_names(stub, fmt):
    """A client in the pod asks for names full of terminal escapes; the live capture streams
    the lookups (table) or renders them (markdown) with every control escaped."""
    lab = stub
    proc = subprocess.Popen([*in_pod(lab), *H.PODTRIAGE, "capture", "-i", "lo", "--port", str(STUB_PORT),
                             "--duration", "4", "-o", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        time.sleep(1.5)
        query = H.dns_message(4242, [H.EVIL_LABEL, b"example"])
        script = ("import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); "
                  f"s.sendto(bytes.fromhex('{query.hex()}'), ('127.0.0.1', {STUB_PORT})); s.recv(4096)")
        for _ in range(3):
            lab.exec("pod", sys.executable, "-c", script, timeout=10)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1), err
    text = out.decode("utf-8")
    assert "pwned" in text, text  # the lookup is shown ...
    assert not UNSAFE.search(text), repr(UNSAFE.search(text).group(0))  # ... escaped
    assert not re.search(r"^\s*verdict: ok", text, re.M | re.I)


# --- issue 23 class 4: Corefiles of hundreds or thousands of blocks for one zone ------------

def _dup_corefile(blocks: int) -> str:
    return "".join(f"corp.example:53 {{\n    forward . 10.0.{i // 250 % 250}.{i % 250 + 1}\n}}\n" for i in range(blocks))


@pytest.mark.parametrize("blocks", [700, 4000])
def test_corefile_check_of_one_zone_repeated_is_one_finding_within_the_deadline(lab, tmp_path, blocks):
    f = tmp_path / "Corefile"
    f.write_text(_dup_corefile(blocks))
    out = run(lab, ["corefile", "check", str(f), "--timeout", "0.5", "--deadline", "5", "-o", "json"])
    H.check(out, codes={1, 5}, deadline=5.0, rss_mb=300)
    doc = json.loads(out.stdout)
    dup = [x for x in doc["findings"] if x["code"] == "duplicate-server-block"]
    assert len(dup) == 1 and dup[0]["data"]["count"] == blocks - 1 and doc["verdict"] != "ok"
    assert len(out.stdout) < 400 * f.stat().st_size   # linear in the input, never per pair


@pytest.mark.parametrize("blocks", [700, 4000])
def test_diagnose_with_one_zone_repeated_holds_its_deadline(lab, tmp_path, blocks):
    f = tmp_path / "Corefile"
    f.write_text(_dup_corefile(blocks))
    out = run(lab, ["diagnose", "x.corp.example", "--corefile", str(f), "--server", "127.0.0.1:9",
                    "--deadline", "5", "-o", "json"])
    H.check(out, codes={0, 1, 3, 5}, deadline=5.0, rss_mb=300)
    assert len(out.stdout) < 400 * f.stat().st_size
