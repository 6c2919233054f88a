"""podtriage: one-shot DNS and network triage for Kubernetes pods.

The package is an importable library; ``toolkit.cli`` is a thin Typer adapter over it.
Nothing here imports scapy at import time (it costs ~1.4 s): only the capture and probe
code paths load it, lazily.
"""

__version__ = "0.1.0"

# The image the kubectl plugin attaches when neither --image nor $PODTRIAGE_IMAGE says
# otherwise. One place: the plugin, the publish script and the README read it from here.
DEFAULT_IMAGE = "ghcr.io/podtriage/podtriage:0.1"
