"""pooldoctor's lint work in this process, without worker processes: for instruction counts.

    valgrind --tool=callgrind .venv/bin/python bench/lint_inprocess.py PATH [PATH ...]

Compare two commits by exporting the other one's sources (``git archive main src | tar -x -C
/tmp/main``) and running the same command with ``PYTHONPATH=/tmp/main/src``. Prints files,
lines and findings, so that both runs can be seen to do the same work.
"""

from __future__ import annotations

import sys

from pooldoctor.lint import lint_paths


def main() -> None:
    run = lint_paths(sys.argv[1:], jobs=1)
    print(f"{run.files} files, {run.lines} lines, {len(run.issues())} findings")


if __name__ == "__main__":
    main()
