"""The corpus half of the differential suite (tests/integration/corefile_corpus.py): every
Corefile of CoreDNS's docs and tests (../shared/corpus/coredns-corefiles) and every distribution
config (tests/data/corefiles/) loaded by the real CoreDNS 1.12.1 and 1.14.7 (node caches by
node-cache's engine): lint must say CoreDNS refuses exactly the ones it refuses, at the line
CoreDNS names. The distribution configs that load are then asked every traced name (A, AAAA,
PTR, SRV; in and out of each zone, at each block's addresses) and `trace` must name the
answerer, rcode and upstream.

Run time (2 shared cores): printed at the end of each test (`-s`), README "Differential tests".
"""
from __future__ import annotations

import fnmatch
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.corefile_corpus import (
    PILLARS,
    Item,
    Materials,
    Outcome,
    corpus_items,
    dist_items,
    load,
    stop,
)
from tests.integration.corefile_oracle import RESOLV_UPSTREAM, Oracle, classify, refusal
from tests.integration.corefile_variants import UPSTREAMS, Variant
from tests.integration.test_corefile_differential import compare
from tests.lab import components
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.plugins.base import Semantics
from toolkit.corefile.plugins.versions import coredns_build, node_cache_build

pytestmark = pytest.mark.lab
WORKERS = 3
VERSIONS = {"coredns-1.12": "1.12.1", "coredns-1.14": "1.14.7", "node-cache": None}


def _targets() -> list[str]:
    """Every forward target address of the distribution configs: the stub answers on each."""
    out: dict[str, None] = {}
    forwarded: set[str] = set()
    ip = r"\b(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?\b"
    for it in dist_items():
        for m in re.finditer(ip, it.text):
            out[m.group(1)] = None
        for line in re.findall(r"^\s*forward\s.*$", it.text, re.M):
            forwarded.update(m.group(1) for m in re.finditer(ip, line))
    # NodeLocal's addresses are the node cache's own (bound on lo in <cfd>), unless a config
    # forwards to one: the 2018 addon manifest sends the cluster zones to 10.96.0.10 itself
    binds = {PILLARS["__PILLAR__LOCAL__DNS__"], PILLARS["__PILLAR__DNS__SERVER__"]} - forwarded
    return [a for a in out if a not in binds and not a.startswith(("127.", "169.254.", "0."))
            and a not in UPSTREAMS and a != RESOLV_UPSTREAM]


@pytest.fixture(scope="module")
def oracle():
    if os.geteuid() != 0:
        pytest.fail("the differential suite needs root (network namespaces)", pytrace=False)
    o = Oracle(prefix="cc%d" % (os.getpid() % 100000),
               upstreams=UPSTREAMS + [RESOLV_UPSTREAM] + _targets(), workers=WORKERS)
    o.up()
    try:
        yield o
    finally:
        o.down()


def semantics(key: str) -> Semantics:
    v = VERSIONS[key]
    return Semantics(node_cache_build() if v is None else coredns_build(v))


def imports_of(item: Item) -> dict[str, list[tuple[str, str]]]:
    """parse_corefile's files: each glob import of ITEM and the files beside it it matches."""
    out: dict[str, list[tuple[str, str]]] = {}
    for m in re.finditer(r"^\s*import\s+(\S+)", item.text, re.M):
        pat = m.group(1).lstrip("/")
        hits = [(n, t) for n, t in item.files.items() if fnmatch.fnmatch(n, pat)]
        if hits:
            out[m.group(1)] = hits
    return out


def judge(item: Item, sem: Semantics, got: Outcome) -> str | None:
    """The disagreement between lint and CoreDNS about loading ITEM, or None."""
    refused, line, codes = refusal(sem, item.text, imports_of(item) or None)
    if got.status == "loaded":
        return f"{item.key}: lint says CoreDNS refuses it ({codes}, line {line}); it loads" \
            if refused else None
    if not refused:
        return f"{item.key}: CoreDNS refuses it, lint passes it: {got.error}"
    if got.line is not None and got.line != line:
        return f"{item.key}: CoreDNS names line {got.line}, lint line {line} ({codes}): {got.error}"
    return None


# --- the distribution configs' questions -------------------------------------------------------

_NAMES = ("kubernetes.default.svc.cluster.local", "x.ns.svc.cluster.local", "10.0.96.10.in-addr.arpa",
          "3.2.1.10.in-addr.arpa", "example.com", "x.other.test")


def questions(item: Item) -> Variant:
    """Every traced name of ITEM's blocks: a name in each zone, the cluster's usual names,
    names outside, A AAAA PTR SRV, at each block's listen addresses and port."""
    cf = parse_corefile(item.text)
    v = Variant(item.key, item.text, 0)
    names = list(_NAMES)
    for b in cf.blocks:
        for z in b.zones:
            if z != ".":
                names.append("probe." + z.rstrip("."))
    servers: dict[tuple[str, int], None] = {}
    for b in cf.blocks:
        for a in b.addresses:
            if a.port is None or a.transport != "dns":
                continue
            for s in [x for x in b.bind if re.fullmatch(r"[\d.]+", x)] or ["127.0.0.1"]:
                servers[(s, a.port)] = None
    for s, port in servers:
        v.ask(list(dict.fromkeys(names)), server=s, port=port)
    return v


def ask_item(o: Oracle, item: Item, sem: Semantics, worker: int, out: list[str]) -> int:
    """Ask a loaded ITEM's questions (CoreDNS running in <cfd>worker); disagreements to OUT."""
    v = questions(item)
    qs = v.queries
    answers = o.ask([{"name": q[0], "qtype": q[1], "server": q[2], "port": q[3]} for q in qs],
                    worker=worker)
    time.sleep(0.2)
    log = set(o.log_lines())
    for q, res in zip(qs, answers):
        d = compare(o, v, q, res, sem, log, str(o.work / f"root{worker}"))
        if d:
            out.append(d)
    return len(qs)


@pytest.mark.parametrize("key", list(VERSIONS))
def test_corpus(oracle, key):
    t0 = time.monotonic()
    sem = semantics(key)
    binary = components.path(key)
    items = [i for i in dist_items() if (i.engine == "node-cache") == (key == "node-cache")]
    if key != "node-cache":
        items = corpus_items() + items
    mats = Materials()
    out: list[str] = []
    status: dict[str, list[str]] = {}
    asked = [0]
    lock = threading.Lock()
    free = list(range(WORKERS))

    def one(item: Item) -> None:
        with lock:
            w = free.pop()
        try:
            got = load(oracle, binary, item, mats, worker=w, keep=item.dist)
            try:
                d = judge(item, sem, got)
                n = ask_item(oracle, item, sem, w, out) if item.dist and got.run is not None else 0
            finally:
                stop(oracle, got, w)
            with lock:
                asked[0] += n
                status.setdefault(got.status, []).append(item.key)
                if got.status == "environment":
                    print(f"  environment: {item.key}: {got.why}: {got.error}")
                if d:
                    out.append(d)
        finally:
            with lock:
                free.append(w)

    with ThreadPoolExecutor(WORKERS) as ex:
        list(ex.map(one, items))
    print(f"\n{key}: {len(items)} Corefiles ("
          + ", ".join(f"{len(v)} {k}" for k, v in sorted(status.items()))
          + f"), {asked[0]} questions, {time.monotonic() - t0:.1f} s, {len(out)} disagreements")
    assert not out, "\n".join(out[:80])
