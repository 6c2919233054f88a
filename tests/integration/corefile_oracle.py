"""The real CoreDNS as the oracle of `corefile trace` and `corefile lint`.

    ns <prefix>-cfd  192.0.2.1/30, fd53::1/64 --veth-- ns <prefix>-cfu 192.0.2.2/30, fd53::2/64
         CoreDNS under test (one process per batch           the stub upstreams: every forward
         of Corefiles, each on its own ports/binds;          target of every Corefile is an
         /etc/netns/<cfd>/resolv.conf and hosts are           address on lo, answered by
         the files its forward and hosts read)                 `python -m tests.integration.corefile_oracle stub`

The stub answers every question with records that name the upstream asked (A 198.18.H.L and
AAAA 2001:db8::HL for upstream number HL, PTR/SRV targets u<N>.stub.) and logs the name it
got, so that which upstream answered, and with which name after rewrites, is visible from
outside. Queries are sent from inside <cfd> by `python -m tests.integration.corefile_oracle
ask` (dnspython, in parallel). The kubernetes plugin runs against an API that never answers
(KUBERNETES_SERVICE_HOST=127.0.0.1:1 and a token in a private /run): it waits 5 s, then
answers SERVFAIL (with its zone's SOA) for the names it would answer and passes on the
names its fallthrough covers (plugin/kubernetes/handler.go: not synced).
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESOLV_UPSTREAM = "10.53.53.53"  # the nameserver of /etc/resolv.conf in <cfd>
HOSTS_FILE = "# the hosts file of the CoreDNS netns (tests/integration/corefile_oracle.py)\n" \
             "127.0.0.1 localhost\n10.77.255.1 etchosts.example.org etchosts\n" \
             "fd77::1 etchosts6.example.org\n"


def run(cmd: list[str], check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


@dataclass
class Oracle:
    """The two namespaces, the stub upstreams and a way to run CoreDNS batches."""

    prefix: str
    upstreams: list[str]
    workers: int = 1
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cfd-")))
    stub: subprocess.Popen | None = None

    def cfd_ns(self, k: int = 0) -> str:
        return f"{self.prefix}-cfd{k}"

    @property
    def cfd(self) -> str:
        return self.cfd_ns(0)

    @property
    def cfu(self) -> str:
        return f"{self.prefix}-cfu"

    def index(self, address: str) -> int:
        return self.upstreams.index(address)

    def up(self) -> "Oracle":
        self.down(keep_work=True)
        for ns in [self.cfu] + [self.cfd_ns(k) for k in range(self.workers)]:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for k in range(self.workers):
            self._worker(k)
        for a in self.upstreams:
            run(["ip", "-n", self.cfu, "addr", "add", a + ("/128" if ":" in a else "/32"), "dev", "lo"]
                + (["nodad"] if ":" in a else []))
        (self.work / "etc").mkdir(exist_ok=True)
        (self.work / "etc" / "hosts").write_text(HOSTS_FILE)
        (self.work / "etc" / "resolv.conf").write_text(f"nameserver {RESOLV_UPSTREAM}\n")
        (self.work / "upstreams.json").write_text(json.dumps(self.upstreams))
        self.stub = subprocess.Popen(
            ["ip", "netns", "exec", self.cfu, sys.executable, "-m", "tests.integration.corefile_oracle",
             "stub", str(self.work / "upstreams.json"), str(self.work / "stub.log")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.stub.stdout is not None
        line = self.stub.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("stub did not start: %s %s" % (line, self.stub.stderr.read() if self.stub.stderr else ""))
        return self

    def _worker(self, k: int) -> None:
        """Namespace <cfd>k, linked to <cfu> by its own veth pair (192.0.2.4k/30)."""
        ns = self.cfd_ns(k)
        run(["ip", "-n", ns, "link", "add", "vd", "type", "veth", "peer", f"vu{k}", "netns", self.cfu])
        for n, dev, a4, a6 in ((ns, "vd", f"192.0.2.{4 * k + 1}/30", f"fd53:{k}::1/64"),
                               (self.cfu, f"vu{k}", f"192.0.2.{4 * k + 2}/30", f"fd53:{k}::2/64")):
            run(["ip", "-n", n, "addr", "add", a4, "dev", dev])
            run(["ip", "-n", n, "addr", "add", a6, "dev", dev, "nodad"])
            run(["ip", "-n", n, "link", "set", dev, "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", f"192.0.2.{4 * k + 2}"])
        run(["ip", "-n", ns, "-6", "route", "add", "default", "via", f"fd53:{k}::2"])
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {RESOLV_UPSTREAM}\n")
        (etc / "hosts").write_text(HOSTS_FILE)

    def down(self, keep_work: bool = False) -> None:
        if self.stub is not None:
            self.stub.kill()
            self.stub.wait()
            self.stub = None
        for k in range(self.workers):
            run(["ip", "netns", "del", self.cfd_ns(k)], check=False)
            shutil.rmtree(Path("/etc/netns") / self.cfd_ns(k), ignore_errors=True)
        run(["ip", "netns", "del", self.cfu], check=False)
        if not keep_work:
            shutil.rmtree(self.work, ignore_errors=True)

    def log_lines(self) -> list[tuple[int, str, str]]:
        """(upstream number, qtype, name) of every question the stub got so far."""
        path = self.work / "stub.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            i, qtype, name = line.split(" ", 2)
            out.append((int(i), qtype, name))
        return out

    def start(self, binary: Path, corefile: str, wait_ports: list[tuple[str, int]],
              kube: bool, timeout: float = 15.0, worker: int = 0,
              load_only: bool = False) -> tuple[subprocess.Popen | None, str]:
        """Start CoreDNS on COREFILE in <cfd>; (process, '') once every (address, port) of
        WAIT_PORTS answers, or (None, its output) when it exits (refused to load)."""
        conf = self.work / f"Corefile-{time.monotonic_ns()}"
        conf.write_text(corefile)
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT="1")
        script = ("mount -t tmpfs none /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
                  "echo token > /run/secrets/kubernetes.io/serviceaccount/token && "
                  'exec "$0" -conf "$1"')
        log = self.work / (conf.name + ".log")
        with open(log, "w") as out:
            p = subprocess.Popen(["ip", "netns", "exec", self.cfd_ns(worker), "unshare", "-m", "sh",
                                  "-c", script, str(binary), str(conf)], cwd=self.work, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, text=True)
        end = time.monotonic() + timeout + (6 if kube else 0)
        pending = list(wait_ports)
        while time.monotonic() < end:
            if p.poll() is not None:
                return None, log.read_text()
            if load_only and "waiting for Kubernetes API" in log.read_text():
                return p, ""  # setup is done: every plugin parsed its lines
            open_ = self._listening(worker)
            pending = [ap for ap in pending if ap[1] not in open_]
            if not pending:
                return p, ""
            time.sleep(0.05)
        p.kill()
        p.wait()
        raise RuntimeError("CoreDNS did not listen on %s in time" % pending)

    def start_root(self, binary: Path, corefile: str, *, worker: int = 0,
                   files: dict[str, str] | None = None, timeout: float = 12.0) -> "Run":
        """Start BINARY on COREFILE chrooted in a fresh root of its own (<work>/root<k>: the
        Corefile at /Corefile, CoreDNS's working directory /, etc/resolv.conf and etc/hosts of
        this oracle, a service-account token, FILES at their paths). Wait for the start-up
        banner CoreDNS prints once every server listens (coremain/run.go showVersion after
        caddy.Start: also for port 0, which no port scan finds) or for its exit."""
        root = self.work / f"root{worker}"
        shutil.rmtree(root, ignore_errors=True)
        for rel, text in {"Corefile": corefile, "etc/resolv.conf": f"nameserver {RESOLV_UPSTREAM}\n",
                          "etc/hosts": HOSTS_FILE, "coredns": "",
                          "var/run/secrets/kubernetes.io/serviceaccount/token": "token\n",
                          **(files or {})}.items():
            put(root, rel, text)
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT="1")
        log = self.work / f"root{worker}.log"
        with open(log, "w") as out:
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.cfd_ns(worker), "unshare", "-m", "sh", "-c",
                 'mkdir -p "$1/proc" && mount -t proc proc "$1/proc" && mount --bind "$0" "$1/coredns" '
                 '&& exec chroot "$1" /coredns -conf /Corefile',
                 str(binary), str(root)], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            done = p.poll() is not None
            if BANNER.search(log.read_text()) and not done:
                return Run(p, log.read_text(), root)
            if done:  # exit 0 after the banner: loaded, with nothing to serve
                return Run(None, log.read_text(), root, served_nothing=p.returncode == 0
                           and bool(BANNER.search(log.read_text())))
            time.sleep(0.05)
        p.kill()
        p.wait()
        return Run(None, log.read_text() + "\n[oracle] no start-up banner in %.0f s" % timeout, root,
                   timed_out=True)

    def _listening(self, worker: int) -> set[int]:
        """The TCP ports listened on in <cfd>k (CoreDNS opens a server's TCP listener last;
        ss reads them without a query)."""
        out = run(["ip", "netns", "exec", self.cfd_ns(worker), "ss", "-Htln"], check=False)
        ports = set()
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) >= 4 and ":" in f[3]:
                ports.add(int(f[3].rsplit(":", 1)[1]))
        return ports

    def ask(self, queries: list[dict], worker: int = 0) -> list[dict]:
        """Send QUERIES ({server, port, name, qtype}) from inside <cfd>k, in parallel."""
        p = run(["ip", "netns", "exec", self.cfd_ns(worker), sys.executable, "-m", "tests.integration.corefile_oracle",
                 "ask"], input=json.dumps(queries), cwd=ROOT, timeout=120)
        return json.loads(p.stdout)


BANNER = re.compile(r"^CoreDNS-\d+\.\d+\.\d+", re.M)


def put(root: Path, rel: str, text: str | bytes) -> Path:
    """Write TEXT at REL under ROOT (an absolute REL too: the root is a chroot)."""
    path = root / os.path.normpath("/" + rel).lstrip("/")  # ../x from the working directory /
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@dataclass
class Run:
    """A CoreDNS started by Oracle.start_root: the process (None when it exited or never
    printed its banner), its output so far, its root."""

    proc: subprocess.Popen | None
    output: str
    root: Path
    timed_out: bool = False
    served_nothing: bool = False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# --- what lint says about loading ----------------------------------------------------------


def refusal(sem, text: str, files=None) -> tuple[bool, int | None, str]:
    """What lint says: (CoreDNS refuses it, the line lint names, the codes). FILES: what the
    Corefile's glob imports read (parse_corefile's files)."""
    from toolkit.corefile.document import CorefileError
    from toolkit.corefile.lint import lint
    from toolkit.corefile.parser import parse_corefile
    from toolkit.model import Severity

    try:
        cf = parse_corefile(text, files=files)
    except CorefileError as exc:
        from toolkit.corefile.loadcheck import syntax_refusal

        return True, syntax_refusal(exc, sem.build).line, "syntax"
    res = lint([cf], semantics=sem)
    # Refusals: the findings that quote CoreDNS's error (a distribution plugin's too: info in
    # a Corefile its operator runs on its own build, but upstream CoreDNS refuses it), and two
    # blocks for one key.
    crit = [f for f in res.findings if "coredns_error" in f.data
            or (f.severity is Severity.CRITICAL and f.code == "duplicate-server-block")]
    return bool(crit), (crit[0].data.get("line") if crit else None), ",".join(f.code for f in crit)


def coredns_line(output: str) -> int | None:
    """The Corefile line CoreDNS's error names (caddy: FILE:LINE - Error during parsing /
    Syntax error), None when it names none."""
    m = re.search(r":(\d+) - (?:Error during parsing|Syntax error)", output)
    return int(m.group(1)) if m else None


# --- what an answer says about who answered ------------------------------------------------


def classify(res: dict) -> tuple[str, str | int | None]:
    """(kind, detail) of one answer: ('upstream', N), ('hosts'|'template'|'file', address),
    ('kubernetes', zone), ('whoami', None), ('none', None) for no records, ('timeout', None)."""
    if res.get("error"):
        return "timeout", None
    for rtype, text in res["answer"]:
        if text.startswith("198.18."):
            a, b = text.split(".")[2:4]
            return "upstream", int(a) * 256 + int(b)
        if text.startswith("2001:db8::"):
            return "upstream", int(text.split("::")[1] or "0", 16)
        if rtype in ("PTR", "SRV") and ".stub." in text:
            return "upstream", int(text.split()[-1].split(".")[0][1:])
        for prefix, kind in (("10.77.", "hosts"), ("fd77::", "hosts"), ("10.88.", "template"),
                             ("fd88::", "template"), ("10.99.", "file"), ("fd99::", "file")):
            if text.startswith(prefix):
                return kind, text
    for rtype, text in res["authority"]:
        if rtype == "SOA" and text.startswith("ns.dns."):
            return "kubernetes", text
    if any(rtype == "SRV" for rtype, _ in res["additional"]):
        return "whoami", None
    return "none", None


# --- the stub upstream and the query runner (run inside a namespace) --------------------------


def _stub_reply(wire: bytes, index: int, log) -> bytes | None:
    import dns.message
    import dns.rrset

    try:
        q = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - a stub: anything unreadable is ignored
        return None
    r = dns.message.make_response(q)
    if not q.question:
        return r.to_wire()
    qq = q.question[0]
    name, qtype = qq.name.to_text(), dns.rdatatype.to_text(qq.rdtype)
    log.write(f"{index} {qtype} {name.lower()}\n")
    log.flush()
    data = {"A": f"198.18.{index >> 8}.{index & 255}", "AAAA": f"2001:db8::{index:x}",
            "PTR": f"u{index}.stub.", "SRV": f"0 0 53 u{index}.stub.",
            "TXT": f'"u{index}"'}.get(qtype)
    if data is not None:
        r.answer.append(dns.rrset.from_text(qq.name, 5, "IN", qtype, data))
    return r.to_wire()


def stub_main(upstreams_file: str, log_file: str) -> None:
    """Answer on UDP and TCP port 53 (and each target's own port) of every upstream address."""
    import dns.rdatatype  # noqa: F401  (loaded before "ready")

    targets = json.loads(Path(upstreams_file).read_text())
    socks: dict[socket.socket, tuple[int, str]] = {}
    for i, a in enumerate(targets):
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(fam, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a, 53))
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            socks[s] = (i, "udp" if kind == socket.SOCK_DGRAM else "tcp")
    log = open(log_file, "a")
    print("ready", flush=True)
    conns: dict[socket.socket, tuple[int, bytes]] = {}
    while True:
        readable, _, _ = select.select(list(socks) + list(conns), [], [], 1.0)
        for s in readable:
            if s in socks:
                i, kind = socks[s]
                if kind == "udp":
                    wire, addr = s.recvfrom(65535)
                    reply = _stub_reply(wire, i, log)
                    if reply:
                        s.sendto(reply, addr)
                else:
                    c, _ = s.accept()
                    conns[c] = (i, b"")
                continue
            i, buf = conns[s]
            try:
                chunk = s.recv(65535)
            except OSError:
                chunk = b""
            if not chunk:
                conns.pop(s).__class__
                s.close()
                continue
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                n = int.from_bytes(buf[:2], "big")
                reply = _stub_reply(buf[2:2 + n], i, log)
                buf = buf[2 + n:]
                if reply:
                    s.sendall(len(reply).to_bytes(2, "big") + reply)
            conns[s] = (i, buf)


def ask_main() -> None:
    """Read [{server, port, name, qtype}] on stdin, ask each over UDP (in parallel), print
    [{rcode, answer, authority, additional, error}]."""
    from concurrent.futures import ThreadPoolExecutor

    import dns.message
    import dns.query
    import dns.rcode

    queries = json.loads(sys.stdin.read())

    def one(q: dict) -> dict:
        msg = dns.message.make_query(q["name"], q["qtype"])
        try:
            r = dns.query.udp(msg, q["server"], port=q["port"], timeout=3.0)
        except Exception as exc:  # noqa: BLE001 - reported per query
            return {"error": type(exc).__name__}

        def rows(section):
            return [(dns.rdatatype.to_text(rs.rdtype), rd.to_text()) for rs in section for rd in rs]

        return {"rcode": dns.rcode.to_text(r.rcode()), "answer": rows(r.answer),
                "authority": rows(r.authority), "additional": rows(r.additional), "error": None}

    with ThreadPoolExecutor(16) as ex:
        print(json.dumps(list(ex.map(one, queries))))


if __name__ == "__main__":
    if sys.argv[1] == "stub":
        stub_main(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "ask":
        ask_main()
