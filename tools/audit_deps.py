"""Audit the pinned requirements against PyPI's vulnerability data (the package index's own feed,
which pip-audit's default service also reads).

For each ``name==version`` pin in requirements.txt: ``/pypi/<name>/<version>/json``'s
``vulnerabilities``; where a mirror or proxy does not serve per-version pages, the project page
``/pypi/<name>/json`` is used when its newest release *is* the pinned one (its ``vulnerabilities``
then describe exactly that release). Anything else is reported as not audited, never as clean.

    python tools/audit_deps.py [--requirements FILE] [--json]

Exit 0: every audited pin is free of known advisories; 1: an advisory affects a pin; 2: nothing
could be audited (no index access).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

INDEX = "https://pypi.org/pypi"
PIN = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9_.+!-]+)\s*(?:#.*)?$")


def pins(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for line in path.read_text().splitlines() if (m := PIN.match(line))]


def _get(url: str, timeout: float) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def audit_one(name: str, version: str, timeout: float = 20) -> dict:
    out = {"name": name, "version": version, "source": None, "vulnerabilities": [], "latest": None}
    try:
        data = _get(f"{INDEX}/{name}/{version}/json", timeout)
        if data is not None:
            out["source"] = "release"
        else:
            data = _get(f"{INDEX}/{name}/json", timeout)
            out["latest"] = data and data["info"]["version"]
            if data is None or data["info"]["version"] != version:
                return out  # not audited: no data about this exact release
            out["source"] = "project (pinned = newest)"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        out["error"] = type(exc).__name__
        return out
    out["vulnerabilities"] = [{"id": v.get("id"), "fixed_in": v.get("fixed_in"), "aliases": v.get("aliases")}
                              for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return out


def audit(requirements: Path) -> dict:
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda p: audit_one(*p), pins(requirements)))
    audited = [r for r in rows if r["source"]]
    return {"requirements": str(requirements), "pins": len(rows), "audited": len(audited),
            "not_audited": [f"{r['name']}=={r['version']}" for r in rows if not r["source"]],
            "vulnerable": [r for r in audited if r["vulnerabilities"]], "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", default=str(Path(__file__).resolve().parents[1] / "requirements.txt"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = audit(Path(args.requirements))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{report['audited']} of {report['pins']} pins audited; "
              f"{len(report['vulnerable'])} with known advisories")
        for r in report["vulnerable"]:
            print(f"  {r['name']}=={r['version']}: " + ", ".join(v["id"] for v in r["vulnerabilities"]))
        if report["not_audited"]:
            print("  not audited (the index served no data for these exact releases): "
                  + ", ".join(report["not_audited"]))
    if report["vulnerable"]:
        return 1
    return 0 if report["audited"] else 2


if __name__ == "__main__":
    sys.exit(main())
