"""Support for the hostile-input suite (tests/unit/test_hostile_*.py and
tests/integration/test_hostile_io_lab.py): run podtriage as a real process, measure it, and
check the promises of issue 10 on every case:

- the exit code is one of the expected ones, never 4 (internal error) nor a signal;
- stderr has no traceback and at most one error line (plus an optional hint);
- the wall time stays within the command's --deadline plus a grace;
- the peak resident memory of that one process (wait4's rusage) stays within a stated bound.

Fixtures are generated here, never downloaded: each function writes one hostile file.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BIN = ROOT / ".venv" / "bin" / "podtriage"
PODTRIAGE = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "toolkit"]

# The deadline promise is "--deadline plus 0.5 s"; process start (typer, rich) comes on top and
# a loaded 2-core CI runner can stretch it, hence a separate, configurable allowance. These are
# the named margins of every deadline promise a test checks (``deadline_limit``); how fast a
# run is, beyond its promise, is a benchmark's business (scripts/benchmarks/).
GRACE_S = 0.5
STARTUP_S = float(os.environ.get("PT_HOSTILE_STARTUP_S", "3.0"))
DEFAULT_RSS_MB = 200


def deadline_limit(deadline: float) -> float:
    """The longest wall time a run with ``--deadline DEADLINE`` may take, seen from the
    process that started it: the promise (the deadline plus GRACE_S) plus the allowance for
    starting the process on a loaded machine (STARTUP_S)."""
    return deadline + GRACE_S + STARTUP_S

EXPECTED_NEVER = {4}
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: str
    wall_s: float
    maxrss_mb: float
    killed: bool = False

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def run_cli(argv: list[str] | tuple[str, ...], *, stdin: bytes | int | None = None,
            env: dict[str, str] | None = None, timeout: float = 60.0, prefix: tuple[str, ...] = (),
            stdout_path: str | None = None, _raw: bool = False) -> Outcome:
    """Run ``podtriage ARGV`` (under PREFIX, e.g. ``ip netns exec NS``), return its outcome
    with its own peak RSS.

    The peak is GNU time's %M (the ru_maxrss of a process that time forked: clean), or else
    VmHWM of /proc/PID/status polled every few ms. Our own wait4/RUSAGE_CHILDREN would not do:
    Linux carries the forking pytest process's high-water mark across exec() into the
    child's ru_maxrss."""
    full_env = dict(os.environ)
    full_env.pop("PODTRIAGE_DEBUG", None)
    full_env.setdefault("PODTRIAGE_PROGRESS", "0")
    if env:
        full_env.update(env)
    import tempfile

    time_file = None
    timer: list[str] = []
    if os.path.exists(GNU_TIME):
        fd, time_file = tempfile.mkstemp(prefix="pt-hostile-time-")
        os.close(fd)
        timer = [GNU_TIME, "-q", "-f", "%M", "-o", time_file]
    cmd = [*prefix, *timer, *(["/bin/sh"] if _raw else PODTRIAGE), *argv]
    out_fh = open(stdout_path, "wb") if stdout_path else subprocess.PIPE  # noqa: SIM115
    stdin_arg = stdin if isinstance(stdin, int) else (subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=stdin_arg, stdout=out_fh, stderr=subprocess.PIPE, env=full_env,
                            start_new_session=True)
    if out_fh is not subprocess.PIPE:
        out_fh.close()
    import threading

    chunks: dict[str, bytes] = {"out": b"", "err": b""}

    def pump(name, fh):
        chunks[name] = fh.read()

    threads = []
    if proc.stdout is not None:
        threads.append(threading.Thread(target=pump, args=("out", proc.stdout), daemon=True))
    threads.append(threading.Thread(target=pump, args=("err", proc.stderr), daemon=True))
    for t in threads:
        t.start()
    if proc.stdin is not None:
        try:
            proc.stdin.write(stdin)  # type: ignore[arg-type]
        except BrokenPipeError:
            pass
        proc.stdin.close()
    killed = False
    status = None
    rusage = None
    hwm_kb = 0
    status_path = f"/proc/{proc.pid}/status"
    while True:
        try:
            with open(status_path) as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        hwm_kb = max(hwm_kb, int(line.split()[1]))
                        break
        except (OSError, ValueError):
            pass
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            status, rusage = st, ru
            break
        if time.monotonic() - t0 > timeout:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join(timeout=10)
    if time_file is not None:
        try:
            with open(time_file) as fh:
                last = [ln for ln in fh.read().split() if ln.isdigit()]
            if last:
                hwm_kb = int(last[-1])
        finally:
            os.unlink(time_file)
    return Outcome(argv=tuple(argv), code=proc.returncode, stdout=chunks["out"],
                   stderr=chunks["err"].decode("utf-8", "replace"), wall_s=wall,
                   maxrss_mb=(hwm_kb or rusage.ru_maxrss) / 1024.0, killed=killed)


