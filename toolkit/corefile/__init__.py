"""CoreDNS Corefile analysis: parser, sources (ConfigMaps), lint rules and name tracing.

Pure library code: nothing here prints, exits or touches the network.
"""

from toolkit.corefile.addresses import ZoneAddress
from toolkit.corefile.document import Corefile, CorefileError, Directive, ServerBlock
from toolkit.corefile.parser import parse_corefile

__all__ = ["Corefile", "CorefileError", "Directive", "ServerBlock", "ZoneAddress", "parse_corefile"]
