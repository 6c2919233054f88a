"""What the resolv.conf lint rules look at: the parsed file (``ResolvConf``), the problems
found line by line, the options as read, and how the file was written (CRLF, overridden
search lines, the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from toolkit.sysinfo.resolvconf.findings import MAX_FINDINGS_PER_CODE
from toolkit.sysinfo.resolvconf.options import OptionsRead
from toolkit.sysinfo.resolvconf.record import ResolvConf


class LineProblem(StrEnum):
    """Why one line did not count the way it reads; each value is its finding's code."""

    MALFORMED = "malformed-line"
    NAMESERVER_UNPARSABLE = "nameserver-unparsable"
    NAMESERVER_NONCANONICAL = "nameserver-noncanonical"


class LineProblems:
    """Collects per-line problems, at most MAX_FINDINGS_PER_CODE kept of each kind (a
    huge malformed file must stay cheap), all of them counted."""

    def __init__(self) -> None:
        self.items: dict[LineProblem, list[tuple[int, str, str]]] = {}   # (line, text, why)
        self.counts: dict[LineProblem, int] = {}

    def add(self, problem: LineProblem, line: int, text: str, why: str) -> None:
        """Note ``problem`` on line number ``line`` (``text``: the line, ``why``: the reason)."""
        self.counts[problem] = self.counts.get(problem, 0) + 1
        bucket = self.items.setdefault(problem, [])
        if len(bucket) < MAX_FINDINGS_PER_CODE:
            bucket.append((line, text, why))

    def kept(self, problem: LineProblem) -> list[tuple[int, str, str]]:
        """The (line, text, why) entries kept for ``problem``."""
        return self.items.get(problem, [])

    def count(self, problem: LineProblem) -> int:
        """How many lines had ``problem`` (kept or not)."""
        return self.counts.get(problem, 0)


@dataclass(frozen=True, kw_only=True)
class LintFacts:
    """Everything a lint rule may read: the parsed file and how it was written."""

    conf: ResolvConf
    path: str
    lines: LineProblems
    options: OptionsRead
    beyond: tuple[tuple[str, int], ...]  # (address, line) past MAXNS
    crlf: int
    search_line: int
    search_overridden: tuple[int, ...]
    env: Mapping[str, str]

    @property
    def servers(self) -> list[str]:
        """The nameservers glibc uses, without their %scope."""
        return [ns.split("%")[0] for ns in self.conf.nameservers]

    @property
    def unparsable(self) -> int:
        """Nameserver lines glibc could not parse."""
        return self.lines.count(LineProblem.NAMESERVER_UNPARSABLE)

    @property
    def had_any_nameserver_line(self) -> bool:
        """Whether the file had a nameserver line at all (usable or not)."""
        return not self.conf.implicit_nameserver or self.unparsable > 0
