"""trace_name: block selection, plugin decision, and the NodeLocal -> CoreDNS chain."""
import dataclasses

import pytest

from toolkit.corefile.parser import parse_corefile
from toolkit.corefile.source import load_all
from toolkit.corefile.plugins.forward import parse_target
from toolkit.corefile.trace import trace_name
from toolkit.corefile.trace_report import trace_report
from toolkit.model import Verdict
from toolkit.report.document import json_document

from tests.unit.test_corefile_parser import SEED_COREDNS, SEED_NODELOCAL, shared_dir


@pytest.fixture(scope="module")
def seed():
    return load_all([str(shared_dir() / SEED_NODELOCAL), str(shared_dir() / SEED_COREDNS)])


def test_seed_stub_zone_chain(seed):
    r = trace_name("api.xxx.xxx.xxx", seed)
    assert dataclasses.is_dataclass(r)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "x"  # type: ignore[misc]
    h1, h2 = r.hops
    assert "nodelocaldns" in h1.corefile and h1.block == ".:53" and h1.line == 39
    assert h1.plugin == "forward" and h1.next.target == "10.233.0.3:53"
    assert h1.next.transport == "tcp" and h1.next.kind == "corefile"
    assert "coredns:Corefile" in h2.corefile and h2.block == "xxx.xxx.xxx:53"
    assert h2.line == 21 and h2.file_line == 31 and h2.zones == ("xxx.xxx.xxx.",)
    assert h2.plugin == "forward" and h2.next.target == "xxx.xxx.xxx.xxx"
    assert h2.next.kind == "not-an-address" and "masked or a hostname" in h2.next.note
    assert h2.next.transport == "tcp"  # forward keeps the incoming transport
    assert h2.stub_forward
    rep = trace_report(r)
    assert rep.verdict is Verdict.DNS_ERROR
    assert "trace-stub-forward" in [f.code for f in rep.findings]
    doc = json_document(rep)
    assert doc["name"] == "api.xxx.xxx.xxx."
    assert set(doc["hops"][0]) >= {"corefile", "block", "line", "zones", "plugin", "next"}
    assert doc["hops"][1]["next"]["target"] == "xxx.xxx.xxx.xxx"


def test_seed_order_independent_and_service_ip(seed):
    r = trace_name("api.xxx.xxx.xxx", list(reversed(seed)))
    assert [h.block for h in r.hops] == [".:53", "xxx.xxx.xxx:53"]
    r = trace_name("api.xxx.xxx.xxx", seed, service_ip="10.233.0.3")
    assert [h.block for h in r.hops] == [".:53", "xxx.xxx.xxx:53"]
    assert not any("taken to be" in n for h in r.hops for n in h.notes)


def test_seed_cluster_names_and_default_route(seed):
    r = trace_name("kubernetes.default.svc.alpha.pm.k8s", seed)
    assert [h.block for h in r.hops] == ["alpha.pm.k8s:53", ".:53"]
    assert r.hops[-1].plugin == "kubernetes" and r.final is None
    assert trace_report(r).verdict is Verdict.OK
    r = trace_name("www.example.com", seed)
    assert r.hops[-1].plugin == "forward" and r.final.target == "/etc/resolv.conf"
    assert r.final.kind == "file"
    # reverse lookups of non-cluster IPs fall through kubernetes to forward
    r = trace_name("4.3.2.1.in-addr.arpa", seed)
    assert r.hops[0].block == "in-addr.arpa:53" and r.hops[1].plugin == "forward"


def test_rewrite_hosts_template_and_refused():
    cf = parse_corefile(""".:53 {
    forward . 8.8.8.8
    rewrite name old.example new.example
    hosts {
        10.1.1.1 new.example
        fallthrough
    }
}
t.example:53 {
    template IN A t.example {
        match "^www[.]"
        answer "{{ .Name }} 60 IN A 10.9.9.9"
        fallthrough
    }
    forward . tls://1.1.1.1 {
        tls_servername cloudflare-dns.com
    }
}
""")
    r = trace_name("old.example", [cf])
    assert r.hops[0].name == "new.example." and r.hops[0].plugin == "hosts"
    r = trace_name("www.t.example", [cf])
    assert r.hops[0].plugin == "template"
    r = trace_name("mail.t.example", [cf])
    assert r.hops[0].plugin == "forward" and r.final.transport == "tls"
    r = trace_name("x.example", [cf], port=5353)
    assert not r.hops and r.problems


def test_parse_target():
    assert parse_target("10.0.0.1").label == "10.0.0.1:53"
    assert parse_target("tls://9.9.9.9").port == 853
    assert parse_target("[2001:db8::1]:5353").port == 5353
    assert parse_target("xxx.xxx.xxx.xxx").kind == "not-an-address"
    assert parse_target("/etc/resolv.conf").kind == "file"
