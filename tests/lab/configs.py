"""Config files of the podtriage test lab's servers (stdlib only): templates for the retired
server (unbound) and the upstream (bind9), and the run copies of the lab's Corefiles (the real
CoreDNS and node-cache read tests/lab/corefiles/*.yaml, with what the lab adds)."""
import re
from pathlib import Path

COREFILES = Path(__file__).resolve().parent / "corefiles"
NODELOCAL_IP = "169.254.25.10"


def corefile_of(path) -> str:
    """The Corefile of a ConfigMap YAML file (its ``Corefile: |`` block, dedented)."""
    lines = Path(path).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Corefile: |":
            out, indent = [], None
            for raw in lines[i + 1:]:
                if not raw.strip():
                    out.append("")
                    continue
                ind = len(raw) - len(raw.lstrip())
                if indent is None:
                    indent = ind
                if ind < indent:
                    break
                out.append(raw[indent:])
            return "\n".join(out).rstrip() + "\n"
    raise ValueError("%s: no `Corefile: |` block" % path)


def _rcode_blocks(forced: dict, bind: str | None) -> str:
    """One server block per forced name: CoreDNS's template plugin answers the rcode for the
    name and everything below it (a more specific zone wins over the rest of the Corefile)."""
    out = []
    for name, rc in sorted(forced.items()):
        out.append("%s:53 {\n    errors\n%s    template ANY ANY {\n        rcode %s\n    }\n}\n"
                   % (name, "    bind %s\n" % bind if bind else "", rc))
    return "".join(out)


def coredns_run_corefile(kubeconfig: str, forced: dict) -> str:
    """The CoreDNS ConfigMap's Corefile as the lab runs it: plus ``kubeconfig`` in the
    kubernetes block (in a cluster CoreDNS takes its in-cluster service-account token; here the
    token is in a kubeconfig), plus a template block per forced rcode."""
    text = corefile_of(COREFILES / "coredns-configmap.yaml")
    text, n = re.subn(r"(?m)^(\s*)(kubernetes [^\n]*\{)$",
                      lambda m: "%s%s\n%s    kubeconfig %s" % (m.group(1), m.group(2), m.group(1),
                                                            kubeconfig), text, count=1)
    if n != 1:
        raise ValueError("coredns-configmap.yaml: no kubernetes block")
    return _rcode_blocks(forced, None) + text


def nodelocal_run_corefile(binds: list[str], forced: dict | None = None,
                           stale: dict | None = None) -> str:
    """The NodeLocal ConfigMap's Corefile as node-cache runs it: ``bind`` on every address of
    ``binds`` (the IPv6 lab adds fd00:25::10), a template block per forced rcode, and for a
    stale cache (ClusterLab.stale_cache) a hosts block that answers an old address."""
    text = corefile_of(COREFILES / "nodelocaldns-configmap.yaml")
    bind = " ".join(binds)
    text = text.replace("bind %s\n" % NODELOCAL_IP, "bind %s\n" % bind)
    extra = _rcode_blocks(forced or {}, bind)
    for name, addr in sorted((stale or {}).items()):
        extra += ("%s:53 {\n    errors\n    bind %s\n    hosts {\n        %s %s\n    }\n}\n"
                  % (name, bind, addr, name))
    return extra + text

# --- the long-retired server: unbound in <p>-legacy -------------------------
LEGACY_UNBOUND = """\
server:
    verbosity: 1
    username: ""
    chroot: ""
    directory: "{rundir}"
    pidfile: "{rundir}/legacy.pid"
    logfile: "{rundir}/legacy.log"
    use-syslog: no
    do-daemonize: yes
    interface: 192.168.50.53
    port: 53
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 0.0.0.0/0 allow
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    num-threads: 1
    outgoing-range: 64
    num-queries-per-thread: 32
    local-zone: "corp.example." static
    local-data: "corp.example. 86400 IN SOA ns1.corp.example. hostmaster.corp.example. 2017010101 3600 600 604800 86400"
    local-data: "corp.example. 86400 IN NS ns1.corp.example."
    local-data: "ns1.corp.example. 86400 IN A 192.168.50.53"
{legacy_data}
{extra_server}
remote-control:
    control-enable: no
{extra_forward}"""

