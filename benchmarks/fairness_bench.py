"""Fairness benchmark: the capture gate's false-reject rate and the identity scores, per person,
on the labelled real photos in ../shared/testdata/faces (pipeline.fairness). Prints JSON.

    python benchmarks/fairness_bench.py [--faces DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import FACES_DIR, machine, timed  # noqa: E402



def labelled(faces: Path) -> dict[str, list[Path]]:
    """identities.csv rows with a person id (the multi-face files carry notes, not ids)."""
    people: dict[str, list[Path]] = {}
    with open(faces / "identities.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["identity"].startswith("p") and row["identity"][1:].isdigit():
                people.setdefault(row["identity"], []).append(faces / row["file"])
    return people


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(FACES_DIR))
    args = parser.parse_args(argv)
    from pipeline.fairness import fairness_report

    seconds, report = timed(fairness_report, labelled(Path(args.faces)))
    report.update(benchmark="fairness", seconds=round(seconds, 2), machine=machine())
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
