"""Issue 26 item 1, the plugin's side: the DNS Service's live endpoints read from its
EndpointSlices (toolkit.kube.endpoints) and passed as ``--dns-endpoints`` to conntrack and
diagnose in pod, node/NAME and nodes modes; a read RBAC refuses is a note, never a failed
run. With the fake kubectl (tests/kube/fakekubectl.py); against the lab's real
kube-apiserver and EndpointSlice controller: tests/integration/test_kubectl_plugin.py."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_kube_cli import Fake, pod
from toolkit.kube.argv import Usage
from toolkit.kube.endpoints import DnsService, live_addresses, takes_flag, with_endpoints


def ep(addr, ready=True, serving=None, terminating=None):
    cond = {k: v for k, v in (("ready", ready), ("serving", serving),
                              ("terminating", terminating)) if v is not None}
    return {"addresses": [addr], "conditions": cond, "nodeName": "node",
            "targetRef": {"kind": "Pod", "namespace": "kube-system", "name": "coredns-" + addr}}


def eps(*endpoints, family="IPv4"):
    """An EndpointSlice as the EndpointSlice controller writes it for kube-dns."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": family,
            "metadata": {"name": "kube-dns-x", "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "kube-dns"}},
            "endpoints": list(endpoints),
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}


def test_live_means_ready_or_still_serving():
    slices = {"items": [
        eps(ep("10.244.0.3"), ep("10.244.1.4", ready=False),            # not ready: dead
            ep("10.244.2.5", ready=False, serving=True, terminating=True),  # still answers
            ep("10.244.3.6", ready=None),                                # unknown: ready
            ep("10.244.0.3")),                                           # once
        eps(ep("fd00:244::3"), family="IPv6"),
        {"addressType": "FQDN", "endpoints": [ep("dns.example.")]},
        eps({"addresses": ["not-an-ip"], "conditions": {"ready": True}}),
    ]}
    assert live_addresses(slices) == ["10.244.0.3", "10.244.2.5", "10.244.3.6", "fd00:244::3"]
    assert live_addresses({"items": [None, {"endpoints": None}]}) == []


@pytest.mark.parametrize("args,takes", [
    (("conntrack",), True), (("conntrack", "-o", "json"), True), (("diagnose", "x"), True),
    (("conntrack", "race-test", "10.0.0.1"), False), (("resolvconf",), False),
    (("diagnose", "x", "--dns-endpoints", "1.1.1.1"), False),
    (("conntrack", "--dns-endpoints=1.1.1.1"), False), ((), False),
])
def test_which_commands_take_the_flag(args, takes):
    assert takes_flag(args) is takes


def test_flag_goes_right_after_the_command_word():
    assert with_endpoints(("diagnose", "x", "-o", "json"), ["10.244.0.3", "10.244.1.4"]) == (
        "diagnose", "--dns-endpoints", "10.244.0.3,10.244.1.4", "x", "-o", "json")
    assert with_endpoints(("conntrack",), []) == ("conntrack",)


@pytest.mark.parametrize("text,ns,name", [(None, "kube-system", "kube-dns"),
                                          ("openshift-dns/dns-default", "openshift-dns",
                                           "dns-default")])
def test_dns_service(text, ns, name):
    s = DnsService.parse(text)
    assert (s.namespace, s.name) == (ns, name)


@pytest.mark.parametrize("text", ["kube-dns", "/x", "a/", "A/b", "a/b/c", "a/-b", "a\x1b/b"])
def test_dns_service_refuses_what_is_not_a_name(text):
    with pytest.raises(Usage):
        DnsService.parse(text)


# ---------------------------------------------------------------- through the plugin
SLICES = [eps(ep("10.244.0.3"), ep("10.244.0.9", ready=False))]


def _debug_cmd(fake):
    (debug,) = [c for c in fake.calls() if c and c[0] == "debug"]
    return debug[debug.index("--") + 1:]


def _slice_reads(fake):
    return [c for c in fake.calls() if c[:2] == ["get", "endpointslices"]]


