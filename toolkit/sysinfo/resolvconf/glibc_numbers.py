"""How glibc 2.36 reads the numbers in resolv.conf: ``atoi`` for ``ndots:``/``timeout:``/
``attempts:`` and the caps res_init.c puts on them, and the ``inet_aton`` forms that
``nameserver`` and ``sortlist`` accept (``10.1``, ``010.0.0.1``, ``0x0a000001``).

C semantics on purpose, not Python's: ``ndots:abc`` is 0, ``ndots:-1`` is 15 (a 4-bit field),
``010`` is octal.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

# resolv/resolv.h and res_init.c (glibc 2.36).
RES_MAXNDOTS = 15
RES_MAXRETRANS = 30
RES_MAXRETRY = 5
RES_TIMEOUT = 5
RES_DFLRETRY = 2


class NumericOption(StrEnum):
    """The ``options`` that take a number after a colon, in res_setoptions() order."""

    NDOTS = "ndots"
    TIMEOUT = "timeout"
    ATTEMPTS = "attempts"


# The caps res_setoptions() applies (values above are clamped; negative ones are not).
NUMERIC_LIMITS: dict[NumericOption, int] = {
    NumericOption.NDOTS: RES_MAXNDOTS,
    NumericOption.TIMEOUT: RES_MAXRETRANS,
    NumericOption.ATTEMPTS: RES_MAXRETRY,
}


def atoi(text: str) -> int:
    """C ``atoi``: leading whitespace, sign, decimal digits; (int)strtol on overflow."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    if j == i:
        return 0
    value = sign * int(text[i:j]) if j - i < 40 else sign * (1 << 80)
    value = max(-(1 << 63), min((1 << 63) - 1, value))      # strtol clamps to long
    value &= 0xFFFFFFFF                                      # (int) truncation
    return value - (1 << 32) if value >= 1 << 31 else value


def numeric_value(option: NumericOption, n: int) -> int:
    """The value res_state keeps for ``option:n``: capped above at the option's limit, not
    below; ``ndots`` is a 4-bit field of res_state, so a negative ndots wraps (-1 is 15)."""
    limit = NUMERIC_LIMITS[option]
    value = limit if n > limit else n
    if option is NumericOption.NDOTS:
        value &= 0xF
    return value


# strtoul's result does not fit an unsigned long: glibc's inet_aton then rejects the
# address (``ul == ULONG_MAX && errno == ERANGE``, inet/inet_addr.c). Kept as a value above
# every limit, never converted: Python refuses int() of more than 4,300 digits (a ValueError
# that once ended a run with exit 4 on `nameserver 999...9`).
ULONG_OVERFLOW = 1 << 64
_DIGITS_MAX = {16: 16, 8: 22, 10: 20}   # digits of ULONG_MAX (64-bit) in each base


def _number(digits: str, base: int) -> int:
    """strtoul's value of DIGITS (all valid in BASE), saturated at ULONG_OVERFLOW."""
    significant = digits.lstrip("0")
    if len(significant) > _DIGITS_MAX[base]:
        return ULONG_OVERFLOW
    value = int(significant, base) if significant else 0
    return min(value, ULONG_OVERFLOW)


def _strtoul0(text: str, i: int) -> tuple[int, int]:
    """C ``strtoul(text + i, &end, 0)`` for a string known to start with a digit."""
    n = len(text)
    if text.startswith(("0x", "0X"), i) and i + 2 < n and text[i + 2] in "0123456789abcdefABCDEF":
        j = i + 2
        while j < n and text[j] in "0123456789abcdefABCDEF":
            j += 1
        return _number(text[i + 2:j], 16), j
    if text[i] == "0":
        j = i + 1
        while j < n and "0" <= text[j] <= "7":
            j += 1
        return _number(text[i:j], 8), j
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    return _number(text[i:j], 10), j


def inet_aton_exact(text: str) -> str | None:
    """glibc ``__inet_aton_exact``: the whole string must be an inet_aton address.

    Returns the dotted quad or None. Accepts ``a``, ``a.b``, ``a.b.c``, ``a.b.c.d`` with
    each number in C notation (0x hex, leading-0 octal, decimal).
    """
    parts: list[int] = []
    i, n = 0, len(text)
    while True:
        if i >= n or not "0" <= text[i] <= "9":
            return None
        value, i = _strtoul0(text, i)
        if value > 0xFFFFFFFF:
            return None
        if i < n and text[i] == ".":
            if len(parts) >= 3 or value > 0xFF:
                return None
            parts.append(value)
            i += 1
            continue
        break
    if i != n:
        return None
    limit = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)[len(parts)]
    if value > limit:
        return None
    packed = value
    for k, part in enumerate(parts):
        packed |= part << (24 - 8 * k)
    return str(ipaddress.IPv4Address(packed))
