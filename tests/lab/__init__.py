"""podtriage test lab: the seed incident of DESIGN.md, built in network namespaces.

Stdlib only. Everything lives in namespaces named ``<prefix>-<name>`` and in the run
directory ``/run/podtriage-lab/<prefix>/``; nothing outside the lab is touched.

    lab = Lab(prefix="pt")      # or env PT_LAB_PREFIX
    lab.up()                    # idempotent
    lab.exec("pod", "dig", "api.corp.example", "+short")
    lab.block_tcp53("nodelocal"); ...; lab.clear_faults()
    lab.down()
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
GATEWAYS = {"pod": "10.244.1.1", "coredns": "10.233.0.1", "upstream": "192.168.60.1",
            "legacy": "192.168.50.1", "app": "192.168.50.1"}

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
    def __init__(self, prefix: str | None = None, run_root: Path | str = RUN_ROOT):
        prefix = prefix or os.environ.get("PT_LAB_PREFIX") or "pt"
        if not _PREFIX_RE.match(prefix):
            raise LabError("bad lab prefix %r (lowercase letters/digits, starts with a letter, max 20)"
                           % prefix)
        self.prefix = prefix
        self.rundir = Path(run_root) / prefix

    # ------------------------------------------------------------------ names
    def ns(self, name: str) -> str:
        """Full namespace name for a short name ('pod' -> 'pt-pod'); full names pass through."""
        if name.startswith(self.prefix + "-") and name[len(self.prefix) + 1:] in NAMESPACES:
            return name
        if name not in NAMESPACES:
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
        for n in NAMESPACES:
            _run(["ip", "netns", "add", self.ns(n)])
            self.exec(n, "ip", "link", "set", "lo", "up", check=True)
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
        for s in SERVERS:
            self.start(s, wait=False)

    def down(self) -> None:
        """Remove everything this lab created. Never raises for missing parts."""
        for s in SERVERS:
            try:
                self._kill(s)
            except Exception:
                pass
        have = self._existing_ns()
        for n in NAMESPACES:
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
        for n in NAMESPACES:
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
                    cmd = ["named", "-4", "-c", str(conf)]
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
        have = self._existing_ns()
        for n in NAMESPACES:
            if self.ns(n) in have:
                self.exec(n, "nft", "delete", "table", "ip", TABLE, check=False)
        if st["app_down"] and self.ns("app") in have:
            self.exec("app", "ip", "link", "set", "eth0", "up", check=False)
            # link down removed the default route; put it back
            self.exec("app", "ip", "route", "replace", "default", "via", GATEWAYS["app"],
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


def _under(owner: str, forced: dict) -> bool:
    o = owner.rstrip(".").lower()
    return any(o == n or o.endswith("." + n) for n in forced)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False