def test_pod_mode_passes_the_live_endpoints(tmp_path):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log='{"verdict": "ok"}\n', endpointslices=SLICES)
    p = fake.run("web-1", "-n", "shop", "--", "diagnose", "www.example.org")
    assert p.returncode == 0, p.stderr
    assert _debug_cmd(fake) == ["podtriage", "diagnose", "--dns-endpoints", "10.244.0.3",
                                "www.example.org"]
    (read,) = _slice_reads(fake)
    assert read[read.index("-n") + 1] == "kube-system"
    assert "kubernetes.io/service-name=kube-dns" in read


def test_another_dns_service_and_a_command_without_the_flag(tmp_path):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log='{"verdict": "ok"}\n', endpointslices=SLICES)
    p = fake.run("web-1", "--dns-service", "openshift-dns/dns-default", "--", "conntrack")
    assert p.returncode == 0, p.stderr
    (read,) = _slice_reads(fake)
    assert "openshift-dns" in read and "kubernetes.io/service-name=dns-default" in read
    fake.log.unlink()
    p = fake.run("web-1", "--", "resolvconf")
    assert p.returncode == 0 and _slice_reads(fake) == []       # nothing to pass: nothing read
    assert _debug_cmd(fake) == ["podtriage", "resolvconf"]
    p = fake.run("web-1", "--dns-service", "kube-dns", "--", "conntrack")
    assert p.returncode == 2 and "NAMESPACE/NAME" in p.stderr


def test_rbac_refusal_is_a_note_and_the_run_goes_on(tmp_path):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log='{"verdict": "ok"}\n', endpointslices_forbidden=True)
    p = fake.run("web-1", "--", "diagnose", "www.example.org")
    assert p.returncode == 0, p.stderr
    assert "cannot read the EndpointSlices of Service kube-system/kube-dns" in p.stderr
    assert "forbidden" in p.stderr and "without --dns-endpoints" in p.stderr
    assert _debug_cmd(fake) == ["podtriage", "diagnose", "www.example.org"]


@pytest.mark.parametrize("slices,says", [([], "no EndpointSlice for Service kube-system/kube-dns"),
                                         ([eps(ep("10.244.0.3", ready=False))],
                                          "has no ready endpoint")])
def test_no_live_endpoint_is_said(tmp_path, slices, says):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log='{"verdict": "ok"}\n', endpointslices=slices)
    p = fake.run("web-1", "--", "conntrack")
    assert p.returncode == 0 and says in p.stderr, p.stderr
    assert _debug_cmd(fake) == ["podtriage", "conntrack"]


def test_the_users_own_flag_wins_and_dry_run_reads_nothing(tmp_path):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log='{"verdict": "ok"}\n', endpointslices=SLICES)
    p = fake.run("web-1", "--", "conntrack", "--dns-endpoints", "10.244.9.9")
    assert p.returncode == 0 and _slice_reads(fake) == []
    assert _debug_cmd(fake) == ["podtriage", "conntrack", "--dns-endpoints", "10.244.9.9"]
    p = fake.run("web-1", "--dry-run", "--", "conntrack")
    assert p.returncode == 0 and _slice_reads(fake) == []


def test_runbook_gets_no_flag(tmp_path):
    fake = Fake(tmp_path)
    fake.set(pod=pod(), log=json.dumps({"verdict": "ok"}) + "\n", endpointslices=SLICES)
    p = fake.run("web-1", "--runbook", "dns-slow")
    assert p.returncode == 0, p.stderr
    assert _slice_reads(fake) == [] and "--dns-endpoints" not in _debug_cmd(fake)


def test_completion_offers_the_known_dns_services(tmp_path):
    from tests.unit.test_kube_cli import COMPLETE

    fake = Fake(tmp_path)
    p = fake.run("web-1", "--dns-service", "", program=COMPLETE)
    assert p.stdout.split()[:2] == ["kube-system/kube-dns", "openshift-dns/dns-default"], p.stdout
