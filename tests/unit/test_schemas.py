"""The JSON Schemas in schemas/ (issue 25, item 5): current with toolkit.report.schemas, valid
Draft 2020-12, and matched by REAL outputs of the CLI (no network needed), checked by both the
jsonschema reference implementation and toolkit.report.validate, which must agree. Also what
`podtriage merge` reads: concatenated documents without separators, and unusable inputs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app
from toolkit.report.schemas import files, schema_for
from toolkit.report.schemas.__main__ import main as write_schemas
from toolkit.report.validate import compile_schema, problem

from tests.unit.test_corefile_parser import SEED_COREDNS, SEED_NODELOCAL, shared_dir
from tests.unit.test_cli_resolvconf import SEED as SEED_RESOLV
from tests.unit.test_merge import diag

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
PCAPS = sorted((ROOT / "tests" / "data" / "pcaps").glob("*.pcap*"))

runner = CliRunner()


def test_schemas_dir_is_what_the_generator_writes(tmp_path):
    assert write_schemas([str(tmp_path)]) == 0
    made = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    kept = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.schema.json")}
    assert sorted(made) == sorted(kept), "schemas/ drifted: run python -m toolkit.report.schemas schemas/"
    for name in made:
        assert made[name] == kept[name], f"schemas/{name} drifted: run python -m toolkit.report.schemas schemas/"


@pytest.mark.parametrize("name", sorted(files()))
def test_schema_is_valid_draft_2020_12_and_compiles(name):
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    compile_schema(schema)       # raises SchemaError on a keyword the small validator lacks


def check(doc: dict, command: str | None = None) -> None:
    """DOC matches its command's schema for both validators (and both say so)."""
    command = command or doc["command"]
    schema = json.loads((SCHEMAS / files_name(command)).read_text(encoding="utf-8"))
    assert schema == schema_for(command)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    ours = compile_schema(schema)(doc, "$")
    assert not errors, f"jsonschema: {errors[:3]}"
    assert ours is None, f"toolkit.report.validate: {ours}"
    assert problem(doc) is None


def files_name(command: str) -> str:
    return command.replace(" ", "-") + ".schema.json"


def run_json(args: list[str], input: str | None = None, codes: tuple[int, ...] = (0, 1, 5)) -> dict:
    """Run podtriage ARGS -o json through the real Typer app: its one JSON document."""
    res = runner.invoke(app, [*args, "-o", "json"], input=input)
    assert res.exit_code in codes, (res.exit_code, res.output)
    return json.loads(res.stdout)


def resolv_files(tmp_path: Path) -> list[str]:
    r, h, n = tmp_path / "resolv.conf", tmp_path / "hosts", tmp_path / "nsswitch.conf"
    r.write_text(SEED_RESOLV)
    h.write_text("127.0.0.1 localhost\n10.0.0.5 api.corp.example\n")
    n.write_text("hosts: files dns\n")
    return ["--file", str(r), "--hosts", str(h), "--nsswitch", str(n)]


def seeds() -> list[str]:
    return [str(shared_dir() / SEED_NODELOCAL), str(shared_dir() / SEED_COREDNS)]


def test_corefile_outputs_match():
    lint = run_json(["corefile", "lint", *seeds()])
    assert lint["command"] == "corefile lint" and lint["findings"]
    check(lint)
    trace = run_json(["corefile", "trace", "api.xxx.xxx.xxx", "-c", seeds()[0], "-c", seeds()[1],
                      "--service-ip", "10.233.0.3"])
    assert trace["hops"]
    check(trace)
    check(run_json(["corefile", "trace", "www.example.com", "-c", seeds()[0], "-c", seeds()[1]]))
    check_doc = run_json(["corefile", "check", seeds()[1]])
    assert check_doc["verdict"] == "indeterminate" and check_doc["error"] is None
    check(check_doc)


def test_corefile_fixtures_match():
    for cf in sorted((ROOT / "tests" / "data" / "corefiles").glob("*/*.yaml")):
        # Some fixtures hold no Corefile (exit 3): their error document is checked too.
        doc = run_json(["corefile", "lint", str(cf)], codes=(0, 1, 3, 5))
        check(doc, doc["command"])


def test_resolvconf_outputs_match(tmp_path):
    check(run_json(["resolvconf", *resolv_files(tmp_path), "--name", "api.corp.example"]))
    check(run_json(["resolvconf", *resolv_files(tmp_path)]))
    odd = tmp_path / "odd"
    odd.mkdir()
    args = resolv_files(odd)
    (odd / "resolv.conf").write_text("nameserver 010.0.0.1\nnameserver fe80::1%eth0\nsearch a b\n"
                                     "options ndots:20 timeout:31 attempts:0 bogus\n")
    check(run_json(["resolvconf", *args, "--name", "x"]))


@pytest.mark.parametrize("pcap", PCAPS, ids=[p.name for p in PCAPS])
def test_capture_read_outputs_match(pcap):
    doc = run_json(["capture", "--read", str(pcap)])
    assert doc["command"] == "capture"
    check(doc)


def test_ndjson_summary_matches(tmp_path):
    res = runner.invoke(app, ["resolvconf", *resolv_files(tmp_path), "-o", "ndjson"])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    summary = [e for e in events if e.get("event") == "summary"]
    assert len(summary) == 1
    check({k: v for k, v in summary[0].items() if k != "event"})


def test_merge_outputs_match(tmp_path):
    docs = [diag("web-%d" % i, "node1") for i in range(3)]
    docs.append(run_json(["corefile", "lint", *seeds()]))
    docs.append(run_json(["resolvconf", *resolv_files(tmp_path)]))
    for d in docs:
        check(d)
    merged = run_json(["merge", "-"], input="\n".join(json.dumps(d) for d in docs))
    assert merged["reports"] == 5
    check(merged)
    # What merge printed can be merged again.
    check(run_json(["merge", "-"], input=json.dumps(merged)))


