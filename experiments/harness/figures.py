"""Figures on the public plot style (`spikejax.plot.style`): a headless pyplot, atomic PNG + PDF
writes, and the fitted power law with its interval band."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .io import write_file


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def style():
    """The project's public plot style, `spikejax.plot.style`."""
    from spikejax.plot import style as st

    return st


def save_figure(fig, path, tight: bool = True):
    """Write `fig` as PNG and PDF (same stem) atomically, then close it."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=130)
        write_file(path.with_suffix(f".{fmt}"), buf.getvalue())
    pyplot().close(fig)


def figure_path(docs, name: str) -> Path:
    """`docs/figures/<name>.png`."""
    return Path(docs) / "figures" / f"{name}.png"


def plot_fit(ax, d, r, colour, *, alpha, line_label=None, band_label=None, dashed=False):
    """The fitted `n* = exp(log_c) d^eta` over the range of `d`, through the centre of the
    data in log d, and its 90% interval band (slopes `lo`..`hi` pivoting there); `dashed` (a
    series of non-monotone medians) draws the line dashed."""
    x = np.log(d)
    xm, ym = x.mean(), r["log_c"] + r["eta"] * x.mean()
    xx = np.linspace(x.min(), x.max(), 50)
    ax.plot(np.exp(xx), np.exp(ym + r["eta"] * (xx - xm)), "--" if dashed else "-", color=colour, zorder=2, label=line_label)
    if np.isfinite(r["lo"]):
        lo, hi = ym + r["lo"] * (xx - xm), ym + r["hi"] * (xx - xm)
        ax.fill_between(np.exp(xx), np.exp(np.minimum(lo, hi)), np.exp(np.maximum(lo, hi)),
                        color=colour, alpha=alpha, lw=0, label=band_label)


# ---------------------------------------------------------------- cell status on n*-against-d figures

# what a hollow marker means, by status (filled: measured, `sj.CELL_STATUSES`)
HOLLOW = {
    "start-dominated": "hollow: start-dominated (n* at the grid's first point or under 3 batches)",
    "censored": "hollow triangle: censored (median not reached; drawn at the budget)",
    "step check failed": "half hollow: step/horizon check failed (not converged in the step)",
}
NON_MONOTONE = "dashed fit: non-monotone medians over d"


def statuses(n_star, *, first_n=None, batch=None, failed=None) -> list[str]:
    """`sj.cell_status` at every d of a series (each against the previous d's n*); a cell whose
    step/horizon check failed (`failed[i]`) is `step check failed` unless censored or start-dominated."""
    import spikejax as sj

    out, prev = [], None
    for i, n in enumerate(np.asarray(n_star, float)):
        st = sj.cell_status(float(n), first_n=None if first_n is None else float(first_n[i]),
                            batch=None if batch is None else float(batch[i]), previous=prev)
        if failed is not None and failed[i] and st in ("measured", "non-monotone"):
            st = "step check failed"
        out.append(st)
        prev = float(n)
    return out


def non_monotone(n_star) -> bool:
    """Whether the finite medians of a series over d ever fall (the censored ones skipped)."""
    n = np.asarray(n_star, float)
    n = n[np.isfinite(n)]
    return bool(np.any(np.diff(n) < 0))


def plot_cells(ax, d, n_star, status, colour, marker="o", *, top=None, label=None, ms=6, zorder=3):
    """n* at each d: filled where measured (non-monotone cells are measurements too), hollow where
    start-dominated, half hollow where the step check failed, a hollow triangle at `top[i]` (the
    budget) where censored."""
    d, n, status = np.asarray(d, float), np.asarray(n_star, float), np.asarray(status)
    filled = np.isin(status, ("measured", "non-monotone"))
    cens, half = status == "censored", status == "step check failed"
    hollow = ~filled & ~cens & ~half
    ax.plot(d[filled], n[filled], marker, color=colour, ms=ms, ls="none", zorder=zorder, label=label)
    if hollow.any():
        ax.plot(d[hollow], n[hollow], marker, color=colour, mfc="white", mew=1.3, ms=ms, ls="none", zorder=zorder)
    if half.any():
        ax.plot(d[half], n[half], marker, color=colour, fillstyle="left", mfcalt="white", mew=1.3, ms=ms, ls="none",
                zorder=zorder)
    if cens.any() and top is not None:
        ax.plot(d[cens], np.asarray(top, float)[cens], "^", color=colour, mfc="white", mew=1.3, ms=ms, ls="none",
                zorder=zorder)


def status_handles(all_status, any_non_monotone=False) -> list:
    """Legend entries for the statuses that occur (always `filled: measured`) and the dashed fit."""
    from matplotlib.lines import Line2D

    seen = set(all_status)
    handles = [Line2D([], [], marker="o", color="0.3", ls="none", label="filled: measured")]
    for st, text in HOLLOW.items():
        if st in seen:
            look = dict(fillstyle="left", mfcalt="white") if st == "step check failed" else dict(mfc="white")
            handles.append(Line2D([], [], marker="^" if st == "censored" else "o", color="0.3", ls="none",
                                  label=text, **look))
    if any_non_monotone:
        handles.append(Line2D([], [], color="0.3", ls="--", label=NON_MONOTONE))
    return handles
