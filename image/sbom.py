"""Write the image's SBOM: CycloneDX 1.5 JSON of the Debian and Python packages in it.

Usage (build stage of image/Containerfile, after image/mkroot.py):
    python3 image/sbom.py /rootfs ARCH

Lands in the image at /usr/share/podtriage/sbom.cdx.json; scripts/build-image also copies it
out to dist/ (README.md "The image"). Debian packages: those owning a file of the root
filesystem, read from dpkg's file lists (bookworm's packages still list /lib and /bin paths
that the merged /usr holds under /usr; the standard library's .pyc stand for their .py).
Python packages: every distribution in the venv. Deterministic: no random serial number, the
timestamp is SOURCE_DATE_EPOCH's (omitted without it).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

VENV = Path("/opt/podtriage")


def dpkg_owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for lst in sorted(Path("/var/lib/dpkg/info").glob("*.list")):
        pkg = lst.stem.split(":")[0]
        for line in lst.read_text(errors="replace").splitlines():
            owners.setdefault(line, pkg)
    return owners


def candidates(path: str) -> list[str]:
    out = [path]
    if path.endswith(".pyc"):
        out.append(path[:-1])
    for p in list(out):
        for top in ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/"):
            if p.startswith(top):
                out.append(p[len("/usr"):])
    return out


def debian_packages(root: Path) -> list[dict]:
    owners = dpkg_owners()
    files: dict[str, int] = {}
    for f in sorted(root.rglob("*")):
        if f.is_dir() or f.is_symlink():
            continue
        rel = "/" + str(f.relative_to(root))
        if rel.startswith(str(VENV) + "/"):
            continue
        # files from the SONAME link a library was copied under: resolve through dpkg's list
        for c in candidates(rel):
            if c in owners:
                files[owners[c]] = files.get(owners[c], 0) + 1
                break
    fmt = "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"
    rows = subprocess.run(["dpkg-query", "-W", "-f", fmt, *sorted(files)], check=True,
                          capture_output=True, text=True).stdout.splitlines()
    comps = []
    for row in rows:
        name, version, arch, src, src_version = row.split("\t")
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12"
        if src and src != name:
            purl += f"&upstream={src}"
        comps.append({
            "type": "library" if name.startswith("lib") else "application",
            "bom-ref": purl, "name": name, "version": version, "purl": purl,
            "properties": [{"name": "podtriage:files-in-image", "value": str(files[name])},
                           {"name": "debian:source", "value": f"{src} {src_version}"}],
        })
    return comps


def python_packages() -> list[dict]:
    site = next(VENV.glob("lib/python3*/site-packages"))
    comps = []
    for dist in sorted(importlib.metadata.distributions(path=[str(site)]),
                       key=lambda d: d.metadata["Name"].lower()):
        name, version = dist.metadata["Name"], dist.version
        purl = f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"
        comp = {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
        expr = dist.metadata.get("License-Expression")
        lic = dist.metadata.get("License")
        if expr:
            comp["licenses"] = [{"expression": expr}]
        elif lic and len(lic) < 100:
            comp["licenses"] = [{"license": {"name": lic}}]
        else:
            classifiers = [c.split(" :: ")[-1] for c in dist.metadata.get_all("Classifier") or []
                           if c.startswith("License ::")]
            if classifiers:
                comp["licenses"] = [{"license": {"name": c}} for c in classifiers]
        comps.append(comp)
    return comps


def main() -> int:
    root, arch = Path(sys.argv[1]), sys.argv[2]
    components = python_packages() + debian_packages(root)
    podtriage = next(c for c in components if c["name"] == "podtriage")
    body = json.dumps(components, sort_keys=True).encode()
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # same content, same serial number (reproducible builds)
        "serialNumber": f"urn:uuid:{uuid.UUID(hashlib.sha256(body).hexdigest()[:32])}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "podtriage image/sbom.py"}]},
            "component": {"type": "container", "name": "podtriage", "version": podtriage["version"],
                          "bom-ref": "podtriage-image",
                          "properties": [{"name": "oci:architecture", "value": arch}]},
        },
        "components": components,
    }
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde:
        bom["metadata"]["timestamp"] = datetime.datetime.fromtimestamp(
            int(sde), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = root / "usr/share/podtriage/sbom.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(bom, indent=1, sort_keys=True) + "\n")
    deb = sum(1 for c in components if c["purl"].startswith("pkg:deb/"))
    print(f"sbom: {out}: {len(components) - deb} Python and {deb} Debian packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
