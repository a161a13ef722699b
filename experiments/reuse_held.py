"""Reuse and extragradient with a spike, where the passage holds: the grid of `reuse_spiked` at a
5x smaller step, every seed run over its whole budget.

At `reuse_spiked`'s step (per-sample `c/d`, `c = 0.05`) reused batches and extragradient reach
`|rho| = 0.5` in excursions and fall back (`python -m experiments.reuse_spiked persist`), so their
first-passage `n*` is not weak recovery. Here `c = 0.01`, and `sj.passage_n(..., held=True)` also
gives per seed the passage that held to the end of the budget (`n_held`) and the fraction of the
steps from the first passage on spent at or above the threshold (`above`, counted at every step).
Budget `1024 d` samples at `r2 = 0`, `256 d` at `r2 = 0.5` (where `n*` is a few `d`); sources
`online`, `reused2`, `egd`, `reused4`; `d = 64..1024`; 32 right-sign seeds; `r1 = 0`.

    python -m experiments.reuse_held run [--out docs/data/reuse_held.json] [--quick]
    python -m experiments.reuse_held render [docs/data/reuse_held.json]

`run` resumes from `--out`. The table has, per source and `r2`, a row of first passages and a row
of held passages (marked "held", with the median fraction of the time above).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import reuse_spiked as rs

HELD = dict(rs.SETTINGS, c=0.01, budget_over_d=1024, held=True, sources=["online", "reused2", "egd", "reused4"],
            r2=[0.0, 0.5], d=[64, 128, 256, 512, 1024], d_extra={}, r1_off=[], high_threshold_r2=[], stop_fraction=1.0,
            budget_over_d_at={"0.5": 256})  # every seed runs its whole budget: at r2 = 0.5 n* is a few d
QUICK = dict(HELD, d=[32, 64], r2=[0.0], seeds=8, n_boot=100, step_check=dict(d=32, r2=0.0), budget_over_d=256)


def kicks(cfg=HELD, ds=(256,), seeds=8, r2=0.0) -> dict:
    """What knocks a held passage down: per source and d, |rho| at every step of `seeds` right-sign
    seeds over the whole budget; the medians over the seeds that passed of the largest one-step
    change of |rho| after the first passage, of the times |rho| fell back below the threshold, and
    of the fraction of the steps at or above it (the grid's `above`, here from the records)."""
    import time

    rows, t0 = [], time.process_time()
    th = cfg["threshold"]
    for d, name, rho in rs.rho_paths(cfg, ds, seeds, r2):
        jump, falls, above = [], [], []
        for r in rho:
            if not (r >= th).any():
                continue
            after = r[np.argmax(r >= th):]
            jump.append(float(np.abs(np.diff(after)).max()) if after.size > 1 else 0.0)
            falls.append(int(np.sum((after[:-1] >= th) & (after[1:] < th))))
            above.append(float(np.mean(after >= th)))
        med = lambda x: float(np.median(x)) if x else None  # noqa: E731
        rows.append(dict(d=d, r2=r2, source=name, passed=len(jump) / seeds, jump=med(jump), falls=med(falls),
                         above=med(above), max_jump=max(jump) if jump else None))
        print(rows[-1], flush=True)
    return dict(c=cfg["c"], threshold=th, seeds=seeds, rows=rows, cpu_seconds=time.process_time() - t0)


def kicks_table(data) -> str:
    lines = ["| d | source | seeds past 0.5 | median largest one-step change of \\|rho\\| after it (largest) | "
             "median falls back below 0.5 | median time above after it |", "|---|---|---|---|---|---|"]
    f = lambda v, k=".2f": "-" if v is None else format(v, k)  # noqa: E731
    for r in data["rows"]:
        lines.append(f"| {r['d']} | {rs.source_label(r['source'])} | {r['passed']:.2f} | {f(r['jump'])} ({f(r['max_jump'])}) | "
                     f"{f(r['falls'], 'g')} | {f(r['above'])} |")
    return "\n".join(lines)


def figure(data, path):
    """Median n*/d against d, first passages solid and held ones dashed, one panel per r2; a last
    panel with the median fraction of the time above the threshold after the first passage."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    from spikejax.plot import style

    from .harness.figures import pyplot

    plt = pyplot()
    cfg = data["settings"]
    pal = {"online": style.OKABE_ITO["blue"], "reused2": style.OKABE_ITO["orange"], "egd": style.OKABE_ITO["vermillion"],
           "reused4": style.OKABE_ITO["green"]}
    mk = {"online": "o", "reused2": "s", "egd": "D", "reused4": "^"}
    with style.style():
        fig, axes = plt.subplots(1, len(cfg["r2"]) + 1, figsize=(12, 4.6), layout="constrained")
        for r in data["table"]:
            held = bool(r.get("held"))
            d, y = np.array(r["d"]), np.array(r["n_star_over_d"], float)
            ok = np.isfinite(y) & (y > 0)
            ax = axes[cfg["r2"].index(r["r2"])]
            ax.plot(d[ok], y[ok], "--" if held else "-", color=pal[r["source"]], marker=mk[r["source"]],
                    mfc="white" if held else pal[r["source"]], ms=5, zorder=2 if held else 3)  # first passages on top
            cens = ~np.isfinite(y)
            if cens.any():  # censored median: a hollow triangle at the budget
                ax.plot(d[cens], (np.array(r["budget"]) / d)[cens], "^", color=pal[r["source"]], mfc="white", ms=7)
            if held and r.get("above"):
                a = np.array([np.nan if v is None else v for v in r["above"]], float)
                axes[-1].plot(d, a, "-" if r["r2"] == 0 else ":", color=pal[r["source"]], marker=mk[r["source"]], ms=5)
        for j, r2 in enumerate(cfg["r2"]):
            ax = axes[j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            style.log_ticks(ax, "y")
            ax.set_title(f"r2 = {r2:g} (kappa = d^{r2:g}): n* at |rho| >= {cfg['threshold']:g}", fontsize=9)
            ax.set_ylabel("median n* / d")
        axes[-1].set_xscale("log")
        axes[-1].set_ylim(0, 1.05)
        axes[-1].set_title("time at |rho| >= 0.5 after the first passage\n(median over seeds; solid r2 = 0, dotted 0.5)",
                           fontsize=9)
        for ax in axes:
            ax.set_xticks(cfg["d"], [str(d) for d in cfg["d"]])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("d")
        handles = [Line2D([], [], color=pal[s], marker=mk[s], label=rs.source_label(s)) for s in cfg["sources"]]
        handles += [Line2D([], [], color="0.3", ls="-", label="first passage"),
                    Line2D([], [], color="0.3", ls="--", marker="o", mfc="white", label="passage held to the end of the budget"),
                    Line2D([], [], color="0.3", ls="none", marker="^", mfc="white", label="censored median (at the budget)")]
        fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=4, fontsize=8.5)
        fig.suptitle(f"He3 target, h3 neuron, normalized, theta = u, batch d/4, per-sample step {cfg['c']:g}/d, "
                     f"{cfg['seeds']} seeds, whole budgets (exact chain)", fontsize=10)
        return style.save(fig, path)


def render(path, figure_path="docs/figures/reuse_held.png"):
    data = json.loads(Path(path).read_text())
    if figure_path:
        print(figure(data, figure_path))
    print(rs.markdown(data))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default="docs/data/reuse_held.json")
    r.add_argument("--quick", action="store_true", help="a tiny grid (d = 32, 64; 8 seeds) to check the pipeline")
    k = sub.add_parser("kicks", help="the largest one-step changes of |rho| after the first passage, at every step")
    k.add_argument("--out", default="docs/data/reuse_kicks.json")
    k.add_argument("--render", action="store_true", help="print the table from --out, no run")
    g = sub.add_parser("render")
    g.add_argument("data", nargs="?", default="docs/data/reuse_held.json")
    g.add_argument("--figure", default="docs/figures/reuse_held.png")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        rs.run(a.out, QUICK if a.quick else HELD)
    elif a.cmd == "kicks":
        from .harness.io import computed_or_stored_at

        print(kicks_table(computed_or_stored_at(a.out, a.render, kicks)))
    else:
        render(a.data, a.figure)


if __name__ == "__main__":
    main()
