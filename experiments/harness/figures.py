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


def plot_fit(ax, d, r, colour, *, alpha, line_label=None, band_label=None):
    """The fitted `n* = exp(log_c) d^eta` over the range of `d`, through the centre of the
    data in log d, and its 90% interval band (slopes `lo`..`hi` pivoting there)."""
    x = np.log(d)
    xm, ym = x.mean(), r["log_c"] + r["eta"] * x.mean()
    xx = np.linspace(x.min(), x.max(), 50)
    ax.plot(np.exp(xx), np.exp(ym + r["eta"] * (xx - xm)), "-", color=colour, zorder=2, label=line_label)
    if np.isfinite(r["lo"]):
        lo, hi = ym + r["lo"] * (xx - xm), ym + r["hi"] * (xx - xm)
        ax.fill_between(np.exp(xx), np.exp(np.minimum(lo, hi)), np.exp(np.maximum(lo, hi)),
                        color=colour, alpha=alpha, lw=0, label=band_label)
