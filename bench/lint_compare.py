"""Side by side on tests/lint_corpus: pooldoctor lint, pylint R1732, ruff (leak-related rules).

    .venv/bin/python bench/lint_compare.py

A tool "catches" an expected line (`# expect: PD2xx`) when it reports anything on that line
with the rules below; lines it reports that carry no marker are listed as its extra reports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "lint_corpus"
BIN = Path(sys.executable).parent
RUFF_RULES = "SIM115,S105,S106,S107,ASYNC210,ASYNC212,ASYNC220,ASYNC221,ASYNC222,ASYNC230," \
             "ASYNC250,ASYNC251"
_EXPECT = re.compile(r"#\s*expect:\s*(PD\d{3}(?:\s*,\s*PD\d{3})*)")

Hit = tuple[str, int]  # (file name, line)


def expected() -> dict[Hit, set[str]]:
    out: dict[Hit, set[str]] = {}
    for path in sorted(CORPUS.rglob("*.py")):
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            m = _EXPECT.search(line)
            if m:
                out[(path.name, n)] = {c.strip() for c in m.group(1).split(",")}
    return out


def pooldoctor() -> dict[Hit, set[str]]:
    proc = subprocess.run([str(BIN / "pooldoctor"), "lint", "--isolated", "-q", "--format",
                           "json", str(CORPUS)], capture_output=True, text=True, check=False)
    hits: dict[Hit, set[str]] = defaultdict(set)
    for f in json.loads(proc.stdout)["findings"]:
        hits[(Path(f["site"]["file"]).name, f["site"]["line"])].add(f["code"])
    return hits


def pylint() -> dict[Hit, set[str]]:
    proc = subprocess.run([str(BIN / "pylint"), "--disable=all", "--enable=R1732",
                           "--persistent=n", "--score=n", "--output-format=json", str(CORPUS)],
                          capture_output=True, text=True, check=False)
    hits: dict[Hit, set[str]] = defaultdict(set)
    for m in json.loads(proc.stdout or "[]"):
        hits[(Path(m["path"]).name, m["line"])].add(m["message-id"])
    return hits


def ruff() -> dict[Hit, set[str]]:
    proc = subprocess.run([str(BIN / "ruff"), "check", "--isolated", "--no-cache",
                           "--select", RUFF_RULES, "--output-format", "json", str(CORPUS)],
                          capture_output=True, text=True, check=False)
    hits: dict[Hit, set[str]] = defaultdict(set)
    for m in json.loads(proc.stdout or "[]"):
        hits[(Path(m["filename"]).name, m["location"]["row"])].add(m["code"])
    return hits


def main() -> int:
    want = expected()
    by_code: dict[str, int] = defaultdict(int)
    for codes in want.values():
        for c in codes:
            by_code[c] += 1
    tools = {"pooldoctor lint": pooldoctor(), "pylint R1732": pylint(),
             f"ruff {RUFF_RULES.split(',')[0]}+S10x+ASYNC2xx": ruff()}
    print(f"corpus: {CORPUS.relative_to(ROOT)}: {len(want)} lines with expected findings")
    print(f"{'tool':<34} {'caught':>8} {'recall':>7} {'extra lines':>12}")
    for name, hits in tools.items():
        caught = [h for h in want if h in hits]
        extra = sorted(h for h in hits if h not in want)
        print(f"{name:<34} {len(caught):>8} {len(caught) / len(want):>7.0%} {len(extra):>12}")
    print("\nper code (lines caught by pooldoctor / pylint / ruff):")
    pd, pl, rf = tools.values()
    for code in sorted(by_code):
        lines = [h for h, codes in want.items() if code in codes]
        print(f"  {code}: {sum(h in pd for h in lines)}/{len(lines)}  "
              f"{sum(h in pl for h in lines)}/{len(lines)}  {sum(h in rf for h in lines)}/"
              f"{len(lines)}")
    for name, hits in list(tools.items())[1:]:
        print(f"\n{name}: reports on lines without a marker:")
        for h in sorted(h for h in hits if h not in want):
            print(f"  {h[0]}:{h[1]} {','.join(sorted(hits[h]))}")
        print(f"{name}: expected lines it catches that pooldoctor misses:")
        for h in sorted(h for h in hits if h in want and h not in pd):
            print(f"  {h[0]}:{h[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
