"""Sample-complexity search and exponent fits.

`n*(d)` is the smallest sample size at which `empirical` training for a fixed horizon
reaches `metric(w_T) >= threshold` in at least half of the seeds. Every sample size of a
grid runs in one compiled call: the data are drawn once at the largest size and the
smaller data sets are its first `n_used` rows (`Empirical(n, n_used=...)`), so they are
nested and success is monotone in `n` up to optimisation noise. `eta` in `n* ~ d^eta`
is a least-squares slope in log-log over the dimensions, with a bootstrap interval over
seeds (seeds resampled with replacement, independently per dimension, `n*` recomputed).

The pure numpy part (`success_fraction`, `critical_n`, `fit_exponent`,
`bootstrap_exponent`) takes metric arrays and knows nothing of JAX; `search_n` produces
those arrays with `simulate`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._data import draw, prefix_mask
from ._population import rho as _rho
from ._chain import float64_on
from ._estimators import censored_median
from ._problem import check, check_choice, check_int, check_real
from ._saveat import SaveAt
from ._simulate import advance, init, prepare, simulate, state_axes
from ._solvers import Euler
from ._sources import AbstractSource, Empirical, Online

SEARCH_METRICS = ("rho", "cos_u")
SIGN_RULES = ("auto", "abs", "signed", "right_sign")



def _grid(n_grid) -> np.ndarray:
    try:
        g = np.asarray(n_grid, dtype=float)
    except (TypeError, ValueError):
        g = None
    ok = g is not None and g.ndim == 1 and g.size >= 2 and bool(np.all(np.isfinite(g)))
    ok = ok and bool(np.all(g >= 1)) and bool(np.all(np.diff(g) > 0))
    check("n_grid", n_grid, ok, "allowed: a strictly increasing 1-D sequence of at least 2 sample sizes >= 1")
    return g


def success_fraction(values, threshold: float = 0.9, valid=None) -> np.ndarray:
    """Fraction of seeds with `values >= threshold`, per grid point.

    **Arguments:** `values` (seeds, grid); `valid` (seeds,) booleans: only those seeds count
    (e.g. runs that started with the right sign). NaN (a failed run) counts as failure.

    **Returns:** (grid,) fractions.
    """
    v = np.asarray(values, float)
    ok = np.nan_to_num(v, nan=-np.inf) >= threshold
    if valid is not None:
        valid = np.asarray(valid, bool)
        if not valid.any():
            return np.zeros(v.shape[-1])
        ok = ok[valid]
    return ok.mean(0)


def critical_n(n_grid, fraction, level: float = 0.5) -> float:
    """`n*`: where the success fraction first reaches `level` and stays there, interpolated.

    The first grid point `n_k` from which the fraction is `>= level` at every larger grid
    point is the bracket's top; the fraction is taken linear in `log n` between `n_{k-1}`
    and `n_k`. Requiring "and stays" makes one lucky small-`n` seed set unable to set `n*`.

    **Returns:** `n*` as a float; `nan` when the fraction never reaches `level` at the
    largest `n` (the grid is too short); `n_grid[0]` when it is already reached there (an
    upper bound: the grid is too high).
    """
    g = _grid(n_grid)
    f = np.asarray(fraction, float)
    check("fraction", fraction, f.shape == g.shape, f"allowed: one value per grid point ({g.size})")
    check_real("level", level, 0.0, 1.0, lo_open=True)
    above = f >= level
    if not above[-1]:
        return float("nan")
    k = g.size - 1
    while k > 0 and above[k - 1]:
        k -= 1
    if k == 0:
        return float(g[0])
    f0, f1 = f[k - 1], f[k]
    x0, x1 = np.log(g[k - 1]), np.log(g[k])
    x = x0 + (level - f0) / (f1 - f0) * (x1 - x0)
    return float(np.exp(x))


class ExponentFit(NamedTuple):
    """`n* ~ C d^eta`: slope `eta`, its bootstrap interval `(lo, hi)`, `log C`, and the data."""

    eta: float
    lo: float
    hi: float
    log_c: float
    d: np.ndarray
    n_star: np.ndarray
    boot: np.ndarray


def fit_exponent(d, y) -> tuple[float, float]:
    """Least-squares slope and intercept of `log y` against `log d`; `(nan, nan)` if any
    `y` is missing or fewer than 2 points."""
    d = np.asarray(d, float)
    y = np.asarray(y, float)
    if y.size < 2 or not np.all(np.isfinite(y)) or np.any(y <= 0):
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(d), np.log(y), 1)
    return float(slope), float(intercept)


def bootstrap_exponent(
    d,
    n_grid,
    values,
    *,
    threshold: float = 0.9,
    valid=None,
    level: float = 0.5,
    n_boot: int = 1000,
    ci: float = 0.9,
    seed: int = 0,
    min_dims: int = 4,
) -> ExponentFit:
    """Fit `eta` in `n* ~ d^eta` with a bootstrap interval over seeds.

    **Arguments:**
    - `d`: (D,) dimensions, at least `min_dims` distinct.
    - `n_grid`: one (G,) grid shared by all `d`, or (D, G), one per dimension.
    - `values`: (D, S, G) final metric per dimension, seed and grid point.
    - `valid`: optional (D, S) booleans: the seeds that count (see `success_fraction`).
    - `threshold`, `level`: success is `value >= threshold` in a fraction `>= level` of seeds.
    - `n_boot`, `ci`, `seed`: bootstrap resamples, interval mass, numpy seed.

    **Returns:** an `ExponentFit`. Resamples whose `n*` is missing at some `d` are dropped
    from the interval; if more than half are, `lo`/`hi` are NaN.
    """
    d = np.asarray(d, float)
    check("d", d, d.ndim == 1 and len(set(d.tolist())) >= min_dims and bool(np.all(d > 0)),
          f"allowed: at least {min_dims} distinct positive dimensions")
    v = np.asarray(values, float)
    check("values", v.shape, v.ndim == 3 and v.shape[0] == d.size, "allowed: shape (len(d), seeds, len(n_grid))")
    grids = np.asarray(n_grid, float)
    grids = np.broadcast_to(grids, (d.size, grids.shape[-1]))
    for g in grids:
        _grid(g)
    check("n_grid", n_grid, grids.shape[-1] == v.shape[-1], "allowed: one sample size per grid column of values")
    check_int("n_boot", n_boot, 1)
    check_real("ci", ci, 0.0, 1.0, lo_open=True, hi_open=True)
    val = np.ones(v.shape[:2], bool) if valid is None else np.asarray(valid, bool)

    def n_stars(idx):
        return np.array(
            [
                critical_n(grids[i], success_fraction(v[i, idx[i]], threshold, val[i, idx[i]]), level)
                for i in range(d.size)
            ]
        )

    return _bootstrap(d, v.shape[1], n_stars, n_boot, ci, seed)


def _bootstrap(d, seeds: int, n_stars, n_boot: int, ci: float, seed: int) -> ExponentFit:
    """The shared bootstrap: `n_stars(idx)` gives the (D,) `n*` of the seed resample `idx`
    (D, S); the slope is refitted on each resample, resamples with a missing `n*` dropped."""
    ident = [np.arange(seeds)] * d.size
    ns = n_stars(ident)
    eta, log_c = fit_exponent(d, ns)
    rng = np.random.default_rng(seed)
    boot = np.array([fit_exponent(d, n_stars(rng.integers(0, seeds, (d.size, seeds))))[0] for _ in range(n_boot)])
    good = boot[np.isfinite(boot)]
    if good.size * 2 < n_boot:
        lo = hi = float("nan")
    else:
        lo, hi = np.quantile(good, [(1 - ci) / 2, (1 + ci) / 2])
    return ExponentFit(eta, float(lo), float(hi), log_c, d, ns, boot)


def median_n(n, valid=None) -> float:
    """`n*` from per-seed first passages: the smallest `n` by which at least half of the
    counted seeds have passed (the `ceil(S/2)`-th smallest; the median for odd `S`), the
    same "at least half succeed" rule as `critical_n`, without a grid. A run that never
    passed (NaN) counts as infinite, so `n*` is NaN when more than half never passed."""
    m = censored_median(n, valid)  # `+inf` there while half or more never passed
    return m if np.isfinite(m) else float("nan")


def bootstrap_passage(d, n, *, valid=None, n_boot: int = 1000, ci: float = 0.9, seed: int = 0,
                      min_dims: int = 4) -> ExponentFit:
    """Fit `eta` in `n* ~ d^eta` from per-seed first-passage sample counts.

    **Arguments:** `d` (D,) dimensions; `n` (D, S) samples consumed at the first passage
    (NaN: never passed), one row per dimension; `valid` (D, S) the seeds that count.
    `n*` at each `d` is `median_n` over the counted seeds; the interval resamples seeds with
    replacement, independently per dimension, as `bootstrap_exponent` does.
    """
    d = np.asarray(d, float)
    check("d", d, d.ndim == 1 and len(set(d.tolist())) >= min_dims and bool(np.all(d > 0)),
          f"allowed: at least {min_dims} distinct positive dimensions")
    n = np.asarray(n, float)
    check("n", n.shape, n.ndim == 2 and n.shape[0] == d.size, "allowed: shape (len(d), seeds)")
    check_int("n_boot", n_boot, 1)
    check_real("ci", ci, 0.0, 1.0, lo_open=True, hi_open=True)
    val = np.ones(n.shape, bool) if valid is None else np.broadcast_to(np.asarray(valid, bool), n.shape)

    def n_stars(idx):
        return np.array([median_n(n[i, idx[i]], val[i, idx[i]]) for i in range(d.size)])

    return _bootstrap(d, n.shape[1], n_stars, n_boot, ci, seed)


def right_sign(problem, rho0):
    """Whether `rho(w(0))` has the sign from which the flow escapes for an odd link.

    With `f_* = sum alpha_j h_j` and `phi = sum beta_j h_j`, the leading correlation term is
    `alpha_s beta_s rho^s`; for odd `s >= 3` a start with `alpha_s beta_s rho0 < 0` sits on the
    wrong side of the saddle `rho = 0` and stalls whatever `n` is.
    """
    s = problem.link.information_exponent()
    beta = np.asarray(problem.activation.coeffs)
    sign = np.sign(float(np.asarray(problem.link.coeffs)[s]) * float(beta[s]))
    return sign * np.asarray(rho0) > 0


class Search(NamedTuple):
    """What `search_n` measured: final `rho` and `cos_u` (seeds, grid), after the sign rule;
    `valid` (seeds,) the seeds that count; `rho0` (seeds,) `rho(w(0))`; the `n_grid`."""

    rho: np.ndarray
    cos_u: np.ndarray
    valid: np.ndarray
    rho0: np.ndarray
    n_grid: np.ndarray

    def n_star(self, metric: str = "rho", threshold: float = 0.9, level: float = 0.5) -> float:
        check_choice("metric", metric, SEARCH_METRICS)
        return critical_n(self.n_grid, success_fraction(getattr(self, metric), threshold, self.valid), level)

    def n_per_seed(self, metric: str = "rho", threshold: float = 0.9) -> np.ndarray:
        """(seeds,) each seed's n*: the smallest `n` of the grid at which `|metric| >= threshold`,
        `inf` where no grid point reaches it (censored: above the grid's top). Every seed, counted
        or not: pass `valid` on, `sj.censored_median(search.n_per_seed(), search.valid)`."""
        check_choice("metric", metric, SEARCH_METRICS)
        hit = np.abs(np.asarray(getattr(self, metric), float)) >= threshold
        return np.where(hit.any(1), np.asarray(self.n_grid, float)[np.argmax(hit, 1)], np.inf)


def search_n(
    problem,
    dynamic,
    *,
    n_grid,
    keys,
    dt=0.1,
    steps: int = 500,
    sign: str = "auto",
    n_unlabelled: int = 0,
    n_draw: int | None = None,
    seed_chunk: int | None = None,
    **kwargs,
) -> Search:
    """Run empirical training at every sample size of `n_grid` and every seed in ONE compiled call.

    The data are padded to `max(n_grid)` and masked with `n_used`; seed `i` uses `keys[i]`
    for `w(0)` and the samples at every `n` (nested data sets, common random numbers).
    Both overlaps are read at the last step, so `n*` can be taken on either.

    **Arguments:**
    - `problem`, `dynamic`: as for `simulate` (the source is `Empirical`; any
      `AbstractDynamic`, your own included).
    - `n_grid`: increasing integer sample sizes; `keys`: (S,) PRNG keys, one per seed.
    - `dt`, `steps`: step size and number of steps (horizon `T = dt * steps`).
    - `sign`: `"abs"` takes `|rho|`, `|cos_u|` (even links: `w` and `-w` are equivalent);
      `"signed"` takes them as they are; `"right_sign"` takes them as they are and counts only
      the seeds whose `rho(w(0))` has the escaping sign (odd `s >= 3`, see `right_sign`);
      `"auto"`: `"abs"` for even `s`, `"signed"` for `s = 1`, `"right_sign"` for odd `s >= 3`.
    - `n_draw`: draw each seed's samples at this size and train on their first rows (default
      `max(n_grid)`); a window of a larger grid with `n_draw` = that grid's largest size sees
      exactly that grid's samples (`horizon_check(..., bracket=True)`).
    - `seed_chunk`: run the seeds this many at a time (the same results; memory is about
      seeds x max(n_grid) x d numbers, so 24 seeds at d = 256 and n = 2^17 need 17 GB at once).
    - `n_unlabelled`, other keyword arguments: passed to `simulate`.

    **Returns:** a `Search`. Failed runs (status != ok) give NaN, which counts as failure.

    The compiled runner is cached per static setting and reused for any problem of the same
    shape and the same link and activation (built-in names give one shared `fn` object; a
    user callable must be the same object each time, since `fn` is a static field).
    """
    check_choice("sign", sign, SIGN_RULES)
    check("saveat", kwargs.get("saveat"), "saveat" not in kwargs,
          "search_n records the final rho and cos_u itself; use sj.simulate for other observables")
    g = _grid(n_grid)
    check("n_grid", n_grid, bool(np.all(g == np.round(g))), "allowed: integer sample sizes")
    check_real("dt", dt, lo=0.0, lo_open=True)
    check_int("steps", steps, 1)
    keys = jnp.asarray(keys)
    check("keys", keys.shape, keys.ndim == 1 and keys.shape[0] >= 1, "allowed: a 1-D array of PRNG keys, one per seed")
    s = problem.link.information_exponent()
    if sign == "auto":
        sign = "abs" if s % 2 == 0 else ("signed" if s == 1 else "right_sign")
    n_max = int(g[-1])
    if n_draw is not None:
        check_int("n_draw", n_draw, n_max)
        n_draw = None if int(n_draw) == n_max else int(n_draw)
    if seed_chunk is not None:
        check_int("seed_chunk", seed_chunk, 1)
    # Every remaining argument is checked by a tiny eager `prepare` before the heavy compile.
    prepare(problem, dynamic, Empirical(2), key=keys[0], dt=dt, steps=steps, n_unlabelled=n_unlabelled, **kwargs)
    run = _compiled(dynamic, n_max, float(dt), steps, n_unlabelled, tuple(sorted(kwargs.items())), n_draw)
    size = keys.shape[0] if seed_chunk is None else int(seed_chunk)
    parts = [run(problem, jnp.asarray(g, jnp.int32), keys[i: i + size]) for i in range(0, keys.shape[0], size)]
    rho, cos_u, rho0 = (np.concatenate([np.asarray(part[j], float) for part in parts]) for j in range(3))
    rho0 = rho0[:, 0]
    if sign == "abs":
        rho, cos_u = np.abs(rho), np.abs(cos_u)
    valid = right_sign(problem, rho0) if sign == "right_sign" else np.ones(rho.shape[0], bool)
    return Search(rho, cos_u, valid, rho0, g)


class _Prefix(Empirical):
    """`Empirical(n, n_used)` on the first `n` of the `n_draw` samples `Empirical(n_draw)`
    draws from the same key: a window of a grid trains on that grid's samples."""

    n_draw: int = eqx.field(static=True, default=1)

    def init(self, key, problem):
        z, y = draw(problem, key, self.n_draw)
        z, y = z[: self.n], y[: self.n]
        if self.n_used is None:
            return z, y, None
        used = prefix_mask(self.n, self.n_used)
        return z, y, used / jnp.sum(used).astype(z.dtype)


