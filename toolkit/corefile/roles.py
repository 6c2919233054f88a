"""What each given Corefile is: a DNS cache in front (NodeLocal DNSCache), the cluster DNS
(CoreDNS behind the kube-dns Service), files another Corefile imports (``coredns-custom``), or a
plain DNS server; and the Corefiles as CoreDNS really runs them once the imports are spliced in.

Roles come from the content (``bind`` addresses, ``import`` lines, forward targets, the
``kubernetes`` plugin); the ConfigMap's name and namespace only break ties, and an explicit
``--role SELECTOR=ROLE`` overrides both. Every assignment keeps the evidence it rests on, so the
operator can see what podtriage took each file for.

Sources of the semantics:
- NodeLocal DNSCache (KEP-1024, kubernetes/kubernetes cluster/addons/dns/nodelocaldns/
  nodelocaldns.yaml): node-cache listens on a link-local address (169.254.20.10; kubespray
  169.254.25.10) and, in iptables mode, on the kube-dns Service address too; it forwards the
  cluster domain and the reverse zones to the cluster DNS (``__PILLAR__CLUSTER__DNS__``, which
  node-cache fills with the ClusterIP of its -upstreamsvc Service) and everything else to
  ``__PILLAR__UPSTREAM__SERVERS__`` (the node's resolv.conf).
- kubespray roles/kubernetes-apps/ansible/templates/nodelocaldns-config.yml.j2: the
  ``Corefile-second`` key is a second NodeLocal instance on the same address
  (enable_nodelocaldns_secondary), not the CoreDNS Service.
- AKS docs "Customize CoreDNS with Azure Kubernetes Service" and k3s manifests/coredns.yaml:
  ``import custom/*.override`` inside ``.:53`` and ``import custom/*.server`` at top level, with
  the keys of the ``coredns-custom`` ConfigMap (mounted at /etc/coredns/custom) as the files.
- openshift/cluster-dns-operator pkg/operator/controller/controller_dns_configmap.go: the
  operator generates ``.:5353`` plus ``hostname.bind:5353 { chaos }`` and reconciles edits away.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from toolkit.corefile.document import Corefile
from toolkit.corefile.parser import parse_corefile
from toolkit.errors import UsageError


class CorefileRole(StrEnum):
    """What a given Corefile is in the cluster's DNS path."""

    NODE_CACHE = "node-cache"                      # a cache in front: NodeLocal DNSCache
    NODE_CACHE_SECONDARY = "node-cache-secondary"  # kubespray's second NodeLocal instance
    CLUSTER_DNS = "cluster-dns"                    # CoreDNS behind the kube-dns Service
    CUSTOM_IMPORTS = "custom-imports"              # files another Corefile imports
    SERVER = "server"                              # a DNS server that is none of the above


class RoleSource(StrEnum):
    """What a role was taken from."""

    CONTENT = "content"  # bind addresses, imports, forward targets, plugins
    HINT = "hint"        # only the ConfigMap's name/namespace or data key
    FLAG = "flag"        # --role


# NodeLocal's install-time and run-time placeholders, and what fills them
# (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml; the Kubernetes docs' nodelocaldns task
# seds the first three, node-cache replaces the last two when it starts).
PILLARS: Mapping[str, str] = {
    "__PILLAR__LOCAL__DNS__": "the node-local link-local address (169.254.20.10), filled by the "
                              "install step",
    "__PILLAR__DNS__DOMAIN__": "the cluster domain (cluster.local), filled by the install step",
    "__PILLAR__DNS__SERVER__": "the kube-dns Service ClusterIP, filled by the install step",
    "__PILLAR__CLUSTER__DNS__": "the ClusterIP of the kube-dns-upstream Service (CoreDNS), filled "
                                "by node-cache when it starts (-upstreamsvc)",
    "__PILLAR__UPSTREAM__SERVERS__": "the nameservers of the node's /etc/resolv.conf, filled by "
                                     "node-cache when it starts",
}
PILLAR_RE = re.compile(r"__PILLAR__[A-Z0-9_]+__", re.IGNORECASE)
# Placeholders that stand for the cluster DNS when they are a node cache's forward target.
CLUSTER_DNS_PILLARS = frozenset({"__PILLAR__CLUSTER__DNS__", "__PILLAR__DNS__SERVER__"})
DOMAIN_PILLAR = "__PILLAR__DNS__DOMAIN__"

