"""The resolv.conf lint: one rule per thing glibc does differently from what the file seems
to say, each a small function ``LintFacts -> Finding | None`` with its texts, collected with
a priority in ``LINT_RULES``. Every rule that fires gives one finding; findings come out in
priority order (the order a reader should see them: line problems, options, the file).

Adding a rule: a function here, a row in ``LINT_RULES``, a test in
tests/unit/test_resolvconf.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.resolvconf.facts import LineProblem, LintFacts
from toolkit.sysinfo.resolvconf.findings import finding, show
from toolkit.sysinfo.resolvconf.options import NO_EFFECT_OPTIONS
from toolkit.sysinfo.resolvconf.record import (
    MAX_IGNORED_KEPT, MAXNS, NODELOCAL_ADDRESSES, OLD_MAXDNSRCH, OLD_SEARCH_CHARS,
    SYSTEMD_RESOLVED_STUB,
)
from toolkit.sysinfo.resolvconf.search import encodable

LintRule = Callable[[LintFacts], "Finding | None"]
NO_NAMESERVER = "no-nameserver"   # the code load_resolv_conf replaces for a missing file


@dataclass(frozen=True)
class LintRow:
    """One rule of the table; a higher priority puts its finding earlier."""

    priority: int
    rule: LintRule


# ----------------------------------------------------------------------------- lines

def _line_finding(x: LintFacts, problem: LineProblem, severity: Severity, what: str,
                  remedy: str) -> Finding | None:
    """One finding for every line with ``problem``: the first lines as evidence, all counted."""
    items = x.lines.kept(problem)
    if not items:
        return None
    total = x.lines.count(problem)
    evidence = [f"line {n}: {show(t)} ({why})" for n, t, why in items]
    if total > len(items):
        evidence.append(f"... and {total - len(items)} more")
    return finding(problem.value, severity, f"{x.path}: {total} {what}", remedy, evidence=evidence,
                   lines=[n for n, _, _ in items], count=total)


def _lint_malformed(x: LintFacts) -> Finding | None:
    return _line_finding(x, LineProblem.MALFORMED, Severity.WARNING, "line(s) glibc ignores",
                         "start each line with domain, search, nameserver, sortlist or options "
                         "followed by a space; comment lines start with # or ;")


def _lint_unparsable(x: LintFacts) -> Finding | None:
    return _line_finding(x, LineProblem.NAMESERVER_UNPARSABLE, Severity.WARNING,
                         "nameserver line(s) glibc cannot parse, ignored",
                         "write one IPv4 or IPv6 address per nameserver line, nothing "
                         "glued to it (no port, no comment)")


def _lint_noncanonical(x: LintFacts) -> Finding | None:
    return _line_finding(x, LineProblem.NAMESERVER_NONCANONICAL, Severity.WARNING,
                         "nameserver address(es) written in a form inet_aton reads differently",
                         "write the address as a plain dotted quad without leading zeros")


# ----------------------------------------------------------------------------- options

def _lint_option_bad_value(x: LintFacts) -> Finding | None:
    bad = x.options.bad_values
    if not bad:
        return None
    return finding(
        "option-bad-value", Severity.WARNING,
        f"{len(bad)} option value(s) are not plain numbers; glibc reads them with atoi()",
        "write the number alone, e.g. `options ndots:2 timeout:2 attempts:3`", evidence=bad)


def _lint_option_clamped(x: LintFacts) -> Finding | None:
    if not x.options.clamped:
        return None
    return finding(
        "option-clamped", Severity.INFO, "option value(s) above glibc's maximum were capped",
        "use values within ndots<=15, timeout<=30, attempts<=5", evidence=x.options.clamped)


def _lint_option_prefix(x: LintFacts) -> Finding | None:
    prefix = x.options.prefix_matches
    if not prefix:
        return None
    return finding(
        "option-prefix-match", Severity.WARNING,
        "glibc matches options by prefix: " + ", ".join(f"{o.token!r} is read as {n!r}" for o, n in prefix),
        "spell the option exactly", evidence=[f"{o.token} ({o.where})" for o, _ in prefix])


def _lint_option_no_effect(x: LintFacts) -> Finding | None:
    no_effect = x.options.no_effect
    if not no_effect:
        return None
    return finding(
        "option-no-effect", Severity.INFO,
        "option(s) without effect in glibc 2.36: " + ", ".join(o.token for o in no_effect),
        "remove them; they change nothing",
        evidence=[f"{o.token}: {NO_EFFECT_OPTIONS[o.token]}" for o in no_effect])


def _lint_option_unknown(x: LintFacts) -> Finding | None:
    unknown = x.options.unknown
    if not unknown:
        return None
    return finding(
        "option-unknown", Severity.WARNING,
        "unknown option(s) silently ignored by glibc: " + ", ".join(show(o.token, 40) for o in unknown[:10]),
        "check the spelling against resolv.conf(5) (e.g. single-request-reopen, ndots:N)",
        evidence=[f"{show(o.token, 60)} ({o.where})" for o in unknown[:20]],
        options=[o.token for o in unknown[:20]])


# ----------------------------------------------------------------------------- the file

def _lint_crlf(x: LintFacts) -> Finding | None:
    if not x.crlf:
        return None
    return finding(
        "crlf-line-endings", Severity.WARNING,
        f"{x.crlf} line(s) end in CR LF: glibc keeps the \\r, so nameserver lines fail to "
        "parse and the last search domain gets a \\r appended",
        "convert the file to Unix line endings (dos2unix, or sed -i 's/\\r$//')", count=x.crlf)


def _lint_no_nameserver(x: LintFacts) -> Finding | None:
    if not x.conf.implicit_nameserver:
        return None
    why = ("no nameserver line could be parsed" if x.had_any_nameserver_line
           else "the file has no nameserver line")
    return finding(
        NO_NAMESERVER, Severity.WARNING,
        f"{why}: glibc falls back to 127.0.0.1, which in a pod is usually not a DNS server",
        "add a nameserver line (in Kubernetes: check the pod's dnsPolicy/dnsConfig and "
        "kubelet --cluster-dns)", verdict=Verdict.DNS_UNAVAILABLE)


def _lint_beyond_maxns(x: LintFacts) -> Finding | None:
    if not x.beyond:
        return None
    return finding(
        "nameserver-beyond-maxns", Severity.WARNING,
        f"glibc uses only the first {MAXNS} nameservers; {len(x.beyond)} more are ignored: "
        + ", ".join(a for a, _ in x.beyond[:8]),
        "keep at most 3 nameserver lines, most reliable first",
        evidence=[f"line {n}: {a}" for a, n in x.beyond[:20]],
        servers=[a for a, _ in x.beyond[:MAX_IGNORED_KEPT]], lines=[n for _, n in x.beyond[:20]])


def _lint_duplicate(x: LintFacts) -> Finding | None:
    servers = x.servers
    dups = sorted({s for s in servers if servers.count(s) > 1})
    if not dups or x.conf.implicit_nameserver:
        return None
    return finding(
        "nameserver-duplicate", Severity.WARNING,
        f"nameserver listed more than once: {', '.join(dups)}; retries go to the same server",
        "list each nameserver once", servers=dups)


def _lint_loopback(x: LintFacts) -> Finding | None:
    if SYSTEMD_RESOLVED_STUB in x.servers:
        return finding(
            "nameserver-systemd-resolved-stub", Severity.WARNING,
            "nameserver 127.0.0.53 is systemd-resolved's stub: inside a pod nothing listens there "
            "(a node resolv.conf copied into the pod, or a forwarding loop in CoreDNS)",
            "point kubelet --resolv-conf at /run/systemd/resolve/resolv.conf (the real upstreams)")
    if any(ipaddress.ip_address(s).is_loopback for s in x.servers) and not x.conf.implicit_nameserver:
        return finding(
            "nameserver-loopback", Severity.INFO,
            "a loopback nameserver only works when a DNS server runs in this network namespace",
            "make sure a local DNS server listens there, or use the cluster DNS address")
    return None


def _lint_nodelocal_single(x: LintFacts) -> Finding | None:
    servers, conf = x.servers, x.conf
    if len(servers) != 1 or servers[0] not in NODELOCAL_ADDRESSES:
        return None
    return finding(
        "nodelocal-single-nameserver", Severity.WARNING,
        f"the only nameserver is NodeLocal DNSCache {servers[0]}: a single point of failure "
        "(a nodelocaldns restart or crash on this node stops all lookups for "
        f"{conf.timeout * max(conf.attempts, 1)} s per name)",
        "run a secondary nodelocaldns (kubespray enable_nodelocaldns_secondary) or add the "
        "cluster DNS Service IP as a second nameserver via dnsConfig.nameservers",
        server=servers[0])


def _lint_rotate(x: LintFacts) -> Finding | None:
    servers = x.servers
    nodelocal = [s for s in servers if s in NODELOCAL_ADDRESSES]
    if x.conf.rotate and len(servers) == 1:
        return finding("rotate-no-effect", Severity.INFO,
                       "options rotate has no effect with a single nameserver",
                       "remove rotate, or add a second nameserver")
    if x.conf.rotate and nodelocal and len(nodelocal) < len(servers):
        return finding(
            "rotate-bypasses-nodelocal", Severity.WARNING,
            "options rotate spreads queries over NodeLocal DNSCache and the other nameserver(s), "
            "so part of the lookups bypass the node cache (and its conntrack-free path)",
            "drop rotate: keep NodeLocal first and the others as failover only")
    return None


def _lint_attempts(x: LintFacts) -> Finding | None:
    if x.conf.attempts > 0:
        return None
    return finding(
        "attempts-zero", Severity.CRITICAL,
        f"options attempts:{x.conf.attempts}: glibc sends no query at all, every lookup fails",
        "set attempts to 2 or more (or remove it: the default is 2)",
        verdict=Verdict.DNS_UNAVAILABLE)


def _lint_timeout(x: LintFacts) -> Finding | None:
    if x.conf.timeout > 0:
        return None
    return finding("timeout-zero", Severity.INFO,
                   f"options timeout:{x.conf.timeout}: glibc waits 1 s per try instead",
                   "set timeout to 1 or more")


def _lint_search_overridden(x: LintFacts) -> Finding | None:
    if not x.search_overridden:
        return None
    return finding(
        "search-overridden", Severity.INFO,
        f"several search/domain lines: only the last (line {x.search_line}) counts; "
        f"line(s) {', '.join(map(str, x.search_overridden))} are ignored",
        "keep one search line listing every domain", lines=list(x.search_overridden))


def _lint_localdomain_env(x: LintFacts) -> Finding | None:
    if "LOCALDOMAIN" not in x.env:
        return None
    return finding("localdomain-env", Severity.INFO,
                   f"LOCALDOMAIN={show(x.env['LOCALDOMAIN'], 80)!r} replaces the file's search list",
                   "unset LOCALDOMAIN unless it is intended")


def _lint_res_options_env(x: LintFacts) -> Finding | None:
    if not x.env.get("RES_OPTIONS"):
        return None
    return finding("res-options-env", Severity.INFO,
                   f"RES_OPTIONS={show(x.env['RES_OPTIONS'], 80)!r} overrides the file's options",
                   "unset RES_OPTIONS unless it is intended")


def _lint_hostaliases_env(x: LintFacts) -> Finding | None:
    if not x.env.get("HOSTALIASES"):
        return None
    return finding("hostaliases-env", Severity.INFO,
                   "HOSTALIASES is set: names without a dot may be replaced by an alias "
                   "from that file before any search", "unset HOSTALIASES unless intended")


def _lint_search_from_hostname(x: LintFacts) -> Finding | None:
    if not x.conf.search_from_hostname:
        return None
    return finding(
        "search-from-hostname", Severity.INFO,
        "no search or domain line: glibc uses the domain part of the hostname "
        "(the part after its first dot), if it has one",
        "add an explicit search line if names without a dot must be completed")


def _lint_search_root(x: LintFacts) -> Finding | None:
    if "." not in x.conf.search:
        return None
    return finding("search-root", Severity.INFO,
                   "the search list contains the root domain: the name as written is "
                   "tried at that position and not again at the end",
                   "this is rarely intended; list real domains only")


def _lint_search_invalid(x: LintFacts) -> Finding | None:
    bad_domains = [d for d in x.conf.search if d != "." and not encodable(f"x.{d}.")]
    if not bad_domains:
        return None
    return finding(
        "search-domain-invalid", Severity.WARNING,
        "search domain(s) that cannot form a DNS name (empty label, label over 63 bytes, "
        "control characters): " + ", ".join(show(d, 60) for d in bad_domains[:5]),
        "fix the search line; glibc stops walking the search list at such a domain",
        domains=[show(d) for d in bad_domains[:20]])


def _lint_search_long(x: LintFacts) -> Finding | None:
    search = x.conf.search
    chars = sum(len(d) + 1 for d in search)
    if len(search) <= OLD_MAXDNSRCH and chars <= OLD_SEARCH_CHARS:
        return None
    return finding(
        "search-list-long", Severity.WARNING,
        f"search list has {len(search)} domains / {chars} characters: glibc >= 2.26 uses "
        f"them all, but older glibc (6 domains, 256 characters) and musl (Alpine) ignore the rest",
        "keep at most 6 search domains and 256 characters (Kubernetes adds 3 of its own)",
        domains=len(search), chars=chars)


def _lint_ndots(x: LintFacts) -> Finding | None:
    conf = x.conf
    if conf.ndots < 5 or not conf.search:
        return None
    n = len(conf.search)
    per = 1 if conf.no_aaaa else 2
    return finding(
        "ndots-search-amplification",
        Severity.WARNING if (conf.ndots > 5 or n > 3) else Severity.INFO,
        f"ndots:{conf.ndots} with {n} search domain(s): an external name with fewer than "
        f"{conf.ndots} dots costs {per * (n + 1)} queries ({n} NXDOMAIN round trips first)",
        "set dnsConfig.options ndots:2 for this pod, or use fully qualified names with a "
        "trailing dot (api.corp.example.)", ndots=conf.ndots, search_domains=n,
        queries=per * (n + 1))


def _lint_sortlist(x: LintFacts) -> Finding | None:
    if not x.conf.sortlist:
        return None
    return finding("sortlist-gethostbyname-only", Severity.INFO,
                   "sortlist affects only gethostbyname(); getaddrinfo() orders addresses "
                   "by RFC 6724 (/etc/gai.conf)", "use /etc/gai.conf to change address order")


# The table: every rule runs, findings in descending priority. Line problems first, then
# what the options do, then the whole file (nameservers, search list, environment).
LINT_RULES: tuple[LintRow, ...] = (
    LintRow(290, _lint_malformed),
    LintRow(280, _lint_unparsable),
    LintRow(270, _lint_noncanonical),
    LintRow(250, _lint_option_bad_value),
    LintRow(240, _lint_option_clamped),
    LintRow(230, _lint_option_prefix),
    LintRow(220, _lint_option_no_effect),
    LintRow(210, _lint_option_unknown),
    LintRow(190, _lint_crlf),
    LintRow(180, _lint_no_nameserver),
    LintRow(170, _lint_beyond_maxns),
    LintRow(160, _lint_duplicate),
    LintRow(150, _lint_loopback),
    LintRow(140, _lint_nodelocal_single),
    LintRow(130, _lint_rotate),
    LintRow(120, _lint_attempts),
    LintRow(110, _lint_timeout),
    LintRow(100, _lint_search_overridden),
    LintRow(90, _lint_localdomain_env),
    LintRow(80, _lint_res_options_env),
    LintRow(70, _lint_hostaliases_env),
    LintRow(60, _lint_search_from_hostname),
    LintRow(50, _lint_search_root),
    LintRow(40, _lint_search_invalid),
    LintRow(30, _lint_search_long),
    LintRow(20, _lint_ndots),
    LintRow(10, _lint_sortlist),
)
_BY_PRIORITY = tuple(sorted(LINT_RULES, key=lambda row: -row.priority))


def lint(facts: LintFacts) -> list[Finding]:
    """Every finding the rules make about one parsed file, highest priority first."""
    return [f for row in _BY_PRIORITY if (f := row.rule(facts)) is not None]
