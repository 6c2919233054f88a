"""`resolvconf --probe-wildcards`'s rule (toolkit/sysinfo/resolvconf/wildcards.py) and the
`--name` shape finding, from recorded probe results: no network."""

from __future__ import annotations

from toolkit.model import Severity, Verdict
from toolkit.sysinfo.resolvconf import parse_resolv_conf, search_candidates
from toolkit.sysinfo.resolvconf.wildcards import DomainProbe, cluster_domain, wildcard_findings
from toolkit.triage.resolvconf import analyze_resolvconf

CONF = ("nameserver 169.254.25.10\nsearch wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s dc1.example.net\n"
        "options ndots:5\n")


def probe(domain, *addrs):
    qname = f"podtriage-wildcard-probe-0123abcd.{domain}." if domain != "." else "podtriage-wildcard-probe-0123abcd."
    return DomainProbe(domain=domain, qname=qname, server="169.254.25.10",
                       outcome="NOERROR" if addrs else "NXDOMAIN", addresses=tuple(addrs))


def conf():
    return parse_resolv_conf(CONF, "/etc/resolv.conf")


def test_no_domain_answers_any_name_no_finding():
    c = conf()
    assert wildcard_findings(c, [probe(d) for d in c.search]) == []


def test_a_node_domain_wildcard_is_named_with_the_kubelet_remedy_and_the_name_s_candidate():
    c = conf()
    probes = [probe(d) for d in c.search[:3]] + [probe("dc1.example.net", "192.168.50.77"), probe(".")]
    (f,) = wildcard_findings(c, probes, search_candidates("www.example.org", c))
    assert f.code == "search-domain-wildcard" and f.severity is Severity.WARNING and f.verdict is Verdict.BAD_ANSWER
    assert f.data["kind"] == "wildcard" and f.data["domain"] == "dc1.example.net"
    assert "node's" in f.summary and "www.example.org.dc1.example.net." in f.summary
    assert f.remedy.index("trailing dot") < f.remedy.index("ndots") < f.remedy.index("--resolv-conf")
    assert f.evidence[0].startswith("wildcard probe (a random name nobody created, under dc1.example.net)")


def test_a_namespace_wildcard_has_no_kubelet_step():
    c = conf()
    (f,) = wildcard_findings(c, [probe("wxwork.svc.alpha.pm.k8s", "192.168.50.77")])
    assert "--resolv-conf" not in f.remedy and "remove the wildcard *.wxwork.svc.alpha.pm.k8s" in f.remedy


def test_a_nameserver_rewriting_nxdomain_is_one_finding():
    c = conf()
    probes = [probe("wxwork.svc.alpha.pm.k8s"), probe("dc1.example.net", "10.9.9.9"), probe(".", "10.9.9.9")]
    (f,) = wildcard_findings(c, probes)
    assert f.data["kind"] == "nxdomain-rewrite" and "rewrites NXDOMAIN" in f.summary
    assert len(f.evidence) == 3 and "rewriting NXDOMAIN" in f.remedy


def test_cluster_domain_from_the_kubelet_s_search_list():
    assert cluster_domain(conf().search) == "alpha.pm.k8s"
    assert cluster_domain(("corp.example", "example.net")) is None


def test_resolvconf_name_points_the_shape_out_without_a_packet(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text(CONF)
    r = analyze_resolvconf(str(p), str(tmp_path / "hosts"), str(tmp_path / "nsswitch.conf"), "www.example.org")
    f = next(f for f in r.findings if f.code == "name-searched-first")
    assert f.data["searched_before"][0] == "www.example.org.wxwork.svc.alpha.pm.k8s."
    assert f.data["node_domains"] == ["dc1.example.net"] and "wildcard" in f.summary
    assert "--probe-wildcards" in f.remedy
    assert "wildcard_probes" not in r.data and "no query was sent" in r.notes[0]


def test_probe_names_are_labelled_random_and_never_unencodable():
    from toolkit.dns.wildcard import PROBE_LABEL, probe_name

    a, b = probe_name("dc1.example.net."), probe_name("dc1.example.net.")
    assert a != b and a.startswith(PROBE_LABEL + "-") and a.endswith(".dc1.example.net.")
    assert probe_name(".") .startswith(PROBE_LABEL + "-") and probe_name(".").count(".") == 1
    # a label over 63 octets, or a surrogate from a hostile file: no name, no query, no crash
    assert probe_name("x" * 64 + ".net.") is None and probe_name("\udcff.net.") is None
    # a long domain still gets a (shorter) random label that fits 255 octets
    long = ("a" * 60 + ".") * 4
    name = probe_name(long)
    assert name is not None and not name.startswith(PROBE_LABEL) and len(name) <= 254
