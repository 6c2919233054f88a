"""podtriage: one-shot DNS and network triage for Kubernetes pods.

The package is an importable library; ``toolkit.cli`` is a thin Typer adapter over it.
Nothing here imports scapy at import time (it costs ~1.4 s): only the capture and probe
code paths load it, lazily.
"""

__version__ = "0.1.0"