@functools.lru_cache(maxsize=64)
def _compiled(dynamic, n_max, dt, steps, n_unlabelled, kwargs, n_draw=None):
    """One jitted (seeds x grid) runner per static setting, reused across problems of the
    same shape (the problem is an argument, so new `kappa`, `r1`, directions do not recompile)."""

    def one(problem, n_used, key):
        source = Empirical(n_max, n_used) if n_draw is None else _Prefix(n_max, n_used, n_draw)
        tr = simulate(
            problem, dynamic, source, key=key, dt=dt, steps=steps,
            saveat=SaveAt(steps=2), n_unlabelled=n_unlabelled, **dict(kwargs),
        )
        return tr.rho[-1], tr.cos_u[-1], tr.rho[0]

    # Inner vmap over sample sizes shares each seed's data (one GEMM over the grid); outer over seeds.
    return jax.jit(jax.vmap(jax.vmap(one, (None, 0, None)), (None, None, 0)))


class HorizonCheck(NamedTuple):
    """`n*` at the base `(dt, steps)`, with `steps` doubled (horizon doubled) and with
    `dt` halved and `steps` doubled (same horizon, finer steps); `ok` when both stay within
    `tol` (relative) of the base. `window`: the smallest and largest sample size the two
    reruns ran (the whole grid unless `bracket=True`); a rerun `n*` equal to the window's
    bottom is an upper bound, NaN means "not reached by the window's top"."""

    base: float
    longer: float
    finer: float
    ok: bool
    window: tuple = ()


