"""The ``options`` line (and ``RES_OPTIONS``) as glibc 2.36's res_setoptions() reads it:
tokens matched by *prefix* in the table's order (``rotatexyz`` is ``rotate``), numbers
through atoi and capped (``glibc_numbers``), unknown tokens silently ignored.

``read_options`` keeps what it noticed on the way (bad numbers, caps, prefix matches,
options without effect, unknown ones) for the lint rules; it never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.sysinfo.resolvconf.glibc_numbers import (
    NUMERIC_LIMITS, RES_DFLRETRY, RES_TIMEOUT, NumericOption, atoi, numeric_value,
)

# glibc 2.36 res_setoptions() table, in its order (order matters: prefix matching):
# option -> the ResolvConf attribute it sets.
FLAG_OPTIONS = (
    ("rotate", "rotate"),
    ("edns0", "edns0"),
    ("single-request-reopen", "single_request_reopen"),
    ("single-request", "single_request"),
    ("no_tld_query", "no_tld_query"),
    ("no-tld-query", "no_tld_query"),
    ("no-reload", "no_reload"),
    ("use-vc", "use_vc"),
    ("trust-ad", "trust_ad"),
    ("no-aaaa", "no_aaaa"),
)
# Accepted by resolv.conf(5) of some glibc version or another resolver, no effect in 2.36.
NO_EFFECT_OPTIONS = {
    "inet6": "deprecated in glibc 2.26 and without effect since; use getaddrinfo() hints",
    "debug": "only has an effect in a glibc built with debugging",
    "no-check-names": "glibc 2.36 ignores it (it never checks names in getaddrinfo)",
    "ip6-bytestring": "removed in glibc 2.25",
    "ip6-dotint": "removed in glibc 2.25",
    "no-ip6-dotint": "removed in glibc 2.25",
    "insecure1": "not implemented by glibc",
    "insecure2": "not implemented by glibc",
    "blast": "not implemented by glibc",
}


@dataclass(frozen=True)
class OptionToken:
    """One option token and where it was written."""

    token: str
    tail: str           # the text from the token on: atoi reads past it (``ndots: 3`` is 3)
    line: int | None    # None: from the RES_OPTIONS environment variable

    @property
    def where(self) -> str:
        """``line N`` or ``RES_OPTIONS``, for evidence lines."""
        return f"line {self.line}" if self.line else "RES_OPTIONS"


@dataclass(frozen=True, kw_only=True)
class OptionsRead:
    """The values glibc ends up with after every option token, and what was odd on the way."""

    ndots: int = 1
    timeout: int = RES_TIMEOUT
    attempts: int = RES_DFLRETRY
    flags: frozenset[str] = frozenset()       # ResolvConf attributes a flag option set
    bad_values: tuple[str, ...] = ()          # evidence: number options that are not digits
    clamped: tuple[str, ...] = ()             # evidence: numbers above glibc's cap
    prefix_matches: tuple[tuple[OptionToken, str], ...] = ()   # (token, option it is read as)
    no_effect: tuple[OptionToken, ...] = ()
    unknown: tuple[OptionToken, ...] = ()

    def flag(self, attribute: str) -> bool:
        """Whether the flag option that sets ResolvConf.``attribute`` was given."""
        return attribute in self.flags


def option_tokens(text: str) -> list[tuple[str, str]]:
    """res_setoptions() walk: each space/tab-delimited token, with the text from the token
    on (``ndots:``/``timeout:``/``attempts:`` run atoi() over that, so ``ndots: 3`` is 3)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in " \t":
            j += 1
        tok = text[i:j].rstrip("\r\n")
        if tok:
            out.append((tok, text[i:]))
        i = j
    return out


def _numeric_option(token: str) -> NumericOption | None:
    return next((k for k in NumericOption if token.startswith(k + ":")), None)


def _flag_option(token: str) -> tuple[str, str] | None:
    """The (option, attribute) row the token matches by prefix, first row first."""
    return next(((name, attr) for name, attr in FLAG_OPTIONS if token.startswith(name)), None)


def read_options(tokens: list[OptionToken]) -> OptionsRead:
    """Apply the tokens in order, as res_setoptions() does (the last value of a number wins)."""
    values: dict[NumericOption, int] = {NumericOption.NDOTS: 1, NumericOption.TIMEOUT: RES_TIMEOUT,
                                        NumericOption.ATTEMPTS: RES_DFLRETRY}
    flags: set[str] = set()
    bad: list[str] = []
    clamped: list[str] = []
    prefix: list[tuple[OptionToken, str]] = []
    no_effect: list[OptionToken] = []
    unknown: list[OptionToken] = []
    for opt in tokens:
        tok = opt.token
        numeric = _numeric_option(tok)
        if numeric is not None:
            n = atoi(opt.tail[len(numeric) + 1:])
            values[numeric] = value = numeric_value(numeric, n)
            if not tok[len(numeric) + 1:].isdigit():
                bad.append(f"{tok} ({opt.where}): glibc reads it as {numeric}:{value}")
            elif n > NUMERIC_LIMITS[numeric]:
                clamped.append(f"{tok} ({opt.where}): glibc caps it at {NUMERIC_LIMITS[numeric]}")
            continue
        row = _flag_option(tok)
        if row is not None:
            flags.add(row[1])
            if tok != row[0]:
                prefix.append((opt, row[0]))
        elif tok in NO_EFFECT_OPTIONS:
            no_effect.append(opt)
        else:
            unknown.append(opt)
    return OptionsRead(ndots=values[NumericOption.NDOTS], timeout=values[NumericOption.TIMEOUT],
                       attempts=values[NumericOption.ATTEMPTS], flags=frozenset(flags),
                       bad_values=tuple(bad), clamped=tuple(clamped), prefix_matches=tuple(prefix),
                       no_effect=tuple(no_effect), unknown=tuple(unknown))
