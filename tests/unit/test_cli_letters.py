"""One meaning per short option letter across every command (README "Options: one meaning
per letter"), and the old letters kept as hidden aliases for one release (toolkit.cli.aliases).

The walk covers click's whole command tree as Typer builds it, so a new command or option
that reuses a letter for another long option fails here, as does an undocumented letter.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import toolkit.cli  # noqa: F401 - registers every command on the root app
from toolkit.cli.aliases import OLD_SPELLINGS
from toolkit.cli.root import app

README = Path(__file__).resolve().parents[2] / "README.md"
runner = CliRunner()

# The table of README "Options: one meaning per letter": letter -> the long option it means.
LETTERS = {
    "-h": "--help",
    "-o": "--output",
    "-c": "--corefile",
    "-n": "--name",
    "-r": "--reference",
    "-f": "--file",
    "-s": "--server",
    "-t": "--type",
    "-p": "--port",
    "-N": "--count",
    "-R": "--read",
    "-w": "--write",
    "-i": "--interface",
    "-d": "--duration",
}


def _commands(cmd: Any = None, path: str = "") -> Iterator[tuple[str, Any]]:
    """(command path, click command) for the root and every command below it."""
    if cmd is None:
        cmd = typer.main.get_command(app)
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _commands(sub, f"{path} {name}".strip())


def _options(cmd: Any) -> Iterator[tuple[Any, list[str], str | None]]:
    """(click option, its short letters, its long name or None) of one command, help included."""
    for p in cmd.params:
        if p.param_type_name != "option":
            continue
        words = [*p.opts, *p.secondary_opts]
        shorts = [w for w in words if re.fullmatch(r"-[A-Za-z0-9]", w)]
        longs = [w for w in p.opts if w.startswith("--")]
        yield p, shorts, (longs[0] if longs else None)
    help_names = cmd.context_settings.get("help_option_names") if cmd.context_settings else None
    if help_names:
        yield None, [w for w in help_names if re.fullmatch(r"-[A-Za-z]", w)], "--help"


def _table() -> dict[str, dict[str, list[str]]]:
    """letter -> {long option -> [commands where the letter means it]} (visible options)."""
    table: dict[str, dict[str, list[str]]] = {}
    for path, cmd in _commands():
        for p, shorts, long in _options(cmd):
            if p is not None and p.hidden:
                continue
            for s in shorts:
                table.setdefault(s, {}).setdefault(str(long), []).append(path or "podtriage")
    return table


def test_every_short_letter_means_one_long_option_in_every_command():
    clashes = {s: meanings for s, meanings in _table().items() if len(meanings) > 1}
    assert not clashes, f"a letter means two options: {clashes}"


def test_the_letters_are_the_documented_table():
    used = {s: next(iter(m)) for s, m in _table().items()}
    assert used == LETTERS, "update LETTERS and README 'Options: one meaning per letter'"


def test_the_readme_table_names_every_letter():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Options: one meaning per letter", 1)[1].split("\n## ", 1)[0]
    for short, long in LETTERS.items():
        assert re.search(rf"`{short}`[^\n]*`{long}`", section), (short, long)
    for (command, letter), (long, _new) in OLD_SPELLINGS.items():
        assert re.search(rf"{command}[^\n]*`{letter}`[^\n]*`{long}`", section), (command, letter)


def test_every_short_option_has_a_long_name():
    for path, cmd in _commands():
        for p, shorts, long in _options(cmd):
            if shorts and (p is None or not p.hidden):
                assert long is not None, (path, shorts)


def test_hidden_options_are_exactly_the_registered_old_spellings():
    hidden: dict[tuple[str, str], Any] = {}
    for path, cmd in _commands():
        visible = {s for p, shorts, _ in _options(cmd) if p is None or not p.hidden for s in shorts}
        longs = {long for p, _, long in _options(cmd) if p is not None and not p.hidden}
        for p, shorts, long in _options(cmd):
            if p is None or not p.hidden:
                continue
            # an old letter only: no long name of its own, never a letter the command uses visibly
            assert long is None and len(shorts) == 1, (path, p.opts)
            assert shorts[0] not in visible, f"{path}: {shorts[0]} would be read two ways"
            target = OLD_SPELLINGS[(path, shorts[0])][0]
            assert target in longs, (path, target)
            hidden[(path, shorts[0])] = p
    assert set(hidden) == set(OLD_SPELLINGS)


def test_old_letters_are_not_in_help():
    r = runner.invoke(app, ["capture", "--help"])
    assert r.exit_code == 0
    assert "-N, --count" in r.output and "-R, --read" in r.output and "--filter BPF" in r.output
    assert not re.search(r"(^|\s)-[cfr][ ,]", r.output)


# --- the old spellings still work (the command's build closure shows what it would do) ---

def _seen(monkeypatch: pytest.MonkeyPatch, module: str) -> dict[str, Any]:
    """Replace ``run`` in a command module: record the build closure's variables, run nothing."""
    seen: dict[str, Any] = {}

    def fake_run(build: Any, *_args: Any, **_kwargs: Any) -> None:
        seen.update(inspect.getclosurevars(build).nonlocals)

    monkeypatch.setattr(f"toolkit.cli.{module}.run", fake_run)
    return seen


