"""``python -m toolkit.report.schemas DIR``: write every schema into DIR (``schemas/``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from toolkit.report.schemas import files


def main(argv: list[str]) -> int:
    """Write the schemas; exit 2 without a directory."""
    if len(argv) != 1:
        print("usage: python -m toolkit.report.schemas DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in files().items():
        (out / name).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