def deadline_of(argv: list[str] | tuple[str, ...], default: float = 10.0) -> float:
    for i, a in enumerate(argv):
        if a == "--deadline" and i + 1 < len(argv):
            return float(argv[i + 1])
        if a.startswith("--deadline="):
            return float(a.split("=", 1)[1])
    return default


def check(o: Outcome, *, codes: set[int], deadline: float | None = None, rss_mb: float = DEFAULT_RSS_MB,
          error_has: str | None = None) -> None:
    """The promises of issue 10 for one run."""
    where = f"podtriage {' '.join(o.argv)[:200]!s}: exit {o.code}, {o.wall_s:.2f} s, " \
            f"{o.maxrss_mb:.0f} MB\nstderr: {o.stderr[-1500:]}"
    assert not o.killed, "hung: " + where
    assert o.code not in EXPECTED_NEVER and o.code >= 0, where
    assert o.code in codes, where
    assert "Traceback" not in o.stderr and "internal error" not in o.stderr, where
    assert "Exception ignored" not in o.stderr, where
    errors = [ln for ln in o.stderr.splitlines() if ln.startswith(("podtriage: error:", "Error:"))]
    assert len(errors) <= 1, where
    if o.code in (2, 3):
        assert len(errors) == 1, where
    if error_has is not None:
        assert error_has in o.stderr, where
    limit = deadline_limit(deadline if deadline is not None else deadline_of(o.argv))
    assert o.wall_s <= limit, f"took {o.wall_s:.2f} s > {limit:.2f} s: " + where
    assert o.maxrss_mb <= rss_mb, f"peak RSS {o.maxrss_mb:.0f} MB > {rss_mb} MB: " + where


# ----------------------------------------------------------------------------- fixtures

def deep_yaml(depth: int = 30000) -> str:
    return "apiVersion: v1\nkind: ConfigMap\ndata:\n  x: " + "[" * depth + "]" * depth + "\n"


