"""Config file templates for the podtriage test lab servers (stdlib only)."""

# --- NodeLocal DNSCache stand-in: unbound in <p>-node -----------------------
# Small caches with short TTL caps so tests can flip faults quickly.
NODELOCAL_UNBOUND = """\
server:
    verbosity: 1
    username: ""
    chroot: ""
    directory: "{rundir}"
    pidfile: "{rundir}/nodelocal.pid"
    logfile: "{rundir}/nodelocal.log"
    use-syslog: no
    do-daemonize: yes
    interface: 169.254.25.10
    port: 53
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    # like CoreDNS/NodeLocal force_tcp: every upstream query goes over TCP
    tcp-upstream: yes
    access-control: 0.0.0.0/0 refuse
    access-control: 10.244.0.0/16 allow
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    harden-referral-path: no
    cache-max-ttl: 5
    cache-min-ttl: 0
    cache-max-negative-ttl: 1
    infra-host-ttl: 1
    infra-keep-probing: yes
    msg-cache-size: 1m
    rrset-cache-size: 1m
    num-threads: 1
    outgoing-range: 64
    num-queries-per-thread: 32
    serve-expired: no
{extra_server}
remote-control:
    control-enable: no

forward-zone:
    name: "alpha.pm.k8s."
    forward-addr: 10.233.0.3
    forward-tcp-upstream: yes

forward-zone:
    name: "."
    forward-addr: 10.233.0.3
    forward-tcp-upstream: yes
{extra_forward}"""

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

# --- CoreDNS stand-in: dnsmasq in <p>-coredns --------------------------------
COREDNS_DNSMASQ = """\
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=10.233.0.3
port=53
user=root
group=root
pid-file={rundir}/coredns.pid
log-queries
log-facility={rundir}/coredns.log
cache-size=0
local-ttl=5
local=/alpha.pm.k8s/
host-record=kubernetes.default.svc.alpha.pm.k8s,10.233.0.1
host-record=kube-dns.kube-system.svc.alpha.pm.k8s,10.233.0.3
host-record=backend.wxwork.svc.alpha.pm.k8s,192.168.50.20
# the forgotten stub block: corp.example goes to the retired server
server=/corp.example/192.168.50.53
# everything else: the correct upstream
server=192.168.60.53
{extra}
"""

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