def bracket_window(n_grid, n_star: float, tol: float = 0.3) -> tuple[int, int]:
    """Grid indices `(lo, hi)` of the smallest window of `n_grid` that decides whether a
    rerun's `n*` lies within `tol` of `n_star`: `n_grid[lo]` is the largest point below
    `(1 - tol) n_star` (else the first), `n_grid[hi]` the smallest at or above
    `(1 + tol) n_star` (else the last). Every grid interval that meets the band, with both of
    its ends, is inside, so `critical_n` on the window gives the full grid's `n*` whenever
    that lies in the band, and a value outside the band whenever it does not (assuming the
    success fraction stays above the level beyond the window's top, as nested data make
    it)."""
    g = _grid(n_grid)
    check("n_star", n_star, bool(np.isfinite(n_star)) and n_star > 0, "allowed: a finite positive n*")
    check_real("tol", tol, 0.0, 1.0, lo_open=True, hi_open=True)
    below = np.nonzero(g < (1 - tol) * n_star)[0]
    above = np.nonzero(g >= (1 + tol) * n_star)[0]
    lo = int(below[-1]) if below.size else 0
    hi = int(above[0]) if above.size else g.size - 1
    return lo, max(hi, lo + 1)


def horizon_check(
    problem, dynamic, *, n_grid, keys, dt, steps, tol=0.3, metric="rho", threshold=0.9, base=None,
    bracket=False, **kwargs
):
    """Re-run the search with a doubled horizon and with halved `dt`, and compare `n*`.

    `tol` is relative; the default 0.3 is a little under one step of a `sqrt(2)`-ratio grid.
    `base`: the `Search` at `(dt, steps)` on `n_grid` if already run (e.g. memoised), or its
    `n*` (a number, e.g. from a committed run), else it is run. `bracket=True` runs the two
    reruns only on `bracket_window(n_grid, base n*, tol)`, on the same samples as the full
    grid (`n_draw = max(n_grid)`): the same `ok` as the full check for a fraction of its cost
    (the reruns' cost is the window's points times its top `n`, against the grid's points
    times `max(n_grid)`). A base `n*` that is NaN fails without reruns.
    """
    g = _grid(n_grid)
    if base is None:
        base = search_n(problem, dynamic, n_grid=g, keys=keys, dt=dt, steps=steps, **kwargs)
    b = float(base) if isinstance(base, (int, float, np.number)) else base.n_star(metric, threshold)
    if not np.isfinite(b):
        return HorizonCheck(b, float("nan"), float("nan"), False, ())
    lo, hi = bracket_window(g, b, tol) if bracket else (0, g.size - 1)
    window = g[lo : hi + 1]
    out = []
    for dt_i, steps_i in ((dt, 2 * steps), (dt / 2, 2 * steps)):
        res = search_n(problem, dynamic, n_grid=window, keys=keys, dt=dt_i, steps=steps_i, n_draw=int(g[-1]), **kwargs)
        out.append(res.n_star(metric, threshold))
    longer, finer = out
    ok = bool(all(np.isfinite(x) and abs(x / b - 1) <= tol for x in (longer, finer)))
    return HorizonCheck(b, longer, finer, ok, (float(window[0]), float(window[-1])))


