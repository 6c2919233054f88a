"""``ResolvConf``: what glibc's stub resolver will do, as parsed from one resolv.conf, and the
limits of glibc and older resolvers that the lint measures it against."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.model import Finding
from toolkit.sysinfo.resolvconf.glibc_numbers import RES_DFLRETRY, RES_TIMEOUT

MAXNS = 3
NODELOCAL_ADDRESSES = frozenset({"169.254.20.10", "169.254.25.10"})
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
# Older resolvers: glibc < 2.26 keeps 6 search domains in at most 256 characters (MAXDNSRCH,
# the size of res_state.defdname); musl reads the search line into a 256-byte buffer.
OLD_MAXDNSRCH = 6
OLD_SEARCH_CHARS = 256
MAX_IGNORED_KEPT = 64


@dataclass(frozen=True, kw_only=True)
class ResolvConf:
    """What glibc's stub resolver will do, as parsed from one resolv.conf.

    ``search`` holds the effective search list with trailing dots removed; the root
    domain (a ``.`` element, or an empty LOCALDOMAIN word) is kept as ``"."``.
    ``timeout`` and ``attempts`` are the values glibc stores (clamped above, not below:
    a 0 or negative timeout waits 1 s per try, ``attempts:0`` sends nothing).
    """

    path: str
    nameservers: tuple[str, ...] = ()
    ignored_nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: int = RES_TIMEOUT
    attempts: int = RES_DFLRETRY
    rotate: bool = False
    single_request: bool = False
    single_request_reopen: bool = False
    use_vc: bool = False
    edns0: bool = False
    no_aaaa: bool = False
    trust_ad: bool = False
    no_tld_query: bool = False
    no_reload: bool = False
    options: tuple[str, ...] = ()
    sortlist: tuple[str, ...] = ()
    # True when no nameserver line was usable and glibc falls back to 127.0.0.1.
    implicit_nameserver: bool = False
    # True when neither search nor domain (nor LOCALDOMAIN) set a list: glibc then uses the
    # domain part of the hostname (not read here: this module is pure).
    search_from_hostname: bool = False
    findings: tuple[Finding, ...] = ()

    __json_properties__ = ("nodelocal_only",)

    @property
    def nodelocal_only(self) -> bool:
        """All nameservers glibc uses are NodeLocal DNSCache link-local addresses."""
        return bool(self.nameservers) and all(
            ns.split("%")[0] in NODELOCAL_ADDRESSES for ns in self.nameservers)

    @property
    def settings(self) -> dict[str, object]:
        """ndots, timeout, attempts and the option flags, as one JSON-ready mapping."""
        return {
            "ndots": self.ndots, "timeout": self.timeout, "attempts": self.attempts,
            "rotate": self.rotate, "single_request": self.single_request,
            "single_request_reopen": self.single_request_reopen, "use_vc": self.use_vc,
            "edns0": self.edns0, "no_aaaa": self.no_aaaa, "trust_ad": self.trust_ad,
            "no_tld_query": self.no_tld_query, "no_reload": self.no_reload,
        }

    def with_findings(self, findings: Iterable[Finding]) -> ResolvConf:
        """The same configuration with ``findings`` as its findings."""
        return dataclasses.replace(self, findings=tuple(findings))