LEGACY_RECORDS = [
    ("api.corp.example.", "A", "192.168.50.77"),
    ("www.corp.example.", "A", "192.168.50.77"),
    # only reached through Lab.tcp53_to_legacy (nobody forwards example.org here)
    ("www.example.org.", "A", "192.168.50.77"),
    # the seed's stale answer over IPv6: an address on the node subnet where nobody lives
    ("api6.corp.example.", "AAAA", "fd00:50::77"),
]

# --- the correct upstream: bind9 in <p>-upstream -----------------------------
UPSTREAM_NAMED = """\
options {{
    directory "{rundir}/named";
    pid-file "{rundir}/upstream.pid";
    session-keyfile "{rundir}/named/session.key";
    managed-keys-directory "{rundir}/named";
    listen-on port 53 {{ 192.168.60.53; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
    server-id "upstream";
    minimal-responses yes;
}};
controls {{ }};
logging {{
    channel lab {{ file "{rundir}/upstream.log"; severity info; print-time yes; }};
    category default {{ lab; }};
    category queries {{ lab; }};
}};
zone "corp.example" {{ type primary; file "{rundir}/named/corp.example.zone"; }};
zone "example.org" {{ type primary; file "{rundir}/named/example.org.zone"; }};
// The lab's stand-in for the rest of the DNS tree: a name no zone serves gets an
// authoritative NXDOMAIN, as from a real recursive upstream, instead of REFUSED.
zone "." {{ type primary; file "{rundir}/named/root.zone"; }};
{extra}
"""

CORP_ZONE_HEAD = """\
$TTL 300
@   IN SOA ns1.corp.example. hostmaster.corp.example. 2026110101 3600 600 604800 60
@   IN NS  ns1.corp.example.
ns1 IN A   192.168.60.53
"""

CORP_RECORDS = (
    [("api.corp.example.", "A", "192.168.50.20"),
     ("www.corp.example.", "A", "192.168.50.20"),
     ("v6.corp.example.", "A", "192.168.50.20"),
     ("v6.corp.example.", "AAAA", "fd00:50::20"),
     ("api6.corp.example.", "AAAA", "fd00:50::20")]
    + [("big.corp.example.", "A", "192.168.61.%d" % i) for i in range(1, 41)]
)

EXAMPLE_ORG_ZONE = """\
$TTL 300
@   IN SOA ns1.example.org. hostmaster.example.org. 2026110101 3600 600 604800 60
@   IN NS  ns1.example.org.
ns1 IN A   192.168.60.53
www IN A   192.168.50.20
; a name with a dozen A records (more than diagnose probes): one live, eleven on the
; node subnet where nobody lives
dozen IN A 192.168.50.20
dozen IN A 192.168.50.101
dozen IN A 192.168.50.102
dozen IN A 192.168.50.103
dozen IN A 192.168.50.104
dozen IN A 192.168.50.105
dozen IN A 192.168.50.106
dozen IN A 192.168.50.107
dozen IN A 192.168.50.108
dozen IN A 192.168.50.109
dozen IN A 192.168.50.110
dozen IN A 192.168.50.111
; IPv6 (Lab(ipv6=True) gives these addresses a home; in the IPv4 lab they are unroutable)
dual     IN A    192.168.50.20
dual     IN AAAA fd00:50::20
app6     IN AAAA fd00:50::20
v6only   IN AAAA fd00:70::30
; A works, AAAA points at the node subnet where nobody lives (the node's ND fails)
halfdead IN A    192.168.50.20
halfdead IN AAAA fd00:50::77
"""

ROOT_ZONE = """\
$TTL 300
@   IN SOA ns1.upstream.lab. hostmaster.upstream.lab. 2026110101 3600 600 604800 60
@   IN NS  ns1.upstream.lab.
ns1.upstream.lab. IN A 192.168.60.53
"""

RESOLV_CONF = """\
nameserver 169.254.25.10
search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s
options ndots:5
"""

# The dual-stack pod of Lab(ipv6=True): NodeLocal DNSCache on its IPv6 address.
RESOLV_CONF_V6 = """\
nameserver fd00:25::10
search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s
options ndots:5
"""

# NodeLocal on its link-local address, reached through the pod's eth0 (glibc takes %scope).
RESOLV_CONF_V6_LL = """\
nameserver fe80::25:10%eth0
search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s
options ndots:5
"""

HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
"""