# ---------------------------------------------------------------- first passages: one-pass and reused sources


class Passage(NamedTuple):
    """What `passage_n` measured, per seed.

    **Fields:** `step` (S, P) the first step after which `metric >= thresholds[j]` (NaN:
    never within the budget); `n` (S, P) the labelled samples consumed by then
    (`source.samples_used(step)`); `valid` (S,) the seeds that count (sign rule); `rho0` (S,)
    `rho(w(0))`; `thresholds` (P,); `metric`; `steps` the step budget; `budget` the samples
    that budget consumes; `ran` the steps actually run (the loop stops once every counted
    seed has passed the last threshold). With `passage_n(..., held=True)`: `held_step`,
    `held_n` (S, P), the step (samples) from which `metric` stayed at or above the threshold
    to the end of the budget (NaN: below it at the end), and `above` (S, P), the fraction of
    the steps from the first passage to the end at or above it (NaN: never passed).
    """

    step: np.ndarray
    n: np.ndarray
    valid: np.ndarray
    rho0: np.ndarray
    thresholds: np.ndarray
    metric: str
    steps: int
    budget: float
    ran: int
    held_step: np.ndarray | None = None
    held_n: np.ndarray | None = None
    above: np.ndarray | None = None

    def _column(self, threshold):
        i = np.nonzero(np.isclose(self.thresholds, threshold))[0]
        check("threshold", threshold, i.size == 1, f"allowed: a tracked threshold, one of {self.thresholds.tolist()}")
        return int(i[0])

    def _samples(self, held):
        check("held", held, not held or self.held_n is not None, "allowed: held=True only for passage_n(..., held=True)")
        return self.held_n if held else self.n

    def n_star(self, threshold: float = 0.9, held: bool = False) -> float:
        """`median_n` of the counted seeds at `threshold` (NaN if over half never passed); with
        `held`, of the passages that held to the end of the budget."""
        return median_n(self._samples(held)[:, self._column(threshold)], self.valid)

    def never(self, threshold: float = 0.9, held: bool = False) -> float:
        """The fraction of counted seeds that never passed `threshold` within the budget (with
        `held`: that were below it at the end)."""
        col = self._samples(held)[self.valid, self._column(threshold)]
        return float(np.mean(np.isnan(col))) if col.size else float("nan")