_NODE_CACHE_NAMES = frozenset({"node-local-dns", "nodelocaldns"})
_CLUSTER_DNS_NAMES = frozenset({"coredns", "kube-dns", "dns-default", "rke2-coredns-rke2-coredns"})
_CUSTOM_NAMES = frozenset({"coredns-custom"})
_REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")


def pillar_note(raw: str) -> str | None:
    """What fills a ``__PILLAR__..__`` placeholder, or None when RAW is not one."""
    m = PILLAR_RE.fullmatch(raw.strip())
    if m is None:
        return None
    known = PILLARS.get(m.group(0).upper())
    return ("a placeholder of the NodeLocal DNSCache manifest: "
            + (known or "filled when the manifest is installed"))


@dataclass(frozen=True, kw_only=True)
class RoleAssignment:
    """The role of one given Corefile and the evidence it rests on."""

    corefile: str
    role: CorefileRole
    source: RoleSource
    evidence: tuple[str, ...] = ()
    imported_by: str | None = None      # custom imports: the Corefile that splices them in
    managed_by: str | None = None       # an operator that reconciles the ConfigMap
    cluster_dns_targets: tuple[str, ...] = ()  # node caches: forward targets that are the cluster DNS


@dataclass(frozen=True, kw_only=True)
class Assembly:
    """The Corefiles as CoreDNS runs them (imports spliced in, custom files consumed) and
    the role of every given Corefile, effective ones first."""

    corefiles: tuple[Corefile, ...]
    roles: tuple[RoleAssignment, ...]
    notes: tuple[str, ...] = ()

    def role_of(self, cf: Corefile | str) -> RoleAssignment | None:
        """The role of CF (a Corefile or its name)."""
        name = cf if isinstance(cf, str) else cf.name
        return next((r for r in self.roles if r.corefile == name), None)

    def first(self, role: CorefileRole) -> int | None:
        """Index of the first running Corefile with ROLE."""
        for i, cf in enumerate(self.corefiles):
            r = self.role_of(cf)
            if r is not None and r.role is role:
                return i
        return None

    def cluster_domain(self) -> str:
        """The zone the cluster DNS's kubernetes plugin serves first (cluster.local if none)."""
        i = self.first(CorefileRole.CLUSTER_DNS)
        cands = [self.corefiles[i]] if i is not None else list(self.corefiles)
        for cf in cands:
            for b in cf.blocks:
                for d in b.get("kubernetes"):
                    zones = [a for a in d.args if not a.startswith("{")] or list(b.zones)
                    for z in zones:
                        z = z.lower().rstrip(".") + "."
                        if not z.endswith(_REVERSE_ZONES) and "/" not in z and z != ".":
                            return z
        return "cluster.local."


# --- --role parsing --------------------------------------------------------------------------


def parse_role_overrides(specs: Sequence[str]) -> list[tuple[str, CorefileRole]]:
    """``SELECTOR=ROLE`` pairs (the last ``=`` splits, so a path may contain one)."""
    out = []
    valid = ", ".join(r.value for r in CorefileRole)
    for spec in specs:
        sel, sep, role = spec.rpartition("=")
        if not sep or not sel:
            raise UsageError(f"--role expects SELECTOR=ROLE, got {spec!r}",
                             hint=f"e.g. --role nodelocaldns.yaml=node-cache; roles: {valid}")
        try:
            out.append((sel, CorefileRole(role.strip().lower())))
        except ValueError:
            raise UsageError(f"--role {spec!r}: unknown role {role!r}",
                             hint=f"roles: {valid}") from None
    return out


def _selected(cf: Corefile, sel: str) -> bool:
    """SELECTOR matches the file path, its base name, the ConfigMap ([ns/]name), the data key
    (name:key), or the Corefile's display name."""
    import os

    cm = cf.configmap or ""
    short = cm.rsplit("/", 1)[-1]
    cands = {cf.name, cf.source, os.path.basename(cf.source), cm, short}
    if cf.key:
        cands |= {f"{cm}:{cf.key}", f"{short}:{cf.key}", f"{os.path.basename(cf.source)}:{cf.key}",
                  f"{cf.source}:{cf.key}"}
    return sel in cands


# --- content analysis ------------------------------------------------------------------------


