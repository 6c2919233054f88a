"""Reading podtriage documents back from text: files, pipes and container logs as
``podtriage merge`` and the fleet runner get them (pretty-printed documents, NDJSON event
streams whose ``summary`` line is the document, log lines with a prefix before the JSON,
documents concatenated with or without separators: newlines, RS (RFC 7464), commas, a JSON
array of them).

Every JSON object found at the top level of the text that looks like a podtriage document
(it names ``tool``, ``schema_version``, or a ``verdict`` and a ``command``; NDJSON events
other than ``summary`` are not documents) is either a document, when it matches its
command's schema (toolkit.report.validate), or an unusable input, named with where it was
and why: truncated, not JSON, a number of more than 4,300 digits, NaN, a key given twice,
nested too deeply, a wrong type in a known field. Nothing that looks like a document is
dropped silently. Text that is not JSON (progress lines, errors, tables) is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolkit.report.validate import problem

# Any: a document is foreign JSON; every field is checked by the schema before it is read.
Document = dict[str, Any]

# Python refuses int() of more digits (sys.int_info.default_max_str_digits); a podtriage
# document never has one.
MAX_INT_DIGITS = 4300
# What an object that failed to decode must show near its start to count as a document.
_DOC_START = re.compile(r'"(schema_version|tool|command|verdict|event)"\s*:')
_DOC_PEEK = 400
STOP_EVERY = 32          # objects decoded between two looks at the stop condition


@dataclass(frozen=True, kw_only=True)
class Unusable:
    """Something that looked like a podtriage document and could not be used."""

    origin: str          # the file name, "stdin", "pod shop/web-1"
    where: str           # "line 12"
    reason: str


@dataclass(frozen=True, kw_only=True)
class Scan:
    """What one text held: its documents (in order), what could not be used, and whether
    the scan was stopped (deadline, signal) before the end."""

    documents: tuple[Document, ...]
    unusable: tuple[Unusable, ...]
    cut_at: int | None = None        # the offset the scan stopped at, None: read to the end
    length: int = 0


class _Problem(Exception):
    """Raised by the decoder hooks: the object is JSON but not a podtriage document."""


class _Decoder(json.JSONDecoder):
    """json's own (C) scanner with hooks that refuse what no podtriage document holds."""

    def __init__(self) -> None:
        super().__init__(parse_int=_parse_int, parse_constant=_parse_constant,
                         object_pairs_hook=_no_duplicate_keys)


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _Problem(f"a number of {len(text):,} digits")
    return int(text)


def _parse_constant(name: str) -> float:
    raise _Problem(f"{name} is not JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:  # Any: JSON values
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Problem(f"the key {key[:40]!r} is given twice (JSON readers disagree on which "
                               f"counts)")
            seen.add(key)
    return out


_DECODER = _Decoder()


def _is_candidate(obj: dict[str, Any]) -> bool:  # Any: JSON values
    event = obj.get("event")
    if event is not None and event != "summary":
        return False             # an NDJSON event other than the summary: not a document
    return "tool" in obj or "schema_version" in obj or ("verdict" in obj and "command" in obj)


def read_documents(text: str, origin: str, stop: Callable[[], bool] | None = None) -> Scan:
    """Every podtriage document in TEXT, and every unusable one (see the module docstring).
    STOP is asked every few objects; when it says so the scan ends where it is."""
    docs: list[Document] = []
    bad: list[Unusable] = []
    lines = _LineCounter(text)
    pos, n, decoded = 0, len(text), 0
    while pos < n:
        brace = text.find("{", pos)
        if brace < 0:
            break
        decoded += 1
        if stop is not None and decoded % STOP_EVERY == 0 and stop():
            return Scan(documents=tuple(docs), unusable=tuple(bad), cut_at=brace, length=n)
        try:
            obj, end = _DECODER.raw_decode(text, brace)
        except json.JSONDecodeError as exc:
            if _DOC_START.search(text, brace, brace + _DOC_PEEK):
                bad.append(Unusable(origin=origin, where=lines.at(brace),
                                    reason=f"not a whole JSON document (truncated?): {exc.msg} "
                                           f"at {lines.at(exc.pos)}"))
            pos = max(exc.pos, brace + 1)
            continue
        except (_Problem, RecursionError, ValueError) as exc:
            # A RecursionError says nested deeper than json's C scanner goes (about 1,000).
            if _DOC_START.search(text, brace, brace + _DOC_PEEK):
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
                bad.append(Unusable(origin=origin, where=lines.at(brace), reason=reason))
            pos = _line_end(text, brace)
            continue
        pos = end
        if not isinstance(obj, dict) or not _is_candidate(obj):
            continue
        if obj.get("event") == "summary":
            obj = {k: v for k, v in obj.items() if k != "event"}
        why = problem(obj)
        if why is None:
            docs.append(obj)
        else:
            bad.append(Unusable(origin=origin, where=lines.at(brace),
                                reason=f"not a podtriage document: {why}"))
    return Scan(documents=tuple(docs), unusable=tuple(bad), length=n)


def _line_end(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


class _LineCounter:
    """Line numbers of offsets asked in increasing order (each asked once: linear)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1

    def at(self, offset: int) -> str:
        """"line N" of OFFSET."""
        if offset < self._pos:                 # rare: an error position behind the last one
            return f"line {self._text.count(chr(10), 0, offset) + 1}"
        self._line += self._text.count("\n", self._pos, offset)
        self._pos = offset
        return f"line {self._line}"
