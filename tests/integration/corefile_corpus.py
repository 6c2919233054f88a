"""The corpus half of the differential suite: every Corefile of CoreDNS's own docs and tests
(../shared/corpus/coredns-corefiles, read as the other corpus tests read it) and every
distribution config of tests/data/corefiles/, loaded by the real CoreDNS (each pinned version;
node caches by node-cache's engine) and, for the distribution configs, asked every traced name.

A corpus Corefile names what the namespace lacks: TLS certificates and keys, DNSSEC keys, zone
files, bind addresses. CoreDNS stops at the first such error (``open PATH: no such file or
directory``, ``listen udp A:53: bind: cannot assign requested address``); the harness then
provides it (a self-signed certificate and key from openssl, a DNSSEC key from dnssec-keygen,
a zone file with only an SOA and an NS, the address on ``lo``) and starts CoreDNS again, so the
rest of the config is still checked. What cannot be provided (the content of a dummy file
refused, an interface that does not exist, cloud credentials) is classed ``environment``:
listed with CoreDNS's words, never compared with lint.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.corefile_oracle import Oracle, Run, run

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "tests" / "data" / "corefiles"


def shared_dir() -> Path:
    """../shared, or PODTRIAGE_SHARED (as tests/unit/test_corefile_parser.py reads it)."""
    here = ROOT / ".." / "shared"
    if here.is_dir():
        return here.resolve()
    env = os.environ.get("PODTRIAGE_SHARED")
    if env and Path(env).is_dir():
        return Path(env)
    raise FileNotFoundError("../shared (or PODTRIAGE_SHARED) not available: the CoreDNS corpus")


# How node-cache and the addon's install step fill the NodeLocal DNSCache manifest's
# placeholders (cluster/addons/dns/nodelocaldns/README.md; node-cache's main fills
# __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ at start, the iptables-mode sed the
# other three): these values, in the harness's own namespaces.
PILLARS = {"__PILLAR__LOCAL__DNS__": "169.254.20.10", "__PILLAR__DNS__SERVER__": "10.96.0.10",
           "__PILLAR__DNS__DOMAIN__": "cluster.local", "__PILLAR__CLUSTER__DNS__": "10.96.0.11",
           "__PILLAR__UPSTREAM__SERVERS__": "/etc/resolv.conf"}


def fill_pillars(text: str) -> str:
    for k, v in PILLARS.items():
        text = text.replace(k, v)
    return text


@dataclass
class Item:
    """One Corefile to load: its key (file and data key), text, the engine that runs it
    (coredns, or node-cache for a node cache's Corefile), the files it imports."""

    key: str
    text: str
    engine: str = "coredns"
    files: dict[str, str] = field(default_factory=dict)
    dist: bool = False


def corpus_items() -> list[Item]:
    corpus = shared_dir() / "corpus" / "coredns-corefiles"
    return [Item(f.name, f.read_text(errors="replace")) for f in sorted(corpus.glob("*.Corefile"))]


def dist_items() -> list[Item]:
    """Every Corefile of tests/data/corefiles as CoreDNS (or node-cache) would run it: the
    NodeLocal placeholders filled, the coredns-custom keys beside it as the files
    ``import custom/*.server`` reads (AKS and k3s mount that ConfigMap at custom/)."""
    from toolkit.corefile.roles import CorefileRole, assemble
    from toolkit.corefile.source import load_corefiles

    out: list[Item] = []
    for path in sorted(DIST.glob("*/*.yaml")):
        cfs = load_corefiles(str(path))
        given = [str(p) for p in path.parent.glob("coredns-custom*.yaml") if p != path]
        extra = [c for p in given[:1] for c in load_corefiles(p)] if path.name == "coredns.yaml" else []
        custom = {f"custom/{c.key}": c.text or "" for c in extra if c.key}
        roles = assemble(cfs)
        for cf in cfs:
            if cf.fragment or not cf.blocks:
                continue
            r = roles.role_of(cf)
            cache = r is not None and r.role in (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY)
            rel = path.relative_to(DIST)
            out.append(Item(f"{rel}:{cf.key}", fill_pillars(cf.text or ""),
                            engine="node-cache" if cache else "coredns",
                            files=custom, dist=True))
    return out


# --- what CoreDNS lacked, and providing it ---------------------------------------------------

_MISSING = re.compile(r"(?:open|stat|lstat) ([^\s:]+): no such file or directory")
_ADDRESS = re.compile(r"listen (?:tcp|udp)[46]? \[?([0-9a-fA-F.:]+?)\]?:\d+: bind: cannot assign "
                      r"requested address")
_DNSSEC = re.compile(r"(?:^|/)K(.+?)\.\+(\d{3})\+\d{5}(?:\.key|\.private)?$")
_ENVIRONMENT = (
    (re.compile(r"no such network interface|route ip\+net: no such"), "an interface the namespace lacks"),
    (re.compile(r"(?i)credential|NoCredentialProviders|could not find default credentials"),
     "cloud credentials"),
)


@dataclass
class Materials:
    """Certificate, key and DNSSEC keys made once per run."""

    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cfm-")))
    _pem: tuple[str, str] | None = None
    # Corefiles load from a thread pool: two first users at once would each write key.pem and
    # cert.pem, and a certificate from one with the key of the other ("private key does not
    # match public key") made CoreDNS refuse a Corefile it loads.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pem(self) -> tuple[str, str]:
        with self._lock:
            return self._make_pem()

    def _make_pem(self) -> tuple[str, str]:
        if self._pem is None:
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", str(self.work / "key.pem"), "-out", str(self.work / "cert.pem"),
                 "-days", "2", "-subj", "/CN=corefile-oracle"])
            self._pem = ((self.work / "cert.pem").read_text(), (self.work / "key.pem").read_text())
        return self._pem

    def dnssec(self, zone: str, alg: int) -> tuple[str, str]:
        d = Path(tempfile.mkdtemp(dir=self.work))
        p = run(["dnssec-keygen", "-q", "-K", str(d), "-a", str(alg), zone.rstrip(".") or "."])
        base = d / p.stdout.strip()
        return Path(str(base) + ".key").read_text(), Path(str(base) + ".private").read_text()

    def dummy(self, path: str) -> dict[str, str]:
        """The files to write for PATH, which CoreDNS could not open."""
        name = path.rsplit("/", 1)[-1]
        m = _DNSSEC.search(path)
        if m:
            base = re.sub(r"\.(key|private)$", "", path)
            key, private = self.dnssec(m.group(1), int(m.group(2)))
            return {base + ".key": key, base + ".private": private}
        low = name.lower()
        if "key" in low:
            return {path: self.pem()[1]}
        if "cert" in low or "ca" in low or low.endswith((".pem", ".crt")):
            return {path: self.pem()[0]}
        # a zone file (db.example.org, example.org.signed): only the apex, any origin
        return {path: "$TTL 3600\n@ IN SOA ns.invalid. admin.invalid. 1 7200 3600 1209600 60\n"
                      "@ IN NS ns.invalid.\n"}


