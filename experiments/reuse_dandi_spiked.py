"""Dandi et al.'s two-index experiment with a spike on a target direction.

    python -m experiments.reuse_dandi_spiked run [--out docs/data/reuse_dandi_spiked.json]
    python -m experiments.reuse_dandi_spiked render [DATA]

The setting is `configs/reuse_dandi_tanh_he3.toml`: `tanh(z1 + He3(z2))`, a width-2 ReLU network with
its second layer frozen, full-batch GD on `n = 3d` samples reused at every step against one-pass GD on
`n = 3d` fresh samples a step, their step, rows started orthogonal to both directions, 32 seeds. Here
the inputs carry one spike, `Sigma = I + (kappa - 1) u u^T`, `kappa = d^r2`, with `<u, u_i> = d^-r1`
on one target direction `u_i` (`spikes = [{align, r1, r2}]`): on `u1` (z1, which one-pass GD already
sees at first order) or on `u2` (z2, the He3 direction, whose part orthogonal to the first-order
direction only reused samples reach). Each variant runs at `d` = 256, 512, 1024 with `n / d` fixed,
so an overlap that does not fall with `d` at a fixed number of steps means `n ~ d` samples suffice.

Recorded per (variant, d, source): the mean and 25-75% quantiles over the seeds of each direction's
best single-unit overlap and of the smallest principal cosine between `span(u1, u2)` and the units'
span, at every step. Writes the JSON with the one writer (`harness.io.write_json`) after every
sweep (a rerun resumes), and `docs/figures/reuse_dandi_spiked.png`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

BASE = Path("configs/reuse_dandi_tanh_he3.toml")
OUT = Path("docs/data/reuse_dandi_spiked.json")
FIGURE = Path("docs/figures/reuse_dandi_spiked.png")
DS = (256, 512, 1024)
STEPS = 10
# (label, spikes): align is the direction's index (0: u1 = z1, 1: u2 = z2)
VARIANTS = (
    ("no spike", []),
    ("u2, r2 = 0.5", [dict(align=1, r1=0.0, r2=0.5)]),
    ("u2, r2 = 1", [dict(align=1, r1=0.0, r2=1.0)]),
    ("u2 off by r1 = 0.25, r2 = 1", [dict(align=1, r1=0.25, r2=1.0)]),
    ("u1, r2 = 1", [dict(align=0, r1=0.0, r2=1.0)]),
)
SOURCES = ("empirical", "online")


def config(d: int, spikes: list) -> dict:
    """The base TOML at dimension `d` (`n = batch = 3d`) with these spikes."""
    import spikejax as sj

    cfg = sj.read_toml(BASE)
    return dict(cfg, d=d, n=3 * d, batch=3 * d, spikes=spikes, steps=STEPS, record=STEPS + 1)


def summarise(ds) -> dict:
    """Per source: mean and 25-75% quantiles over seeds, at every step, of `best` per direction and
    of the smallest principal cosine."""
    out = {}
    for src in SOURCES:
        x = ds.sel(source=src)
        series = {"best_u1": x["best"].sel(direction=1).values, "best_u2": x["best"].sel(direction=2).values,
                  "smallest_cos": x["principal_cos"].values[..., -1]}
        out[src] = {k: dict(mean=v.mean(0).tolist(), q25=np.quantile(v, 0.25, 0).tolist(),
                            q75=np.quantile(v, 0.75, 0).tolist()) for k, v in series.items()}
        out[src]["status_ok"] = bool((x["status"].values == "ok").all())
    return out


def run(path=OUT):
    import spikejax as sj

    from .harness.io import write_json

    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    points = data.get("points", {})
    for (label, spikes), d in ((v, d) for v in VARIANTS for d in DS):
        key = f"{label}|{d}"
        if key in points:
            continue
        t0, c0 = time.time(), time.process_time()
        ds = sj.sweep(config(d, spikes), progress=False)
        points[key] = dict(label=label, spikes=spikes, d=d, steps=ds["step"].values.tolist(), seeds=int(ds.sizes["seed"]),
                           **summarise(ds), seconds=time.time() - t0, cpu=time.process_time() - c0)
        print(f"{key}: u2 best at the last step, full batch {points[key]['empirical']['best_u2']['mean'][-1]:.3f}, "
              f"one-pass {points[key]['online']['best_u2']['mean'][-1]:.3f} ({points[key]['cpu']:.0f} s CPU)", flush=True)
        write_json(path, dict(base=str(BASE), ds=list(DS), steps=STEPS, points=points))
    return json.loads(path.read_text())


def table(data) -> str:
    """The last step's overlaps per (variant, d): full batch against one-pass."""
    lines = ["| spike | d | best u1 (z1): full batch / one-pass | best u2 (z2): full batch / one-pass | "
             "smallest principal cos: full batch / one-pass |", "|---|---|---|---|---|"]
    for p in data["points"].values():
        cells = []
        for k in ("best_u1", "best_u2", "smallest_cos"):
            e, o = p["empirical"][k], p["online"][k]
            cells.append(f"{e['mean'][-1]:.3f} [{e['q25'][-1]:.3f}, {e['q75'][-1]:.3f}] / "
                         f"{o['mean'][-1]:.3f} [{o['q25'][-1]:.3f}, {o['q75'][-1]:.3f}]")
        lines.append(f"| {p['label']} | {p['d']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(data, path=FIGURE):
    """The last step's mean overlaps with u1, u2 and smallest principal cosine against d, per variant and source."""
    from matplotlib.lines import Line2D

    from spikejax.plot import style

    from .harness.figures import pyplot

    plt = pyplot()
    labels = [v[0] for v in VARIANTS]
    colours = dict(zip(labels, style.PALETTE))
    with style.style():
        fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9), layout="constrained")
        for ax, key, title in zip(axes, ("best_u1", "best_u2", "smallest_cos"),
                                  ("best overlap with u1 (z1)", "best overlap with u2 (z2, the He3 direction)",
                                   "smallest principal cosine")):
            for label in labels:
                pts = sorted((p for p in data["points"].values() if p["label"] == label), key=lambda p: p["d"])
                if not pts:
                    continue
                d = np.array([p["d"] for p in pts])
                for src, ls, mk in (("empirical", "-", "o"), ("online", "--", "s")):
                    ax.plot(d, [p[src][key]["mean"][-1] for p in pts], ls=ls, marker=mk, color=colours[label],
                            mfc=colours[label] if src == "empirical" else "white")
            ax.plot(DS, 1 / np.sqrt(np.array(DS)), ":", color="0.4", lw=0.9)
            ax.set_xscale("log", base=2)
            ax.set_xticks(DS, [str(d) for d in DS])
            ax.set_xlabel("d  (n = 3d)")
            ax.set_title(f"{title}, step {data['steps']}", fontsize=9)
        seeds = sorted({p["seeds"] for p in data["points"].values()})
        axes[0].set_ylabel(f"mean over {', '.join(map(str, seeds))} seeds")
        axes[2].set_yscale("log")
        handles = [Line2D([], [], color=colours[lab], marker="o", label=f"spike on {lab}" if lab != "no spike" else lab)
                   for lab in labels]
        handles += [Line2D([], [], color="0.3", ls="-", marker="o", label="full-batch GD (n = 3d reused)"),
                    Line2D([], [], color="0.3", ls="--", marker="s", mfc="white", label="one-pass GD (3d fresh a step)"),
                    Line2D([], [], color="0.4", ls=":", label="1/sqrt(d)")]
        style.legend_outside(fig, handles, [h.get_label() for h in handles])
        fig.suptitle("tanh(z1 + He3(z2)), width-2 ReLU network, their step, with one spike kappa = d^r2 on a "
                     "target direction", fontsize=10)
        return style.save(fig, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m experiments.reuse_dandi_spiked", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default=str(OUT))
    g = sub.add_parser("render")
    g.add_argument("data", nargs="?", default=str(OUT))
    a = ap.parse_args(argv)
    data = run(a.out) if a.cmd == "run" else json.loads(Path(a.data).read_text())
    print(figure(data))
    print(table(data))


if __name__ == "__main__":
    main()
