"""Every distribution config of tests/data/corefiles: the roles podtriage takes the files for,
the lint findings (stock configs lint clean, exit 0), and the path of an in-cluster name, a
reverse name and an external name, as CoreDNS would route them.

What CoreDNS does, and where it says so:
- the server block is the longest zone match on the port the query arrives on
  (core/dnsserver/server.go ServeDNS walks the name's labels from the full name down to '.');
- a block's plugins run in plugin.cfg order; ``kubernetes`` answers its zones and passes a name
  on only when ``fallthrough`` (the last such line, plugin/kubernetes/setup.go) covers it, so a
  reverse name in the stock configs reaches ``forward`` unless it is a Service/Pod address;
- ``forward FROM`` only takes names under FROM (plugin/forward/forward.go ``match``);
- NodeLocal DNSCache forwards the cluster domain and the reverse zones to the cluster DNS and
  the rest to the node's resolv.conf (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app
from toolkit.corefile.lint import lint
from toolkit.corefile.roles import assemble
from toolkit.corefile.source import load_all
from toolkit.corefile.trace import trace_name
from toolkit.corefile.trace_report import trace_report
from toolkit.model import Severity, Verdict

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corefiles"
REVERSE = "10.0.96.10.in-addr.arpa"
EXTERNAL = "example.com"
runner = CliRunner()

# A hop: (role, block, deciding plugin). A trace: (hops, final upstreams or None, exit code).
NC, CD = "node-cache", "cluster-dns"
K8S = [(CD, ".:53", "kubernetes")]
RESOLV = ("/etc/resolv.conf",)


@dataclass(frozen=True)
class Case:
    files: tuple[str, ...]
    roles: tuple[str, ...]
    warnings: tuple[str, ...]          # non-info lint codes, sorted
    internal: tuple                    # trace of kubernetes.default.svc.<domain>
    reverse: tuple
    external: tuple
    domain: str = "cluster.local"
    stock: bool = True
    info: tuple[str, ...] = field(default=())  # info codes that must be there
    critical: bool = False  # CoreDNS refuses it (lint exits 1)


CASES: dict[str, Case] = {
    "kubeadm": Case(
        ("kubeadm/coredns.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0)),
    "kubeadm-custom-domain": Case(
        ("kubeadm/coredns-custom-domain.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0), domain="k8s.example.internal", stock=False),
    "k8s-addon-coredns": Case(
        ("k8s-addons/coredns.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0)),
    # Historical: `proxy` left CoreDNS in 1.6; it forwarded like `forward` before that.
    "k8s-addon-coredns-2017": Case(
        ("k8s-addons/coredns-2017.yaml",), (CD,), ("removed-plugin",),
        (K8S, None, 0), ([(CD, ".:53", "proxy")], RESOLV, 0),
        ([(CD, ".:53", "proxy")], RESOLV, 0), stock=False, critical=True),
    # As shipped, every __PILLAR__ placeholder in: named, never "masked or a hostname".
    "k8s-addon-nodelocaldns": Case(
        ("k8s-addons/nodelocaldns.yaml",), (NC,), (),
        ([(NC, "__PILLAR__DNS__DOMAIN__:53", "forward")], ("__PILLAR__CLUSTER__DNS__",), 0),
        ([(NC, "in-addr.arpa:53", "forward")], ("__PILLAR__CLUSTER__DNS__",), 0),
        ([(NC, ".:53", "forward")], ("__PILLAR__UPSTREAM__SERVERS__",), 0),
        info=("pillar-placeholder",)),
    "k8s-addon-nodelocaldns+coredns": Case(
        ("k8s-addons/nodelocaldns-applied.yaml", "k8s-addons/coredns.yaml"), (NC, CD), (),
        ([(NC, "cluster.local:53", "forward")] + K8S, None, 0),
        ([(NC, "in-addr.arpa:53", "forward"), (CD, ".:53", "forward")], RESOLV, 0),
        ([(NC, ".:53", "forward")], ("__PILLAR__UPSTREAM__SERVERS__",), 0),
        info=("pillar-placeholder",)),
    "k8s-addon-nodelocaldns-2018+coredns": Case(
        ("k8s-addons/nodelocaldns-2018.yaml", "k8s-addons/coredns.yaml"), (NC, CD), (),
        ([(NC, "cluster.local:53", "forward")] + K8S, None, 0),
        ([(NC, "in-addr.arpa:53", "forward"), (CD, ".:53", "forward")], RESOLV, 0),
        ([(NC, ".:53", "forward")], RESOLV, 0)),
    "kubespray": Case(
        ("kubespray/nodelocaldns.yaml", "kubespray/coredns.yaml"), (NC, CD), (),
        ([(NC, "cluster.local:53", "forward")] + K8S, None, 0),
        ([(NC, "in-addr.arpa:53", "forward"), (CD, ".:53", "forward")], RESOLV, 0),
        ([(NC, ".:53", "forward")], RESOLV, 0)),
    # Customised: the secondary NodeLocal is a standby, the external zone goes straight to
    # 1.1.1.1 (a stub by design, flagged), and `fallthrough example.local` written after
    # `fallthrough in-addr.arpa ip6.arpa` wins: kubernetes answers the reverse name itself.
    "kubespray-custom": Case(
        ("kubespray/nodelocaldns-custom.yaml", "kubespray/coredns-custom.yaml"),
        (NC, "node-cache-secondary", CD),
        ("duplicate-fallthrough", "missing-loop", "stub-forward", "stub-forward", "stub-forward"),
        ([(NC, "cluster.local:53", "forward")] + K8S, None, 0),
        ([(NC, "in-addr.arpa:53", "forward"), (CD, ".:53", "kubernetes")], None, 0),
        ([(NC, "example.com example.io:1053", "forward")], ("1.1.1.1:53", "2.2.2.2:53"), 1),
        stock=False),
    "k3s": Case(
        ("k3s/coredns.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0), info=("unresolved-import",)),
    "rke2": Case(
        ("rke2/node-local-dns.yaml", "rke2/coredns.yaml"), (NC, CD), (),
        ([(NC, "cluster.local:53", "forward")] + K8S, None, 0),
        ([(NC, "in-addr.arpa:53", "forward"), (CD, ".:53", "forward")], RESOLV, 0),
        ([(NC, ".:53", "forward")], ("__PILLAR__UPSTREAM__SERVERS__",), 0)),
    "microk8s": Case(
        ("microk8s/coredns.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0)),
    "microk8s-fallback": Case(
        ("microk8s/coredns-fallback-upstreams.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], ("8.8.8.8:53", "8.8.4.4:53"), 0),
        ([(CD, ".:53", "forward")], ("8.8.8.8:53", "8.8.4.4:53"), 0)),
    "aks": Case(
        ("aks/coredns.yaml", "aks/coredns-custom-empty.yaml"), (CD, "custom-imports"), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0)),
    # The AKS docs' examples: test.server's block takes example.com (same upstream: no stub),
    # puglife.server is a stub (flagged), the overrides land inside `.:53`.
    "aks-custom": Case(
        ("aks/coredns.yaml", "aks/coredns-custom.yaml"), (CD,) + ("custom-imports",) * 4,
        ("forward-resolv-conf", "missing-cache", "missing-loop", "missing-loop", "stub-forward"),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, "example.com:53", "forward")], RESOLV, 0), stock=False),
    "eks": Case(
        ("eks/coredns.yaml",), (CD,), (),
        (K8S, None, 0), ([(CD, ".:53", "forward")], RESOLV, 0),
        ([(CD, ".:53", "forward")], RESOLV, 0)),
    # OpenShift listens on 5353 (the dns-default Service maps 53 to it).
    "openshift": Case(
        ("openshift/dns-default.yaml",), (CD,), (),
        ([(CD, ".:5353", "kubernetes")], None, 0), ([(CD, ".:5353", "forward")], RESOLV, 0),
        ([(CD, ".:5353", "forward")], RESOLV, 0)),
    "openshift-servers": Case(
        ("openshift/dns-default-servers.yaml",), (CD,), ("stub-forward",) * 6,
        ([(CD, ".:5353", "kubernetes")], None, 0), ([(CD, ".:5353", "forward")], RESOLV, 0),
        ([(CD, "bar.com:5353 example.com:5353", "forward")], ("3.3.3.3:53",), 1), stock=False),
    "openshift-dnsnameresolver": Case(
        ("openshift/dns-default-servers-dnsnameresolver.yaml",), (CD,), ("stub-forward",) * 3,
        ([(CD, ".:5353", "kubernetes")], None, 0), ([(CD, ".:5353", "forward")], RESOLV, 0),
        ([(CD, "bar.com:5353 example.com:5353", "forward")], ("3.3.3.3:53",), 1), stock=False),
}


def _paths(case: Case) -> list[str]:
    return [str(CORPUS / f) for f in case.files]


def test_every_corpus_file_is_in_a_case():
    used = {f for c in CASES.values() for f in c.files}
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.yaml")}
    assert on_disk == used


@pytest.mark.parametrize("key", sorted(CASES))
def test_roles_and_lint(key):
    case = CASES[key]
    cfs = load_all(_paths(case))
    asm = assemble(cfs)
    assert tuple(r.role.value for r in asm.roles) == case.roles
    res = lint(cfs, assembly=asm)
    assert tuple(sorted(f.code for f in res.findings if f.severity is not Severity.INFO)) \
        == case.warnings, [f.summary for f in res.findings if f.severity is not Severity.INFO]
    codes = {f.code for f in res.findings}
    assert set(case.info) <= codes
    # Never again: unknown OpenShift plugins, "masked or a hostname" placeholders, a
    # missing-errors warning on a chaos-only block.
    assert "unknown-plugin" not in codes
    assert not any("masked or a hostname" in f.summary for f in res.findings)
    if case.stock:
        assert not res.problem


@pytest.mark.parametrize("key", sorted(CASES))
def test_lint_exit_code_and_roles_in_json(key):
    case = CASES[key]
    res = runner.invoke(app, ["corefile", "lint", *_paths(case), "-o", "json"])
    # Only a critical finding (CoreDNS refuses the config) fails the lint; warnings are advice.
    assert res.exit_code == (1 if case.critical else 0), res.output
    doc = json.loads(res.stdout)
    assert [c["role"] for c in doc["corefiles"]] == list(case.roles)
    assert all(c["evidence"] for c in doc["corefiles"])
    assert [f["role"] for f in doc["files"]] == list(case.roles)


@pytest.mark.parametrize("key", sorted(CASES))
@pytest.mark.parametrize("which", ["internal", "reverse", "external"])
def test_traces(key, which):
    case = CASES[key]
    name = {"internal": f"kubernetes.default.svc.{case.domain}", "reverse": REVERSE,
            "external": EXTERNAL}[which]
    hops, final, code = getattr(case, which)
    r = trace_name(name, load_all(_paths(case)))
    assert [(h.role, h.block, h.plugin) for h in r.hops] == hops, r.outcome
    assert (r.final.targets if r.final else None) == final, r.outcome
    rep = trace_report(r)
    assert (0 if rep.verdict is Verdict.OK else 1) == code, [f.summary for f in rep.findings]


def test_stock_nodelocal_forwards_to_the_cluster_dns_are_no_stubs():
    """The issue's first case: the upstream NodeLocal manifest and kubespray's template."""
    for files in (["k8s-addons/nodelocaldns.yaml"], ["kubespray/nodelocaldns.yaml"],
                  ["rke2/node-local-dns.yaml"]):
        res = lint(load_all([str(CORPUS / f) for f in files]))
        assert "stub-forward" not in {f.code for f in res.findings}


def test_placeholders_say_what_fills_them():
    r = trace_name("kubernetes.default.svc.cluster.local",
                   load_all([str(CORPUS / "k8s-addons/nodelocaldns.yaml")]))
    assert r.final.kind == "placeholder"
    assert "node-cache" in r.final.note and "kube-dns-upstream" in r.final.note
    assert any("__PILLAR__DNS__DOMAIN__ taken to be cluster.local." in n for n in r.notes)
    res = lint(load_all([str(CORPUS / "k8s-addons/nodelocaldns.yaml")]))
    ph = next(f for f in res.findings if f.code == "pillar-placeholder")
    assert ph.severity is Severity.INFO
    assert "__PILLAR__UPSTREAM__SERVERS__ (the nameservers of the node's /etc/resolv.conf" \
        in ph.summary
    assert ph.data["placeholders"] == ["__PILLAR__CLUSTER__DNS__", "__PILLAR__DNS__DOMAIN__",
                                       "__PILLAR__DNS__SERVER__", "__PILLAR__LOCAL__DNS__",
                                       "__PILLAR__UPSTREAM__SERVERS__"]


def test_nodelocal_with_placeholder_binds_answers_its_nameserver():
    # bind __PILLAR__LOCAL__DNS__ says nothing about the address: the pod's 169.254.20.10 is
    # served (a placeholder bind must not turn into REFUSED).
    r = trace_name("example.com", load_all([str(CORPUS / "k8s-addons/nodelocaldns.yaml")]),
                   nameserver="169.254.20.10")
    assert r.hops and r.hops[0].block == ".:53" and not r.problems


def test_kubespray_secondary_is_never_the_coredns_service():
    cfs = load_all([str(CORPUS / "kubespray/nodelocaldns-custom.yaml")])
    r = trace_name("kubernetes.default.svc.cluster.local", cfs)
    assert [h.role for h in r.hops] == ["node-cache"]
    assert r.final.targets == ("10.233.0.3:53",) and r.final.kind == "ip"
    assert not r.problems
    asm = assemble(cfs)
    sec = asm.roles[1]
    assert sec.role.value == "node-cache-secondary"
    assert any("Corefile-second" in e for e in sec.evidence)


def test_aks_custom_imports_are_spliced_where_coredns_puts_them():
    cfs = load_all([str(CORPUS / "aks/coredns.yaml"), str(CORPUS / "aks/coredns-custom.yaml")])
    asm = assemble(cfs)
    (main,) = asm.corefiles
    root = next(b for b in main.blocks if b.label == ".:53")
    over = [(d.name, d.imported_from) for d in root.directives if d.imported_from]
    # *.override inside `.:53`, sorted like filepath.Glob
    assert over == [("log", "kube-system/coredns-custom:log.override"),
                    ("hosts", "kube-system/coredns-custom:test.override")]
    # *.server at top level, after the `.:53` block
    assert [(b.label, b.imported_from) for b in main.blocks[1:]] == [
        ("puglife.local:53", "kube-system/coredns-custom:puglife.server"),
        ("example.com:53", "kube-system/coredns-custom:test.server")]
    assert {r.imported_by for r in asm.roles[1:]} == {main.name}
    r = trace_name("example1.org", cfs)
    assert r.hops[0].plugin == "hosts" and "10.0.0.1" in r.outcome
    r = trace_name("db.puglife.local", cfs)
    assert r.final.targets == ("192.11.0.1:53",) and r.hops[0].stub_forward
    r = trace_name("www.example.com", cfs)  # the rewrite rule of test.server
    assert r.hops[0].name == "www.default.svc.cluster.local."


def test_openshift_managed_advice_is_info_and_chaos_block_is_quiet():
    res = lint(load_all([str(CORPUS / "openshift/dns-default.yaml")]))
    by_code = {f.code: f for f in res.findings}
    assert by_code["missing-loop"].severity is Severity.INFO
    assert "OpenShift DNS operator" in by_code["missing-loop"].remedy
    assert "missing-errors" not in by_code and "zone-shadow" not in by_code
    res = lint(load_all([str(CORPUS / "openshift/dns-default-servers-dnsnameresolver.yaml")]))
    # upstream CoreDNS refuses OpenShift's own plugin (the differential suite saw it refuse),
    # but the operator generated this Corefile and runs it on OpenShift's build: info, and
    # the lint of a healthy OpenShift cluster's ConfigMap is ok (exit 0), no unknown-plugin
    dist = [f for f in res.findings if f.code == "distribution-plugin"]
    assert "unknown-plugin" not in {f.code for f in res.findings}
    assert dist and all(f.severity is Severity.INFO for f in dist)
    assert "ocp_dnsnameresolver" in dist[0].summary and "OpenShift" in dist[0].summary
    assert "Unknown directive 'ocp_dnsnameresolver'" in dist[0].data["coredns_error"]
    assert not [f for f in res.findings if f.severity is Severity.CRITICAL]


def test_distribution_plugin_outside_its_operator_is_critical(tmp_path):
    # the same plugin in a Corefile nobody says runs on OpenShift's build: upstream CoreDNS
    # refuses to load it, so it is critical (lint's dns-error)
    p = tmp_path / "Corefile"
    p.write_text(".:53 {\n    errors\n    ocp_dnsnameresolver {\n        namespaces ns1\n    }\n"
                 "    cache 30\n    forward . /etc/resolv.conf\n    loop\n}\n")
    res = lint(load_all([str(p)]))
    dist = [f for f in res.findings if f.code == "distribution-plugin"]
    assert dist and dist[0].severity is Severity.CRITICAL and "refuses" in dist[0].summary
