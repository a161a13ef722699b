"""Local slopes of the chain calibration (configs/claims/complexity_19_chain_calibration.toml).

    python -m experiments.chain_calibration [--render] [--docs docs] [--n-boot 2000]

Reads the committed points (docs/data/complexity_19_chain_calibration.json: every seed's n*,
censored seeds as NaN) and writes, per series, the local slope between consecutive d,
`log(n*(d2) / n*(d1)) / log(d2 / d1)`, with a 90% seed-bootstrap interval. Every resample is
kept: a resample whose median is censored (half or more of its seeds never passed) gives an
infinite n*, so the interval is open at that end (printed as such), never dropped. Beside each
slope, the known one-pass rate's own local slope over the same octaves (d log d at s = 2: not 1 at
finite d; d^{s-1} at s >= 3), and where each series becomes asymptotic: the first d from which every
later octave's interval contains the known rate's slope. Writes docs/figures/chain_calibration_slopes.png
and the results.md block `chain_calibration_slopes` (the section above it shows the figure).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import spikejax as sj
from experiments.harness import pyplot, replace_block, save_figure, write_file
from experiments.harness.onepass import ragged

NAME = "complexity_19_chain_calibration"


def known_slope(s, d1, d2):
    if s == 2:
        return 1 + np.log(np.log(d2) / np.log(d1)) / np.log(d2 / d1)
    return float(max(1, s - 1))


def local_slopes(points, n_boot, seed):
    """`[(d1, d2, slope, lo, hi)]` from consecutive points: `sj.local_slopes` (censored seeds above
    every passed one, 90% bootstrap over each d's counted seeds, every resample kept)."""
    n, valid = ragged(points, "n", np.nan), ragged(points, "valid", False).astype(bool)
    slopes = sj.local_slopes([p["d"] for p in points], n, valid, n_boot=n_boot, ci=0.9, seed=seed)
    return [dict(d1=int(x.d1), d2=int(x.d2), slope=x.slope, lo=x.lo, hi=x.hi) for x in slopes]


def asymptotic_from(slopes):
    """The first `d1` from which every later octave's interval holds the known rate's own slope
    (`lo <= known <= hi`), or None when the last octave's does not: where the series is asymptotic."""
    start = None
    for x in slopes:
        holds = x["lo"] <= x["known"] <= x["hi"]
        start = (x["d1"] if start is None else start) if holds else None
    return start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--render", action="store_true", help="accepted for the common dialect: this script only ever "
                    "reads the committed points in docs/data")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args(argv)
    docs = Path(args.docs)
    data = json.loads((docs / "data" / f"{NAME}.json").read_text())
    series = []
    for row in data["rows"]:
        t = row["target"]
        slopes = local_slopes(row["points"], args.n_boot, seed=len(series))
        for x in slopes:
            x["known"] = known_slope(t["s"], x["d1"], x["d2"])
        series.append(dict(name=t["name"], s=t["s"], link=t["link"], activation=t["activation"], loss=t["loss"],
                           slopes=slopes, n_star=row["n_star"], d=row["d"], asymptotic_from=asymptotic_from(slopes),
                           seeds=[int(np.sum(p["valid"])) for p in row["points"]]))
    write_file(docs / "data" / "chain_calibration_slopes.json", json.dumps(series, indent=1))
    plot(series, docs)
    replace_block(docs / "results.md", "chain_calibration_slopes", table(series))


def table(series):
    lines = ["Local slope of the median n* between consecutive d (`sj.local_slopes`: a censored seed above every "
             "passed one, the median the ceil(S/2)-th smallest; 90% seed bootstrap, every resample kept: `open` "
             "marks an interval open at that end, a resample whose median is censored), beside the known "
             "one-pass rate's own local slope over the same d (d log d at s = 2; d^{s-1} at s >= 3).", "",
             "| s (link / activation, loss) | d1 -> d2 | local slope [90% CI] | known rate's slope | seeds at d2 |",
             "|---|---|---|---|---|"]
    for sr in series:
        for x, seeds in zip(sr["slopes"], sr["seeds"][1:]):
            lines.append(f"| {sr['s']} ({sr['link']} / {sr['activation']}, {sr['loss']}) | {x['d1']} -> {x['d2']} | "
                         f"{x['slope']:.2f} {sj.interval_text(x['lo'], x['hi'])} | {x['known']:.2f} | {seeds} |")
    lines.append("")
    for sr in series:
        start = sr["asymptotic_from"]
        lines.append(f"- s = {sr['s']}: " + (f"asymptotic from d = {start} (every octave from there holds the known "
                     "rate's slope in its interval)" if start is not None else "not asymptotic at the largest d "
                     "(the last octave's interval misses the known rate's slope)"))
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
