"""`podtriage resolve`: the adapter. The work is in toolkit.triage.resolve."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, explicit_file, progress, run
from toolkit.cli.root import app
from toolkit.model import Report
from toolkit.report import OutputFormat


def _csv(value: str, allowed: tuple[str, ...], what: str, *, upper: bool = False) -> tuple[str, ...]:
    """A comma-separated option's items, normalised (upper or lower case) and checked (usage
    error otherwise)."""
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    norm = tuple(i.upper() if upper else i.lower() for i in items)
    bad = [i for i in norm if i not in allowed]
    if bad or not norm:
        raise typer.BadParameter(f"choose from {','.join(allowed)} (got {value!r})", param_hint=f"--{what}")
    return norm


@app.command("resolve")
def resolve_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", parser=validate.dns_name,
                                        help="The name the application looks up, as it spells it "
                                             "(the search list applies unless it ends with a dot).")],
    server: Annotated[list[str], typer.Option("--server", "-s", metavar="IP[:PORT]", parser=validate.endpoints,
                                              help="Also ask this nameserver (repeatable, or comma-separated).")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    reference: Annotated[list[str], typer.Option("--reference", "-r", metavar="IP[:PORT]", parser=validate.endpoints,
                                                 help="An independent resolver whose answer is taken as "
                                                      "the truth to compare against (e.g. the zone's "
                                                      "authoritative server). Repeatable.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    qtype: Annotated[str, typer.Option("--type", "-t", metavar="A,AAAA",
                                       help="Record types, comma-separated.")] = "A,AAAA",
    transport: Annotated[str, typer.Option("--transport", metavar="udp,tcp",
                                           help="Transports, comma-separated.")] = "udp,tcp",
    resolv_conf: Annotated[str, typer.Option("--file", "-f", metavar="PATH",
                                             help="The resolv.conf whose nameservers, search list and "
                                                  "ndots apply.")] = "/etc/resolv.conf",
    no_resolv_conf: Annotated[bool, typer.Option("--no-resolv-conf",
                                                 help="Ask only --server/--reference; no search list.")] = False,
    no_search: Annotated[bool, typer.Option("--no-search", help="Ask for NAME as given, no search list.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", parser=validate.seconds(0.05, 60.0), metavar="SECONDS",
                                           help="Per-query timeout (also bounded by --deadline).")] = 2.0,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Ask every resolver on the path for NAME and say where they disagree.

    Walks the search list exactly as glibc does (ndots, search domains, stop rules) against
    every nameserver of resolv.conf plus --server and --reference, over UDP and TCP, A and
    AAAA, all at once under --deadline; also shows what getaddrinfo() returns here.

    Example: podtriage resolve api.corp.example --reference 192.168.60.53 -o json
    """
    from toolkit.dns.query import Transport

    qtypes = _csv(qtype, ("A", "AAAA"), "type", upper=True)
    transports = tuple(Transport(t) for t in _csv(transport, tuple(Transport), "transport"))

    def build() -> Report:
        from toolkit.deadline import Deadline
        from toolkit.dns.walk import ServerRole
        from toolkit.triage.resolve import parse_servers, resolve_name
        from toolkit.triage.resolve_findings import resolve_report

        explicit_file(resolv_conf, "/etc/resolv.conf")
        dl = Deadline.for_command(deadline)
        res = resolve_name(name, resolv_conf=resolv_conf, servers=parse_servers(server, ServerRole.SERVER),
                           references=parse_servers(reference, ServerRole.REFERENCE), qtypes=qtypes,
                           transports=transports, deadline=dl, query_timeout=timeout,
                           use_resolv_conf=not no_resolv_conf, search=not (no_search or no_resolv_conf),
                           on_progress=progress)
        return resolve_report(res)

    run(build, output, deadline=deadline)
