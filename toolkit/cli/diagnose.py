"""`podtriage diagnose`: the adapter. The work is in toolkit.triage.diagnose."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, explicit_file, progress, run
from toolkit.cli.root import app
from toolkit.model import Report
from toolkit.report import OutputFormat


@app.command("diagnose")
def diagnose_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", parser=validate.dns_name,
                                        help="The name the application cannot reach, as it spells it.")],
    port: Annotated[list[int], typer.Option("--port", "-p", min=1, max=65535, metavar="N",
                                            help="The application's TCP port (repeatable). Without it "
                                                 "443 and 80 are tried, and a refusal there only "
                                                 "proves the host is up.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    reference: Annotated[list[str], typer.Option("--reference", "-r", metavar="IP[:PORT]", parser=validate.endpoints,
                                                 help="An independent resolver for the zone (its "
                                                      "authoritative server, the default upstream). "
                                                      "Repeatable. It is what lets podtriage tell a "
                                                      "stale answer from a dead host.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    server: Annotated[list[str], typer.Option("--server", "-s", metavar="IP[:PORT]", parser=validate.endpoints,
                                              help="Also ask this nameserver, e.g. the kube-dns "
                                                   "ClusterIP behind NodeLocal DNSCache.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    corefile: Annotated[list[str], typer.Option("--corefile", "-c", metavar="FILE",
                                                help="CoreDNS/NodeLocal Corefile or ConfigMap "
                                                     "(repeatable, - for stdin): names the block and "
                                                     "upstream behind a bad answer and uses the other "
                                                     "upstreams as references.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    corefile_role: Annotated[list[str], typer.Option(
        "--corefile-role", metavar="SELECTOR=ROLE",
        help="Say what a --corefile is instead of letting podtriage work it out (repeatable; "
             "as `corefile lint --role`): node-cache, node-cache-secondary, cluster-dns, "
             "custom-imports, server.")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    resolv_conf: Annotated[str, typer.Option("--file", "-f", metavar="PATH",
                                             help="The pod's resolv.conf.")] = "/etc/resolv.conf",
    capture: Annotated[float, typer.Option("--capture", parser=validate.seconds(0.0, 600.0), metavar="SECONDS",
                                           help="Also watch the pod's DNS traffic for this long "
                                                "(needs NET_RAW): the application's own lookups, "
                                                "the 5-second signature, unanswered queries.")] = 0.0,
    race_test: Annotated[int, typer.Option("--race-test", min=0, max=5000, metavar="N",
                                           help="Also run the conntrack A/AAAA race test with N "
                                                "lookups per mode against the first nameserver.")] = 0,
    # Issue 26's --dns-endpoints, parsed but not used on this branch (w3-stale-fleet): the kubectl
    # plugin passes it; branch w3-stale-conntrack adds the finding that uses it. Visible: a
    # hidden option is only ever an old spelling (tests/unit/test_cli_letters.py).
    dns_endpoints: Annotated[list[str], typer.Option(  # noqa: ARG001 - parsed, used by the other branch
        "--dns-endpoints", metavar="IP[,IP...]", parser=validate.ip_addresses,
        help="The live endpoints of the DNS Service (repeatable; the kubectl plugin passes "
             "them from its EndpointSlices).")] = [],  # noqa: B006 - Typer reads the default, nothing mutates it
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """One run, the whole picture: is it a bad DNS answer, an unreachable host, a closed port,
    a filtered path, a DNS server that does not answer, a DNS error or conntrack?

    Resolves NAME through every path (each resolv.conf server over UDP and TCP, each
    --server and --reference), probes every address (ARP, ICMP, TCP, with a control probe),
    reads conntrack counters, and classifies. Everything runs under one --deadline.
    The one-line verdict is also written to /dev/termination-log when it exists.

    Example: podtriage diagnose api.corp.example --port 443 --reference 10.0.0.53
    """

    def build() -> Report:
        from toolkit.deadline import Deadline
        from toolkit.dns.walk import ServerRole
        from toolkit.triage.diagnose import diagnose_report, gather
        from toolkit.triage.resolve import parse_servers

        explicit_file(resolv_conf, "/etc/resolv.conf")
        dl = Deadline.for_command(deadline)
        ev = gather(name, resolv_conf=resolv_conf, servers=parse_servers(server, ServerRole.SERVER),
                    references=parse_servers(reference, ServerRole.REFERENCE), ports=tuple(port),
                    corefiles=tuple(corefile), corefile_roles=tuple(corefile_role), deadline=dl,
                    capture_s=capture, race_count=race_test, on_progress=progress)
        return diagnose_report(ev)

    run(build, output, termination_log=True, deadline=deadline)
