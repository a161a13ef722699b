"""Full-batch `n*` from a grid of sample sizes (`sj.search_n`), shared by the claims that search
one (scaling, preconditioning): the grid, the seeds, the memo, the horizon and the step/horizon
check of a cell."""

from __future__ import annotations

import time

import jax
import numpy as np

from spikejax import DYNAMICS, horizon_check, make_problem, search_n

from .seeds import plain_keys, seed_keys
from .window import windowed_search

MEMO: dict = {}
HORIZON_RULES = ("largest_d", "none")


def n_grid(d, target):
    """The target's grid at `d`: `d 2^k` for `k` in `log2_n_over_d` by `log2_step` (default 0.5)."""
    lo, hi = target["log2_n_over_d"]
    g = np.round(d * 2.0 ** np.arange(lo, hi + 1e-9, target.get("log2_step", 0.5))).astype(int)
    if g[0] < 2 or np.any(np.diff(g) <= 0):
        raise ValueError(f"log2_n_over_d={target['log2_n_over_d']!r} is not allowed at d={d}; "
                         "the grid must start at n >= 2 and be strictly increasing")
    return g


def keys_at(target, p, dynamic, d):
    """The seed keys at `d`: `seeds` keys split from `key(10_000 + d)` (the committed scaling
    runs' draw), or with `right_sign_seeds = true` only right-sign ones (`harness.seeds.seed_keys`)."""
    if not target.get("right_sign_seeds"):
        return plain_keys(d, target["seeds"])
    return seed_keys(p, DYNAMICS[dynamic](), d, target["seeds"], True)


def point_key(target, d, r1, r2, dynamic, noise, n_unlabelled, steps, dt):
    """`measure_point`'s memo key; `("windows",) + key` holds the windows a windowed search ran."""
    return (target["link"], target["activation"], target["seeds"], tuple(target["log2_n_over_d"]),
            target.get("log2_step", 0.5), d, r1, r2, dynamic, noise, n_unlabelled, steps, dt)


def _problem(target, d, r1, r2, noise):
    return make_problem(d, key=jax.random.key(d), r2=r2, r1=r1, link=target["link"],
                        activation=target["activation"], noise=noise)


def measure_point(target, d, r1, r2, dynamic, noise, n_unlabelled=0, steps=None, dt=None, n_pred=None,
                  threshold=0.9):
    """One `search_n` (all `n` and seeds of one configuration), memoised within the process.
    With a target's `window` (a number of grid points), only that window of the grid runs, around
    `n_pred` (`harness/window.py`); the memo then also holds the windows run."""
    steps = steps or target["steps"]
    dt = dt or target["dt"]
    key = point_key(target, d, r1, r2, dynamic, noise, n_unlabelled, steps, dt)
    if key not in MEMO:
        p = _problem(target, d, r1, r2, noise)
        keys = keys_at(target, p, dynamic, d)

        def run(points, n_draw):
            return search_n(p, DYNAMICS[dynamic](), n_grid=points, keys=keys, dt=dt, steps=steps,
                            n_unlabelled=n_unlabelled, n_draw=n_draw, seed_chunk=target.get("seed_chunk"))

        if "window" in target:
            MEMO[key], MEMO[("windows",) + key] = windowed_search(run, n_grid(d, target), n_pred,
                                                                  target["window"], threshold)
        else:
            MEMO[key] = run(n_grid(d, target), None)
    return MEMO[key]


def horizon_rule(cfg) -> str:
    """The config's `horizon_check` rule: `"largest_d"` (default) checks every
    (s, r1, r2, dynamic) cell at its largest d, `"none"` checks nothing."""
    rule = cfg.get("horizon_check", "largest_d")
    if rule not in HORIZON_RULES:
        raise ValueError(f"horizon_check={rule!r} is not allowed in {cfg['name']}; choose one of "
                         f"{', '.join(map(repr, HORIZON_RULES))}")
    if "horizon_checks" in cfg:
        raise ValueError(f"horizon_checks is not allowed in {cfg['name']}: the hand-listed checks were replaced by "
                         "the per-cell rule horizon_check = \"largest_d\"")
    return rule


def steps_at(target, d, ds) -> int:
    """The step count at `d`: `steps` at the smallest `d`, times `(d / d_0)^steps_exponent` (the
    escape time from `rho0 ~ d^-1/2` grows as `d^{(s-2)/2}`: exponent 0.5 at s = 3, 1 at s = 4)."""
    return int(np.ceil(target["steps"] * (d / min(ds)) ** target.get("steps_exponent", 0.0)))


def check_point(target, d, r1, r2, dynamic, noise, threshold, n_unlabelled=0, base_n=None, steps=None):
    """`horizon_check` of one cell at one `d`, bracketed around the memoised base search
    (the same samples as the base), memoised like `measure_point`.
    `base_n`: the base n* on rho if known (a committed run, `--checks-only`): not rerun."""
    steps = steps or target["steps"]
    key = ("horizon", target["link"], target["activation"], target["seeds"], tuple(target["log2_n_over_d"]),
           target.get("log2_step", 0.5), d, r1, r2, dynamic, noise, n_unlabelled, threshold, steps)
    if key not in MEMO:
        base = base_n if base_n is not None else measure_point(target, d, r1, r2, dynamic, noise,
                                                               n_unlabelled=n_unlabelled, steps=steps)
        p = _problem(target, d, r1, r2, noise)
        keys = keys_at(target, p, dynamic, d)
        t0, c0 = time.time(), time.process_time()
        chk = horizon_check(p, DYNAMICS[dynamic](), n_grid=n_grid(d, target), keys=keys, dt=target["dt"],
                            steps=steps, threshold=threshold, base=base, bracket=True,
                            n_unlabelled=n_unlabelled, seed_chunk=target.get("seed_chunk"))
        MEMO[key] = dict(chk._asdict(), dt=target["dt"], steps=steps, seconds=time.time() - t0,
                         cpu_seconds=time.process_time() - c0)
    return MEMO[key]
