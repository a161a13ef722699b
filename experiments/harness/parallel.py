"""Configs run in worker processes: one group per worker, the largest first."""

from __future__ import annotations

import sys
import time


class QuietBar:
    """The progress interface of the runners, silent (a worker, or a test)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass


def _run_group(runner, cfgs, docs) -> list:
    """One worker: its configs in order, in one process. Returns `(name, seconds)` per config."""
    times = []
    for cfg in cfgs:
        t1 = time.time()
        runner(cfg, docs, QuietBar())
        times.append((cfg["name"], time.time() - t1))
    return times


def run_parallel(groups, runner, units, docs, jobs: int):
    """`runner(cfg, docs, bar)` over `groups` (lists of configs that share a process, e.g. a memo)
    in `jobs` spawned workers (JAX does not survive a fork), the largest group (by `units`) first.
    Each config writes its own data and figures; docs/results.md is rewritten under a file lock
    (`harness.io.replace_block`), so the outputs equal a sequential run's."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from tqdm import tqdm

    groups = sorted(groups, key=lambda g: -sum(units(c) for c in g))
    with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool, \
            tqdm(total=sum(map(len, groups)), desc=f"run ({jobs} processes)", file=sys.stderr, dynamic_ncols=True) as bar:
        for fut in cf.as_completed([pool.submit(_run_group, runner, g, docs) for g in groups]):
            for name, sec in fut.result():
                tqdm.write(f"{name}: {sec:.0f} s")
                bar.update(1)
