"""What makes CoreDNS refuse to load a Corefile, beyond its syntax: each rule here is a
``coredns-refuses`` finding (critical) that quotes the error CoreDNS prints and names the
line it names (caddy's ``FILE:LINE - Error during parsing: ...``; the line of the directive
when CoreDNS names none).

- ``unknown property 'X'``: a property a plugin's setup.go does not know in that version
  (kubernetes ``upstream``, removed in 1.7; file ``fallthrough`` before 1.14; forward
  ``next`` before 1.12); the tables are the ``case`` labels of each setup.go at 1.11.3
  (node-cache's CoreDNS), 1.12.1 and 1.14.7; a version between two tables takes both, so
  nothing it may know is refused;
- hosts: an inline entry after ``fallthrough`` (setup.go reads inline lines only while no
  fallthrough zone is set);
- rewrite: an unknown rule type, a name rule with too few arguments, a regex Go refuses, a
  replacement that uses more ``{N}`` than the regex has groups (name.go getSubExprUsage counts
  the distinct ``{0}``..``{100}``), a pattern over 10,000 characters (1.14);
- template: a ``match`` regex Go refuses;
- etcd ``min-lease-ttl``/``max-lease-ttl``, grpc ``fallthrough``, secondary ``catalog`` and
  ``fallthrough``: unknown before 1.14 (their setup.go ``case`` labels at 1.12.1 and 1.14.7);
- errors ``consolidate``: 2 or 3 arguments before 1.14, 2 to 4 (``show_first``) since;
- forward: a destination whose transport is not dns:// or tls:// (https:// since 1.14.5);
- trace before 1.13 with a ``bind`` whose ``except`` removes every address: CoreDNS panics
  (plugin/trace/setup.go:39 at 1.12.1 reads ``cfg.ListenHosts[0]`` unchecked).

``syntax_refusal``: a Corefile the parser refuses, as the build says it: caddy checks each
directive name as it reaches it, so an unknown directive before the syntax error wins.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from toolkit.corefile import regex
from toolkit.corefile.document import CorefileError, Directive
from toolkit.corefile.lint_subjects import DirectiveFacts, where
from toolkit.corefile.plugins.base import Semantics
from toolkit.corefile.plugins.rewrite import rule_of
from toolkit.corefile.plugins.versions import Build, parse_version
from toolkit.model import Finding, Severity

_V = tuple[int, int, int]

# plugin -> (version, the properties its setup.go reads in that version)
_K8S_OLD = ("endpoint_pod_names pods namespaces endpoint tls labels namespace_labels fallthrough "
            "ttl noendpoints ignore kubeconfig")
_K8S_NEW = (_K8S_OLD + " zonal multicluster startup_timeout apiserver_qps apiserver_burst "
            "apiserver_max_inflight")
_FWD_1113 = ("except max_fails health_check force_tcp prefer_udp tls tls_servername expire policy "
             "max_concurrent")
_FWD_1121 = _FWD_1113 + " next failfast_all_unhealthy_upstreams"
_FWD_1147 = (_FWD_1121 + " max_connect_attempts max_age max_idle_conns read_timeout doh_method "
             "next_on_nodata failover resolver source_address")
_ETCD = "stubzones fallthrough debug path endpoint upstream tls credentials"
_GRPC = "except tls tls_servername policy"
_TEMPLATE = "match answer additional authority rcode ederror fallthrough upstream"

# plugin -> (version, the properties its setup.go reads in that version)
_PROPS: Mapping[str, tuple[tuple[_V, frozenset[str]], ...]] = {
    "kubernetes": (((1, 12, 1), frozenset(_K8S_OLD.split())),
                   ((1, 14, 7), frozenset(_K8S_NEW.split()))),
    "forward": (((1, 11, 3), frozenset(_FWD_1113.split())),
                ((1, 12, 1), frozenset(_FWD_1121.split())),
                ((1, 14, 7), frozenset(_FWD_1147.split()))),
    "file": (((1, 12, 1), frozenset({"reload", "upstream"})),
             ((1, 14, 7), frozenset({"fallthrough", "reload", "reload_by_mtime", "upstream"}))),
    "template": (((1, 11, 3), frozenset(_TEMPLATE.split())),),
    # etcd/setup.go, grpc/setup.go, secondary/setup.go: min-lease-ttl/max-lease-ttl, grpc's
    # fallthrough, secondary's catalog/fallthrough are newer than 1.12.1
    "etcd": (((1, 12, 1), frozenset(_ETCD.split())),
             ((1, 14, 7), frozenset((_ETCD + " min-lease-ttl max-lease-ttl").split()))),
    "grpc": (((1, 12, 1), frozenset(_GRPC.split())),
             ((1, 14, 7), frozenset((_GRPC + " fallthrough").split()))),
    "secondary": (((1, 12, 1), frozenset({"transfer"})),
                  ((1, 14, 7), frozenset({"transfer", "catalog", "fallthrough"}))),
}
_HOSTS_PROPS = {(1, 12, 1): frozenset({"fallthrough", "no_reverse", "ttl", "reload"}),
                (1, 14, 7): frozenset({"fallthrough", "fallthrough_unsupported", "no_reverse",
                                       "ttl", "reload"})}
_RULE_TYPES = frozenset({"name", "class", "type", "edns0", "ttl", "cname", "rcode"})


def known_properties(tables: tuple[tuple[_V, frozenset[str]], ...], sem: Semantics) -> frozenset[str]:
    """The properties a plugin knows in SEM's version: the newest table at or below it, and
    the next one too when the version lies between them (never refuse what it may know)."""
    v = parse_version(sem.version) or (99, 0, 0)
    below = [t for t in tables if t[0] <= v]
    above = [t for t in tables if t[0] > v]
    out: frozenset[str] = below[-1][1] if below else frozenset()
    if above and (not below or below[-1][0] != v):
        out |= above[0][1]
    return out


def refuses(x: DirectiveFacts, line: int, message: str, *, quote_line: bool = True) -> Finding:
    """The coredns-refuses finding for X: CoreDNS's own words, at LINE."""
    d, sem = x.directive, x.file.semantics
    said = f"plugin/{d.name}: Corefile:{line} - Error during parsing: {message}" if quote_line \
        else f"plugin/{d.name}: {message}"
    return x.file.finding(
        "coredns-refuses", Severity.CRITICAL,
        f"{sem.build.label} refuses to load this Corefile: {message} ('{d.name}' at {where(d)})",
        block=x.block.block, line=line, evidence=[f"CoreDNS says: {said}"],
        remedy=f"fix line {line}: CoreDNS exits at start (or keeps the old config on a reload) "
               "until it is fixed", plugin=d.name, coredns_error=said,
        coredns_version=sem.version)


