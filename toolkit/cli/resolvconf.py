"""`podtriage resolvconf`: the adapter. The work is in toolkit.triage.resolvconf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.root import app
from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, explicit_file, run
from toolkit.report import OutputFormat

if TYPE_CHECKING:
    from toolkit.model import Report


@app.command("resolvconf")
def resolvconf_cmd(
    resolv_conf: Annotated[str, typer.Option("--file", "-f", metavar="PATH",
                                             help="The resolv.conf to read.")] = "/etc/resolv.conf",
    hosts: Annotated[str, typer.Option("--hosts", metavar="PATH",
                                       help="The hosts file to check for overrides.")] = "/etc/hosts",
    nsswitch: Annotated[str, typer.Option("--nsswitch", metavar="PATH",
                                          help="The nsswitch.conf whose hosts: line applies.")
                        ] = "/etc/nsswitch.conf",
    name: Annotated[str | None, typer.Option("--name", "-n", metavar="NAME", parser=validate.dns_name,
                                             help="Also list, in order, the names glibc asks DNS for "
                                                  "when the application looks up NAME.")] = None,
    probe_wildcards: Annotated[bool, typer.Option(
        "--probe-wildcards", help="Also ask the first nameserver for one random name under each search "
                                  "domain (and, when one resolves, under the root): a wildcard there, or a "
                                  "nameserver that rewrites NXDOMAIN, answers names meant for elsewhere. "
                                  "Sends these queries.")] = False,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Read resolv.conf, /etc/hosts and nsswitch.conf exactly as glibc does and lint them.

    Shows the nameservers glibc really uses (the first 3 that parse), the effective search
    list and options, and what is silently ignored (malformed lines, unknown options, a
    4th nameserver, CRLF line endings). With --name, lists the names glibc will query in
    order (search list and ndots applied), the number of queries, the time to failure when
    no server answers, and /etc/hosts entries that bypass DNS. Sends no packet, unless
    --probe-wildcards.

    Example: podtriage resolvconf --name api.corp.example -o json
    """
    # No network (but --probe-wildcards); the deadline bounds reading the files (a FIFO may
    # have no writer) and the probes.

    def build() -> Report:
        from toolkit.deadline import Deadline
        from toolkit.triage.resolvconf import analyze_resolvconf

        explicit_file(resolv_conf, "/etc/resolv.conf")
        explicit_file(hosts, "/etc/hosts")
        explicit_file(nsswitch, "/etc/nsswitch.conf")
        return analyze_resolvconf(resolv_conf, hosts, nsswitch, name, None,
                                  wildcards=Deadline.for_command(deadline) if probe_wildcards else None)

    run(build, output, deadline=deadline)
