"""Local slopes of the chain calibration (configs/complexity_19_chain_calibration.toml).

    PYTHONPATH=.:experiments python experiments/chain_calibration.py [--docs docs] [--n-boot 2000]

Reads the committed points (docs/data/complexity_19_chain_calibration.json: every seed's n*,
censored seeds as NaN) and writes, per series, the local slope between consecutive d,
`log(n*(d2) / n*(d1)) / log(d2 / d1)`, with a 90% seed-bootstrap interval. Every resample is
kept: a resample whose median is censored (half or more of its seeds never passed) gives an
infinite n*, so the interval is open at that end (printed as such), never dropped. Beside each
slope, the known one-pass rate's own local slope over the same octaves (d log d at s = 2: not 1 at
finite d; d^{s-1} at s >= 3). Writes docs/figures/chain_calibration_slopes.png and the results.md
block `chain_calibration_slopes`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness import pyplot, replace_block, save_figure, write_file

NAME = "complexity_19_chain_calibration"


def median_censored(n, valid):
    """The median of the counted seeds with a censored seed (NaN) above every passed one;
    infinite when half or more are censored."""
    x = np.where(np.isnan(n), np.inf, n)[valid]
    return float(np.median(x)) if x.size else np.nan


def known_slope(s, d1, d2):
    if s == 2:
        return 1 + np.log(np.log(d2) / np.log(d1)) / np.log(d2 / d1)
    return float(max(1, s - 1))


def local_slopes(points, n_boot, rng):
    """`[(d1, d2, slope, lo, hi)]` from consecutive points, 90% bootstrap over each d's seeds."""
    out = []
    meds = []
    for p in points:
        n, valid = np.asarray(p["n"], float), np.asarray(p["valid"], bool)
        idx = np.flatnonzero(valid)
        boots = np.array([median_censored(n[rng.choice(idx, idx.size)], np.ones(idx.size, bool))
                          for _ in range(n_boot)])
        meds.append((median_censored(n, valid), boots))
    for (a, ba), (b, bb), p1, p2 in zip(meds, meds[1:], points, points[1:]):
        r = np.log(p2["d"] / p1["d"])
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.log(b / a) / r
            boot = np.log(bb / ba) / r  # inf / -inf where a median is censored: kept
        lo, hi = np.percentile(boot, [5, 95])
        out.append(dict(d1=p1["d"], d2=p2["d"], slope=float(slope), lo=float(lo), hi=float(hi)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args(argv)
    docs = Path(args.docs)
    data = json.loads((docs / "data" / f"{NAME}.json").read_text())
    rng = np.random.default_rng(0)
    series = []
    for row in data["rows"]:
        t = row["target"]
        slopes = local_slopes(row["points"], args.n_boot, rng)
        for x in slopes:
            x["known"] = known_slope(t["s"], x["d1"], x["d2"])
        series.append(dict(name=t["name"], s=t["s"], link=t["link"], activation=t["activation"], loss=t["loss"],
                           slopes=slopes, n_star=row["n_star"], d=row["d"],
                           seeds=[int(np.sum(p["valid"])) for p in row["points"]]))
    write_file(docs / "data" / "chain_calibration_slopes.json", json.dumps(series, indent=1))
    plot(series, docs)
    replace_block(docs / "results.md", "chain_calibration_slopes", table(series))


def _fmt(x):
    return "inf" if np.isinf(x) else f"{x:.2f}"


def table(series):
    lines = ["![local slopes](figures/chain_calibration_slopes.png)", "",
             "Local slope of the median n* between consecutive d (90% seed bootstrap, every resample kept: "
             "`inf` marks an interval open at the top, a resample whose median is censored), beside the known "
             "one-pass rate's own local slope over the same d (d log d at s = 2; d^{s-1} at s >= 3).", "",
             "| s (link / activation, loss) | d1 -> d2 | local slope [90% CI] | known rate's slope | seeds at d2 |",
             "|---|---|---|---|---|"]
    for sr in series:
        for x, seeds in zip(sr["slopes"], sr["seeds"][1:]):
            lines.append(f"| {sr['s']} ({sr['link']} / {sr['activation']}, {sr['loss']}) | {x['d1']} -> {x['d2']} | "
                         f"{x['slope']:.2f} [{_fmt(x['lo'])}, {_fmt(x['hi'])}] | {x['known']:.2f} | {seeds} |")
    return "\n".join(lines)


def plot(series, docs):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.6), squeeze=False)
    for ax, sr in zip(axes[0], series):
        mid = np.array([np.sqrt(x["d1"] * x["d2"]) for x in sr["slopes"]])
        y = np.array([x["slope"] for x in sr["slopes"]])
        lo = np.array([x["lo"] for x in sr["slopes"]])
        hi = np.array([x["hi"] for x in sr["slopes"]])
        top = np.nanmax(np.where(np.isfinite(hi), hi, np.nan)) + 0.5
        hi_c = np.where(np.isfinite(hi), hi, top)
        ax.errorbar(mid, y, yerr=[y - lo, hi_c - y], fmt="o", color="C0", capsize=3, label="chain: local slope, 90% CI")
        open_top = ~np.isfinite(hi)
        if open_top.any():
            ax.plot(mid[open_top], hi_c[open_top], "^", color="C0", mfc="none", label="interval open at the top")
        ax.plot(mid, [x["known"] for x in sr["slopes"]], "k--", label="known one-pass rate")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("d (geometric middle of each octave pair)")
        ax.set_ylabel("d log n* / d log d")
        ax.set_title(f"s = {sr['s']} ({sr['link']} / {sr['activation']}, {sr['loss']})", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, docs / "figures" / "chain_calibration_slopes.png", tight=False)


if __name__ == "__main__":
    main()