def deep_yaml_block(depth: int = 2000) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "data:"]
    lines += ["  " * (i + 1) + f"k{i}:" for i in range(depth)]
    return "\n".join(lines) + " v\n"


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The 514-byte classic, as a ConfigMap List so it reaches the List walk."""
    out = ["apiVersion: v1", "kind: List",
           "a: &a [" + ",".join(['"lol"'] * width) + "]"]
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        out.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * width) + "]")
        prev = name
    out.append("items: [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(out) + "\n"


def merge_key_bomb(levels: int = 20) -> str:
    """Aliases through YAML merge keys (<<), the other way to multiply nodes."""
    out = ["apiVersion: v1", "kind: ConfigMap", "m0: &m0 {a: 1, b: 2}"]
    for i in range(1, levels):
        out.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: [*m{i - 1}, *m{i - 1}]}}")
    out.append(f"data: {{x: *m{levels - 1}}}")
    return "\n".join(out) + "\n"


def deep_json(depth: int = 100_000) -> str:
    return '{"kind":"List","items":' + "[" * depth + "]" * depth + "}"


def deep_json_objects(depth: int = 50_000) -> str:
    return '{"kind":"ConfigMap","data":' + '{"a":' * depth + "1" + "}" * depth + "}"


def configmap_list_json(n: int, corefile: str | None = ". {\n}\n") -> str:
    data = {"Corefile": corefile} if corefile is not None else {"other": "x"}
    return json.dumps({"kind": "List", "items": [{"kind": "ConfigMap", "data": data}] * n})


def configmap_list_yaml(n: int) -> str:
    cm = "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x, namespace: y}\n  data: {other: z}\n"
    return "apiVersion: v1\nkind: List\nitems:\n" + cm * n


def huge_corefile(blocks: int) -> str:
    return "".join(f"z{i}.example:53 {{\n    forward . 10.0.{i // 250 % 250}.{i % 250 + 1}\n}}\n"
                   for i in range(blocks))


def corefile_with_controls() -> str:
    return (". {\n    forward . 10.0.0.1\n    cache 30\n    loop\n    errors\n}\n"
            "evil\x1b]0;pwned\x07\u202e.example:53 {\n    forward . 10.9.9.9\n}\n"
            "x|`y`<b>.example:53 {\n    forward . 10.9.9.8\n}\n")


def dns_message(txid: int, labels: list[bytes], *, response: bool = False, rcode: int = 0,
                qtype: int = 1) -> bytes:
    """A DNS query/response with raw label bytes (whatever a hostile client sends)."""
    wire = b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\x00"
    flags = (0x8180 | rcode) if response else 0x0100
    return struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


EVIL_LABEL = b"a\x1b]0;pwned\x07\nverdict: ok|`x`<b>\x9b2J\xe2\x80\xae"


def hostile_pcap(path: Path, *, n: int = 2, label: bytes = EVIL_LABEL, unanswered: bool = False) -> Path:
    """Queries (and NXDOMAIN answers) whose names carry terminal controls and Markdown."""
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import write_pcap

    t0 = 1_700_000_000_000_000_000
    packets = []
    for i in range(n):
        q = dns_message(i, [label, b"example"])
        packets.append((t0 + i * 2_000_000, S.frame(S.udp("10.0.0.1", "10.0.0.53", 40000 + i, 53, q))))
        if not unanswered:
            r = dns_message(i, [label, b"example"], response=True, rcode=3)
            packets.append((t0 + i * 2_000_000 + 1_000_000,
                            S.frame(S.udp("10.0.0.53", "10.0.0.1", 53, 40000 + i, r))))
    write_pcap(str(path), 1, packets)
    return path


def unanswered_flood_pcap(path: Path, n: int) -> Path:
    """N distinct queries, none answered: the pending table grows with the file."""
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import write_pcap

    t0 = 1_700_000_000_000_000_000

    def gen():
        for i in range(n):
            q = S.dns_query(i & 0xFFFF, f"q{i}.example")
            yield t0 + i * 1000, S.frame(S.udp("10.0.0.1", "10.0.0.53", 1024 + i % 60000, 53, q))

    write_pcap(str(path), 1, gen())
    return path


def answered_pcap(path: Path, n: int) -> Path:
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import write_pcap

    t0 = 1_700_000_000_000_000_000

    def gen():
        for i in range(n):
            name = f"n{i}.example"
            q = S.udp("10.0.0.1", "10.0.0.53", 40000 + i % 1000, 53, S.dns_query(i & 0xFFFF, name))
            r = S.udp("10.0.0.53", "10.0.0.1", 53, 40000 + i % 1000,
                      S.dns_response(i & 0xFFFF, name, addresses=("192.0.2.1",)))
            yield t0 + i * 1_000_000, S.frame(q)
            yield t0 + i * 1_000_000 + 500_000, S.frame(r)

    write_pcap(str(path), 1, gen())
    return path


def pcap_header(linktype: int = 1, *, snaplen: int = 262144) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def pcap_huge_record_claim() -> bytes:
    """A record header that claims 4 GB of captured bytes."""
    return pcap_header() + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\x00" * 64


def pcapng_huge_block() -> bytes:
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    return shb + struct.pack("<II", 0x00000001, 0xFFFFFFF0) + b"\x00" * 64


@dataclass(frozen=True, kw_only=True)
class Case:
    """One hostile run: ARGV may contain {tmp} and {fifo}; SETUP writes fixtures into tmp."""

    id: str
    argv: tuple[str, ...]
    codes: frozenset[int]
    files: dict[str, bytes | str] = field(default_factory=dict)
    stdin: bytes | None = None
    rss_mb: float = DEFAULT_RSS_MB
    deadline: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    error_has: str | None = None


def run_cli_head(argv: list[str], *, lines: int = 1, timeout: float = 60.0,
                 env: dict[str, str] | None = None) -> tuple[int, list[bytes], str, float]:
    """``podtriage ARGV | head -LINES``: read LINES lines, close the pipe, return (exit code,
    lines, stderr, wall time)."""
    full_env = dict(os.environ)
    full_env.pop("PODTRIAGE_DEBUG", None)
    full_env.setdefault("PODTRIAGE_PROGRESS", "0")
    if env:
        full_env.update(env)
    t0 = time.monotonic()
    proc = subprocess.Popen([*PODTRIAGE, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env, start_new_session=True)
    got = [proc.stdout.readline() for _ in range(lines)]
    proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"hung after its reader closed the pipe: {argv}") from None
    return proc.returncode, got, err.decode("utf-8", "replace"), time.monotonic() - t0


def run_cli_fds(argv: list[str], *, shell_redirect: str, timeout: float = 60.0,
                env: dict[str, str] | None = None) -> Outcome:
    """Run podtriage with a shell redirection applied to it (``>&-``, ``1</dev/null``,
    ``2>/dev/full``...): what a user's shell can do to its file descriptors."""
    return run_cli(["-c", f'exec "$@" {shell_redirect}', "sh", *PODTRIAGE, *argv], timeout=timeout,
                   env=env, prefix=(), _raw=True)