def _property(x: DirectiveFacts) -> Finding | None:
    d = x.directive
    tables = _PROPS.get(d.name)
    if tables is None:
        return None
    known = known_properties(tables, x.file.semantics)
    for sub in d.block:
        if sub.name not in known:
            return refuses(x, sub.line, f"unknown property '{sub.name}'")
    return None


def _hosts(x: DirectiveFacts) -> Finding | None:
    d = x.directive
    known = known_properties(tuple(_HOSTS_PROPS.items()), x.file.semantics)
    fell = False
    for sub in d.block:
        if fell and sub.name not in known:
            return refuses(x, sub.line, f"unknown property '{sub.name}'")
        fell = fell or sub.name == "fallthrough"
    return None


def _rewrite(x: DirectiveFacts) -> Finding | None:
    rule = rule_of(x.directive)
    line = x.directive.line
    if rule.kind not in _RULE_TYPES:
        return refuses(x, line, f"invalid rule type {rule.kind!r}")
    if rule.kind != "name":
        return None
    if len(rule.args) < 2:
        return refuses(x, line, "too few arguments for a name rule")
    if len(rule.args) >= 3 and rule.args[0].lower() == "regex":
        frm, to = rule.args[1], rule.args[2]
        if len(frm) > regex.MAX_PATTERN and x.file.semantics.at_least("1.14.0"):
            return refuses(x, line, f"regex pattern too long: {len(frm)} > {regex.MAX_PATTERN}")
        try:
            groups = regex.check(frm)
        except regex.RegexError:
            return refuses(x, line, f"invalid regex matching pattern: {frm[:80]}")
        used = sum(1 for i in range(101) if "{" + str(i) + "}" in to)
        if used > groups:
            return refuses(x, line, f"the rewrite regex pattern ({to[:80]}) uses more "
                                    f"subexpressions than its corresponding matching regex "
                                    f"pattern ({frm[:80]})")
    return None


