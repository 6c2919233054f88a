"""Differential tests: `corefile trace` and `corefile lint` against the real CoreDNS (each
pinned version, tests/lab/components.py), in namespaces this module makes
(tests/integration/corefile_oracle.py: stub upstreams that name themselves in their answers).

For every generated variant (tests/integration/corefile_variants.py, VARIANTS per version):
a config lint finds critical must be refused by CoreDNS, at the line CoreDNS names; a config
lint passes must load; every traced name (A, AAAA, PTR, SRV; inside and outside each zone) must
be answered by the plugin or upstream the trace names, with its rcode, and an upstream must
have been asked the name the trace says (after rewrites).

Run time (2 shared cores): printed at the end of each test (`-s`), README "Differential tests".
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.corefile_oracle import RESOLV_UPSTREAM, Oracle, classify, coredns_line, refusal
from tests.integration.corefile_variants import UPSTREAMS, Variant, variants
from tests.lab import components
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.plugins.base import Semantics
from toolkit.corefile.plugins.forward import TargetKind
from toolkit.corefile.plugins.versions import coredns_build
from toolkit.corefile.source import root_reader
from toolkit.corefile.trace import trace_name

pytestmark = pytest.mark.lab
VARIANTS = int(os.environ.get("PT_COREFILE_VARIANTS", "220"))
VERSIONS = {"coredns-1.12": "1.12.1", "coredns-1.14": "1.14.7"}
BATCH = 40
KUBE_BATCH = 4  # kubernetes instances wait 5 s each for the API, one after the other
WORKERS = 3


@pytest.fixture(scope="module")
def oracle():
    if os.geteuid() != 0:
        pytest.fail("the differential suite needs root (network namespaces)", pytrace=False)
    o = Oracle(prefix="cf%d" % (os.getpid() % 100000), upstreams=UPSTREAMS + [RESOLV_UPSTREAM],
               workers=WORKERS)
    o.up()
    try:
        yield o
    finally:
        o.down()


def expect(o: Oracle, v: Variant, q: tuple[str, str, str, int], sem: Semantics,
           root: str | None = None) -> tuple:
    """(kinds allowed, upstream numbers allowed, rcode or None, name the upstream gets)."""
    name, qtype, server, port = q
    r = trace_name(name, [parse_corefile(v.text)], qtype=qtype, port=port, nameserver=server,
                   semantics=sem, files=root_reader(root or str(o.work)))
    if r.final is not None and r.final.kind in (TargetKind.IP, TargetKind.FILE) and not r.unreverted:
        targets = {o.index(RESOLV_UPSTREAM)} if r.final.kind is TargetKind.FILE else {
            o.index(t.rsplit(":", 1)[0]) for t in r.final.targets}
        last = r.hops[-1]
        return ({"upstream"}, targets, "NOERROR", (last.name, last.qtype)), r
    if r.unreverted or (not r.hops and r.rcode is None):
        return ({"timeout"}, set(), None, None), r  # the answer is dropped / nothing listens
    plugin = r.hops[-1].plugin if r.hops else None
    if plugin == "kubernetes":
        return ({"kubernetes"}, set(), "SERVFAIL", None), r
    kinds = {"none"} | ({plugin} if plugin in ("hosts", "template", "file", "whoami") else set())
    return (kinds, set(), r.rcode, None), r


def compare(o: Oracle, v: Variant, q, res: dict, sem: Semantics, log: set,
            root: str | None = None) -> str | None:
    (kinds, ups, rcode, asked), r = expect(o, v, q, sem, root)
    kind, detail = classify(res)
    got_rcode = res.get("rcode")
    bad = kind not in kinds or (rcode is not None and got_rcode != rcode)
    if kind == "upstream" and not bad:
        bad = detail not in ups or (asked is not None and (detail, asked[1], asked[0]) not in log)
    if not bad:
        return None
    return (f"{v.key} {q[0]} {q[1]} @{q[2]}:{q[3]}: trace says {sorted(kinds)} {sorted(ups)} "
            f"{rcode} {asked} ({r.outcome}); CoreDNS answered {kind} {detail} {got_rcode}")


def run_batch(o: Oracle, binary: Path, batch: list[Variant], sem: Semantics, worker: int,
              out: list[str]) -> None:
    for v in batch:
        for name, text in v.files.items():
            (o.work / name).write_text(text)
    text = "\n".join(v.text for v in batch)
    ports = sorted({("", a.port) for v in batch for b in parse_corefile(v.text).blocks
                    for a in b.addresses if a.port})
    proc, output = o.start(binary, text, ports, kube=any(v.kube for v in batch), worker=worker)
    if proc is None:
        for v in batch:  # which one CoreDNS refused
            p1, out1 = o.start(binary, v.text, [("", v.port)], kube=v.kube, worker=worker,
                               load_only=True)
            if p1 is None:
                out.append(f"{v.key}: lint passes it, CoreDNS refuses: {out1.strip()[-300:]}")
            else:
                p1.kill()
                p1.wait()
        return
    try:
        qs = [(v, q) for v in batch for q in v.queries]
        answers = o.ask([{"name": q[0], "qtype": q[1], "server": q[2], "port": q[3]} for _, q in qs],
                        worker=worker)
        time.sleep(0.2)
        log = set(o.log_lines())
        for (v, q), res in zip(qs, answers):
            d = compare(o, v, q, res, sem, log)
            if d:
                out.append(d)
    finally:
        proc.kill()
        proc.wait()


def check_refused(o: Oracle, binary: Path, v: Variant, sem: Semantics, out: list[str]) -> None:
    for name, text in v.files.items():
        (o.work / name).write_text(text)
    refused, line, codes = refusal(sem, v.text)
    proc, output = o.start(binary, v.text, [("", v.port)], kube=v.kube, load_only=True)
    if proc is not None:
        proc.kill()
        proc.wait()
        if refused:
            out.append(f"{v.key}: lint says CoreDNS refuses it ({codes}, line {line}); it loads")
        return
    if not refused:
        out.append(f"{v.key}: CoreDNS refuses it, lint passes it: {output.strip()[-300:]}")
        return
    said = coredns_line(output)
    if said is not None and said != line:
        out.append(f"{v.key}: CoreDNS names line {said}, lint line {line} ({codes}): {output.strip()[-200:]}")


@pytest.mark.parametrize("key", sorted(VERSIONS))
def test_generated_variants(oracle, key):
    t0 = time.monotonic()
    binary = components.path(key)
    sem = Semantics(coredns_build(VERSIONS[key]))
    vs = variants(VARIANTS)
    out: list[str] = []
    loadable = []
    for v in vs:
        if refusal(sem, v.text)[0] or v.refused:
            check_refused(oracle, binary, v, sem, out)
        else:
            loadable.append(v)
    plain = [v for v in loadable if not v.kube]
    kube = [v for v in loadable if v.kube]
    batches = [kube[i:i + KUBE_BATCH] for i in range(0, len(kube), KUBE_BATCH)] + \
        [plain[i:i + BATCH] for i in range(0, len(plain), BATCH)]
    # Each batch in a namespace of its own, WORKERS at a time (the kube ones mostly wait).
    with ThreadPoolExecutor(WORKERS) as ex:
        free = list(range(WORKERS))
        lock = threading.Lock()

        def one(b: list[Variant]) -> None:
            with lock:
                w = free.pop()
            try:
                run_batch(oracle, binary, b, sem, w, out)
            finally:
                with lock:
                    free.append(w)

        list(ex.map(one, batches))
    asked = sum(len(v.queries) for v in loadable)
    print(f"\n{key}: {len(vs)} variants ({len(loadable)} load, {len(vs) - len(loadable)} refused), "
          f"{asked} questions, {len(batches)} CoreDNS processes, {time.monotonic() - t0:.1f} s, "
          f"{len(out)} disagreements")
    assert not out, "\n".join(out[:60])