@dataclass
class Outcome:
    """What CoreDNS did with one Corefile: ``loaded``, ``refused`` (its output names the
    reason) or ``environment`` (it needs what the harness cannot provide), and what the
    harness provided on the way."""

    status: str
    output: str
    provided: list[str] = field(default_factory=list)
    run: Run | None = None
    why: str = ""

    @property
    def line(self) -> int | None:
        m = re.search(r":(\d+) - (?:Error during parsing|Syntax error)", self.output)
        return int(m.group(1)) if m else None

    @property
    def error(self) -> str:
        lines = [ln for ln in self.output.splitlines() if ln.strip() and not ln.startswith("maxprocs")]
        return lines[-1][-300:] if lines else ""


def load(o: Oracle, binary: Path, item: Item, m: Materials, worker: int = 0,
         keep: bool = False, tries: int = 8) -> Outcome:
    """Start BINARY on ITEM (providing what it lacks, up to TRIES starts); a loaded CoreDNS is
    stopped unless KEEP (then the caller stops outcome.run)."""
    files = dict(item.files)
    provided: list[str] = []
    added: list[str] = []
    try:
        for _ in range(tries):
            r = o.start_root(binary, item.text, worker=worker, files=files)
            if r.proc is not None or r.served_nothing:
                if not keep:
                    r.stop()
                return Outcome("loaded", r.output, provided, r if keep else None)
            if r.timed_out:
                return Outcome("environment", r.output, provided, why="no start-up banner")
            miss = _MISSING.search(r.output)
            if miss and miss.group(1) not in files:
                new = m.dummy(miss.group(1))
                files.update(new)
                provided.extend(new)
                continue
            addr = _ADDRESS.search(r.output)
            if addr and addr.group(1) not in added:
                a = addr.group(1)
                run(["ip", "-n", o.cfd_ns(worker), "addr", "add", a + ("/128" if ":" in a else "/32"),
                     "dev", "lo"] + (["nodad"] if ":" in a else []))
                added.append(a)
                provided.append(f"address {a}")
                continue
            out = Outcome("refused", r.output, provided)
            if miss or any(p in out.error for p in files if p not in item.files):
                out.status, out.why = "environment", "a file the harness cannot make CoreDNS accept"
            for rx, why in _ENVIRONMENT:
                if rx.search(out.error):
                    out.status, out.why = "environment", why
            return out
        return Outcome("environment", "", provided, why=f"still lacking something after {tries} starts")
    finally:
        if not keep:
            for a in added:
                run(["ip", "-n", o.cfd_ns(worker), "addr", "del", a + ("/128" if ":" in a else "/32"),
                     "dev", "lo"], check=False)


def stop(o: Oracle, outcome: Outcome, worker: int) -> None:
    """Stop a CoreDNS load(keep=True) left running and remove the addresses it got."""
    if outcome.run is not None:
        outcome.run.stop()
    for p in outcome.provided:
        if p.startswith("address "):
            a = p.split()[1]
            run(["ip", "-n", o.cfd_ns(worker), "addr", "del", a + ("/128" if ":" in a else "/32"),
                 "dev", "lo"], check=False)


if __name__ == "__main__":  # exploration: python -m tests.integration.corefile_corpus KEY
    import sys

    from tests.integration.corefile_oracle import RESOLV_UPSTREAM
    from tests.lab import components

    o = Oracle(prefix="cfx%d" % (os.getpid() % 1000), upstreams=[RESOLV_UPSTREAM], workers=1)
    o.up()
    try:
        m = Materials()
        items = corpus_items() + dist_items()
        for key in sys.argv[2:] or [i.key for i in items]:
            it = next(i for i in items if i.key.startswith(key))
            b = components.path("node-cache" if it.engine == "node-cache" else sys.argv[1])
            res = load(o, b, it, m)
            print(it.key, res.status, res.line, res.provided, res.why, res.error, flush=True)
    finally:
        o.down()
    _ = subprocess
