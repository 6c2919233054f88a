"""podtriage test lab: the seed incident of DESIGN.md, built in network namespaces.

Stdlib only. Everything lives in namespaces named ``<prefix>-<name>`` and in the run
directory ``/run/podtriage-lab/<prefix>/``; nothing outside the lab is touched.

    lab = Lab(prefix="pt")      # or env PT_LAB_PREFIX
    lab.up()                    # idempotent
    lab.exec("pod", "dig", "api.corp.example", "+short")
    lab.block_tcp53("nodelocal"); ...; lab.clear_faults()
    lab.down()

    Lab(prefix="pt6", ipv6=True)   # or env PT_LAB_IPV6=1: the same lab, dual-stack (see
                                # "IPv6" below: ULA beside every IPv4 address, an IPv6
                                # NodeLocal, IPv6 listeners, an IPv6-only host)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import configs

__all__ = ["Lab", "LabError", "SERVERS", "NAMESPACES", "RUN_ROOT"]

RUN_ROOT = Path("/run/podtriage-lab")
NAMESPACES = ("pod", "node", "coredns", "legacy", "upstream", "app")
TABLE = "ptlab"          # nft table (family ip) owned by the lab, one per lab namespace

# server -> (namespace, address, probe name for wait_ready, namespace to probe from)
SERVERS = {
    "upstream": ("upstream", "192.168.60.53", "ns1.corp.example", "node"),
    "legacy": ("legacy", "192.168.50.53", "ns1.corp.example", "node"),
    "coredns": ("coredns", "10.233.0.3", "kubernetes.default.svc.alpha.pm.k8s", "node"),
    "nodelocal": ("node", "169.254.25.10", "kubernetes.default.svc.alpha.pm.k8s", "pod"),
    "app": ("app", "192.168.50.20", None, "node"),
}
DNS_SERVERS = ("upstream", "legacy", "coredns", "nodelocal")
RCODES = ("NXDOMAIN", "REFUSED", "SERVFAIL")

# veth links: (ns_a, if_a, addr_a, ns_b, if_b, addr_b or None (bridge port))
LINKS = [
    ("pod", "eth0", "10.244.1.10/24", "node", "vpod", "10.244.1.1/24"),
    ("coredns", "eth0", "10.233.0.3/24", "node", "vsvc", "10.233.0.1/24"),
    ("upstream", "eth0", "192.168.60.53/24", "node", "vup", "192.168.60.1/24"),
    ("legacy", "eth0", "192.168.50.53/24", "node", "vleg", None),
    ("app", "eth0", "192.168.50.20/24", "node", "vapp", None),
]
# The seed's stale answer: the retired server (legacy) answers it for *.corp.example.
STALE_ADDRESS = "192.168.50.77"
GATEWAYS = {"pod": "10.244.1.1", "coredns": "10.233.0.1", "upstream": "192.168.60.1",
            "legacy": "192.168.50.1", "app": "192.168.50.1"}

# ---- IPv6 (Lab(ipv6=True)): ULA (fd00::/8, RFC 4193) beside every IPv4 address.
NAMESPACES6 = ("host6",)   # the IPv6-only host (no IPv4 at all)
# (namespace, interface) -> address; br0 is the node subnet's bridge
ADDRS6 = {
    ("pod", "eth0"): "fd00:244:1::10/64", ("node", "vpod"): "fd00:244:1::1/64",
    ("coredns", "eth0"): "fd00:233::3/64", ("node", "vsvc"): "fd00:233::1/64",
    ("upstream", "eth0"): "fd00:60::53/64", ("node", "vup"): "fd00:60::1/64",
    ("legacy", "eth0"): "fd00:50::53/64", ("app", "eth0"): "fd00:50::20/64",
    ("node", "br0"): "fd00:50::1/64",
}
GATEWAYS6 = {"pod": "fd00:244:1::1", "coredns": "fd00:233::1", "upstream": "fd00:60::1",
             "legacy": "fd00:50::1", "app": "fd00:50::1", "host6": "fd00:70::1"}
NODELOCAL6 = "fd00:25::10"          # the IPv6 NodeLocal DNSCache address (on the node's lo)
NODELOCAL6_LL = "fe80::25:10"       # ... and a link-local one on the pod's link (node side: vpod)
SERVERS6 = {"nodelocal": NODELOCAL6, "coredns": "fd00:233::3", "upstream": "fd00:60::53",
            "legacy": "fd00:50::53"}
APP6 = "fd00:50::20"                # the dual-stack app host's IPv6 address
HOST6 = "fd00:70::30"               # the IPv6-only host, on its own link fd00:70::/64
STALE6 = "fd00:50::77"              # nobody holds it: the node's ND fails (ICMPv6 1/3)
EMPTY6_SUBNET = "fd00:99::/64"      # an IPv6 subnet on the node where nobody lives at all
WEB6 = {"app6": ("app", APP6), "host6": ("host6", HOST6)}   # HTTP on port 80, IPv6 only
TABLE6 = "ptlab6"                   # nft table (family ip6) owned by the lab

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,19}$")


class LabError(RuntimeError):
    pass


def _run(cmd, check=True, timeout=30, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise LabError("command failed (rc=%s): %s\n%s%s" % (
            p.returncode, " ".join(map(str, cmd)), p.stdout or "", p.stderr or ""))
    return p


class Lab:
    def __init__(self, prefix: str | None = None, run_root: Path | str = RUN_ROOT,
                 ipv6: bool | None = None):
        prefix = prefix or os.environ.get("PT_LAB_PREFIX") or "pt"
        if not _PREFIX_RE.match(prefix):
            raise LabError("bad lab prefix %r (lowercase letters/digits, starts with a letter, max 20)"
                           % prefix)
        self.prefix = prefix
        self.rundir = Path(run_root) / prefix
        self.ipv6 = (os.environ.get("PT_LAB_IPV6") == "1") if ipv6 is None else bool(ipv6)

    # ------------------------------------------------------------------ names
    def ns(self, name: str) -> str:
        """Full namespace name for a short name ('pod' -> 'pt-pod'); full names pass through."""
        if name.startswith(self.prefix + "-") and name[len(self.prefix) + 1:] in NAMESPACES + NAMESPACES6:
            return name
        if name not in NAMESPACES + NAMESPACES6:
            raise LabError("unknown lab namespace %r (one of %s)" % (name, ", ".join(NAMESPACES)))
        return "%s-%s" % (self.prefix, name)

    def exec(self, ns: str, *cmd, check=False, timeout=30, **kw) -> subprocess.CompletedProcess:
        """Run cmd inside a lab namespace (ip netns exec). Returns CompletedProcess
        (text, captured output by default). Pass capture_output=False etc. to override."""
        return _run(["ip", "netns", "exec", self.ns(ns), *map(str, cmd)],
                    check=check, timeout=timeout, **kw)

    def _existing_ns(self) -> set[str]:
        p = _run(["ip", "netns", "list"], check=False)
        return {line.split()[0] for line in p.stdout.splitlines() if line.strip()}

    def _etc(self, short: str) -> Path:
        return Path("/etc/netns") / self.ns(short)

    # ------------------------------------------------------------------ state
    @property
    def _state_file(self) -> Path:
        return self.rundir / "faults.json"

    def _state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {"rcode": {}, "fw": [], "stopped": [], "app_down": False}

    def _save(self, st: dict) -> None:
        self._state_file.write_text(json.dumps(st, indent=1, sort_keys=True))

    # ------------------------------------------------------------------ lifecycle
    def is_up(self) -> bool:
        """All namespaces exist and every server process is alive (not probing DNS)."""
        if not self.rundir.is_dir():
            return False
        have = self._existing_ns()
        if not all(self.ns(n) in have for n in NAMESPACES):
            return False
        if self.ipv6 != (self.rundir / "ipv6").exists():
            return False        # built for the other address family set: rebuild
        if self.ipv6 and not all(self.ns(n) in have for n in NAMESPACES6):
            return False
        stopped = set(self._state().get("stopped", []))
        return all(self._pid(s) is not None for s in SERVERS if s not in stopped)

    def up(self, wait: bool = True) -> "Lab":
        if self.is_up():
            try:
                if wait:
                    self.wait_ready()
                return self
            except LabError:
                pass
        self.down()
        try:
            self._build()
            if wait:
                self.wait_ready()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        (self.rundir / "named").mkdir(exist_ok=True)
        (self.rundir / "www").mkdir(exist_ok=True)
        (self.rundir / "www" / "index.html").write_text("podtriage lab backend\n")
        self._save(self._state())
        for n in NAMESPACES + (NAMESPACES6 if self.ipv6 else ()):
            _run(["ip", "netns", "add", self.ns(n)])
            self.exec(n, "ip", "link", "set", "lo", "up", check=True)
            if self.ipv6:
                self._v6_sysctls(n)
        etc = self._etc("pod")
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(configs.RESOLV_CONF)
        (etc / "hosts").write_text(configs.HOSTS)
        node = self.ns("node")
        self.exec("node", "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
        self.exec("node", "ip", "addr", "add", "169.254.25.10/32", "dev", "lo", check=True)
        self.exec("node", "ip", "link", "add", "br0", "type", "bridge", check=True)
        self.exec("node", "ip", "addr", "add", "192.168.50.1/24", "dev", "br0", check=True)
        self.exec("node", "ip", "link", "set", "br0", "up", check=True)
        for a, ifa, addra, b, ifb, addrb in LINKS:
            _run(["ip", "link", "add", "name", ifa, "netns", self.ns(a), "type", "veth",
                  "peer", "name", ifb, "netns", self.ns(b)])
            self.exec(a, "ip", "addr", "add", addra, "dev", ifa, check=True)
            self.exec(a, "ip", "link", "set", ifa, "up", check=True)
            if addrb:
                self.exec(b, "ip", "addr", "add", addrb, "dev", ifb, check=True)
            else:
                self.exec(b, "ip", "link", "set", ifb, "master", "br0", check=True)
            self.exec(b, "ip", "link", "set", ifb, "up", check=True)
            self.exec(a, "ip", "route", "add", "default", "via", GATEWAYS[a], check=True)
        assert node
        if self.ipv6:
            self._build_v6()
        for s in SERVERS:
            self.start(s, wait=False)
        if self.ipv6:
            for w in WEB6:
                self._start_web6(w)
            self.web6_ready()

    def down(self) -> None:
        """Remove everything this lab created. Never raises for missing parts."""
        for s in SERVERS:
            try:
                self._kill(s)
            except Exception:
                pass
        have = self._existing_ns()
        for n in NAMESPACES + NAMESPACES6:
            full = "%s-%s" % (self.prefix, n)
            if full not in have:
                continue
            # any leftover process still inside a lab namespace belongs to the lab
            try:
                pids = [int(x) for x in _run(["ip", "netns", "pids", full], check=False,
                                             timeout=10).stdout.split()]
            except Exception:
                pids = []
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
                if pids and sig == signal.SIGTERM:
                    for _ in range(20):
                        if not any(_alive(p) for p in pids):
                            break
                        time.sleep(0.1)
            _run(["ip", "netns", "del", full], check=False, timeout=15)
        for n in NAMESPACES + NAMESPACES6:
            shutil.rmtree(Path("/etc/netns") / ("%s-%s" % (self.prefix, n)), ignore_errors=True)
        shutil.rmtree(self.rundir, ignore_errors=True)
        try:
            self.rundir.parent.rmdir()      # only if no other lab uses it
        except OSError:
            pass

    def wait_ready(self, timeout: float = 10.0, servers=None) -> None:
        """Query each (running) server until it answers; LabError after `timeout` s total."""
        stopped = set(self._state().get("stopped", []))
        todo = [s for s in (servers or SERVERS) if s not in stopped]
        deadline = time.monotonic() + timeout
        for attempt in range(200):
            todo = [s for s in todo if not self.answers(s)]
            if not todo:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise LabError("lab %s: servers not ready after %.0fs: %s" % (self.prefix, timeout, todo))

    def answers(self, server: str) -> bool:
        """One quick probe: does the server answer (any DNS rcode counts; app: HTTP 200)?"""
        ns, addr, qname, src = SERVERS[server]
        try:
            if server == "app":
                p = self.exec(src, "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://%s/" % addr, timeout=5)
                return p.stdout.strip() == "200"
            p = self.exec(src, "dig", "+time=1", "+tries=1", "@" + addr, qname, timeout=5)
            return p.returncode == 0 and "status:" in p.stdout
        except (subprocess.TimeoutExpired, LabError):
            return False

    def status(self) -> dict:
        have = self._existing_ns()
        return {
            "prefix": self.prefix,
            "rundir": str(self.rundir),
            "namespaces": {self.ns(n): self.ns(n) in have for n in NAMESPACES},
            "servers": {s: {"pid": self._pid(s),
                            "answers": self.ns(SERVERS[s][3]) in have and self.answers(s)}
                        for s in SERVERS},
            "faults": self._state() if self.rundir.is_dir() else None,
        }

    # ------------------------------------------------------------------ processes
    def _pidfile(self, server: str) -> Path:
        return self.rundir / ("%s.pid" % server)

    def _pid(self, server: str):
        """pid from the pidfile if that process is alive and is ours (cmdline names rundir)."""
        try:
            pid = int(self._pidfile(server).read_text().split()[0])
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            return None
        return pid if str(self.rundir) + "/" in cmdline else None

    def _kill(self, server: str) -> None:
        pid = self._pid(server)
        if pid is not None:
            for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 20)):
                try:
                    os.kill(pid, sig)
                except OSError:
                    break
                for _ in range(wait):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                if not _alive(pid):
                    break
        try:
            self._pidfile(server).unlink()
        except OSError:
            pass

    def _write_config(self, server: str) -> Path:
        rd = str(self.rundir)
        forced = self._state().get("rcode", {}).get(server, {})
        if server in ("nodelocal", "legacy"):
            extra_server, extra_forward = [], []
            for name, rc in sorted(forced.items()):
                if rc == "SERVFAIL":
                    # transparent zone + TCP forward to a closed port (RST) -> SERVFAIL at once
                    extra_server.append('    local-zone: "%s." transparent' % name)
                    extra_forward.append('forward-zone:\n    name: "%s."\n'
                                         '    forward-addr: 127.0.0.1@9\n'
                                         '    forward-tcp-upstream: yes\n' % name)
                else:
                    kind = "always_nxdomain" if rc == "NXDOMAIN" else "always_refuse"
                    extra_server.append('    local-zone: "%s." %s' % (name, kind))
            kw = dict(rundir=rd, extra_server="\n".join(extra_server),
                      extra_forward="\n".join(extra_forward))
            if server == "nodelocal":
                text = configs.NODELOCAL_UNBOUND.format(**kw)
            else:
                data = ['    local-data: "%s 86400 IN %s %s"' % r for r in configs.LEGACY_RECORDS
                        if not _under(r[0], forced)]
                text = configs.LEGACY_UNBOUND.format(legacy_data="\n".join(data), **kw)
            path = self.rundir / ("%s.conf" % server)
        elif server == "coredns":
            extra = []
            for name, rc in sorted(forced.items()):
                extra.append("address=/%s/" % name)     # NXDOMAIN (the only one supported)
            text = configs.COREDNS_DNSMASQ.format(rundir=rd, extra="\n".join(extra))
            path = self.rundir / "coredns.conf"
        elif server == "upstream":
            zd = self.rundir / "named"
            zd.mkdir(exist_ok=True)
            recs = ["%s %s %s" % r for r in configs.CORP_RECORDS if not _under(r[0], forced)]
            (zd / "corp.example.zone").write_text(configs.CORP_ZONE_HEAD + "\n".join(recs) + "\n")
            (zd / "example.org.zone").write_text(configs.EXAMPLE_ORG_ZONE)
            (zd / "root.zone").write_text(configs.ROOT_ZONE)
            extra = []
            for name, rc in sorted(forced.items()):
                if rc == "REFUSED":
                    extra.append('zone "%s" { type primary; file "%s/corp.example.zone"; '
                                 'allow-query { none; }; };' % (name, zd))
                elif rc == "SERVFAIL":   # a configured zone that fails to load -> SERVFAIL
                    extra.append('zone "%s" { type primary; file "%s/missing.zone"; };'
                                 % (name, zd))
                # NXDOMAIN: the records are simply left out of the zone
            text = configs.UPSTREAM_NAMED.format(rundir=rd, extra="\n".join(extra))
            path = self.rundir / "upstream.conf"
        else:
            raise LabError("no config for %s" % server)
        if self.ipv6:
            text = _v6_listen(server, text)
        path.write_text(text)
        return path

    def start(self, server: str, wait: bool = True) -> None:
        """Start a server (no-op if running) and, with wait, wait until it answers."""
        if server not in SERVERS:
            raise LabError("unknown server %r (one of %s)" % (server, ", ".join(SERVERS)))
        st = self._state()
        if server in st.get("stopped", []):
            st["stopped"].remove(server)
            self._save(st)
        if self._pid(server) is None:
            ns = SERVERS[server][0]
            if server == "app":
                log = open(self.rundir / "app.log", "ab")
                p = subprocess.Popen(
                    ["ip", "netns", "exec", self.ns(ns), sys.executable, "-m", "http.server", "80",
                     "--bind", "192.168.50.20", "--directory", str(self.rundir / "www")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
                log.close()
                self._pidfile("app").write_text("%d\n" % p.pid)
            else:
                conf = self._write_config(server)
                self._pidfile(server).unlink(missing_ok=True)
                if server in ("nodelocal", "legacy"):
                    cmd = ["unbound", "-c", str(conf)]
                elif server == "coredns":
                    cmd = ["dnsmasq", "--conf-file=%s" % conf]
                else:
                    cmd = ["named", "-c", str(conf)] if self.ipv6 else ["named", "-4", "-c", str(conf)]
                self.exec(ns, *cmd, check=True, timeout=20)
            for _ in range(50):
                if self._pid(server) is not None:
                    break
                time.sleep(0.1)
            else:
                raise LabError("%s did not start (see %s)" % (server, self.rundir))
        if wait:
            self.wait_ready(servers=[server])

    def stop(self, server: str) -> None:
        """Stop a server (kill by pidfile). clear_faults() starts it again."""
        if server not in SERVERS:
            raise LabError("unknown server %r (one of %s)" % (server, ", ".join(SERVERS)))
        st = self._state()
        if server not in st["stopped"]:
            st["stopped"].append(server)
            self._save(st)
        self._kill(server)

    def restart(self, server: str, wait: bool = True) -> None:
        self._kill(server)
        self.start(server, wait=wait)

    # ------------------------------------------------------------------ faults
    def _where(self, where: str):
        """server name -> (namespace, address); namespace short name -> (namespace, None)."""
        if where in SERVERS:
            return SERVERS[where][0], SERVERS[where][1]
        if where in NAMESPACES:
            return where, None
        raise LabError("unknown server/namespace %r" % where)

    def _nft_rule(self, ns: str, chain: str, rule: str) -> None:
        script = ("add table ip %s\n"
                  "add chain ip %s input { type filter hook input priority 0; policy accept; }\n"
                  "add chain ip %s forward { type filter hook forward priority 0; policy accept; }\n"
                  "add rule ip %s %s %s\n") % (TABLE, TABLE, TABLE, TABLE, chain, rule)
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, chain, rule])
        self._save(st)

    def _port53(self, where: str, match: str, verdict: str) -> None:
        ns, addr = self._where(where)
        daddr = "ip daddr %s " % addr if addr else ""
        self._nft_rule(ns, "input", "%s%s %s" % (daddr, match, verdict))

    def block_tcp53(self, where: str) -> None:
        """Silently drop TCP to port 53 of a server (or a whole namespace)."""
        self._port53(where, "tcp dport 53", "drop")

    def reject_tcp53(self, where: str) -> None:
        """Answer TCP SYNs to port 53 with a RST."""
        self._port53(where, "tcp dport 53", "reject with tcp reset")

    def reject_udp53(self, where: str) -> None:
        """UDP to port 53 gets ICMP port-unreachable (3/3)."""
        self._port53(where, "udp dport 53", "reject with icmp type port-unreachable")

    def drop_udp53(self, where: str) -> None:
        """Silently drop UDP to port 53 (e.g. NodeLocal dropping packets)."""
        self._port53(where, "udp dport 53", "drop")

    def drop_aaaa(self, where: str) -> None:
        """Drop UDP DNS queries of type AAAA (QTYPE 28, QCLASS IN) at a server.

        nft payload matching cannot follow the variable-length QNAME, so this installs one
        raw-payload rule per QNAME wire length (2..255): the 5 bytes after the QNAME are
        00 (root label) 001c 0001."""
        ns, addr = self._where(where)
        daddr = "ip daddr %s " % addr if addr else ""
        rules = []
        for qlen in range(2, 256):
            # transport header 8 bytes + DNS header 12 + QNAME (incl. final 0) -> last QNAME byte
            bit = (8 + 12 + qlen - 1) * 8
            rules.append("add rule ip %s input %sudp dport 53 @th,%d,40 0x00001c0001 drop"
                         % (TABLE, daddr, bit))
        script = ("add table ip %s\n"
                  "add chain ip %s input { type filter hook input priority 0; policy accept; }\n"
                  % (TABLE, TABLE)) + "\n".join(rules) + "\n"
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, "input", "drop_aaaa %s" % daddr.strip()])
        self._save(st)

    def reject_admin(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMP 3/13 (admin-prohibited)."""
        self._nft_rule("node", "forward", "ip daddr %s reject with icmp type admin-prohibited"
                       % addr)

    def app_down(self) -> None:
        """Take the app host off the LAN (correct DNS answer, host down)."""
        self.exec("app", "ip", "link", "set", "eth0", "down", check=True)
        self.exec("node", "ip", "neigh", "flush", "to", "192.168.50.20", check=False)
        st = self._state()
        st["app_down"] = True
        self._save(st)

    def stale_alive(self, serve: bool = False) -> None:
        """A live host takes the stale address 192.168.50.77 (node subnets recycle
        addresses): the app host gets it as a second address, so it answers ping and ARP and
        refuses port 80 (its web server binds 192.168.50.20 only). With ``serve`` a second web
        server listens on 192.168.50.77:80 too (both addresses serve the port)."""
        self.exec("app", "ip", "addr", "add", STALE_ADDRESS + "/24", "dev", "eth0", check=True)
        # The node may remember a failed ARP for the address from an earlier scenario.
        self.exec("node", "ip", "neigh", "flush", "to", STALE_ADDRESS, check=False)
        st = self._state()
        st["stale_alive"] = True
        self._save(st)
        if serve:
            log = open(self.rundir / "stale-www.log", "ab")
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns("app"), sys.executable, "-m", "http.server", "80",
                 "--bind", STALE_ADDRESS, "--directory", str(self.rundir / "www")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            log.close()
            (self.rundir / "stale-www.pid").write_text("%d\n" % p.pid)
            for _ in range(50):
                r = self.exec("node", "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://%s/" % STALE_ADDRESS, timeout=5)
                if r.stdout.strip() == "200":
                    break
                time.sleep(0.1)
            else:
                raise LabError("the web server on %s did not start" % STALE_ADDRESS)

    def drop_forward(self, addr: str) -> None:
        """In the node: forwarded traffic to addr is silently dropped (no ICMP at all)."""
        self._nft_rule("node", "forward", "ip daddr %s drop" % addr)

    def tcp53_to_legacy(self) -> None:
        """In the node: the pod's TCP queries to NodeLocal (169.254.25.10:53) are DNATed to the
        retired server (legacy), so only TCP answers are stale (e.g. a force_tcp forwarder
        that still points at the old server). UDP keeps the right path."""
        nl = SERVERS["nodelocal"][1]
        script = ("add table ip %s\n"
                  "add chain ip %s prerouting { type nat hook prerouting priority -100; policy accept; }\n"
                  "add rule ip %s prerouting ip saddr 10.244.1.0/24 ip daddr %s tcp dport 53 "
                  "dnat to %s\n") % (TABLE, TABLE, TABLE, nl, SERVERS["legacy"][1])
        self.exec("node", "nft", "-f", "-", input=script, check=True)
        self.exec("node", "conntrack", "-F", check=False)
        st = self._state()
        st["fw"].append(["node", "prerouting", "tcp53 to legacy"])
        self._save(st)

    def _clear_stale_alive(self) -> None:
        pidfile = self.rundir / "stale-www.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except OSError:
                    break
                for _ in range(20):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
            pidfile.unlink(missing_ok=True)
        if self.ns("app") in self._existing_ns():
            self.exec("app", "ip", "addr", "del", STALE_ADDRESS + "/24", "dev", "eth0", check=False)
        self.exec("node", "ip", "neigh", "flush", "to", STALE_ADDRESS, check=False)

    def force_rcode(self, name: str, rcode: str, server: str = "legacy") -> None:
        """Make `server` answer `rcode` for `name` and everything below it.

        Servers: legacy/nodelocal (unbound local-zone always_nxdomain / always_refuse;
        SERVFAIL via a forward to a closed port), upstream (bind9: NXDOMAIN by removing the
        records, REFUSED by allow-query none, SERVFAIL by an unloadable zone), coredns
        (dnsmasq: NXDOMAIN only, by address=/name/). Restarts that server."""
        rcode = rcode.upper()
        if rcode not in RCODES:
            raise LabError("rcode must be one of %s" % ", ".join(RCODES))
        if server not in DNS_SERVERS:
            raise LabError("force_rcode: server must be one of %s" % ", ".join(DNS_SERVERS))
        if server == "coredns" and rcode != "NXDOMAIN":
            raise LabError("force_rcode: dnsmasq (coredns) can only be forced to NXDOMAIN; "
                           "use nodelocal, legacy or upstream for %s" % rcode)
        name = name.rstrip(".").lower()
        st = self._state()
        st["rcode"].setdefault(server, {})[name] = rcode
        self._save(st)
        self.restart(server)

    def resolv_options(self, *options: str) -> None:
        """Add an ``options`` line to the pod's resolv.conf (``single-request-reopen``,
        ``use-vc``, ``timeout:2``...); ``clear_faults`` puts the lab's file back. ip netns
        exec bind-mounts /etc/netns/<pod>/resolv.conf, so every later command sees it."""
        for o in options:
            if not re.match(r"^[a-z0-9][a-z0-9:-]{0,40}$", o):
                raise LabError("bad resolv.conf option %r" % o)
        (self._etc("pod") / "resolv.conf").write_text(
            configs.RESOLV_CONF + "options %s\n" % " ".join(options))
        st = self._state()
        st["resolv"] = list(options)
        self._save(st)

    def clear_faults(self) -> None:
        """Undo every fault switch: firewall tables, forced rcodes, stopped servers, app link.
        Restarts NodeLocal if any fault was active (flushes its caches and infra state)."""
        st = self._state()
        dirty = bool(st["fw"] or st["rcode"] or st["stopped"] or st["app_down"])
        if st.get("stale_alive"):
            self._clear_stale_alive()
        have = self._existing_ns()
        for n in NAMESPACES:
            if self.ns(n) in have:
                self.exec(n, "nft", "delete", "table", "ip", TABLE, check=False)
                if self.ipv6:
                    self.exec(n, "nft", "delete", "table", "ip6", TABLE6, check=False)
        if self.ipv6:
            self._clear_v6(st)
        if st["app_down"] and self.ns("app") in have:
            self.exec("app", "ip", "link", "set", "eth0", "up", check=False)
            # link down removed the default route; put it back
            self.exec("app", "ip", "route", "replace", "default", "via", GATEWAYS["app"],
                      check=False)
            if self.ipv6:
                self.exec("app", "ip", "-6", "route", "replace", "default", "via", GATEWAYS6["app"],
                          check=False)
        if st.get("resolv") and self._etc("pod").is_dir():
            (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF)
        forced = list(st["rcode"])
        self._save({"rcode": {}, "fw": [], "stopped": [], "app_down": False})
        for s in forced:
            self._kill(s)
        if dirty:
            self._kill("nodelocal")
        for s in SERVERS:
            if self._pid(s) is None:
                self.start(s, wait=False)
        if dirty:
            self.wait_ready()

    def faults(self) -> dict:
        return self._state()

    # ------------------------------------------------------------------ IPv6
    def _v6_sysctls(self, n: str) -> None:
        """Before any link exists: no Duplicate Address Detection (RFC 4862 5.4), so an
        address is usable the moment it is added (otherwise it stays "tentative" ~1-2 s and
        bind() fails with EADDRNOTAVAIL); addresses survive a link going down (app_down),
        as IPv4 ones do; the node routes IPv6."""
        for k in ("all", "default"):
            self.exec(n, "sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % k,
                      "net.ipv6.conf.%s.keep_addr_on_down=1" % k,
                      "net.ipv6.conf.%s.disable_ipv6=0" % k, check=True)
        self.exec(n, "sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0", check=True)
        if n == "node":
            self.exec(n, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", check=True)

    def _build_v6(self) -> None:
        (self.rundir / "ipv6").write_text("1\n")
        for (n, dev), addr in ADDRS6.items():
            self.exec(n, "ip", "-6", "addr", "add", addr, "dev", dev, "nodad", check=True)
        self.exec("node", "ip", "-6", "addr", "add", NODELOCAL6 + "/128", "dev", "lo", check=True)
        self.exec("node", "ip", "-6", "addr", "add", NODELOCAL6_LL + "/64", "dev", "vpod", "nodad", check=True)
        # the IPv6-only host on its own link; no IPv4 there at all
        _run(["ip", "link", "add", "name", "eth0", "netns", self.ns("host6"), "type", "veth",
              "peer", "name", "vh6", "netns", self.ns("node")])
        self.exec("host6", "ip", "-6", "addr", "add", HOST6 + "/64", "dev", "eth0", "nodad", check=True)
        self.exec("host6", "ip", "link", "set", "eth0", "up", check=True)
        self.exec("node", "ip", "-6", "addr", "add", "fd00:70::1/64", "dev", "vh6", "nodad", check=True)
        self.exec("node", "ip", "link", "set", "vh6", "up", check=True)
        # an empty IPv6 subnet on the node: an on-link prefix on the bridge where nobody lives
        # (the node's ND for any address there fails: ICMPv6 1/3 after ~3 s, RFC 4443 3.1)
        self.exec("node", "ip", "-6", "route", "add", EMPTY6_SUBNET, "dev", "br0", check=True)
        for n, gw in GATEWAYS6.items():
            self.exec(n, "ip", "-6", "route", "add", "default", "via", gw, check=True)
        (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        # the IPv6-only host is a client too (an IPv6-only pod): its own resolv.conf, so that
        # nothing in it ever reads the machine's
        etc6 = self._etc("host6")
        etc6.mkdir(parents=True, exist_ok=True)
        (etc6 / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        (etc6 / "hosts").write_text(configs.HOSTS)
        (self.rundir / "resolv-v4.conf").write_text(configs.RESOLV_CONF)
        (self.rundir / "resolv-v6.conf").write_text(configs.RESOLV_CONF_V6)
        (self.rundir / "resolv-v6ll.conf").write_text(configs.RESOLV_CONF_V6_LL)

    def _start_web6(self, name: str) -> None:
        ns, addr = WEB6[name]
        pidfile = self.rundir / ("%s.pid" % name)
        log = open(self.rundir / ("%s.log" % name), "ab")
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(ns), sys.executable, "-m", "http.server", "80",
             "--bind", addr, "--directory", str(self.rundir / "www")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        pidfile.write_text("%d\n" % p.pid)

    def web6_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for name, (_ns, addr) in WEB6.items():
            for _ in range(100):
                r = self.exec("node", "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://[%s]/" % addr, timeout=5)
                if r.stdout.strip() == "200":
                    break
                if time.monotonic() >= deadline:
                    raise LabError("IPv6 web server %s on [%s]:80 not ready" % (name, addr))
                time.sleep(0.1)

    def pod_ipv4_only(self) -> None:
        """The pod loses its IPv6 address and route (an IPv4-only pod in a cluster whose DNS
        still hands out AAAA: k3s-io/k3s#5849) and its resolv.conf points at the IPv4
        NodeLocal. clear_faults() gives them back."""
        self.exec("pod", "ip", "-6", "route", "del", "default", check=False)
        self.exec("pod", "ip", "-6", "addr", "del", ADDRS6[("pod", "eth0")], "dev", "eth0", check=False)
        (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF)
        st = self._state()
        st["pod_v4_only"] = True
        self._save(st)

    def _nft6_rule(self, ns: str, chain: str, rule: str) -> None:
        script = ("add table ip6 %s\n"
                  "add chain ip6 %s input { type filter hook input priority 0; policy accept; }\n"
                  "add chain ip6 %s forward { type filter hook forward priority 0; policy accept; }\n"
                  "add rule ip6 %s %s %s\n") % (TABLE6, TABLE6, TABLE6, TABLE6, chain, rule)
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, chain, rule])
        self._save(st)

    def reject_admin6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMPv6 1/1 (administratively prohibited)."""
        self._nft6_rule("node", "forward", "ip6 daddr %s reject with icmpv6 type admin-prohibited"
                        % addr)

    def reject_route6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMPv6 1/6 (reject route to destination)."""
        self._nft6_rule("node", "forward", "ip6 daddr %s reject with icmpv6 type reject-route" % addr)

    def drop_forward6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr is silently dropped."""
        self._nft6_rule("node", "forward", "ip6 daddr %s drop" % addr)

    def drop_aaaa6(self, where: str) -> None:
        """Drop UDP DNS queries of type AAAA sent to a server's IPv6 address (drop_aaaa's
        raw-payload rules, family ip6: @th offsets count from the transport header alike)."""
        ns, _addr = self._where(where)
        addr = SERVERS6.get(where)
        daddr = "ip6 daddr %s " % addr if addr else ""
        rules = ["add rule ip6 %s input %sudp dport 53 @th,%d,40 0x00001c0001 drop"
                 % (TABLE6, daddr, (8 + 12 + qlen - 1) * 8) for qlen in range(2, 256)]
        script = ("add table ip6 %s\n"
                  "add chain ip6 %s input { type filter hook input priority 0; policy accept; }\n"
                  % (TABLE6, TABLE6)) + "\n".join(rules) + "\n"
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, "input", "drop_aaaa6 %s" % daddr.strip()])
        self._save(st)

    def _clear_v6(self, st: dict) -> None:
        if st.get("pod_v4_only"):
            self.exec("pod", "ip", "-6", "addr", "replace", ADDRS6[("pod", "eth0")], "dev", "eth0",
                      "nodad", check=False)
            self.exec("pod", "ip", "-6", "route", "replace", "default", "via", GATEWAYS6["pod"],
                      check=False)
            (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        # a failed ND entry from an earlier scenario would answer the next one at once
        self.exec("node", "ip", "-6", "neigh", "flush", "dev", "br0", check=False)


def _v6_listen(server: str, text: str) -> str:
    """A server's config with its IPv6 listener added beside the IPv4 one."""
    addr = SERVERS6.get(server)
    if addr is None:
        return text
    if server in ("nodelocal", "legacy"):     # unbound
        allow = "fd00:244::/32" if server == "nodelocal" else "::/0"
        text = text.replace("    do-ip6: no\n", "    do-ip6: yes\n", 1)
        if server == "nodelocal":   # the link-local listener: scope = the node's side of the pod link
            text = text.replace("    port: 53\n", "    interface: %s%%vpod\n    port: 53\n"
                                "    access-control: fe80::/10 allow\n" % NODELOCAL6_LL, 1)
        if server == "nodelocal":   # the IPv6-only host is a client too
            allow += " allow\n    access-control: fd00:70::/64"
        return text.replace("    port: 53\n", "    interface: %s\n    port: 53\n"
                            "    access-control: %s allow\n" % (addr, allow), 1)
    if server == "coredns":                   # dnsmasq
        return text.replace("listen-address=10.233.0.3\n",
                            "listen-address=10.233.0.3\nlisten-address=%s\n" % addr, 1)
    return text.replace("listen-on-v6 {{ none; }};".replace("{{", "{").replace("}}", "}"),
                        "listen-on-v6 port 53 { %s; };" % addr, 1)


def _under(owner: str, forced: dict) -> bool:
    o = owner.rstrip(".").lower()
    return any(o == n or o.endswith("." + n) for n in forced)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False
