"""Hostile input files (issue 10): FIFOs without a writer, endless devices, pipes, hostile
ConfigMaps (deep nesting, billion laughs, huge Lists), broken pcaps, odd config files.

Every case runs the real CLI as a process and checks exit code, one error line, no
traceback, wall time within --deadline + grace, and peak RSS (tests/hostile.py). None of
these commands sends a packet: corefile lint/trace, resolvconf and capture --read only read.
The network-touching inputs (diagnose --corefile, corefile check) are in
tests/integration/test_hostile_io_lab.py.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from tests import hostile as H

OK_OR_PROBLEM = frozenset({0, 1, 5})   # a completed run: ok, a problem, or indeterminate
CANNOT = frozenset({3})
ANY_CLEAN = frozenset({0, 1, 3, 5})

KUBEADM = """.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""

CASES: list[H.Case] = [
    # --- FIFOs with no writer: bounded by --deadline, exit 3 ----------------------------
    H.Case(id="lint-fifo", argv=("corefile", "lint", "{fifo}", "--deadline", "1"), codes=CANNOT,
           error_has="within the deadline"),
    H.Case(id="trace-corefile-fifo", argv=("corefile", "trace", "x.example.", "-c", "{fifo}",
                                           "--deadline", "1"), codes=CANNOT),
    H.Case(id="resolvconf-file-fifo", argv=("resolvconf", "--file", "{fifo}", "--deadline", "1"),
           codes=CANNOT),
    H.Case(id="resolvconf-hosts-fifo", argv=("resolvconf", "--hosts", "{fifo}", "--deadline", "1"),
           codes=CANNOT),
    H.Case(id="resolvconf-nsswitch-fifo", argv=("resolvconf", "--nsswitch", "{fifo}", "--deadline", "1"),
           codes=CANNOT),
    H.Case(id="capture-read-fifo", argv=("capture", "--read", "{fifo}", "--deadline", "1"), codes=CANNOT),
    # --- endless character devices: cut at the cap, never an unbounded read ----------------
    H.Case(id="lint-dev-zero", argv=("corefile", "lint", "/dev/zero"), codes=CANNOT,
           error_has="larger than", rss_mb=250),
    H.Case(id="lint-dev-urandom", argv=("corefile", "lint", "/dev/urandom"), codes=CANNOT, rss_mb=250),
    H.Case(id="trace-dev-zero", argv=("corefile", "trace", "x.", "-c", "/dev/zero"), codes=CANNOT,
           rss_mb=250),
    H.Case(id="resolvconf-file-dev-zero", argv=("resolvconf", "--file", "/dev/zero"), codes=OK_OR_PROBLEM,
           rss_mb=400),
    H.Case(id="resolvconf-hosts-dev-urandom", argv=("resolvconf", "--hosts", "/dev/urandom"),
           codes=OK_OR_PROBLEM, rss_mb=400),
    H.Case(id="resolvconf-nsswitch-dev-zero", argv=("resolvconf", "--nsswitch", "/dev/zero"),
           codes=OK_OR_PROBLEM, rss_mb=400),
    H.Case(id="capture-read-dev-zero", argv=("capture", "--read", "/dev/zero"), codes=CANNOT),
    H.Case(id="capture-read-dev-urandom", argv=("capture", "--read", "/dev/urandom", "--deadline", "2"),
           codes=ANY_CLEAN),
    H.Case(id="lint-dev-null", argv=("corefile", "lint", "/dev/null"), codes=ANY_CLEAN),
    H.Case(id="capture-read-dev-null", argv=("capture", "--read", "/dev/null"), codes=CANNOT),
    # --- not files at all ---------------------------------------------------------------
    H.Case(id="lint-directory", argv=("corefile", "lint", "{tmp}"), codes=CANNOT, error_has="directory"),
    H.Case(id="capture-read-directory", argv=("capture", "--read", "{tmp}"), codes=CANNOT),
    H.Case(id="resolvconf-file-directory", argv=("resolvconf", "--file", "{tmp}"), codes=CANNOT),
    H.Case(id="lint-missing", argv=("corefile", "lint", "{tmp}/nope"), codes=CANNOT),
    H.Case(id="lint-empty-path", argv=("corefile", "lint", ""), codes=CANNOT),
    H.Case(id="lint-path-under-file", argv=("corefile", "lint", "{tmp}/f/x"), codes=CANNOT, files={"f": "x"}),
    H.Case(id="lint-socket", argv=("corefile", "lint", "{socket}"), codes=CANNOT, error_has="socket"),
    H.Case(id="resolvconf-file-controls-in-path",
           argv=("resolvconf", "--file", "{tmp}/\x1b]0;pwned\x07\nverdict: ok"), codes=CANNOT),
    # --- pipes and stdin are legitimate (the kubectl plugin passes /dev/fd pipes) ----------
    H.Case(id="lint-dev-stdin-pipe", argv=("corefile", "lint", "/dev/stdin"), codes=frozenset({0}),
           stdin=KUBEADM.encode()),
    H.Case(id="lint-dash-stdin", argv=("corefile", "lint", "-"), codes=frozenset({0}), stdin=KUBEADM.encode()),
    H.Case(id="capture-read-dev-stdin-pipe", argv=("capture", "--read", "/dev/stdin"),
           codes=frozenset({0}), stdin=b"@answered"),
    H.Case(id="capture-read-dash", argv=("capture", "--read", "-"), codes=frozenset({0}), stdin=b"@answered"),
    H.Case(id="lint-stdin-not-utf8", argv=("corefile", "lint", "-"), codes=CANNOT, stdin=b"\xff\xfe. {\n}\n"),
    # --- hostile ConfigMaps ---------------------------------------------------------------
    H.Case(id="cm-deep-yaml-flow-60k", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.deep_yaml()}, error_has="nested deeper"),
    H.Case(id="cm-deep-yaml-block", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.deep_yaml_block()}),
    H.Case(id="cm-billion-laughs", argv=("corefile", "lint", "{tmp}/f", "--deadline", "2"), codes=CANNOT,
           files={"f": H.billion_laughs()}, error_has="alias"),
    H.Case(id="cm-billion-laughs-trace", argv=("corefile", "trace", "x.", "-c", "{tmp}/f"),
           codes=CANNOT, files={"f": H.billion_laughs()}),
    H.Case(id="cm-merge-key-bomb", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.merge_key_bomb()}),
    H.Case(id="cm-alias-flood", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "apiVersion: v1\nkind: List\na: &a x\nitems: [" + ",".join(["*a"] * 20000) + "]\n"}),
    H.Case(id="cm-deep-json-arrays", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.deep_json()}),
    H.Case(id="cm-deep-json-objects", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.deep_json_objects()}),
    H.Case(id="cm-list-50k-corefiles-json", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.configmap_list_json(50_000)}, rss_mb=400, error_has="more than 256 Corefiles"),
    H.Case(id="cm-list-200k-corefiles-json-over-cap", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.configmap_list_json(200_000)}, rss_mb=100, error_has="larger than"),
    H.Case(id="cm-list-80k-empty-json", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.configmap_list_json(80_000, corefile=None)}, rss_mb=300, error_has="no Corefile"),
    H.Case(id="cm-list-yaml-over-node-budget", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.configmap_list_yaml(20_000)}, rss_mb=250),
    H.Case(id="cm-over-size-cap", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "# " + "x" * (5 << 20) + "\n"}, rss_mb=100, error_has="larger than"),
    H.Case(id="corefile-given-300-times", argv=("corefile", "lint", *["{tmp}/f"] * 300), codes=CANNOT,
           files={"f": ". {\n}\n"}, error_has="in all the inputs"),
    H.Case(id="cm-python-tag", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "apiVersion: v1\nkind: ConfigMap\ndata:\n  Corefile: !!python/object/apply:os.system [id]\n"}),
    H.Case(id="cm-unhashable-key", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "apiVersion: v1\nkind: ConfigMap\ndata:\n  ? [a, b]\n  : x\n"}),
    H.Case(id="cm-recursive-alias", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "apiVersion: v1\nkind: List\nitems: &a [*a]\n"}),
    H.Case(id="cm-huge-int-json", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": '{"kind":"ConfigMap","data":{"Corefile":". {}"},"x":' + "1" * 100_000 + "}"}),
    H.Case(id="cm-huge-int-yaml", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": "apiVersion: v1\nkind: ConfigMap\nx: " + "1" * 100_000 + "\ndata:\n  Corefile: '. {}'\n"}),
    H.Case(id="cm-items-not-list", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": '{"kind":"List","items":{"a":1}}'}),
    H.Case(id="cm-data-not-map", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "apiVersion: v1\nkind: ConfigMap\ndata: [1, 2]\n"}),
    H.Case(id="cm-many-documents", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": "---\napiVersion: v1\nkind: ConfigMap\n" * 30_000}, rss_mb=300),
    H.Case(id="corefile-4mib-of-blocks-over-cap", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": H.huge_corefile(110_000)}, rss_mb=100, error_has="larger than"),
    H.Case(id="cm-nul-bytes", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": "apiVersion: v1\nkind: ConfigMap\ndata:\n  Corefile: \"\\0. {\\n}\"\n\0\0"}),
    # --- hostile Corefiles ------------------------------------------------------------------
    H.Case(id="corefile-not-utf8", argv=("corefile", "lint", "{tmp}/f"), codes=CANNOT,
           files={"f": b"\xff\xfe\x00. {\n}\n"}),
    H.Case(id="corefile-20k-blocks", argv=("corefile", "lint", "{tmp}/f"), codes=OK_OR_PROBLEM,
           files={"f": H.huge_corefile(20_000)}, rss_mb=400, deadline=10.0),
    # parsing and linting have no wait to slice: the deadline is held by SIGALRM (signals.compute_deadline)
    H.Case(id="corefile-60k-blocks-deadline-1", argv=("corefile", "lint", "{tmp}/f", "--deadline", "1"),
           codes=CANNOT, files={"f": H.huge_corefile(60_000)}, rss_mb=400, error_has="--deadline reached"),
    H.Case(id="corefile-60k-blocks-trace-deadline-1",
           argv=("corefile", "trace", "a.example.", "-c", "{tmp}/f", "--deadline", "1"),
           codes=CANNOT, files={"f": H.huge_corefile(60_000)}, rss_mb=400, error_has="--deadline reached"),
    H.Case(id="corefile-unicode-digit-port", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": ":\u00b9 {\n forward . 1.2.3.4:\u00b2\n}\n"}),
    H.Case(id="corefile-unicode-digit-trace", argv=("corefile", "trace", "a.example.", "-c", "{tmp}/f"),
           codes=ANY_CLEAN, files={"f": ". {\n forward . 1.2.3.4:\u00b2 [::1]:\u0663\n}\n"}),
    H.Case(id="corefile-deep-braces", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": ". {\n" + "x {\n" * 50_000 + "}\n" * 50_001}),
    H.Case(id="corefile-long-line", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": ". {\n forward . " + "10.0.0.1 " * 100_000 + "\n}\n"}, rss_mb=400),
    H.Case(id="corefile-env-placeholders", argv=("corefile", "lint", "{tmp}/f", "--env", "A={$A}{$A}{$A}"),
           codes=ANY_CLEAN, files={"f": ". {\n forward . {$A}{$A}{$A}{$A}\n}\n"}),
    H.Case(id="corefile-import-glob", argv=("corefile", "lint", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": ". {\n import /dev/zero\n import /proc/*/environ\n import {fifo}\n}\n"}),
    # --- hostile pcaps ------------------------------------------------------------------------
    H.Case(id="pcap-empty", argv=("capture", "--read", "{tmp}/f"), codes=CANNOT, files={"f": b""}),
    H.Case(id="pcap-truncated-header", argv=("capture", "--read", "{tmp}/f"), codes=CANNOT,
           files={"f": H.pcap_header()[:10]}),
    H.Case(id="pcap-record-claims-4gb", argv=("capture", "--read", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": H.pcap_huge_record_claim()}),
    H.Case(id="pcapng-block-claims-4gb", argv=("capture", "--read", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": H.pcapng_huge_block()}),
    H.Case(id="pcap-unknown-linktype", argv=("capture", "--read", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": H.pcap_header(linktype=0xFFFF) + b"\x01\x00\x00\x00" * 4}),
    H.Case(id="pcap-header-then-garbage", argv=("capture", "--read", "{tmp}/f"), codes=ANY_CLEAN,
           files={"f": H.pcap_header() + os.urandom(1 << 20)}),
    H.Case(id="pcap-wrong-magic-text", argv=("capture", "--read", "{tmp}/f"), codes=CANNOT,
           files={"f": KUBEADM}),
    # --- hostile config files ----------------------------------------------------------------
    H.Case(id="resolvconf-100k-nameservers", argv=("resolvconf", "--file", "{tmp}/f", "--name", "a.b"),
           codes=OK_OR_PROBLEM, files={"f": "nameserver 10.0.0.1\n" * 100_000}),
    H.Case(id="resolvconf-long-search", argv=("resolvconf", "--file", "{tmp}/f", "--name", "a"),
           codes=OK_OR_PROBLEM, files={"f": "search " + " ".join(f"d{i}.example" for i in range(50_000)) + "\n"}),
    H.Case(id="resolvconf-controls", argv=("resolvconf", "--file", "{tmp}/f"), codes=OK_OR_PROBLEM,
           files={"f": "nameserver 10.0.0.1\x1b]0;pwned\x07\nsearch a\rverdict: ok\n"}),
    H.Case(id="hosts-1m-lines", argv=("resolvconf", "--hosts", "{tmp}/f", "--name", "h1"),
           codes=OK_OR_PROBLEM, files={"f": "".join(f"10.0.{i >> 8 & 255}.{i & 255} h{i}\n" for i in range(300_000))},
           rss_mb=400),
    H.Case(id="nsswitch-binary", argv=("resolvconf", "--nsswitch", "{tmp}/f"), codes=OK_OR_PROBLEM,
           files={"f": os.urandom(4096)}),
    H.Case(id="nsswitch-huge-line", argv=("resolvconf", "--nsswitch", "{tmp}/f"), codes=OK_OR_PROBLEM,
           files={"f": "hosts: " + "files [NOTFOUND=return] " * 20_000 + "\n"}),
]


@pytest.fixture
def hostile_tmp(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    import socket

    sock_path = tmp_path / "sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    try:
        yield tmp_path, fifo, sock_path
    finally:
        srv.close()


def _materialise(case: H.Case, tmp: Path, fifo: Path, sock: Path) -> tuple[list[str], bytes | None]:
    for name, content in case.files.items():
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        data = data.replace(b"{fifo}", str(fifo).encode())
        (tmp / name).write_bytes(data)
    argv = [a.replace("{tmp}", str(tmp)).replace("{fifo}", str(fifo)).replace("{socket}", str(sock))
            for a in case.argv]
    stdin = case.stdin
    if stdin == b"@answered":
        stdin = H.answered_pcap(tmp / "answered.pcap", 200).read_bytes()
    return argv, stdin


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, hostile_tmp):
    tmp, fifo, sock = hostile_tmp
    argv, stdin = _materialise(case, tmp, fifo, sock)
    out = H.run_cli(argv, stdin=stdin, env=case.env, timeout=120)
    H.check(out, codes=set(case.codes), rss_mb=case.rss_mb, deadline=case.deadline,
            error_has=case.error_has)
    # Whatever the input, the error line never carries a raw control character.
    assert "\x1b" not in out.stderr and "\x07" not in out.stderr


def test_pipe_that_never_ends_is_bounded_by_the_deadline(tmp_path):
    """stdin held open by a writer that never writes: the read ends at --deadline."""
    r, w = os.pipe()
    try:
        out = H.run_cli(["corefile", "lint", "-", "--deadline", "1"], stdin=r, timeout=30)
    finally:
        os.close(r)
        os.close(w)
    H.check(out, codes={3}, deadline=1.0, error_has="within the deadline")


def test_slow_pipe_within_the_deadline_is_read_whole(tmp_path):
    """A FIFO whose writer comes late but in time (the kubectl plugin's process
    substitution while kubectl still talks to the API server) is read, not refused."""
    fifo = tmp_path / "cm"
    os.mkfifo(fifo)

    def writer():
        time.sleep(0.5)
        with open(fifo, "w") as fh:
            fh.write(KUBEADM[:40])
            fh.flush()
            time.sleep(0.3)
            fh.write(KUBEADM[40:])

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    out = H.run_cli(["corefile", "lint", str(fifo), "--deadline", "5"], timeout=30)
    t.join(timeout=5)
    H.check(out, codes={0})
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_fifo_pcap_stalled_after_the_header_is_bounded(tmp_path):
    """A pcap FIFO whose writer sends the header and then stalls: the deadline ends it."""
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    done = threading.Event()

    def writer():
        with open(fifo, "wb") as fh:
            fh.write(H.pcap_header())
            fh.flush()
            done.wait(20)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        out = H.run_cli(["capture", "--read", str(fifo), "--deadline", "1.5"], timeout=30)
    finally:
        done.set()
        t.join(timeout=5)
    H.check(out, codes={0, 1, 3, 5}, deadline=1.5)


def test_every_benchmark_fixture_states_a_time_and_a_memory_bound():
    """scripts/benchmarks/hostile_inputs.py (issue 23 deliver 3): each fixture has both."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "hostile_inputs.py"
    spec = importlib.util.spec_from_file_location("hostile_inputs_bench", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names = [f[0] for f in mod.FIXTURES]
    assert len(names) == len(set(names)) and len(names) >= 26
    for name, argv, _content, wall, rss in mod.FIXTURES:
        assert isinstance(wall, (int, float)) and 0 < wall <= 60, name
        assert isinstance(rss, (int, float)) and 0 < rss <= 1024, name
        assert argv, name
