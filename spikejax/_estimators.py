"""Estimators that keep every seed: censored first passages, their medians and quantiles,
bootstrap intervals that stay open at the top, local slopes, a fit over the large-d end, and
a status per cell.

A seed that never passed within the budget is *censored*: its `n*` is only known to be above
the budget, so it is kept as `+inf` (NaN on input means the same). A median exists while
fewer than half the counted seeds are censored; otherwise it is `+inf` ("above the budget").
A bootstrap resample whose median is censored is kept, never dropped: its slope is infinite,
so the interval is open at that end and printed as such (`interval_text`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._problem import check, check_int, check_real

# a cell's status: what its n* may be used for
CELL_STATUSES = {
    "measured": "n* is a measurement: use it",
    "start-dominated": "n* falls within the first grid step or under 3 batches: it measures the start, no verdict",
    "non-monotone": "n* falls below the previous d's: flagged, no line is fitted through it unmarked",
    "censored": "half or more of the seeds never passed within the budget: n* is only a lower bound",
}


def _censored(n, valid=None) -> np.ndarray:
    """The counted seeds' `n*`, a censored one (NaN or inf) as `+inf`."""
    n = np.asarray(n, float)
    if valid is not None:
        n = n[np.broadcast_to(np.asarray(valid, bool), n.shape)]
    return np.where(np.isnan(n), np.inf, n)


def censored_quantile(n, q: float, valid=None) -> float:
    """The `q`-quantile of the counted seeds' `n*` with censored seeds above every passed one:
    the `ceil(q S)`-th smallest (no interpolation, so a censored seed is never averaged with a
    passed one); `+inf` when it falls on a censored seed, NaN with no seed."""
    check_real("q", q, 0.0, 1.0, lo_open=True)
    x = np.sort(_censored(n, valid))
    if x.size == 0:
        return float("nan")
    return float(x[max(int(np.ceil(q * x.size)) - 1, 0)])


def censored_median(n, valid=None) -> float:
    """The smallest `n` by which at least half the counted seeds have passed (the
    `ceil(S/2)`-th smallest, the rule of `sj.median_n`), `+inf` while half or more are censored."""
    return censored_quantile(n, 0.5, valid)


def interval_text(lo: float, hi: float, digits: int = 2) -> str:
    """`[lo, hi]`, with an infinite end printed as open: `[2.10, open]`."""
    end = lambda x: "open" if np.isinf(x) else f"{x:.{digits}f}"  # noqa: E731
    return f"[{end(lo)}, {end(hi)}]"


class Slope(NamedTuple):
    """The local slope `log(n*(d2) / n*(d1)) / log(d2 / d1)` and its bootstrap interval; `boot`
    holds every resample's slope (`+inf` where the d2 median is censored, `-inf` where d1's is)."""

    d1: float
    d2: float
    slope: float
    lo: float
    hi: float
    boot: np.ndarray


def _resampled_medians(n, valid, n_boot, rng) -> np.ndarray:
    """`n_boot` censored medians of the counted seeds resampled with replacement."""
    x = _censored(n, valid)
    idx = rng.integers(0, x.size, (n_boot, x.size))
    k = (x.size + 1) // 2 - 1
    return np.sort(x[idx], axis=1)[:, k]


