"""Role detection and its overrides, and the smaller Corefile semantics of issue 12."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app
from toolkit.corefile.bridge import corefile_evidence
from toolkit.corefile.lint import lint
from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.roles import CorefileRole, RoleSource, assemble, parse_role_overrides
from toolkit.corefile.source import load_all, load_corefiles
from toolkit.corefile.trace import trace_name
from toolkit.errors import UsageError
from toolkit.model import Severity

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corefiles"
runner = CliRunner()

DOUBLE_FALL = """\
.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        fallthrough example.local
    }
    forward . 192.0.2.53
    cache 30
    loop
}
"""


def test_last_fallthrough_wins_in_trace_and_lint_flags_the_duplicate():
    cf = parse_corefile(DOUBLE_FALL)
    # CoreDNS keeps `fallthrough example.local`: it answers the PTR itself (NXDOMAIN when it
    # has no such address), never asking 192.0.2.53.
    r = trace_name("4.3.2.1.in-addr.arpa", [cf])
    assert r.hops[0].plugin == "kubernetes" and r.final is None
    r = trace_name("svc.example.local", [cf])
    assert r.hops[0].plugin == "forward"
    dup = [f for f in lint([cf]).findings if f.code == "duplicate-fallthrough"]
    assert len(dup) == 1 and dup[0].severity is Severity.WARNING
    assert dup[0].data["lines"] == [5, 6] and dup[0].data["kept"] == ["example.local"]
    assert "fallthrough in-addr.arpa ip6.arpa example.local" in dup[0].remedy


def test_forward_for_another_zone_never_matches():
    cf = parse_corefile("bar.com:53 {\n    errors\n    cache 30\n    loop\n"
                        "    forward foo.com 1.1.1.1\n}\n")
    f = [f for f in lint([cf]).findings if f.code == "forward-zone-unreachable"]
    assert len(f) == 1 and f[0].severity is Severity.WARNING and f[0].data["line"] == 5
    r = trace_name("www.bar.com", [cf])
    assert r.hops[0].plugin is None and "SERVFAIL" in r.outcome
    ok = parse_corefile(".:53 {\n errors\n cache\n loop\n forward foo.com 1.1.1.1\n"
                        " forward . 8.8.8.8\n}\nfoo.com {\n errors\n cache\n loop\n"
                        " forward foo.com 1.1.1.1\n}\n")
    assert "forward-zone-unreachable" not in {f.code for f in lint([ok]).findings}


def test_chaos_only_block_needs_no_errors():
    cf = parse_corefile(".:53 {\n errors\n cache 30\n loop\n forward . 192.0.2.1\n}\n"
                        "hostname.bind:53 {\n chaos\n}\n")
    codes = {f.code for f in lint([cf]).findings}
    assert not {"missing-errors", "missing-cache", "zone-shadow"} & codes


def test_roles_from_content_beat_the_configmap_name(tmp_path):
    # A cache in front named "coredns-cache" (name hint says cluster DNS) is still a node cache:
    # it binds a link-local address.
    p = tmp_path / "cm.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns-cache\n"
                 "  namespace: kube-system\ndata:\n  Corefile: |\n    .:53 {\n"
                 "        bind 169.254.99.1\n        errors\n        cache 30\n        loop\n"
                 "        forward . 10.96.0.10\n    }\n")
    (r,) = assemble(load_corefiles(str(p))).roles
    assert r.role is CorefileRole.NODE_CACHE and r.source is RoleSource.CONTENT
    assert "169.254.99.1" in r.evidence[0]


def test_name_is_only_a_hint():
    cf = parse_corefile(".:53 {\n errors\n forward . 192.0.2.1\n}\n", configmap="kube-system/nodelocaldns",
                        key="Corefile")
    (r,) = assemble([cf]).roles
    assert r.role is CorefileRole.NODE_CACHE and r.source is RoleSource.HINT
    plain = parse_corefile(".:53 {\n errors\n forward . 192.0.2.1\n}\n")
    assert assemble([plain]).roles[0].role is CorefileRole.SERVER


def test_role_overrides_parse_and_apply():
    assert parse_role_overrides(["a=b=cluster-dns"]) == [("a=b", CorefileRole.CLUSTER_DNS)]
    for bad in ("cluster-dns", "x=proxy", "=node-cache"):
        with pytest.raises(UsageError):
            parse_role_overrides([bad])
    cfs = load_all([str(CORPUS / "kubespray/nodelocaldns-custom.yaml")])
    with pytest.raises(UsageError, match="no given Corefile matches"):
        assemble(cfs, overrides=parse_role_overrides(["nope=node-cache"]))
    # Say the second key is the cluster DNS: the trace then continues into it.
    asm = assemble(cfs, overrides=parse_role_overrides(["nodelocaldns:Corefile-second=cluster-dns"]))
    assert [r.role.value for r in asm.roles] == ["node-cache", "cluster-dns"]
    assert asm.roles[1].source is RoleSource.FLAG


def test_cli_role_flag_and_errors():
    nl = str(CORPUS / "kubespray/nodelocaldns.yaml")
    res = runner.invoke(app, ["corefile", "lint", nl, "--role", "nodelocaldns.yaml=server",
                              "-o", "json"])
    doc = json.loads(res.stdout)
    assert doc["corefiles"][0]["role"] == "server" and doc["corefiles"][0]["role_source"] == "flag"
    # Taken for a plain server, its cluster-zone blocks are stub forwards again.
    # (a warning: the config loads, the exit stays 0)
    assert res.exit_code == 0 and "stub-forward" in {f["code"] for f in doc["findings"]}
    res = runner.invoke(app, ["corefile", "trace", "example.com", "-c", nl, "--role",
                              "nodelocaldns=bogus"])
    assert res.exit_code == 2 and "unknown role" in res.output
    res = runner.invoke(app, ["corefile", "lint", nl, "--role", "other.yaml=node-cache"])
    assert res.exit_code == 2 and "no given Corefile matches" in res.output
    res = runner.invoke(app, ["corefile", "trace", "kubernetes.default.svc.cluster.local", "-c", nl,
                              "-c", str(CORPUS / "kubespray/coredns.yaml")])
    assert res.exit_code == 0
    assert "Corefiles (what each was taken for)" in res.output and "node-cache" in res.output


def test_custom_configmap_alone():
    cfs = load_all([str(CORPUS / "aks/coredns-custom.yaml")])
    asm = assemble(cfs)
    assert {r.role for r in asm.roles} == {CorefileRole.CUSTOM_IMPORTS}
    res = runner.invoke(app, ["corefile", "lint", str(CORPUS / "aks/coredns-custom-empty.yaml")])
    assert res.exit_code == 3 and "no Corefile in it" in res.output


def test_override_fragment_typo_is_flagged(tmp_path):
    p = tmp_path / "custom.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns-custom\n"
                 "  namespace: kube-system\ndata:\n  log.override: |\n    lgo\n")
    main = str(CORPUS / "aks/coredns.yaml")
    for files in ([str(p)], [main, str(p)]):
        res = lint(load_all(files))
        unk = [f for f in res.findings if f.code == "unknown-plugin"]
        assert len(unk) == 1 and unk[0].data["nearest"] == "log", files


def test_diagnose_bridge_reports_roles_and_takes_overrides():
    files = [str(CORPUS / "kubespray/nodelocaldns.yaml"), str(CORPUS / "kubespray/coredns.yaml")]
    notes: list[str] = []
    findings, hops, refs, behind = corefile_evidence("kubernetes.default.svc.cluster.local",
                                                     files, notes)
    assert not findings and len(hops) == 2
    assert [b.address for b in behind] == ["10.233.0.3"]
    assert any("taken for node-cache" in n for n in notes)
    assert any("taken for cluster-dns" in n for n in notes)
    notes = []
    corefile_evidence("x.cluster.local", files, notes, ["coredns=server"])
    assert any("taken for server (flag" in n for n in notes)


def test_check_compares_no_node_cache_cluster_forward_with_the_default_upstream():
    """`corefile check` compares a stub's target with the default upstream; a node cache's
    cluster-zone forward to CoreDNS is no stub (it would differ by design). No traffic here."""
    from toolkit.corefile.check import upstreams

    cfs = load_all([str(CORPUS / "kubespray/nodelocaldns-custom.yaml"),
                    str(CORPUS / "kubespray/coredns-custom.yaml")])
    asm = assemble(cfs)
    ups, _ = upstreams(asm.corefiles, asm)
    stubs = {(u.zone, u.target) for u in ups if u.stub}
    assert ("cluster.local.", "10.233.0.3") not in stubs
    assert ("in-addr.arpa.", "10.233.0.3") not in stubs
    assert ("example.com.", "1.1.1.1") in stubs


def test_import_star_does_not_swallow_other_corefiles():
    main = parse_corefile(".:53 {\n errors\n import *\n forward . 192.0.2.1\n}\n",
                          configmap="kube-system/coredns", key="Corefile")
    other = parse_corefile(".:53 {\n bind 169.254.20.10\n forward . 10.96.0.10\n}\n",
                           configmap="kube-system/nodelocaldns", key="Corefile")
    asm = assemble([main, other])
    assert len(asm.corefiles) == 2
    assert [r.role for r in asm.roles] == [CorefileRole.CLUSTER_DNS, CorefileRole.NODE_CACHE]
    assert asm.roles[0].source is RoleSource.HINT  # only the ConfigMap name says so


def test_diagnose_has_the_corefile_role_option():
    import toolkit.cli.diagnose  # noqa: F401  (registers the command)

    res = runner.invoke(app, ["diagnose", "--help"])
    assert res.exit_code == 0 and "--corefile-role" in res.output


def test_check_does_not_ask_a_zone_no_dns_question_can_hold(tmp_path):
    """A zone that is no DNS name (a label over 63 octets once IDNA-encoded, control
    characters) is noted as not probed, never an internal error (exit 4). No traffic here."""
    from tests.hostile import corefile_with_controls
    from toolkit.corefile.check import upstreams

    p = tmp_path / "Corefile"
    p.write_text(corefile_with_controls())
    ups, notes = upstreams(load_all([str(p)]))
    assert "10.9.9.9" not in {u.target for u in ups} and "10.0.0.1" in {u.target for u in ups}
    assert any("10.9.9.9 not probed" in n and "cannot be asked" in n for n in notes), notes