def _template(x: DirectiveFacts) -> Finding | None:
    for sub in x.directive.sub("match"):
        for rx in sub.args:
            try:
                regex.check(rx)
            except regex.RegexError:
                return refuses(x, sub.line, f"could not parse regex: {rx[:80]}")
    return None


def _errors(x: DirectiveFacts) -> Finding | None:
    """errors/setup.go parseConsolidate: 2 or 3 arguments up to 1.13, 2 to 4 (show_first)
    since 1.14 (c.ArgErr at the last argument)."""
    most = 4 if x.file.semantics.at_least("1.14.0") else 3
    for sub in x.directive.sub("consolidate"):
        if len(sub.args) < 2 or len(sub.args) > most:
            last = sub.args[-1] if sub.args else sub.name
            return refuses(x, sub.line,
                           f"Wrong argument count or unexpected line ending after '{last}'")
    return None


_FWD_SCHEMES = ("tls://", "dns://", "quic://", "grpc://", "https://", "unix://")


def _forward(x: DirectiveFacts) -> Finding | None:
    """forward/setup.go: a destination's transport must be dns or tls (https too since
    1.14.5: allowedTrans)."""
    allowed = {"dns", "tls"} | ({"https"} if x.file.semantics.at_least("1.14.5") else set())
    for host in x.directive.args[1:]:
        for scheme in _FWD_SCHEMES:
            if host.startswith(scheme) and scheme[:-3] not in allowed:
                return refuses(x, x.directive.line, f"'{scheme[:-3]}' is not supported as a "
                               f"destination protocol in forward: {host}", quote_line=False)
    return None


def _trace(x: DirectiveFacts) -> Finding | None:
    """trace before 1.13 reads the block's first listen address unchecked
    (plugin/trace/setup.go:39 at 1.12.1: ``cfg.ListenHosts[0]``): a ``bind`` whose ``except``
    removes every address leaves none, and CoreDNS panics at start (1.13 checks the length)."""
    if x.file.semantics.at_least("1.13.0"):
        return None
    addrs: list[str] = []
    gone: set[str] = set()
    for d in x.block.block.get("bind"):
        args = list(d.args)
        cut = args.index("except") if "except" in args else len(args)
        addrs += args[:cut]
        gone.update(args[cut + 1:])
        for sub in d.sub("except"):
            gone.update(sub.args)
    if not addrs or any(not _is_ip(a) for a in addrs + sorted(gone)):
        return None  # no bind, or interface names (what they hold is the host's)
    if {ipaddress.ip_address(a) for a in addrs} - {ipaddress.ip_address(a) for a in gone}:
        return None
    return refuses(x, x.directive.line, "panic: runtime error: index out of range [0] with "
                   "length 0 (trace reads the first listen address; bind's except removed "
                   "every one)", quote_line=False)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_BY_PLUGIN = {"hosts": _hosts, "rewrite": _rewrite, "template": _template, "errors": _errors,
              "forward": _forward, "trace": _trace}


def coredns_refuses(x: DirectiveFacts) -> Finding | None:
    """The first reason CoreDNS would refuse X's directive, or None."""
    d: Directive = x.directive
    found = _property(x)
    if found is None and d.name in _BY_PLUGIN:
        found = _BY_PLUGIN[d.name](x)
    return found


def syntax_refusal(exc: CorefileError, build: Build) -> CorefileError:
    """What BUILD says about a Corefile the parser refused with EXC: caddy checks each
    top-level directive against the build's directives as it reaches it (coredns/caddy
    caddyfile/parse.go directive(): "Unknown directive '%s'"), so an unknown one read before
    the syntax error is the error CoreDNS prints, at that directive's line."""
    for name, line in exc.directives_before:
        if build.index(name) is None:
            off = None if exc.file_line is None else exc.file_line - exc.line
            out = CorefileError(
                f"Unknown directive '{name}': {build.label} refuses to load it (the parser "
                f"stops there, before: {exc.detail})", line, 1, source=exc.source,
                file_line=None if off is None else line + off,
                hint="fix the plugin name, or run a CoreDNS build that has it")
            out.directives_before = exc.directives_before
            return out
    return exc