def initial_rho(problem, dynamic, keys, **kwargs) -> np.ndarray:
    """`rho(w(0))` of each seed key, without running (e.g. to keep only right-sign seeds of
    an odd link, `right_sign(problem, initial_rho(...))`, before a costly `passage_n`)."""
    keys = jnp.asarray(keys)

    def one(k):
        sim, w0 = prepare(problem, dynamic, Online(1), key=k, **kwargs)
        return _rho(w0, sim.problem)  # in the run's own coordinates (the chain's frame, say)

    return np.asarray(jax.vmap(one)(keys), float)


def _thresholds(thresholds) -> tuple:
    try:
        th = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        th = None
    ok = th is not None and len(th) >= 1 and all(0 < t <= 1 for t in th) and all(np.diff(th) > 0)
    check("thresholds", thresholds, ok, "allowed: a strictly increasing sequence of values in (0, 1]")
    return th


MAX_PASSAGE_STEPS = 2**22  # first-passage times are stored as t = k dt in float32; k is exact below this
MAX_PASSAGE_STEPS_64 = 2**30  # in float64 (the exact chain runs there): the int32 step counter bounds it


def _check_passage_run(source, dt, steps, chunk, stop_fraction, held, kwargs):
    """`passage_n`'s own arguments: a sampled source, a fixed-step solver, a step budget
    whose passage times the float type holds (float64 on the exact chain), no early stop
    for a held passage."""
    check("source", source, isinstance(source, AbstractSource),
          "give a source that draws fresh samples: sj.Online(batch) or sj.Reused(batch, reuse)")
    check("source", source, not source.deterministic and source.samples_used(1) is not None,
          "first passages measure sample complexity only for a source that draws fresh samples "
          "(sj.Online, sj.Reused); for full-batch training on n fixed samples use sj.search_n")
    check_real("dt", dt, lo=0.0, lo_open=True)
    check_int("steps", steps, 1)
    chain = kwargs.get("reduced") is True and float64_on()  # the chain's times are float64
    most = MAX_PASSAGE_STEPS_64 if chain else MAX_PASSAGE_STEPS
    check("steps", steps, steps <= most,
          f"allowed: at most {most} (passage times t = k dt are {jnp.zeros(()).dtype}); use a larger batch")
    check_int("chunk", chunk, 1)
    check_real("stop_fraction", stop_fraction, 0.5, 1.0, lo_open=True)
    check("held", held, isinstance(held, bool), "allowed: True or False")
    check("stop_fraction", stop_fraction, not held or stop_fraction == 1.0,
          "allowed: 1 with held=True (a held passage is known only at the end of the budget)")
    check("solver", kwargs.get("solver"), kwargs.get("solver") is None or not kwargs["solver"].adaptive,
          "first passages of a sampled source need a fixed-step solver (sj.Euler() or sj.Optax)")
    check("saveat", kwargs.get("saveat"), "saveat" not in kwargs, "passage_n sets saveat itself")


