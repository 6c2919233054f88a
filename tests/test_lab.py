"""Self-tests of the network-namespace lab (tests/lab). Marked `lab`: need root."""
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab

NL = "169.254.25.10"


def dig(lab, ns, server, name, *opts, timeout=10):
    p = lab.exec(ns, "dig", "+time=1", "+tries=1", "@" + server, name, *opts, timeout=timeout)
    return p.stdout


def short(lab, ns, server, name, *opts):
    return dig(lab, ns, server, name, "+short", *opts).split()


def status(out):
    for line in out.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return "TIMEOUT" if "timed out" in out or "no servers could be reached" in out else out


# ---------------------------------------------------------------- baseline (seed incident)
def test_stale_answer_through_nodelocal(lab):
    assert short(lab, "pod", NL, "api.corp.example") == ["192.168.50.77"]


def test_correct_answer_from_upstream(lab):
    assert short(lab, "pod", "192.168.60.53", "api.corp.example") == ["192.168.50.20"]


def test_legacy_soa_is_old(lab):
    out = dig(lab, "pod", "192.168.50.53", "corp.example", "SOA", "+short")
    assert "2017010101" in out


def test_search_walk_finds_backend(lab):
    p = lab.exec("pod", "getent", "ahosts", "backend")
    assert p.returncode == 0 and "192.168.50.20" in p.stdout
    assert "backend.wxwork.svc.alpha.pm.k8s" in p.stdout