# ----------------------------------------------------------------------------- documents

def small_document(i: int = 0, *, verdict: str = "ok", command: str = "diagnose", node: str | None = "node-1",
                   addresses: tuple[str, ...] = ("192.168.50.20",), server: str = "169.254.25.10",
                   name: str = "www.example.org", summary: str = "") -> dict:
    """The smallest document that matches its command's schema (schemas/<command>.schema.json):
    what a fleet of pods sends `podtriage merge`, one per pod."""
    doc = {"schema_version": 1, "tool": "podtriage", "tool_version": "0.1.0", "command": command,
           "generated_at": "2026-11-27T06:28:31.000Z", "duration_ms": 812.5, "verdict": verdict,
           "context": {"pod": f"web-{i}", "namespace": "shop", "node": node},
           "findings": ([{"code": "x", "severity": "critical", "summary": summary, "evidence": [],
                          "remedy": "", "verdict": verdict, "data": {}}] if summary else []),
           "notes": [], "error": None}
    if command == "diagnose":
        doc.update({"name": name, "confidence": "high", "settle": None, "support": ["paths"],
                    "answers": [{"server": server, "role": "resolv.conf", "transport": "udp", "outcome": "answer",
                                 "answered_as": None, "addresses": list(addresses)}],
                    "probes": [], "candidates": [name + "."], "results": [], "processes": [], "app_sockets": [],
                    "addresses": [{"address": a, "state": "alive", "summary": "", "answered_by": [server],
                                   "route": None} for a in addresses]})
    return doc


# ----------------------------------------------------------------------------- class 8 (issue 23)

def _ipv4_fragment(src: str, dst: str, ident: int, offset: int, more: bool, data: bytes, proto: int = 17) -> bytes:
    import socket

    flags = (0x2000 if more else 0) | (offset // 8)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident & 0xFFFF, flags, 64, proto, 0,
                       socket.inet_pton(socket.AF_INET, src), socket.inet_pton(socket.AF_INET, dst)) + data


def overlapping_fragments_pcap(path: Path, *, datagrams: int = 40, per: int = 2000, answered: int = 200) -> Path:
    """DATAGRAMS IPv4 datagrams whose fragments overlap and never complete (the first
    last, which comes first and fixes the total at 64,000 bytes), PER
    fragments each, then ANSWERED ordinary query/answer pairs: the DNS the reader must still see."""
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import write_pcap

    t0 = 1_700_000_000_000_000_000
    pkts: list[tuple[int, bytes]] = []
    t = t0
    for dg in range(datagrams):
        pkts.append((t, S.frame(_ipv4_fragment("10.0.0.53", "10.0.0.1", dg, 63_992, False, b"x" * 8))))
        t += 1000
        for i in range(per):
            off = (i * 8) % 63_000   # from 0, overlapping: the walk goes over every piece each time
            pkts.append((t, S.frame(_ipv4_fragment("10.0.0.53", "10.0.0.1", dg, off, True, b"y" * 64))))
            t += 1000
    for i in range(answered):
        q = S.dns_query(i, f"h{i}.example.")
        r = S.dns_response(i, f"h{i}.example.", addresses=("10.1.0.1",))
        pkts.append((t, S.frame(S.udp("10.0.0.1", "10.0.0.53", 40000 + i, 53, q))))
        pkts.append((t + 1_000_000, S.frame(S.udp("10.0.0.53", "10.0.0.1", 53, 40000 + i, r))))
        t += 2_000_000
    write_pcap(str(path), 1, pkts)
    return path


def ipv6_ext_chain(n: int, payload: bytes, src: str = "fd00::1", dst: str = "fd00::53") -> bytes:
    """An IPv6 packet whose UDP payload sits behind N destination-options headers (8 bytes each)."""
    import socket

    chain = b""
    for i in range(n):
        nxt = 60 if i < n - 1 else 17
        chain += bytes([nxt, 0]) + b"\x01\x04\x00\x00\x00\x00"  # PadN option: 6 bytes of padding
    first = 60 if n else 17
    body = chain + payload
    return (struct.pack("!IHBB", 0x60000000, len(body), first, 64)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + body)


def udp6(sport: int, dport: int, dns: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(dns), 0) + dns


def ipip_nested(depth: int, inner: bytes) -> bytes:
    """INNER (an IPv4 packet) inside DEPTH IP-in-IP tunnels (protocol 4)."""
    from toolkit.capture import synth as S

    pkt = inner
    for i in range(depth):
        pkt = S.ip_packet(f"192.0.2.{i + 1}", f"198.51.100.{i + 1}", 4, pkt)
    return pkt