def _quantiles(boot, ci) -> tuple[float, float]:
    """The interval's ends over every resample, infinite ones included (no interpolation)."""
    finite_nan = np.where(np.isnan(boot), np.inf, boot)
    lo, hi = np.quantile(finite_nan, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    return float(lo), float(hi)


def _checked(d, n, valid, n_boot, ci):
    d = np.asarray(d, float)
    n = np.asarray(n, float)
    check("d", d, d.ndim == 1 and d.size >= 2 and bool(np.all(np.diff(d) > 0)) and bool(np.all(d > 0)),
          "allowed: at least 2 increasing positive dimensions")
    check("n", n.shape, n.ndim == 2 and n.shape[0] == d.size, "allowed: shape (len(d), seeds), NaN for censored")
    check_int("n_boot", n_boot, 1)
    check_real("ci", ci, 0.0, 1.0, lo_open=True, hi_open=True)
    valid = np.ones(n.shape, bool) if valid is None else np.broadcast_to(np.asarray(valid, bool), n.shape)
    return d, n, valid


def local_slopes(d, n, valid=None, *, n_boot: int = 1000, ci: float = 0.9, seed: int = 0) -> list[Slope]:
    """The slope between each pair of consecutive `d`, with a seed bootstrap (resampled
    independently per `d`) that keeps every resample. `n` (D, S): every seed's `n*`, NaN for a
    censored one; `valid` (D, S): the seeds that count."""
    d, n, valid = _checked(d, n, valid, n_boot, ci)
    rng = np.random.default_rng(seed)
    meds = [censored_median(n[i], valid[i]) for i in range(d.size)]
    boots = [_resampled_medians(n[i], valid[i], n_boot, rng) for i in range(d.size)]
    out = []
    for i in range(d.size - 1):
        r = np.log(d[i + 1] / d[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = float(np.log(meds[i + 1] / meds[i]) / r)
            boot = np.log(boots[i + 1] / boots[i]) / r  # inf / inf (both censored): NaN, read as open
        out.append(Slope(float(d[i]), float(d[i + 1]), slope, *_quantiles(boot, ci), boot))
    return out


class TailFit(NamedTuple):
    """`n* ~ C d^eta` fitted over `d >= d_min` (the range the fit used is `d_lo..d_hi`), with a
    bootstrap interval keeping every resample: one with a censored median gets slope `+inf` if
    the censored median is at the largest `d` of the range, `-inf` if only below it."""

    eta: float
    lo: float
    hi: float
    d_lo: float
    d_hi: float
    boot: np.ndarray


def _slope_of(d, meds) -> float:
    if np.all(np.isfinite(meds)):
        return float(np.polyfit(np.log(d), np.log(meds), 1)[0])
    return float(np.inf) if np.isinf(meds[-1]) else float(-np.inf)


def tail_fit(d, n, valid=None, *, d_min=None, n_boot: int = 1000, ci: float = 0.9, seed: int = 0) -> TailFit:
    """The exponent over the large-`d` end (`d >= d_min`; default the upper half of the `d`,
    at least 2 points), with a seed bootstrap that keeps every resample."""
    d, n, valid = _checked(d, n, valid, n_boot, ci)
    keep = d >= (d[(d.size - 1) // 2] if d_min is None else d_min)
    check("d_min", d_min, keep.sum() >= 2, "allowed: a value that leaves at least 2 dimensions")
    d, n, valid = d[keep], n[keep], valid[keep]
    rng = np.random.default_rng(seed)
    meds = np.array([censored_median(n[i], valid[i]) for i in range(d.size)])
    boots = np.stack([_resampled_medians(n[i], valid[i], n_boot, rng) for i in range(d.size)], 1)
    boot = np.array([_slope_of(d, b) for b in boots])
    return TailFit(_slope_of(d, meds), *_quantiles(boot, ci), float(d[0]), float(d[-1]), boot)


def cell_status(n_star: float, *, first_n: float | None = None, batch: float | None = None,
                previous: float | None = None) -> str:
    """A cell's status (`CELL_STATUSES`): `censored` when its median is; `start-dominated` when
    `n*` is at most the grid's first point `first_n` (full batch) or under 3 batches (one-pass);
    `non-monotone` when below the previous `d`'s `n*`; else `measured`."""
    if not np.isfinite(n_star):
        return "censored"
    if (first_n is not None and n_star <= first_n) or (batch is not None and n_star < 3 * batch):
        return "start-dominated"
    if previous is not None and np.isfinite(previous) and n_star < previous:
        return "non-monotone"
    return "measured"
