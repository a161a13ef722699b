"""Full-batch `n*` searches at large `d` on a window of the sample-size grid instead of all of it.

A full-batch search pads every run to the grid's largest `n` (`sj.search_n`), so its cost is
(grid points) x (largest n) x d x steps; at `s = 3`, `d = 256` the 11-point grid to `128 d`
took minutes a cell. Here only `size` consecutive points of the same grid run, around an `n*`
predicted from the smaller `d` (a least-squares line in log-log), with the samples drawn
at the whole grid's largest `n` (`n_draw`): a window's columns equal the whole grid's columns
on those points. A window that misses `n*` (not reached at its top, or reached already at its
bottom) moves and reruns, and so, by two points, does one whose success fraction does not run from
<= 1/4 to >= 3/4 (bootstrap resamples of a dozen seeds would otherwise leave it). Every `d` of a cell keeps `size` columns so the bootstrap fit takes
one (D, size) grid; at the first `d` (no prediction) the whole grid runs and is cut to the
window around its own `n*`.
"""

from __future__ import annotations

import numpy as np

from spikejax import Search, success_fraction


def predict_n(ds, n_stars, d, slopes=(0.5, 3.0)) -> float | None:
    """`n*` at `d` from a least-squares line in log-log through the finite `(d, n*)` so far, its
    slope clipped to `slopes` (one noisy point must not send the window off the grid); None with
    fewer than two points."""
    pts = np.array([(a, b) for a, b in zip(ds, n_stars) if b is not None and np.isfinite(b) and b > 0], float)
    if len(pts) < 2:
        return None
    x, y = np.log(pts[:, 0]), np.log(pts[:, 1])
    slope = float(np.clip(np.polyfit(x, y, 1)[0], *slopes))
    return float(np.exp(y.mean() + slope * (np.log(d) - x.mean())))


def centred(grid, n, size) -> int:
    """The first index of the `size` consecutive points of `grid` centred (in log) on `n`."""
    g = np.asarray(grid, float)
    check_size(size, g.size)
    i = int(np.argmin(np.abs(np.log(g) - np.log(n))))
    return int(np.clip(i - size // 2, 0, g.size - size))


def check_size(size, points):
    if not (isinstance(size, int) and 3 <= size <= points):
        raise ValueError(f"window={size!r} is not allowed; it must be an integer from 3 to the grid's {points} points")


def cut(res: Search, lo: int, size: int) -> Search:
    """Columns `lo .. lo + size` of a search (the same runs, fewer grid points)."""
    sl = slice(lo, lo + size)
    return res._replace(rho=res.rho[:, sl], cos_u=res.cos_u[:, sl], n_grid=res.n_grid[sl])


def windowed_search(run, grid, n_pred, size, threshold, moves: int = 4, cover=(0.25, 0.75)):
    """`run(points, n_draw)` (a `search_n` on `points` with samples drawn at `n_draw`) on `size`
    points of `grid` around `n_pred`, moved by `size - 2` points while `n*` on rho is not inside.
    `cover = (low, high)` (None: off): also moved by 2 points (up to 2 such moves, keeping `n*` inside)
    while the success fraction at the window's top is below `high` or at its bottom above `low`,
    so that bootstrap resamples of the seeds seldom leave the window.

    **Returns:** `(search, runs)`: the `Search` on the final window and the windows run, as
    `[first n, last n]` pairs (their number is the cost in reruns)."""
    g = np.asarray(grid)
    check_size(size, g.size)
    if n_pred is None:
        full = run(g, None)
        n = full.n_star("rho", threshold)
        lo = centred(g, n if np.isfinite(n) else g[-1], size)
        return cut(full, lo, size), [[int(g[0]), int(g[-1])]]
    lo, runs, spare = centred(g, n_pred, size), [], 2 if cover else 0
    for _ in range(moves + spare + 1):
        res = run(g[lo : lo + size], int(g[-1]))
        runs.append([int(g[lo]), int(g[lo + size - 1])])
        n = res.n_star("rho", threshold)
        up, down = lo + size < g.size, lo > 0
        if not np.isfinite(n) and up:
            lo = min(lo + size - 2, g.size - size)
            continue
        if np.isfinite(n) and n <= g[lo] and down:
            lo = max(lo - (size - 2), 0)
            continue
        if spare and np.isfinite(n):
            f = success_fraction(res.rho, threshold, res.valid)
            if f[-1] < cover[1] and up and n >= g[lo + 2]:
                lo, spare = min(lo + 2, g.size - size), spare - 1
                continue
            if f[0] > cover[0] and down and n <= g[lo + size - 3]:
                lo, spare = max(lo - 2, 0), spare - 1
                continue
        break
    return res, runs
