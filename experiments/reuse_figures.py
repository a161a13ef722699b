"""The figures of docs/reuse.md, from the sweeps' results directories (`spikejax sweep CONFIG --out DIR`).

- `arnaboldi [DIR_2048 DIR_4096]`: docs/figures/reuse_arnaboldi_he3.png, |rho| against steps for
  one-pass SGD, each batch twice and EgD, one panel per d, from configs/reuse_arnaboldi_he3.toml
  and configs/reuse_arnaboldi_he3_d4096.toml.
- `dandi [DIR]`: docs/figures/reuse_dandi_tanh_he3.png, the Dandi et al. reproduction from
  configs/reuse_dandi_tanh_he3.toml. Left: each target direction's best single-unit overlap
  `max_j |cos(w_j, u_i)|` (`best`), u1 (z1) and u2 (z2). Right: the principal cosines between
  span(u1, u2) and the two units' span (`principal_cos`): the largest follows the target's
  first-order (He1) direction 0.768 z1 - 0.641 z2, the smallest the direction orthogonal to it,
  which only a sample-reusing algorithm can learn here.

Lines: mean over the seeds; bands: 25-75% of the seeds. Run from the repository root:
`python -m experiments.reuse_figures arnaboldi|dandi [DIR ...]`.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np

import spikejax as sj
from spikejax.plot import style

ARNABOLDI_RUNS = {2048: "out/reuse_arnaboldi", 4096: "out/reuse_arnaboldi_d4096"}
ARNABOLDI_ALGOS = {"online": ("one-pass SGD", style.OKABE_ITO["blue"], "-"),
                   "reused": ("each batch twice (Reused(2d, 2))", style.OKABE_ITO["orange"], "--"),
                   "extragradient": ("extragradient (EgD, displacement 0.1)", style.OKABE_ITO["vermillion"], "-.")}
DANDI_RUN = "out/reuse_dandi"
DANDI_ALGOS = {"empirical": ("full-batch GD, n = 3d reused every step", style.OKABE_ITO["vermillion"]),
         "online": ("one-pass GD, n = 3d fresh every step", style.OKABE_ITO["blue"])}


def band(ax, steps, r, color, ls, label, marker="o"):
    """The mean over seeds (axis 0) as a line, the 25-75% quantiles as a band."""
    lo, hi = np.quantile(r, [0.25, 0.75], axis=0)
    ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.plot(steps, r.mean(0), color=color, linestyle=ls, marker=marker, markersize=3, label=label)


def arnaboldi(runs=ARNABOLDI_RUNS, path="docs/figures/reuse_arnaboldi_he3.png"):
    """|rho| against steps, one panel per d, one curve per algorithm."""
    with style.style():
        fig, axes = plt.subplots(1, len(runs), figsize=(9.5, 3.4), sharey=True, layout="constrained")
        for ax, (d, run) in zip(np.atleast_1d(axes), runs.items()):
            ds = sj.load_results(run)
            steps = ds["step"].values
            for src, (label, color, ls) in ARNABOLDI_ALGOS.items():
                band(ax, steps, np.abs(ds["rho"].sel(source=src).values), color, ls, label, marker=None)
            ax.axhline(1 / np.sqrt(d), color="0.4", linewidth=0.8, linestyle=":", label=r"$1/\sqrt{d}$")
            ax.set_title(f"d = {d}, batch = 2d = {2 * d}")
            ax.set_xlabel("step (their time = 2 x step)")
            ax.set_xlim(0, steps[-1])
            ax.set_ylim(0, 1)
        np.atleast_1d(axes)[0].set_ylabel(r"$|\rho| = |\cos(w, u)|$ (mean, 25-75% band)")
        style.legend_outside(fig)
        fig.suptitle("He3 target, one ReLU unit (a = 1), squared loss, step 0.1, start orthogonal to u, 10 seeds")
        return style.save(fig, path)


def dandi(run=DANDI_RUN, path="docs/figures/reuse_dandi_tanh_he3.png"):
    """Best overlaps and principal cosines against steps, per algorithm."""
    ds = sj.load_results(run)
    steps, d = ds["step"].values, int(ds.attrs["fixed_d"])
    with style.style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        for src, (label, color) in DANDI_ALGOS.items():
            x = ds.sel(source=src)
            band(left, steps, x["best"].sel(direction=1).values, color, "-", f"{label}: u1 (z1)")
            band(left, steps, x["best"].sel(direction=2).values, color, "--", f"{label}: u2 (z2)")
            pc = x["principal_cos"].values  # (seed, step, 2), sorted down
            # from step 1: both are exactly 0 at the orthogonal start, off a log axis
            band(right, steps[1:], pc[:, 1:, 0], color, "-.", f"{label}: largest principal cosine")
            band(right, steps[1:], pc[:, 1:, 1], color, ":", f"{label}: smallest principal cosine")
        left.set_ylabel(r"best overlap $\max_j |\cos(w_j, u_i)|$")
        left.set_ylim(0, 1)
        right.set_ylabel("principal cosines of span(u1, u2), span(w1, w2)")
        right.set_yscale("log")
        right.set_ylim(1e-3, 1.5)
        right.axhline(1 / np.sqrt(d), color="0.4", linewidth=0.8, linestyle=(0, (1, 3)))
        right.annotate(r"$1/\sqrt{d}$", (steps[-1], 1 / np.sqrt(d)), xytext=(-4, 3), textcoords="offset points",
                       ha="right", fontsize=8, color="0.3")
        for ax in (left, right):
            ax.set_xlabel("step")
            ax.set_xlim(0, steps[-1])
            ax.set_xticks(steps)
        style.legend_outside(fig)
        fig.suptitle(rf"$\tanh(z_1 + \mathrm{{He}}_3(z_2))$, width-2 ReLU network, d = {d}, n = 3d, "
                     f"{ds.sizes['seed']} seeds (mean, 25-75% band)")
        return style.save(fig, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("arnaboldi", "dandi"):
        raise SystemExit("usage: python -m experiments.reuse_figures arnaboldi [DIR_2048 DIR_4096] | dandi [DIR]")
    if argv[0] == "arnaboldi":
        return arnaboldi(dict(zip(ARNABOLDI_RUNS, argv[1:])) if argv[1:] else ARNABOLDI_RUNS)
    return dandi(*argv[1:2])


if __name__ == "__main__":
    print(main())
