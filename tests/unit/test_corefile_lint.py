"""Lint rules: the seed's findings, clean defaults, each rule on a small Corefile."""
from toolkit.corefile.lint import lint, lint_report
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.source import load_corefiles
from toolkit.model import Severity, Verdict
from toolkit.report.document import json_document

from tests.unit.test_corefile_parser import SEED_COREDNS, SEED_NODELOCAL, shared_dir

KUBEADM = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
"""

KUBESPRAY = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf {
      prefer_udp
      max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def codes(findings, severity=None):
    return [f.code for f in findings if severity is None or f.severity is severity]


def test_seed_lint_finds_double_loop_at_its_lines():
    [cf] = load_corefiles(str(shared_dir() / SEED_NODELOCAL))
    res = lint([cf])
    dup = [f for f in res.findings if f.code == "duplicate-plugin"]
    assert len(dup) == 1
    f = dup[0]
    # loop's setup returns plugin.ErrOnce: CoreDNS refuses the seed's NodeLocal Corefile.
    assert f.severity is Severity.CRITICAL and f.verdict is None
    assert "only be used once per Server Block" in f.data["coredns_error"]
    assert f.data["line"] == 32 and f.data["file_line"] == 41
    assert f.data["block"] == ["ip6.arpa."] and f.data["plugin"] == "loop"
    assert "line 32" in f.evidence[0] and "file line 41" in f.evidence[0]
    lines = (shared_dir() / SEED_NODELOCAL).read_text().splitlines()
    assert lines[40].strip() == "loop" and lines[39].strip() == "loop"
    assert codes(res.findings, Severity.CRITICAL) == ["duplicate-plugin"]
    assert codes(res.findings, Severity.WARNING) == []
    assert lint_report(res).verdict is Verdict.DNS_ERROR


def test_seed_coredns_stub_forward():
    [cf] = load_corefiles(str(shared_dir() / SEED_COREDNS))
    res = lint([cf])
    stub = [f for f in res.findings if f.code == "stub-forward"]
    assert len(stub) == 1
    assert stub[0].severity is Severity.WARNING and stub[0].verdict is None
    assert stub[0].data["line"] == 21 and stub[0].data["file_line"] == 31
    assert stub[0].data["targets"] == ["xxx.xxx.xxx.xxx"]
    assert stub[0].data["default_targets"] == ["/etc/resolv.conf"]
    assert "missing-loop" in codes(res.findings, Severity.WARNING)
    info = codes(res.findings, Severity.INFO)
    assert "forward-resolv-conf" in info and "forward-target-not-address" in info
    assert "plugin-order" in info
    # It loads: warnings are advice, the verdict stays ok (exit 0).
    report = lint_report(res)
    assert report.verdict is Verdict.OK and report.command == "corefile lint"


def test_defaults_lint_clean_of_warnings():
    for text in (KUBEADM, KUBESPRAY):
        res = lint([parse_corefile(text)])
        assert not [f for f in res.findings if f.severity is not Severity.INFO], res.findings
        assert lint_report(res).verdict is Verdict.OK


def test_rules_on_small_corefiles():
    text = """.:53 {
    errors
    forward . 8.8.8.8 {
        force_tcp
        prefer_udp
    }
    cache 30
    loop
    rewrite name foo.example bar.example
    kubernets cluster.local
}
.:53 {
    whoami
}
corp.example:53 {
    errors
    cache
    loop
    forward . 8.8.8.8
}
"""
    res = lint([parse_corefile(text)])
    c = codes(res.findings)
    assert "duplicate-server-block" in codes(res.findings, Severity.CRITICAL)
    assert "force-tcp-prefer-udp" in c
    unk = [f for f in res.findings if f.code == "unknown-plugin"][0]
    assert unk.data["nearest"] == "kubernetes" and unk.data["line"] == 10
    assert unk.severity is Severity.CRITICAL
    assert unk.data["coredns_error"] == "Corefile:10 - Error during parsing: Unknown directive 'kubernets'"
    order = [f for f in res.findings if f.code == "plugin-order"][0]
    assert ["forward", "rewrite"] in order.data["pairs"] and ["forward", "cache"] in order.data["pairs"]
    assert "missing-errors" in c  # the whoami block
    assert "stub-forward" not in c  # corp.example forwards to the same upstream


def test_missing_cache_loop_and_resolv_conf_without_loop():
    res = lint([parse_corefile(". {\n  errors\n  forward . /etc/resolv.conf\n}\n")])
    w = codes(res.findings, Severity.WARNING)
    assert {"missing-cache", "missing-loop", "forward-resolv-conf"} <= set(w)


def test_shadowing_kubernetes_zone_and_bind_separation():
    text = """.:53 {
    errors
    cache
    loop
    kubernetes cluster.local
    forward . 8.8.8.8
}
svc.cluster.local:53 {
    errors
    cache
    whoami
}
"""
    res = lint([parse_corefile(text)])
    sh = [f for f in res.findings if f.code == "zone-shadow"]
    assert sh and sh[0].severity is Severity.WARNING
    # same zone+port on different bind addresses is allowed
    text2 = ".:53 {\n errors\n bind 10.0.0.1\n whoami\n}\n.:53 {\n errors\n bind 10.0.0.2\n whoami\n}\n"
    assert "duplicate-server-block" not in codes(lint([parse_corefile(text2)]).findings)


def test_corpus_lints_without_exception():
    from toolkit.corefile.parser import CorefileError

    for f in sorted((shared_dir() / "corpus" / "coredns-corefiles").glob("*.Corefile")):
        try:
            cfs = load_corefiles(str(f))
        except CorefileError:
            continue
        json_document(lint_report(lint(cfs)))
