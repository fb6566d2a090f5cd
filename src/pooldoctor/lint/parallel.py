"""Files checked in worker processes when the run is large enough for it to pay."""

from __future__ import annotations

import gc
import os

from .checker import FileResult, check_file
from .index import Externals

# path, display path, codes, externals (None: the first look, which summarizes), and whether a
# file without a database word may be skipped (prefilter.py)
Job = tuple[str, str, frozenset[str], Externals | None, bool]

# below this many bytes of source the start of the workers costs more than it saves
PARALLEL_BYTES = 2_000_000


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def workers_for(jobs: list[Job], wanted: int | None) -> int:
    """How many processes: ``wanted`` when given, else one per core for a large run."""
    if wanted is not None:
        return max(1, min(wanted, len(jobs)))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    if cores < 2 or len(jobs) < 8 or sum(_size(j[0]) for j in jobs) < PARALLEL_BYTES:
        return 1
    return min(cores, len(jobs))


def _one(job: Job) -> FileResult:
    path, display, codes, external, skip = job
    return check_file(path, display, codes, external, summarize=external is None,
                      prefilter=skip)


def check_many(jobs: list[Job], wanted: int | None = None) -> list[FileResult]:
    """Check every job, in order; each result carries its module's summary on the first pass."""
    n = workers_for(jobs, wanted)
    if n <= 1:
        return [_one(job) for job in jobs]
    import multiprocessing  # only for a large run: a one-file run does not pay for the import
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(method),
                                 initializer=gc.disable) as pool:  # as lint_paths does
            return list(pool.map(_one, jobs, chunksize=max(1, len(jobs) // (n * 8))))
    except (OSError, RuntimeError):  # no processes allowed here: do it in this one
        return [_one(job) for job in jobs]
