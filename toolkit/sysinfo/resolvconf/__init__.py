"""resolv.conf read exactly as glibc 2.36 (Debian 12) reads it, plus a lint.

Pure functions of text: nothing here touches the network or the hostname. The parser
follows ``resolv/res_init.c`` line by line; behaviour that surprises people and that
this module reproduces on purpose (each was checked against the real glibc 2.36 with
``res_ninit`` and ``getent ahosts`` against a recording DNS server):

* a keyword counts only at the very start of a line and only when a space or a tab
  follows it (``  nameserver 1.1.1.1``, ``NAMESERVER ...`` and ``search`` alone are
  ignored); ``#`` and ``;`` make a comment only as the first character of a line;
* lines end at ``\\n`` only: a ``\\r`` (CRLF file) stays in the value, which makes
  ``nameserver 10.0.0.1\\r`` unparsable and puts ``\\r`` into the last search domain;
* a NUL byte ends the line's text as far as the C string functions see it;
* ``nameserver`` takes the first space/tab-delimited word: an IPv4 address in any form
  ``inet_aton`` accepts (``10.1`` is 10.0.0.1, ``010.0.0.1`` is *8*.0.0.1, ``0x0a000001``
  is 10.0.0.1), else IPv6 with an optional ``%scope``; only the first 3 (MAXNS) are used;
* ``domain`` keeps only its first word; ``domain`` and ``search`` replace each other and
  the last one wins; an empty ``search``/``domain`` line is skipped (it does not clear);
* ``options`` are matched by *prefix* (``rotatexyz`` is ``rotate``), ``ndots:``,
  ``timeout:`` and ``attempts:`` go through ``atoi`` (``ndots:abc`` is 0), values above
  the maximum are clamped (15, 30, 5) but negative ones are not (``ndots`` is a 4-bit
  field in ``res_state``, so ``ndots:-1`` ends up as 15); unknown options are silently
  ignored; ``inet6``, ``debug`` and ``no-check-names`` have no effect in 2.36;
* ``RES_OPTIONS`` is applied after the file, ``LOCALDOMAIN`` replaces search/domain.

Modules, one concept each: ``glibc_numbers`` (atoi, the caps, inet_aton), ``record`` (the
``ResolvConf`` result), ``options`` (res_setoptions), ``parse`` (the line walk), ``facts``
and ``lint`` (the lint rules and their table), ``search`` (the names glibc asks for),
``timing`` (time to failure, queries per lookup), ``files`` (file input), ``findings``
(the finding helpers). Import from here: ``from toolkit.sysinfo.resolvconf import X``.
"""

from __future__ import annotations

from toolkit.sysinfo.resolvconf.files import (
    HARD_READ_LIMIT, MAX_READ_BYTES, decode_text, environ_subset, load_resolv_conf, read_input,
)
from toolkit.sysinfo.resolvconf.findings import MAX_FINDINGS_PER_CODE, finding, show
from toolkit.sysinfo.resolvconf.glibc_numbers import (
    RES_DFLRETRY, RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY, RES_TIMEOUT, inet_aton_exact,
)
from toolkit.sysinfo.resolvconf.lint import LINT_RULES, LintRow
from toolkit.sysinfo.resolvconf.parse import KEYWORDS, parse_resolv_conf
from toolkit.sysinfo.resolvconf.record import (
    MAX_IGNORED_KEPT, MAXNS, NODELOCAL_ADDRESSES, OLD_MAXDNSRCH, OLD_SEARCH_CHARS,
    SYSTEMD_RESOLVED_STUB, ResolvConf,
)
from toolkit.sysinfo.resolvconf.search import (
    SearchOutcome, host_name_ok, search_candidates, timeout_candidates, walk_search,
)
from toolkit.sysinfo.resolvconf.timing import per_server_timeouts, queries_per_lookup, worst_case_seconds


__all__ = [
    "HARD_READ_LIMIT", "KEYWORDS", "LINT_RULES", "MAXNS", "MAX_FINDINGS_PER_CODE",
    "MAX_IGNORED_KEPT", "MAX_READ_BYTES", "NODELOCAL_ADDRESSES", "OLD_MAXDNSRCH",
    "OLD_SEARCH_CHARS", "RES_DFLRETRY", "RES_MAXNDOTS", "RES_MAXRETRANS", "RES_MAXRETRY",
    "RES_TIMEOUT", "SYSTEMD_RESOLVED_STUB", "LintRow", "ResolvConf", "SearchOutcome",
    "decode_text", "environ_subset", "finding", "host_name_ok",
    "inet_aton_exact", "load_resolv_conf", "parse_resolv_conf", "per_server_timeouts",
    "queries_per_lookup", "read_input", "search_candidates", "show", "timeout_candidates",
    "walk_search", "worst_case_seconds",
]
