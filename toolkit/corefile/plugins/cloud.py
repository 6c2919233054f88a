"""route53, azure, clouddns: zones hosted by a cloud DNS service, written ``ZONE:ID``
(``route53 example.org.:Z1Z2Z3``, ``azure example.org:resource-group``, ``clouddns
example.org.:project:zone``; coredns/coredns plugin/route53, plugin/azure, plugin/clouddns)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.names import fqdn
from toolkit.corefile.plugins.base import Handler, each
from toolkit.corefile.plugins.zones import authoritative


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """The zone part of each ``ZONE:ID`` argument, else the block's zones."""
    return [fqdn(a.split(":")[0]) for a in d.args] or list(block.zones)


handler: Handler = each(authoritative(zones))
