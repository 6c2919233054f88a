"""The client's resolver library (toolkit/capture/libraries.py) and the rules that say what
it does with what the capture saw (library_rules.py). The real clients (glibc, static musl,
Go) are read in tests/integration/test_capture_libraries.py; here: this process, a /proc
tree laid out as an Alpine pod's, and the rules on analyzer input."""

from __future__ import annotations

import os
import platform

import pytest

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.dnswire import parse_dns
from toolkit.capture.libraries import Library, ResolverLibrary, read_library, version_tuple
from toolkit.capture.records import CaptureMode, CaptureResult, ProcessInfo
from toolkit.capture.report import capture_report

GLIBC = ResolverLibrary(kind=Library.GLIBC, version="2.36", how="maps")
MUSL_OLD = ResolverLibrary(kind=Library.MUSL, version="1.2.3-r4", how="maps")
MUSL_NEW = ResolverLibrary(kind=Library.MUSL, version="1.2.4-r2", how="maps")
MUSL_STATIC = ResolverLibrary(kind=Library.MUSL, detail="static", how="symbols")
GO = ResolverLibrary(kind=Library.GO, version="go1.22.1", detail="netdns=go", how="buildinfo")


def test_this_process_is_glibc_with_its_version():
    lib = read_library(os.getpid())
    assert lib is not None and lib.kind == Library.GLIBC and lib.how == "maps"
    assert lib.version == platform.libc_ver()[1]


def test_a_gone_process_is_unknown():
    assert read_library(2**22 + 7) is None


def _alpine_proc(tmp_path, musl_version: str | None) -> str:
    """/proc/41 of a dynamically linked program in an Alpine container: ld-musl mapped, the
    apk database under its root (the layout of Alpine 3.17's /lib/apk/db/installed)."""
    p = tmp_path / "proc" / "41"
    (p / "root" / "lib" / "apk" / "db").mkdir(parents=True)
    (p / "maps").write_text(
        "55d0c000-55d0d000 r--p 00000000 00:2b 123 /usr/bin/curl\n"
        "7f10a000-7f10b000 r--p 00000000 00:2b 456 /lib/ld-musl-x86_64.so.1\n"
        "7f10b000-7f10c000 rw-p 00000000 00:00 0 \n7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n")
    if musl_version:
        (p / "root" / "lib" / "apk" / "db" / "installed").write_text(
            f"C:Q1abc=\nP:busybox\nV:1.36.1-r5\n\nC:Q1def=\nP:musl\nV:{musl_version}\nA:x86_64\n")
    return str(tmp_path / "proc")


@pytest.mark.parametrize("version", ["1.2.3-r4", None])
def test_musl_from_maps_and_the_apk_database(tmp_path, version):
    lib = read_library(41, proc=_alpine_proc(tmp_path, version))
    assert lib == ResolverLibrary(kind=Library.MUSL, version=version, how="maps")


def test_version_tuple():
    assert version_tuple("1.2.4-r2") == (1, 2, 4) and version_tuple("go1.22") is None and version_tuple(None) is None
    assert GO.label() == "go go1.22.1 (netdns=go)" and MUSL_STATIC.label() == "musl (static)"


def _analyze(events, lib: ResolverLibrary | None, pid: int = 41):
    an = Analyzer(AnalyzerConfig(), who=lambda ip, port, tr, first, last: ProcessInfo(pid, "app", library=lib))
    for ts, msg, src, dst, sport, dport in events:
        an.feed(parse_dns(msg, ts, src, dst, sport, dport, "udp"))
    an.finish()
    s = an.summary()
    res = CaptureResult(mode=CaptureMode.READ, source="t", packets=len(events), summary=s, decoder={},
                        linktypes=("raw-ip",), file_format=None, stopped_by=None, elapsed_s=0.0, notes=(),
                        both_directions=None)
    return capture_report(res), s


C, R = "10.0.0.5", "10.0.0.10"
TC = [(100.0, S.dns_query(7, "big.example", 16), C, R, 40000, 53),
      (100.001, S.dns_response(7, "big.example", 16, tc=True), R, C, 53, 40000)]


@pytest.mark.parametrize("lib, flagged", [(MUSL_OLD, True), (MUSL_STATIC, True), (MUSL_NEW, False),
                                          (GLIBC, False), (None, False)])
def test_truncated_answer_to_old_musl(lib, flagged):
    rep, s = _analyze(TC, lib)
    assert s.tc_not_followed == 1
    f = [f for f in rep.findings if f.code == "capture-library-no-tcp-fallback"]
    assert bool(f) == flagged
    if flagged:
        assert "musl before 1.2.4 never retries over TCP" in f[0].summary
        assert f[0].evidence[0].startswith(f"{lib.label()}: app[41]")


def _walk(port: int, t: float) -> list:
    ev = []
    for i, cand in enumerate(("api.default.svc.cluster.local", "api.svc.cluster.local", "api.cluster.local", "api")):
        for j, qt in enumerate((1, 28)):
            txid = 100 + 2 * i + j
            ev.append((t, S.dns_query(txid, cand, qt), C, R, port + i, 53))
            last = cand == "api"
            ev.append((t + 0.001, S.dns_response(txid, cand, qt, rcode=0 if last else 3,
                                                 addresses=(("10.1.1.1",) if qt == 1 else ()) if last else ()),
                       R, C, 53, port + i))
        t += 0.002
    return ev


def test_search_walks_by_library():
    rep, s = _analyze(_walk(41000, 100.0), GLIBC)
    assert s.lookups_with_search == 1
    f = next(f for f in rep.findings if f.code == "capture-library-search-walks")
    assert f.evidence[0].startswith("glibc 2.36 (app[41]): 1 lookup(s) walked the search list, 8.0 queries each; "
                                    "a socket per search candidate")
    rep, _ = _analyze(_walk(41000, 100.0), None)
    assert "capture-library-search-walks" not in {f.code for f in rep.findings}


def test_five_second_signature_with_each_librarys_fix():
    ev = [(100.0, S.dns_query(1, "api.example", 1), C, R, 42000, 53),
          (100.0001, S.dns_query(2, "api.example", 28), C, R, 42000, 53),
          (100.001, S.dns_response(1, "api.example", 1, addresses=("10.1.1.1",)), R, C, 53, 42000),
          (105.0002, S.dns_query(2, "api.example", 28), C, R, 42000, 53),
          (105.001, S.dns_response(2, "api.example", 28), R, C, 53, 42000)]
    for lib, text in ((GLIBC, "single-request-reopen"), (MUSL_OLD, "ignores single-request-reopen"),
                      (GO, "does not apply")):
        rep, s = _analyze(ev, lib)
        assert s.signature_hits == 1
        f = next(f for f in rep.findings if f.code == "capture-library-parallel-queries")
        assert text in f.evidence[0] and f.evidence[0].startswith(lib.label())


def test_the_same_question_truncated_again_counts_each_answer():
    """musl asks again on each call and never over TCP: three calls, three TC answers, none
    followed (seen in the lab with Debian's musl 1.2.3: the count said 1 of 3)."""
    ev = []
    for i in range(3):
        ev += [(100.0 + i, S.dns_query(7 + i, "big.example", 1), C, R, 40000 + i, 53),
               (100.001 + i, S.dns_response(7 + i, "big.example", 1, tc=True), R, C, 53, 40000 + i)]
    rep, s = _analyze(ev, MUSL_OLD)
    assert (s.tc_responses, s.tc_not_followed, s.tc_followed_by_tcp) == (3, 3, 0)
    assert next(f for f in rep.findings if f.code == "capture-tc-not-followed").summary.startswith("3 truncated")
