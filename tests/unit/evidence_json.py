"""diagnose Evidence to and from JSON: lab runs recorded as fixtures (tests/unit/data/evidence/).

Record one (inside a lab pod, as root):
    PT_LAB_PREFIX=x scripts/lab exec pod .venv/bin/python -m tests.unit.evidence_json \
        api.corp.example --port 80 --reference 192.168.60.53 > tests/unit/data/evidence/NAME.json

Loading is strict: a key that no longer names a field, or a word outside the enums, raises,
so a renamed field or state fails the fixture tests instead of turning into "unknown".
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from typing import Any

from toolkit.dns.query import QueryError, QueryResult, Soa, Transport
from toolkit.dns.walk import AddrInfoResult, PathResult, Server, ServerRole, path_outcome
from toolkit.model import Finding, Severity, Verdict, to_jsonable
from toolkit.probe.model import AddressReport, ProbeKind, ProbeOutcome, ProbeResult
from toolkit.sysinfo.routes import Route
from toolkit.triage.evidence import Evidence
from toolkit.triage.resolve import ResolveResult


def dump(e: Evidence) -> str:
    doc = to_jsonable(dataclasses.replace(e, processes=(), app_sockets=()))
    return json.dumps(doc, indent=1, sort_keys=True)


def _make(cls, d: dict, **nested) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    props = set(getattr(cls, "__json_properties__", ()))
    unknown = set(d) - names - props
    if unknown:
        raise KeyError(f"{cls.__name__}: no field(s) {sorted(unknown)}")
    kw = {k: v for k, v in d.items() if k in names}
    for k, conv in nested.items():
        if kw.get(k) is not None:
            kw[k] = conv(kw[k])
    for k, v in kw.items():
        if isinstance(v, list):
            kw[k] = tuple(v)
    return cls(**kw)


def _query(d: dict) -> QueryResult:
    return _make(QueryResult, d, soa=lambda s: _make(Soa, s), started_at=datetime.fromisoformat,
                 transport=Transport, error=QueryError)


def _path(d: dict) -> PathResult:
    return _make(PathResult, d, queries=lambda qs: tuple(_query(q) for q in qs), role=ServerRole,
                 transport=Transport, outcome=path_outcome)


def _finding(d: dict) -> Finding:
    return _make(Finding, d, severity=Severity, verdict=Verdict)


def _report(d: dict) -> AddressReport:
    probes = lambda ps: tuple(_make(ProbeResult, p, kind=ProbeKind, result=ProbeOutcome) for p in ps)  # noqa: E731
    return _make(AddressReport, d, route=lambda r: _make(Route, r), probes=probes, control=probes)


def _resolve(d: dict) -> ResolveResult:
    return _make(ResolveResult, d, servers=lambda ss: tuple(_make(Server, s, role=ServerRole) for s in ss),
                 transports=lambda ts: tuple(Transport(t) for t in ts),
                 paths=lambda ps: tuple(_path(p) for p in ps), system=lambda s: _make(AddrInfoResult, s))


def load(text: str) -> Evidence:
    findings = lambda fs: tuple(_finding(f) for f in fs)  # noqa: E731
    return _make(Evidence, json.loads(text), resolve=_resolve,
                 probes=lambda rs: tuple(_report(r) for r in rs),
                 behind=lambda ps: tuple(_path(p) for p in ps),
                 conntrack_findings=findings, corefile_findings=findings)


def main(argv: list[str]) -> int:
    from toolkit.deadline import Deadline
    from toolkit.triage.diagnose import gather
    from toolkit.triage.resolve import parse_servers

    name, rest = argv[0], argv[1:]
    ports, refs, corefiles = [], [], []
    for flag, value in zip(rest[::2], rest[1::2]):
        {"--port": lambda v: ports.append(int(v)), "--reference": refs.append,
         "--corefile": corefiles.append}[flag](value)
    e = gather(name, references=parse_servers(refs, ServerRole.REFERENCE), ports=tuple(ports),
               corefiles=tuple(corefiles), deadline=Deadline(10.0))
    print(dump(e))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