def test_capture_old_letters_mean_what_they_meant(monkeypatch):
    seen = _seen(monkeypatch, "capture")
    r = runner.invoke(app, ["capture", "-c", "5", "-f", "udp port 53"])
    assert r.exit_code == 0, r.output
    assert seen["count"] == 5 and seen["bpf"] == "udp port 53"
    assert "-c is the old spelling of --count" in r.output
    assert "-f is the old spelling of --filter" in r.output

    seen.clear()
    r = runner.invoke(app, ["capture", "-r", "dns.pcap"])
    assert r.exit_code == 0, r.output
    assert seen["read"] == "dns.pcap"
    assert "use -R/--read" in r.output


def test_capture_new_letters(monkeypatch):
    seen = _seen(monkeypatch, "capture")
    r = runner.invoke(app, ["capture", "-N", "5", "--filter", "udp"])
    assert r.exit_code == 0, r.output
    assert seen["count"] == 5 and seen["bpf"] == "udp" and "old spelling" not in r.output
    seen.clear()
    r = runner.invoke(app, ["capture", "-R", "dns.pcap"])
    assert r.exit_code == 0, r.output
    assert seen["read"] == "dns.pcap" and "old spelling" not in r.output


@pytest.mark.parametrize("argv", [
    ["capture", "-c", "5", "-N", "6"],
    ["capture", "-r", "a.pcap", "-R", "b.pcap"],
    ["capture", "-f", "udp", "--filter", "tcp"],
    ["conntrack", "race-test", "10.0.0.1", "-n", "5", "--count", "6"],
])
def test_old_and_new_spelling_together_is_a_usage_error(argv):
    r = runner.invoke(app, argv)
    assert r.exit_code == 2, r.output
    assert "old spelling" in r.output


def test_race_test_old_count_letter(monkeypatch):
    seen = _seen(monkeypatch, "conntrack")
    r = runner.invoke(app, ["conntrack", "race-test", "10.0.0.1", "-n", "7"])
    assert r.exit_code == 0, r.output
    assert seen["lookups"] == 7 and "-n is the old spelling of --count" in r.output
    for argv, want in ((["-N", "9"], 9), (["--count", "11"], 11), ([], 200)):
        seen.clear()
        r = runner.invoke(app, ["conntrack", "race-test", "10.0.0.1", *argv])
        assert r.exit_code == 0, r.output
        assert seen["lookups"] == want


@pytest.mark.parametrize("sub,head", [("lint", []), ("check", []), ("trace", ["x.example."])])
def test_corefile_subcommands_take_files_the_same_way(monkeypatch, sub, head):
    seen = _seen(monkeypatch, "corefile")
    for argv, want in ((["a", "b"], ["a", "b"]), (["-c", "a", "--corefile", "b"], ["a", "b"]),
                       (["a", "-c", "b"], ["a", "b"]), (["-"], ["-"])):
        seen.clear()
        r = runner.invoke(app, ["corefile", sub, *head, *argv])
        assert r.exit_code == 0, (argv, r.output)
        assert seen["files"] == want, argv


@pytest.mark.parametrize("sub,head", [("lint", []), ("check", []), ("trace", ["x.example."])])
def test_corefile_subcommands_without_files_are_usage_errors(sub, head):
    r = runner.invoke(app, ["corefile", sub, *head])
    assert r.exit_code == 2
    assert "-c FILE" in r.output
