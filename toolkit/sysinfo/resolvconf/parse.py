"""The resolv.conf parser: the text read line by line as glibc 2.36's ``res_init.c`` reads it
(keywords, nameserver addresses, search/domain, sortlist, options), then ``RES_OPTIONS`` and
``LOCALDOMAIN`` applied, then the lint (``toolkit.sysinfo.resolvconf.lint``) run over the
result. Pure and total: any text gives a ``ResolvConf``, oddities become findings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from enum import StrEnum

from toolkit.sysinfo.resolvconf.facts import LineProblem, LineProblems, LintFacts
from toolkit.sysinfo.resolvconf.findings import show
from toolkit.sysinfo.resolvconf.glibc_numbers import inet_aton_exact
from toolkit.sysinfo.resolvconf.lint import lint
from toolkit.sysinfo.resolvconf.options import OptionsRead, OptionToken, option_tokens, read_options
from toolkit.sysinfo.resolvconf.record import MAX_IGNORED_KEPT, MAXNS, ResolvConf


class Keyword(StrEnum):
    """The words res_init.c knows at the start of a line."""

    DOMAIN = "domain"
    SEARCH = "search"
    NAMESERVER = "nameserver"
    SORTLIST = "sortlist"
    OPTIONS = "options"


KEYWORDS = tuple(Keyword)
_BY_WORD = {str(k): k for k in Keyword}
_DOMAIN = Keyword.DOMAIN   # for the line walk: enum attribute access is slow in Python 3.11
# A keyword counts only at the very start of a line and with a space or tab after it.
_KEYWORD_RE = re.compile("(%s)[ \t]" % "|".join(KEYWORDS))


# ----------------------------------------------------------------------------- line values

def _parse_nameserver(rest: str) -> str | None:
    """The address glibc takes from the text after ``nameserver``, or None."""
    rest = rest.lstrip(" \t")
    word = rest
    for k, ch in enumerate(rest):
        if ch in " \t\n":
            word = rest[:k]
            break
    if not word:
        return None
    v4 = inet_aton_exact(word)
    if v4 is not None:
        return v4
    addr, sep, scope = word.partition("%")
    if not addr or not _ipv6_ok(addr):
        return None
    v6 = ipaddress.IPv6Address(addr)
    text = f"::ffff:{v6.ipv4_mapped}" if v6.ipv4_mapped else str(v6)
    return f"{text}%{scope}" if sep else text


def _ipv6_ok(text: str) -> bool:
    if not all(c in "0123456789abcdefABCDEF:." for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _words(text: str) -> list[str]:
    """Split on spaces and tabs only, as res_init.c does."""
    return [w for w in text.replace("\t", " ").split(" ") if w]


def _localdomain_words(value: str) -> list[str]:
    """LOCALDOMAIN as res_init.c splits it: the text up to the first space or tab is the
    first element (possibly empty: then it means the root), the other words follow; a
    newline ends the value."""
    value = value.split("\n", 1)[0]
    cut = min((k for k in (value.find(" "), value.find("\t")) if k >= 0), default=len(value))
    return [value[:cut], *_words(value[cut:])]


def _norm_search(domain: str) -> str:
    """One search element the way res_nsearch uses it: a leading dot is dropped, the root
    (empty or ``.``) becomes ``"."``, one trailing dot is dropped."""
    if domain.startswith("."):
        domain = domain[1:]
    if not domain:
        return "."
    return domain[:-1] if domain.endswith(".") else domain


def _why_malformed(line: str) -> str:
    stripped = line.lstrip(" \t")
    for kw in KEYWORDS:
        if stripped != line and stripped.startswith(kw):
            return "keywords must start the line: glibc ignores indented lines"
        if line.lower().startswith(kw) and not line.startswith(kw):
            return "keywords are lower case: glibc ignores this line"
        if line.rstrip("\r") == kw:
            return f"`{kw}` without a value is ignored"
        if line.startswith(kw) and len(line) > len(kw) and line[len(kw)] not in " \t":
            return f"`{kw}` must be followed by a space or a tab"
    word = stripped.split(None, 1)[0] if stripped.split() else stripped
    return f"unknown keyword {show(word, 40)!r}: glibc ignores the line"


def _parse_sortlist(rest: str) -> list[str]:
    out = []
    for item in _words(rest.split(";", 1)[0]):
        net, sep, mask = item.replace("&", "/").partition("/")
        addr = inet_aton_exact(net)
        if addr is None:
            continue
        if sep and inet_aton_exact(mask) is not None:
            out.append(f"{addr}/{inet_aton_exact(mask)}")
        else:
            first = int(addr.split(".")[0])
            default = "255.0.0.0" if first < 128 else "255.255.0.0" if first < 192 else "255.255.255.0"
            out.append(f"{addr}/{default}")
    return out


# ----------------------------------------------------------------------------- the line walk

class _Walk:
    """What the line walk has gathered so far (mutable while the lines are read)."""

    def __init__(self, localdomain: str | None) -> None:
        self.localdomain = localdomain
        self.lines = LineProblems()
        self.nameservers: list[tuple[str, int]] = []        # (address, line), all that parse
        # LOCALDOMAIN replaces search/domain: the file's lines are then skipped.
        self.search: list[str] | None = (None if localdomain is None
                                         else _localdomain_words(localdomain))
        self.search_at = 0
        self.search_overridden: list[int] = []
        self.sortlist: list[str] = []
        self.options: list[OptionToken] = []
        self.crlf = 0

    def read(self, text: str) -> None:
        """Walk every line of ``text`` (lines end at \\n only; a NUL ends a line's text)."""
        malformed = LineProblem.MALFORMED    # hoisted: enum attribute access is slow in 3.11
        for lineno, raw in enumerate(text.split("\n"), start=1):
            line = raw.split("\0", 1)[0]
            if not line:
                continue
            if line.endswith("\r"):
                self.crlf += 1
            if line[0] in "#;":
                continue
            m = _KEYWORD_RE.match(line)
            if m is None:
                if line.strip(" \t\r\v\f"):
                    self.lines.add(malformed, lineno, line, _why_malformed(line))
                continue
            keyword = _BY_WORD[m.group(1)]
            _READERS[keyword](self, keyword, lineno, line, line[m.end(1):])

    def search_line(self, keyword: Keyword, lineno: int, line: str, rest: str) -> None:
        """``domain`` and ``search`` replace each other, the last one wins; an empty one is
        skipped (it does not clear the list); ``domain`` keeps only its first word."""
        if self.localdomain is not None:
            return
        value = rest.lstrip(" \t")
        if not value:
            self.lines.add(LineProblem.MALFORMED, lineno, line, f"`{keyword}` without a value is ignored")
            return
        words = _words(value)
        if keyword is _DOMAIN:
            words = words[:1]
        if self.search is not None:
            self.search_overridden.append(self.search_at)
        self.search, self.search_at = words, lineno

    def nameserver_line(self, _keyword: Keyword, lineno: int, line: str, rest: str) -> None:
        """The first word, if it is an address; an inet_aton form that reads differently is noted."""
        addr = _parse_nameserver(rest)
        if addr is None:
            self.lines.add(LineProblem.NAMESERVER_UNPARSABLE, lineno, line, "not an IPv4 or IPv6 address")
            return
        word = _words(rest)[0]
        if ":" not in addr and word != addr:
            self.lines.add(LineProblem.NAMESERVER_NONCANONICAL, lineno, line,
                           f"{word!r} is read as {addr} (inet_aton: leading 0 = octal, 0x = hex, "
                           f"missing parts fill the last one)")
        self.nameservers.append((addr, lineno))

    def sortlist_line(self, _keyword: Keyword, _lineno: int, _line: str, rest: str) -> None:
        """Address/mask pairs (classful default masks), up to a ``;``."""
        self.sortlist.extend(_parse_sortlist(rest))

    def options_line(self, _keyword: Keyword, lineno: int, _line: str, rest: str) -> None:
        """Option tokens, applied after the whole file has been read."""
        self.options += [OptionToken(tok, tail, lineno) for tok, tail in option_tokens(rest)]


# What each keyword's line does to the walk.
_READERS: dict[Keyword, Callable[[_Walk, Keyword, int, str, str], None]] = {
    Keyword.DOMAIN: _Walk.search_line,
    Keyword.SEARCH: _Walk.search_line,
    Keyword.NAMESERVER: _Walk.nameserver_line,
    Keyword.SORTLIST: _Walk.sortlist_line,
    Keyword.OPTIONS: _Walk.options_line,
}


def _ignored_nameservers(walk: _Walk) -> list[str]:
    """Nameservers past MAXNS, then the text of the unparsable nameserver lines kept."""
    ignored = [a for a, _ in walk.nameservers[MAXNS:]]
    ignored += [show(t.split(None, 1)[1] if len(t.split(None, 1)) > 1 else "")
                for _, t, _ in walk.lines.kept(LineProblem.NAMESERVER_UNPARSABLE)]
    return ignored


def _conf_of(path: str, walk: _Walk, opts: OptionsRead) -> ResolvConf:
    """The ResolvConf the walk and the options add up to (findings not yet attached)."""
    used = [a for a, _ in walk.nameservers[:MAXNS]]
    implicit = not used
    if implicit:
        used = ["127.0.0.1"]
    search = tuple(_norm_search(d) for d in (walk.search or ()))
    return ResolvConf(
        path=path, nameservers=tuple(used),
        ignored_nameservers=tuple(_ignored_nameservers(walk)[:MAX_IGNORED_KEPT]),
        search=search, options=tuple(o.token for o in walk.options),
        sortlist=tuple(walk.sortlist), implicit_nameserver=implicit,
        search_from_hostname=not search and walk.search is None,
        ndots=opts.ndots, timeout=opts.timeout, attempts=opts.attempts,
        rotate=opts.flag("rotate"), single_request=opts.flag("single_request"),
        single_request_reopen=opts.flag("single_request_reopen"), use_vc=opts.flag("use_vc"),
        edns0=opts.flag("edns0"), no_aaaa=opts.flag("no_aaaa"), trust_ad=opts.flag("trust_ad"),
        no_tld_query=opts.flag("no_tld_query"), no_reload=opts.flag("no_reload"))


def parse_resolv_conf(text: str, path: str = "/etc/resolv.conf",
                      env: Mapping[str, str] | None = None) -> ResolvConf:
    """Parse resolv.conf text as glibc 2.36 does; never raises on any input text.

    ``env``: the process environment to apply (LOCALDOMAIN, RES_OPTIONS); None means none.
    """
    env = env or {}
    walk = _Walk(env.get("LOCALDOMAIN"))
    walk.read(text)
    res_options = env.get("RES_OPTIONS")
    if res_options:    # applied after the file: its values win
        walk.options += [OptionToken(tok, tail, None) for tok, tail in option_tokens(res_options)]
    opts = read_options(walk.options)
    conf = _conf_of(path, walk, opts)
    facts = LintFacts(conf=conf, path=path, lines=walk.lines, options=opts,
                      beyond=tuple(walk.nameservers[MAXNS:]), crlf=walk.crlf,
                      search_line=walk.search_at, search_overridden=tuple(walk.search_overridden),
                      env=env)
    return conf.with_findings(lint(facts))