def passage_n(
    problem,
    dynamic,
    source,
    *,
    keys,
    dt,
    steps: int,
    thresholds=(0.5, 0.9),
    metric: str = "rho",
    sign: str = "auto",
    chunk: int = 512,
    stop_fraction: float = 1.0,
    held: bool = False,
    **kwargs,
) -> Passage:
    """Per-seed sample complexity of a one-pass or reused-batch source, from first passages.

    Every seed runs in ONE compiled call (a `vmap` over `keys` inside a `while_loop` over
    chunks of `chunk` steps that stops once every counted seed has passed the last
    threshold, or at `steps`). The first passage of `metric` (`|rho|` or `|cos_u|`) over each
    threshold is tracked inside the scan (`SaveAt(passages=...)`), and the samples consumed
    by then are `source.samples_used(step)`: `batch * step` online, `batch * ceil(step / reuse)`
    for `Reused(batch, reuse)`. No sample-size grid is needed: one run gives a seed's whole
    `n*(threshold)` curve. Fit exponents with `bootstrap_passage`.

    **Arguments:**
    - `problem`, `dynamic`: as for `simulate`.
    - `source`: a source that draws fresh samples (`Online(batch)`,
      `Online(batch, projected=True)`, `Reused(batch, reuse)`, or your own with `samples`);
      full-batch `Empirical` has a fixed `n`: use `search_n`.
    - `keys`: (S,) PRNG keys, one per seed (`w(0)` and the sample stream).
    - `dt`, `steps`: the step and the step budget (a generous one: the loop stops early).
    - `thresholds`: strictly increasing values in (0, 1]; `metric`: `"rho"` or `"cos_u"`.
    - `sign`: as for `search_n`; `"right_sign"` (auto for odd `s >= 3`) counts only seeds
      whose `rho(w(0))` has the escaping sign.
    - `chunk`: steps per loop iteration (the granularity of the early stop).
    - `stop_fraction`: stop once this fraction of the counted seeds passed the last
      threshold (1: all of them, or the budget). Below 1 the slowest seeds are cut off:
      their `n` is NaN (read: more than `source.samples_used(ran)`), which `median_n` and the
      bootstrap treat as "later than every passed seed", so the median is unchanged as long
      as `stop_fraction > 1/2`; it saves the heavy tail of slow escapes.
    - `held`: also measure the passage that holds: the samples from which `metric` stayed at
      or above each threshold to the end of the budget (`Passage.held_n`,
      `n_star(threshold, held=True)`), and the fraction of the steps from the first passage
      on spent at or above it (`Passage.above`). A first passage can be an excursion of a
      noisy run (a large step, reused batches) that falls back; the held one cannot. It is known only
      at the end, so every seed runs the whole budget (no early stop: `stop_fraction` must
      be 1), and it depends on the budget: choose one well past the first passages.
    - other keyword arguments go to `simulate` (`n_unlabelled`, `neuron`, ...).

    **Returns:** a `Passage`.
    """
    check_choice("metric", metric, SEARCH_METRICS)
    check_choice("sign", sign, SIGN_RULES)
    th = _thresholds(thresholds)
    _check_passage_run(source, dt, steps, chunk, stop_fraction, held, kwargs)
    keys = jnp.asarray(keys)
    check("keys", keys.shape, keys.ndim == 1 and keys.shape[0] >= 1, "allowed: a 1-D array of PRNG keys, one per seed")
    s = problem.link.information_exponent()
    if sign == "auto":
        sign = "abs" if s % 2 == 0 else ("signed" if s == 1 else "right_sign")
    factor = 0.0
    if sign == "right_sign":
        beta = np.asarray(problem.activation.coeffs)
        factor = float(np.sign(float(np.asarray(problem.link.coeffs)[s]) * float(beta[s])))
    prepare(problem, dynamic, source, key=keys[0], dt=dt, steps=steps, **kwargs)  # every other check, eagerly
    run = _passage_compiled(dynamic, source, float(dt), steps, th, metric, min(chunk, steps),
                            float(stop_fraction), held, tuple(sorted(kwargs.items())))
    times, rho0, ran = run(problem, keys, jnp.asarray(factor))
    times, rho0, P = np.asarray(times, float), np.asarray(rho0, float), len(th)
    step = np.round(times[:, : 2 * P] / dt)  # the first passages, then (held) the starts of the last stays
    n = np.where(np.isnan(step), np.nan, np.asarray(source.samples_used(np.nan_to_num(step).astype(np.int64)), float))
    valid = right_sign(problem, rho0) if sign == "right_sign" else np.ones(rho0.shape, bool)
    extra = {}
    if held:  # the last P columns count the steps at or above each threshold from its first passage on
        extra = dict(held_step=step[:, P:], held_n=n[:, P:], above=times[:, 2 * P:] / (int(ran) - step[:, :P] + 1))
    return Passage(step[:, :P], n[:, :P], valid, rho0, np.asarray(th), metric, steps, float(source.samples_used(steps)),
                   int(ran), **extra)


@functools.lru_cache(maxsize=64)
def _passage_compiled(dynamic, source, dt, steps, thresholds, metric, chunk, stop_fraction, held, kwargs):
    saveat = SaveAt(steps=2, passages={metric: thresholds}, held=held)
    sax = state_axes(Euler())

    def run(problem, keys, factor):
        def build(key):
            return prepare(problem, dynamic, source, key=key, dt=dt, steps=steps, saveat=saveat, **dict(kwargs))

        def init_one(key):
            return init(*build(key))

        def advance_one(key, state):
            return advance(build(key)[0], state, chunk)

        state = jax.vmap(init_one, 0, sax)(keys)
        rho0 = state.records["rho"][:, 0]
        valid = jnp.where(factor == 0, True, factor * rho0 > 0)

        def going(state):
            passed = jnp.sum(valid & ~jnp.isnan(state.passage[:, len(thresholds) - 1]))
            return (state.k < steps) & (held | (passed < stop_fraction * jnp.sum(valid)))

        state = jax.lax.while_loop(going, lambda st: jax.vmap(advance_one, (0, sax), sax)(keys, st), state)
        return state.passage, rho0, jnp.minimum(state.k, steps)

    return jax.jit(run)