def _link_local(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_link_local
    except ValueError:
        return False


def _forward_targets(cf: Corefile) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(block label, block zones, raw targets) of every forward/grpc."""
    out = []
    for b in cf.blocks:
        for d in b.directives:
            if d.name in ("forward", "grpc") and len(d.args) > 1:
                out.append((b.label, b.zones, tuple(d.args[1:])))
    return out


def _imports(cf: Corefile) -> list[str]:
    """Unresolved file-glob import patterns anywhere in CF's text (top level and blocks)."""
    pats = [i.pattern for i in cf.imports if not i.resolved]
    for m in re.finditer(r"(?m)^\s*import\s+(\S+)", cf.text or ""):
        p = m.group(1)
        if any(ch in p for ch in "*?[") or "/" in p:
            pats.append(p)
    return list(dict.fromkeys(pats))


def _node_cache_evidence(cf: Corefile) -> list[str]:
    ev = []
    for b in cf.blocks:
        for a in b.bind:
            if _link_local(a):
                ev.append(f"block {b.label} binds the link-local address {a} (NodeLocal DNSCache's "
                          "listen address)")
                break
            if a.upper() == "__PILLAR__LOCAL__DNS__":
                ev.append(f"block {b.label} binds __PILLAR__LOCAL__DNS__ (NodeLocal's link-local "
                          "address)")
                break
        if ev:
            break
    for label, _zones, targets in _forward_targets(cf):
        if any(t.upper() == "__PILLAR__CLUSTER__DNS__" for t in targets):
            ev.append(f"block {label} forwards to __PILLAR__CLUSTER__DNS__ (node-cache's "
                      "placeholder for the cluster DNS Service)")
            break
    return ev


def _cluster_dns_evidence(cf: Corefile) -> list[str]:
    for b in cf.blocks:
        for d in b.get("kubernetes"):
            zones = " ".join(d.args) or " ".join(b.zones)
            return [f"block {b.label} runs the kubernetes plugin ({zones}) at line {d.line}"]
    return []


def _hint(cf: Corefile) -> CorefileRole | None:
    name = (cf.configmap or "").rsplit("/", 1)[-1].lower()
    if cf.key and cf.key.lower().endswith((".server", ".override")) or name in _CUSTOM_NAMES:
        return CorefileRole.CUSTOM_IMPORTS
    if name in _NODE_CACHE_NAMES:
        return CorefileRole.NODE_CACHE
    if name in _CLUSTER_DNS_NAMES:
        return CorefileRole.CLUSTER_DNS
    return None


OPENSHIFT_OPERATOR = "the OpenShift DNS operator (edit dns.operator/default, not the ConfigMap)"


def _managed_by(cf: Corefile) -> str | None:
    ns = (cf.configmap or "").split("/", 1)[0] if "/" in (cf.configmap or "") else ""
    chaos = any(b.zones == ("hostname.bind.",) and b.plugins == ("chaos",) and 5353 in b.ports
                for b in cf.blocks)
    root5353 = any("." in b.zones and 5353 in b.ports and b.has("kubernetes") for b in cf.blocks)
    if ns == "openshift-dns" or (chaos and root5353):
        return OPENSHIFT_OPERATOR
    return None


def _glob_base(pattern: str) -> str:
    return pattern.rsplit("/", 1)[-1]


# --- assembly --------------------------------------------------------------------------------


def _forced(corefiles: Sequence[Corefile],
            overrides: Sequence[tuple[str, CorefileRole]]) -> dict[int, CorefileRole]:
    """Index -> role of the Corefiles a ``--role SELECTOR=ROLE`` selects (UsageError when a
    selector matches none)."""
    forced: dict[int, CorefileRole] = {}
    for sel, role in overrides:
        hit = [i for i, cf in enumerate(corefiles) if _selected(cf, sel)]
        if not hit:
            names = ", ".join(cf.name for cf in corefiles) or "none"
            raise UsageError(f"--role {sel}={role.value}: no given Corefile matches {sel!r}",
                             hint=f"select by file, ConfigMap name or name:key; given: {names}")
        for i in hit:
            forced[i] = role
    return forced


# importer index -> import pattern -> the files (name, text) it splices in
_Importers = dict[int, dict[str, list[tuple[str, str]]]]


def _custom_imports(corefiles: Sequence[Corefile], forced: Mapping[int, CorefileRole]
                    ) -> tuple[_Importers, dict[int, int]]:
    """The custom import files: the keys matching another Corefile's import glob. (What each
    importer splices in, consumed file index -> its importer.)"""
    importers: _Importers = {}
    consumed: dict[int, int] = {}
    for i, cf in enumerate(corefiles):
        if cf.fragment or forced.get(i) is CorefileRole.CUSTOM_IMPORTS:
            continue
        for pat in _imports(cf):
            base = _glob_base(pat)
            for j, other in enumerate(corefiles):
                if j == i or other.key is None and not other.fragment:
                    continue
                if forced.get(j) not in (None, CorefileRole.CUSTOM_IMPORTS):
                    continue
                if other.key is None:
                    # an empty custom ConfigMap: imports nothing, still taken for the files
                    if _hint(other) is CorefileRole.CUSTOM_IMPORTS or j in forced:
                        importers.setdefault(i, {}).setdefault(pat, [])
                        consumed.setdefault(j, i)
                    continue
                # Another Corefile (a `Corefile*` key) is never a file of this one's import,
                # even for `import *`: each runs as a CoreDNS of its own.
                if other.key.lower().startswith("corefile"):
                    continue
                if fnmatch.fnmatchcase(other.key, base) and other.key != cf.key:
                    importers.setdefault(i, {}).setdefault(pat, []).append(
                        (f"{other.configmap or other.source}:{other.key}", other.text))
                    consumed.setdefault(j, i)
    return importers, consumed


def _splice(corefiles: Sequence[Corefile], importers: _Importers,
            env: Mapping[str, str] | None, notes: list[str]) -> dict[int, Corefile]:
    """The importers parsed again with their import files spliced in."""
    effective: dict[int, Corefile] = {}
    for i, files in importers.items():
        cf = corefiles[i]
        new = parse_corefile(cf.text, env=env, source=cf.source, configmap=cf.configmap,
                             key=cf.key, line_offset=cf.line_offset, files=files)
        effective[i] = new
        spliced = ", ".join(new.imported_files) or "none (empty)"
        notes.append(f"{cf.name}: import {' and '.join(files)} spliced in from {spliced}")
    return effective


def _content_role(cf: Corefile) -> tuple[CorefileRole, RoleSource, list[str]]:
    """What CF's content (else its ConfigMap's name) says it is, and the evidence."""
    nc = _node_cache_evidence(cf)
    if nc:
        return CorefileRole.NODE_CACHE, RoleSource.CONTENT, nc
    cd = _cluster_dns_evidence(cf)
    if cd:
        return CorefileRole.CLUSTER_DNS, RoleSource.CONTENT, cd
    hint = _hint(cf)
    if cf.fragment or (hint is CorefileRole.CUSTOM_IMPORTS and cf.key and
                       cf.key.lower().endswith((".server", ".override"))):
        return CorefileRole.CUSTOM_IMPORTS, RoleSource.CONTENT, [
            f"data key {cf.key or '(none)'}: a file for `import custom/*.server|*.override`, "
            "but no given Corefile imports it"]
    if hint is not None:
        return hint, RoleSource.HINT, [f"ConfigMap name {cf.configmap}"
                                       + (f" key {cf.key}" if cf.key else "")]
    return CorefileRole.SERVER, RoleSource.CONTENT, ["no bind to a link-local address, no "
                                                     "kubernetes plugin"]


def _role(cf: Corefile, forced: CorefileRole | None) -> RoleAssignment:
    managed = _managed_by(cf)
    if forced is not None:
        return RoleAssignment(corefile=cf.name, role=forced, source=RoleSource.FLAG,
                              evidence=("--role",), managed_by=managed)
    role, src, ev = _content_role(cf)
    return RoleAssignment(corefile=cf.name, role=role, source=src, evidence=tuple(ev),
                          managed_by=managed)


def _mark_secondaries(running: Mapping[int, Corefile], roles: dict[int, RoleAssignment]) -> None:
    """A second node cache on the same listen address is a standby instance (kubespray's
    Corefile-second), never the CoreDNS Service behind the first one."""
    bind_seen: dict[str, str] = {}
    for i, cf in running.items():
        r = roles[i]
        if r.role is not CorefileRole.NODE_CACHE or r.source is RoleSource.FLAG:
            continue
        binds = {a for b in cf.blocks for a in b.bind}
        dup = next((bind_seen[a] for a in sorted(binds) if a in bind_seen), None)
        if dup is not None:
            roles[i] = replace(r, role=CorefileRole.NODE_CACHE_SECONDARY, evidence=r.evidence + (
                f"binds the same address as {dup}: a second NodeLocal instance"
                + (" (kubespray's Corefile-second)" if (cf.key or "").lower() == "corefile-second"
                   else ""),))
            continue
        for a in binds:
            bind_seen.setdefault(a, cf.name)


def _mark_cluster_targets(running: Mapping[int, Corefile], roles: dict[int, RoleAssignment],
                          service_ip: str | None) -> None:
    """What a node cache's cluster zones forward to: the cluster DNS (its listen addresses,
    the Service address given, and every target of a cluster zone's forward)."""
    cluster_listen: set[str] = set()
    for i, cf in running.items():
        if roles[i].role is CorefileRole.CLUSTER_DNS:
            cluster_listen |= {a for b in cf.blocks for a in b.bind}
    if service_ip:
        cluster_listen.add(service_ip)
    domain = Assembly(corefiles=tuple(running.values()),
                      roles=tuple(roles[i] for i in running)).cluster_domain()
    for i, cf in running.items():
        r = roles[i]
        if r.role not in (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY):
            continue
        targets: set[str] = set()
        for _label, zones, raw in _forward_targets(cf):
            zs = {z.lower() for z in zones}
            if (zs & set(_REVERSE_ZONES) or domain in zs or DOMAIN_PILLAR.lower() + "." in zs
                    or any(t.upper() in CLUSTER_DNS_PILLARS for t in raw)
                    or any(t in cluster_listen for t in raw)):
                targets |= set(raw)
        targets |= cluster_listen
        roles[i] = replace(r, cluster_dns_targets=tuple(sorted(targets)))


def _consumed_role(cf: Corefile, importer: str, flagged: bool) -> RoleAssignment:
    return RoleAssignment(
        corefile=cf.name, role=CorefileRole.CUSTOM_IMPORTS,
        source=RoleSource.FLAG if flagged else RoleSource.CONTENT,
        evidence=(f"its key {cf.key} is a file of {importer}'s `import`" if cf.key else
                  f"empty ConfigMap {cf.configmap}: {importer}'s custom imports, none defined",),
        imported_by=importer)


def assemble(corefiles: Sequence[Corefile], *, overrides: Sequence[tuple[str, CorefileRole]] = (),
             env: Mapping[str, str] | None = None,
             service_ip: str | None = None) -> Assembly:
    """Assign roles and splice custom import files into the Corefiles that import them."""
    corefiles = list(corefiles)
    notes: list[str] = []
    forced = _forced(corefiles, overrides)
    importers, consumed = _custom_imports(corefiles, forced)
    effective = _splice(corefiles, importers, env, notes)
    # The Corefiles that run (custom import files are part of their importer), in order.
    running = {i: effective.get(i, cf) for i, cf in enumerate(corefiles) if i not in consumed}
    roles = {i: _role(cf, forced.get(i)) for i, cf in running.items()}
    _mark_secondaries(running, roles)
    _mark_cluster_targets(running, roles, service_ip)
    all_roles = list(roles.values())
    for j, i in consumed.items():
        importer = effective[i].name if i in effective else corefiles[i].name
        all_roles.append(_consumed_role(corefiles[j], importer, j in forced))
    return Assembly(corefiles=tuple(running.values()), roles=tuple(all_roles), notes=tuple(notes))


def role_rows(assembly: Assembly) -> tuple[tuple[str, ...], ...]:
    """Rows of the "Corefiles" table every corefile command shows."""
    rows = []
    for r in assembly.roles:
        why = "; ".join(r.evidence)
        if r.imported_by:
            why += f" (spliced into {r.imported_by})"
        if r.managed_by:
            why += f"; managed by {r.managed_by}"
        rows.append((r.corefile, r.role.value, r.source.value, why))
    return tuple(rows)


def role_json(assembly: Assembly) -> list[dict[str, object]]:
    """The "corefiles" list of every corefile command's JSON: what each was taken for."""
    return [{"corefile": r.corefile, "role": r.role.value, "role_source": r.source.value,
             "evidence": list(r.evidence), "imported_by": r.imported_by,
             "managed_by": r.managed_by, "cluster_dns_targets": list(r.cluster_dns_targets)}
            for r in assembly.roles]