@pytest.mark.parametrize("args,code", [
    (["corefile", "lint", "/nonexistent/Corefile"], 3),
    (["corefile", "check", "/nonexistent/Corefile"], 3),
    (["corefile", "trace", "x.example", "-c", "/nonexistent/Corefile"], 3),
    (["corefile", "trace", "x.example", "-c", "/nonexistent/Corefile", "--service-ip", "nope"], 2),
    (["resolvconf", "--file", "/nonexistent/resolv.conf"], 3),
    (["capture", "--read", "/nonexistent/x.pcap"], 3),
    (["merge", "/nonexistent/x.json"], 3),
])
def test_error_documents_match(args, code):
    doc = run_json(args, codes=(code,))
    assert doc["verdict"] == "indeterminate" and doc["error"]["exit_code"] == code
    check(doc, doc["command"] if isinstance(doc.get("command"), str) else "")


def test_validators_agree_on_broken_documents(tmp_path):
    good = run_json(["resolvconf", *resolv_files(tmp_path)])
    broken = [
        {**good, "verdict": "fine"},
        {**good, "schema_version": 2},
        {**good, "findings": [{"code": "x"}]},
        {**good, "duration_ms": -1},
        {**good, "generated_at": "yesterday"},
        {k: v for k, v in good.items() if k != "notes"},
        {**good, "error": {"kind": "usage", "message": 1, "hint": None, "exit_code": 2}},
    ]
    schema = schema_for("resolvconf")
    for doc in broken:
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        ours = compile_schema(schema)(doc, "$")
        assert errors and ours is not None, (doc.get("verdict"), errors, ours)


def fleet_docs() -> list[dict]:
    docs = [diag("web-%d" % i, "node1") for i in range(3)]
    docs += [diag("web-%d" % i, "node2", "bad-answer", ("192.168.50.77",), top="answers differ")
             for i in (3, 4)]
    return docs


def test_merge_reads_five_documents_on_one_line_without_separators():
    line = "".join(json.dumps(d, separators=(",", ":")) for d in fleet_docs())
    assert "\n" not in line
    res = runner.invoke(app, ["merge", "-", "-o", "json"], input=line)
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    # It used to read them as one report: "1 reports: ok".
    assert doc["reports"] == 5 and doc["verdicts"] == {"bad-answer": 2, "ok": 3}
    assert doc["verdict"] == "bad-answer"
    check(doc)


def test_merge_counts_an_unusable_input_and_is_then_never_ok():
    ok = [diag("web-%d" % i, "node1") for i in range(5)]
    line = "".join(json.dumps(d, separators=(",", ":")) for d in ok)
    res = runner.invoke(app, ["merge", "-", "-o", "json"], input=line)
    assert res.exit_code == 0 and json.loads(res.stdout)["verdict"] == "ok"
    bad = {**ok[0], "verdict": 7}               # a wrong type in a known field
    truncated = json.dumps(ok[1])[:-40]         # cut short
    for extra in (json.dumps(bad), truncated):
        res = runner.invoke(app, ["merge", "-", "-o", "json"], input=line + extra)
        doc = json.loads(res.stdout)
        assert doc["reports"] == 5 and doc["unusable_count"] == 1, doc
        assert doc["verdict"] != "ok" and res.exit_code != 0, (doc["verdict"], res.exit_code)
        check(doc)


def test_cut_and_interrupted_reports_match():
    # A real fleet report, cut while rendering and stopped by a signal: output_cut and
    # interrupted are in the head every schema shares.
    from toolkit.kube.merge import Source, merge
    from toolkit.report.budget import KEEP, trimmed
    from toolkit.report.document import json_document
    from toolkit.report.interrupted import mark_interrupted

    docs = [diag("web-%d" % i, "node%d" % (i % 3)) for i in range(KEEP + 5)]
    report = merge([Source(doc=d, origin="pod") for d in docs])
    for cut in (trimmed(report, "deadline"), trimmed(mark_interrupted(report), "signal")):
        doc = json.loads(json.dumps(json_document(cut)))
        assert doc["output_cut"]["kept"] == KEEP
        check(doc)
    doc = json.loads(json.dumps(json_document(mark_interrupted(report))))
    assert doc["interrupted"] and doc["verdict"] == "indeterminate"
    check(doc)


def test_fleet_names_why_a_pods_document_was_unusable():
    # The plugin reads each pod's log as merge does: a document that does not match its
    # schema is missing with the reason, not "no JSON document".
    from toolkit.kube.container import Outcome
    from toolkit.kube.fleet import Place, Ran, collect

    good = diag("web-0", "node1")
    bad = {**diag("web-1", "node1"), "verdict": "fine"}
    runs = [(Place(origin="pod shop/web-0", node="node1"), Outcome(exit_code=0, log=json.dumps(good))),
            (Place(origin="pod shop/web-1", node="node1"), Outcome(exit_code=1, log="boot\n" + json.dumps(bad))),
            (Place(origin="pod shop/web-2", node="node1"), Outcome(exit_code=0, log="nothing\n"))]
    sources, missing = collect([(place, Ran.read(out, place.origin)) for place, out in runs])
    assert [s.origin for s in sources] == ["pod shop/web-0"]
    assert [m.where for m in missing] == ["pod shop/web-1", "pod shop/web-2"]
    assert "no usable JSON document" in missing[0].reason and "'fine'" in missing[0].reason
    assert "line 2" in missing[0].reason
    assert missing[1].reason == "no JSON document in the log (exit 0)"
