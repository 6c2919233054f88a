"""`resolvconf`: what the pod's resolver configuration makes glibc do, without a network.

Reads resolv.conf, /etc/hosts and nsswitch.conf (pure parsers in ``toolkit.sysinfo``),
lints them, and for a NAME lists the exact names glibc will ask for, in order, with the
query count and the time to failure when no nameserver answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from toolkit.model import Finding, Report, Severity, Table, derive_verdict
from toolkit.sysinfo.hosts import HostsEntry, HostsFile, NssHosts, load_hosts, load_nsswitch
from toolkit.sysinfo.resolvconf import (
    ResolvConf, finding, load_resolv_conf, queries_per_lookup, search_candidates,
    timeout_candidates, worst_case_seconds,
)
from toolkit.sysinfo.resolvconf.wildcards import DomainProbe, cluster_domain, wildcard_findings

if TYPE_CHECKING:
    from toolkit.deadline import Deadline

PROBE_TIMEOUT_S = 2.0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _settings_table(conf: ResolvConf, nss: NssHosts) -> Table:
    s = conf.settings
    rows = [
        ("nameservers", ", ".join(conf.nameservers) + (" (implicit)" if conf.implicit_nameserver else "")),
        ("ignored nameservers", ", ".join(conf.ignored_nameservers) or "-"),
        ("search", " ".join(conf.search) or ("(hostname's domain)" if conf.search_from_hostname else "-")),
        ("ndots", str(conf.ndots)), ("timeout", f"{conf.timeout} s"), ("attempts", str(conf.attempts)),
    ]
    flags = [k for k, v in s.items() if isinstance(v, bool) and v]
    rows.append(("options set", ", ".join(flags) or "-"))
    if conf.sortlist:
        rows.append(("sortlist", " ".join(conf.sortlist)))
    rows.append(("hosts: (nsswitch)", nss.described() + (" (glibc default)" if nss.defaulted else "")))
    return Table("resolver settings", ("setting", "value"), tuple(rows))


def _candidate_table(conf: ResolvConf, candidates: tuple[str, ...]) -> Table:
    per = 1 if conf.no_aaaa else 2
    types = "A" if conf.no_aaaa else "A, AAAA"
    rows = []
    for i, fqdn in enumerate(candidates):
        first = i * per + 1
        num = str(first) if per == 1 else f"{first}-{first + per - 1}"
        rows.append((num, fqdn, types, "unknown"))
    return Table("names glibc asks for, in order (it stops at the first answer)",
                 ("query #", "name", "types", "expected outcome"), tuple(rows))


def _name_findings(name: str, conf: ResolvConf, hosts: HostsFile, nss: NssHosts,
                   candidates: tuple[str, ...], overrides: tuple[HostsEntry, ...]) -> list[Finding]:
    out: list[Finding] = []
    if not candidates:
        if conf.attempts <= 0:
            pass  # attempts-zero already says it
        else:
            out.append(finding(
                "name-not-queried", Severity.WARNING,
                f"glibc sends no DNS query for {name!r}: it is an address literal, or not a valid "
                "host name (letters, digits, - and _ in each label, no empty label)",
                "check the spelling of the name the application looks up"))
        return out
    bare = name.rstrip(".")
    dots = name.count(".")
    searched_first = not name.endswith(".") and dots < conf.ndots and len(candidates) > 1 \
        and candidates[-1] == bare + "."
    if searched_first and dots > 0:
        out.append(_searched_first(name, conf, candidates, dots))
    if overrides:
        where = "before DNS" if nss.files_before_dns else (
            "only when DNS is unavailable" if not nss.files_before_dns and any(
                s.name == "files" for s in nss.sources) else "but nsswitch does not consult files")
        consulted = any(s.name == "files" for s in nss.sources)
        out.append(finding(
            "hosts-override", Severity.WARNING if consulted else Severity.INFO,
            f"{hosts.path} maps {name} to {', '.join(e.address for e in overrides)} "
            f"({where}): DNS is bypassed for it",
            "remove the /etc/hosts entry (in Kubernetes: the pod's hostAliases) if DNS should answer",
            evidence=[f"line {e.line}: {e.address} {' '.join(e.names)}" for e in overrides],
            addresses=[e.address for e in overrides], lines=[e.line for e in overrides]))
    if bare.lower().endswith(".local") and nss.mdns_minimal_return:
        out.append(finding(
            "mdns-local-name", Severity.WARNING,
            f"{name} ends in .local and nsswitch has mdns_minimal [NOTFOUND=return]: "
            "it never reaches DNS", "use a different zone than .local for unicast DNS"))
    if not nss.uses_dns and not nss.uses_resolved:
        out.append(finding(
            "name-dns-not-consulted", Severity.WARNING,
            f"getaddrinfo({name}) never asks DNS here (hosts: {nss.described()})",
            "add dns to the hosts: line of nsswitch.conf"))
    return out


def _searched_first(name: str, conf: ResolvConf, candidates: tuple[str, ...], dots: int) -> Finding:
    """The shape of an answer for another name, before any probe: every search candidate is
    asked before the name itself, and the first with records wins (res_query.c)."""
    bare = name.rstrip(".")
    before = [c for c in candidates if c.rstrip(".").lower() != bare.lower()]
    cluster = cluster_domain(conf.search)
    node = [d for d in conf.search if d != "." and cluster is not None
            and not (d.strip(".").lower() == cluster or d.strip(".").lower().endswith("." + cluster))]
    text = (f"{name} has {dots} dot(s) < ndots:{conf.ndots}: glibc asks {len(before)} search name(s) before "
            f"the name itself ({', '.join(before)}) and takes the first that has records: a wildcard "
            "record under a search domain, or a nameserver that rewrites NXDOMAIN, would answer instead")
    if node:
        text += (f"; {', '.join(node)} {'comes' if len(node) == 1 else 'come'} from the node's own search list "
                 "(the kubelet copies it), where "
                 "such wildcards live (OpenShift, k3s)")
    return finding(
        "name-searched-first", Severity.INFO, text,
        f"look it up as {bare}. (trailing dot) or lower ndots (dnsConfig.options ndots:{max(dots, 1)}); "
        "`resolvconf --probe-wildcards` asks each search domain whether it answers any name",
        wasted_candidates=len(before), searched_before=before, node_domains=node)


def probe_wildcards(conf: ResolvConf, deadline: Deadline) -> list[DomainProbe]:
    """One random name under each search domain, through the first nameserver, at once; when
    one resolves, one random name under the root too (a nameserver that rewrites NXDOMAIN
    answers it as well)."""
    from concurrent.futures import ThreadPoolExecutor

    from toolkit.dns.wildcard import ROOT, WildcardProbe, probe_domain

    domains = [d for d in dict.fromkeys(conf.search) if d != "."]
    if not domains or not conf.nameservers:
        return []
    server = conf.nameservers[0]
    server = server if "%" in server and server.lower().startswith("fe80") else server.split("%")[0]

    def plain(p: WildcardProbe | None) -> list[DomainProbe]:
        if p is None:  # no name can be made under it (the lint says why: search-domain-invalid)
            return []
        return [DomainProbe(domain=p.domain.rstrip(".") or ".", qname=p.qname, server=server,
                            outcome=p.result.outcome(), addresses=p.addresses)]

    with ThreadPoolExecutor(max_workers=len(domains), thread_name_prefix="wildcard") as pool:
        got = [x for found in pool.map(lambda d: plain(probe_domain(server, d, deadline, PROBE_TIMEOUT_S)), domains)
               for x in found]
    if any(p.addresses for p in got):
        got += plain(probe_domain(server, ROOT, deadline, PROBE_TIMEOUT_S))
    return got


def _cost_table(name: str, data: Mapping[str, object]) -> Table:
    return Table("cost of one lookup of " + name, ("queries", "worst-case time to fail", "naive bound"),
                 ((str(data["queries"]), f"{data['worst_case_fail_s']:.0f} s (glibc: per-server "
                   "backoff, search stops at the first timeout)",
                   f"{data['worst_case_fail_naive_s']:.0f} s (timeout x attempts x servers x candidates)"),))


def _probe_table(probes: list[DomainProbe]) -> Table:
    return Table("wildcard probes (a random name under each search domain)",
                 ("domain", "name asked", "server", "result"),
                 tuple((p.domain, p.qname, p.server, ", ".join(p.addresses) or p.outcome) for p in probes))


def analyze_resolvconf(resolv_path: str = "/etc/resolv.conf", hosts_path: str = "/etc/hosts",
                       nsswitch_path: str = "/etc/nsswitch.conf", name: str | None = None,
                       env: Mapping[str, str] | None = None, wildcards: Deadline | None = None) -> Report:
    """Lint the resolver configuration and, for ``name``, list what glibc will send. With
    ``wildcards`` (the deadline to probe under), ask each search domain whether it answers
    any name (the only network traffic of this command)."""
    conf = load_resolv_conf(resolv_path, env)
    hosts = load_hosts(hosts_path)
    nss = load_nsswitch(nsswitch_path)

    findings: list[Finding] = [*conf.findings, *nss.findings, *hosts.findings]
    probes = probe_wildcards(conf, wildcards) if wildcards is not None else None
    data: dict[str, object] = {  # the JSON contract (README "JSON contract", resolvconf)
        "path": conf.path,
        "nameservers": conf.nameservers,
        "ignored_nameservers": conf.ignored_nameservers,
        "search": conf.search,
        "options": conf.settings,
        "option_tokens": conf.options,
        "nodelocal_only": conf.nodelocal_only,
        "hosts_line": [{"source": s.name, "criteria": list(s.criteria)} for s in nss.sources],
        "hosts_line_default": nss.defaulted,
    }
    tables = [_settings_table(conf, nss)]
    if name is not None:
        name = name.strip()
        candidates = search_candidates(name, conf)
        overrides = hosts.lookup(name)
        silent = timeout_candidates(name, conf)
        data.update({
            "name": name,
            "candidates": candidates,
            "queries": queries_per_lookup(conf, len(candidates)),
            # glibc's real time to failure when no server answers (per-server backoff,
            # the walk stopping after the first timed-out candidate) ...
            "worst_case_fail_s": worst_case_seconds(conf, len(silent)),
            # ... and the textbook bound timeout x attempts x servers x candidates.
            "worst_case_fail_naive_s": float(conf.timeout * conf.attempts
                                             * max(len(conf.nameservers), 1) * len(candidates)),
            "hosts_overrides": [{"address": e.address, "names": list(e.names), "line": e.line}
                                for e in overrides],
        })
        findings += _name_findings(name, conf, hosts, nss, candidates, overrides)
        tables += [_candidate_table(conf, candidates), _cost_table(name, data)]
    if probes is not None:
        findings += wildcard_findings(conf, probes, search_candidates(name, conf) if name else ())
        data["wildcard_probes"] = probes
        tables.append(_probe_table(probes))
    # Most severe first, stable otherwise.
    findings.sort(key=lambda f: -f.severity.rank)
    notes = (("configuration analysis plus one wildcard probe per search domain (--probe-wildcards)",)
             if probes is not None else
             ("pure configuration analysis: no query was sent; `podtriage resolve NAME` asks the servers",))
    return Report(command="resolvconf", verdict=derive_verdict(findings), findings=tuple(findings),
                  data=data, tables=tuple(tables), subject=name or conf.path, notes=notes)