def test_pod_resolv_conf(lab):
    out = lab.exec("pod", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 169.254.25.10" in out and "ndots:5" in out


def test_http_backend(lab):
    p = lab.exec("pod", "curl", "-sS", "-m3", "http://192.168.50.20/")
    assert p.returncode == 0 and "podtriage lab backend" in p.stdout


def test_port81_closed(lab):
    p = lab.exec("pod", "curl", "-sS", "-m3", "http://192.168.50.20:81/")
    assert p.returncode == 7   # connection refused (RST)


def test_ping_dead_address_host_unreachable(lab):
    t = time.monotonic()
    p = lab.exec("pod", "ping", "-n", "-c1", "-W5", "192.168.50.77", timeout=15)
    assert "From 10.244.1.1" in p.stdout and "Destination Host Unreachable" in p.stdout
    assert time.monotonic() - t > 2.0   # only after the node's ARP gives up


def test_big_rrset_truncates_over_udp(lab):
    out = dig(lab, "pod", "192.168.60.53", "big.corp.example", "+ignore", "+bufsize=512")
    assert " tc" in out.split("flags:")[1].split(";")[0]
    assert len(short(lab, "pod", "192.168.60.53", "big.corp.example", "+tcp")) == 40


def test_nodelocal_uses_tcp_upstream(lab):
    # NodeLocal's forward to the kube-dns Service arrives at the CoreDNS pod DNATed by
    # kube-proxy and masqueraded (the node's address is outside the cluster CIDR) to the node's
    # address on the pod's link.
    cap = subprocess.Popen(["ip", "netns", "exec", lab.ns("coredns"), "timeout", "5", "tcpdump",
                            "-nli", "eth0", "-c", "1", "port", "53", "and", "src", "10.244.0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.0)
        short(lab, "pod", NL, "x%d.corp.example" % time.monotonic_ns())
        out, _ = cap.communicate(timeout=10)
    finally:
        cap.kill()
    assert "10.244.0.3.53: Flags" in out   # a TCP segment, not UDP


# ---------------------------------------------------------------- fault switches
def test_stop_start_nodelocal(clean_lab):
    lab = clean_lab
    lab.stop("nodelocal")
    assert status(dig(lab, "pod", NL, "api.corp.example")) != "NOERROR"
    lab.start("nodelocal")
    assert short(lab, "pod", NL, "api.corp.example") == ["192.168.50.77"]


def test_stop_legacy_gives_servfail_via_path(clean_lab):
    lab = clean_lab
    lab.stop("legacy")
    assert status(dig(lab, "pod", "192.168.50.53", "api.corp.example")) == "TIMEOUT"
    assert status(dig(lab, "pod", NL, "nxa.corp.example", timeout=20)) != "NOERROR"


def test_stop_app(clean_lab):
    lab = clean_lab
    lab.stop("app")
    assert lab.exec("pod", "curl", "-sS", "-m3", "http://192.168.50.20/").returncode == 7


def test_block_tcp53_at_nodelocal(clean_lab):
    lab = clean_lab
    lab.block_tcp53("nodelocal")
    assert status(dig(lab, "pod", NL, "api.corp.example", "+tcp")) == "TIMEOUT"
    assert short(lab, "pod", NL, "api.corp.example") == ["192.168.50.77"]


def test_block_tcp53_at_coredns_breaks_nodelocal(clean_lab):
    lab = clean_lab
    lab.block_tcp53("coredns")
    assert status(dig(lab, "pod", "10.233.0.3", "api.corp.example", "+tcp")) == "TIMEOUT"
    assert status(dig(lab, "pod", "10.233.0.3", "api.corp.example")) == "NOERROR"   # UDP ok
    out = lab.exec("pod", "dig", "+time=4", "+tries=1", "@" + NL, "new%d.corp.example"
                   % time.monotonic_ns(), timeout=15).stdout
    assert status(out) in ("SERVFAIL", "TIMEOUT")




def test_reject_udp53_sends_port_unreachable(clean_lab):
    lab = clean_lab
    lab.reject_udp53("coredns")
    cap = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "timeout", "4", "tcpdump",
                            "-nli", "eth0", "-c", "1", "icmp"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.0)
        dig(lab, "pod", "10.233.0.3", "api.corp.example")
        out, _ = cap.communicate(timeout=10)
    finally:
        cap.kill()
    assert "udp port 53 unreachable" in out


def test_drop_udp53(clean_lab):
    lab = clean_lab
    lab.drop_udp53("nodelocal")
    assert status(dig(lab, "pod", NL, "api.corp.example")) == "TIMEOUT"
    assert short(lab, "pod", NL, "api.corp.example", "+tcp") == ["192.168.50.77"]


def test_drop_aaaa(clean_lab):
    lab = clean_lab
    lab.drop_aaaa("upstream")
    up = "192.168.60.53"
    assert status(dig(lab, "pod", up, "v6.corp.example", "AAAA")) == "TIMEOUT"
    assert status(dig(lab, "pod", up, "a-much-longer-label.v6.corp.example", "AAAA")) == "TIMEOUT"
    assert short(lab, "pod", up, "v6.corp.example", "A") == ["192.168.50.20"]
    assert short(lab, "pod", up, "v6.corp.example", "AAAA", "+tcp") == ["fd00:50::20"]


@pytest.mark.parametrize("server,rcode", [
    ("legacy", "NXDOMAIN"), ("legacy", "REFUSED"), ("legacy", "SERVFAIL"),
    ("upstream", "NXDOMAIN"), ("upstream", "REFUSED"), ("upstream", "SERVFAIL"),
    ("nodelocal", "NXDOMAIN"), ("nodelocal", "REFUSED"), ("nodelocal", "SERVFAIL"),
    ("coredns", "NXDOMAIN"), ("coredns", "REFUSED"), ("coredns", "SERVFAIL"),
])
def test_force_rcode(clean_lab, server, rcode):
    from tests.lab import SERVERS
    lab = clean_lab
    lab.force_rcode("api.corp.example", rcode, server=server)
    addr = SERVERS[server][1]
    assert status(dig(lab, "pod", addr, "api.corp.example", timeout=15)) == rcode
    if server == "legacy":
        assert short(lab, "pod", addr, "www.corp.example") == ["192.168.50.77"]


def test_force_rcode_refuses_what_it_cannot_make(clean_lab):
    from tests.lab import LabError
    with pytest.raises(LabError):
        clean_lab.force_rcode("api.corp.example", "NOTIMP", server="coredns")
    with pytest.raises(LabError):
        clean_lab.force_rcode("api.corp.example", "NXDOMAIN", server="app")


def test_app_down(clean_lab):
    lab = clean_lab
    lab.app_down()
    assert lab.exec("pod", "curl", "-sS", "-m2", "http://192.168.50.20/").returncode != 0
    assert short(lab, "pod", "192.168.60.53", "api.corp.example") == ["192.168.50.20"]
    p = lab.exec("pod", "ping", "-n", "-c1", "-W5", "192.168.50.20", timeout=15)
    assert "Destination Host Unreachable" in p.stdout


def test_reject_admin(clean_lab):
    lab = clean_lab
    lab.reject_admin("192.168.50.20")
    p = lab.exec("pod", "ping", "-n", "-c1", "-W3", "192.168.50.20", timeout=15)
    assert "Packet filtered" in p.stdout or "Communication administratively prohibited" in p.stdout


def test_clear_faults_restores(clean_lab):
    lab = clean_lab
    lab.drop_udp53("nodelocal")
    lab.stop("app")
    lab.app_down()
    lab.force_rcode("api.corp.example", "NXDOMAIN", server="legacy")
    lab.clear_faults()
    assert short(lab, "pod", NL, "api.corp.example") == ["192.168.50.77"]
    assert lab.exec("pod", "curl", "-sS", "-m3", "http://192.168.50.20/").returncode == 0


def test_up_is_idempotent(lab):
    t = time.monotonic()
    lab.up()
    assert lab.is_up() and time.monotonic() - t < 5


def test_second_lab_coexists_and_down_cleans(lab):
    from tests.lab import Lab
    other = Lab(lab.prefix + "b")
    try:
        other.up()
        assert short(other, "pod", NL, "api.corp.example") == ["192.168.50.77"]
        assert lab.is_up()
    finally:
        other.down()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in names.split() if n.startswith(other.prefix + "-")]
    assert not other.rundir.exists()
    # no process of it is left (servers, CoreDNS, node-cache, the control plane, kube-proxy,
    # the kubelet stand-in all name the run dir on their command lines), no file outside it
    from pathlib import Path
    mark = (str(other.rundir) + "/").encode()
    left = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and mark in (d / "cmdline").read_bytes().replace(b"\0", b" "):
                left.append(d.name)
        except OSError:
            pass
    assert not left, left
    assert not list(Path("/etc/netns").glob(other.prefix + "-*"))
    assert lab.is_up()
