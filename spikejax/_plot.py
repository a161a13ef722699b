"""Figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_demo(curves, kappas, dt, path, d=None):
    """`|cos(w, u)|` against time, one colour per `kappa`, solid `normalized`, dashed
    `spherical`; seed median with a min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(kappas)))
    for dynamic, style in (("normalized", "-"), ("spherical", "--")):
        steps, cos = curves[dynamic]
        t = np.maximum(steps * dt, dt / 2)
        for i, kappa in enumerate(kappas):
            c = cos[i]
            ax.plot(t, np.median(c, 0), style, color=colours[i], label=f"{dynamic}, kappa={kappa:g}")
            ax.fill_between(t, c.min(0), c.max(0), color=colours[i], alpha=0.15)
    if d is not None:
        ax.axhline(1 / np.sqrt(d), color="grey", lw=0.8, ls=":", label="1/sqrt(d)")
    ax.set_xscale("log")
    ax.set_xlabel("time t = k dt")
    ax.set_ylabel("|cos(w, u)|")
    ax.set_title("Population flows at theta = u (ReLU, h2 link): spherical stalls, normalized recovers u")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
