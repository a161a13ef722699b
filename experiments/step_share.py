"""The step's share of the one-pass grid (issue 24): the law `n* = T(d) x batch / dt` against the
measured first passages of every one-pass normalized/preconditioned series.

    python -m experiments.step_share [--render] [--docs docs] [--n-boot 500]

For every series (s, r1, r2, dynamic) of the committed one-pass runs in `SOURCES` (their
docs/data/<name>.json: per-seed n*, censored seeds as NaN; the d-dimensional grids and the exact
chain's, whose flows run in float64), and every d of it, the population flow
(`harness.flows.population_passages`: the same dynamic, normalisation, link, activation, loss,
spike and seed keys, so the same starts, in reduced coordinates by Dopri5) gives each seed's time
`T` to the series' threshold and the largest stable Euler step along the way (the field's
curvature). The law's n* is the median `T` times the samples per unit time at the run's own step
(`batch / dt`, `dt = c batch d^{-s/2}`: `d^{s/2} / c`), and, as a second column, at the
per-dynamic step `dt_curv(d)` = the smallest curvature limit over the seeds (a prediction, not a
run: no one-pass run was made at that step, and the step's noise is not in it). No one-pass run is
made. Writes docs/data/step_share.json (the one JSON writer), docs/figures/step_share.png and the
results.md blocks `step_share` and `step_share_claims`; `--render` redraws them from that JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

import spikejax as sj

from . import theory
from .harness import figures
from .harness.flows import population_passages
from .harness.io import computed_or_stored, read_data, write_block
from .harness.onepass import point_setup, ragged
from .harness.tables import fmt, sig

NAME = "step_share"
SOURCES = ("complexity_15_claim4_online", "complexity_10_precond_online", "complexity_20_claim4_chain")
FLOW_HORIZON = 4  # the flow runs to 4 x the one-pass run's time budget (steps x dt)


def point_law(cfg, target, point) -> dict:
    """The law at one committed point: each seed's flow time and curvature limit (the point's own
    seeds and starts), the median flow time (censored as `median_n` censors), the step it ran at."""
    u = point_setup(cfg, target, point["d"])
    if not (np.isclose(u["eta"], point["eta"]) and u["b"] == point["batch"]):
        raise ValueError(f"{target['name']} d={point['d']}: the config's step ({u['eta']}, batch {u['b']}) is not the "
                         f"committed point's ({point['eta']}, batch {point['batch']})")
    metric = target.get("metric", cfg.get("metric", "rho"))
    flow = population_passages(u["p"], setting_dynamic(target, cfg), u["keys"], FLOW_HORIZON * u["steps"] * u["eta"],
                               cfg["threshold"], metric=metric)
    valid = np.asarray(point["valid"], bool)
    if not np.allclose(flow["rho0"], np.abs(point["rho0"]), rtol=1e-3, atol=1e-6):
        raise ValueError(f"{target['name']} d={point['d']}: the flow's starts are not the committed run's")
    t_med = sj.median_n(flow["time"], valid)
    return dict(d=point["d"], batch=u["b"], dt=u["eta"], kappa=u["kappa"], time=flow["time"].tolist(),
                limit=flow["limit"].tolist(), valid=valid.tolist(), flow_time=t_med,
                flow_never=float(np.mean(np.isnan(flow["time"][valid]))),
                dt_curv=float(np.min(flow["limit"][valid])), n_star=point["n_star"], never=point["never"])


def setting_dynamic(target, cfg) -> str:
    return target.get("dynamic", cfg["dynamic"])


def series_law(cfg, row, checks, n_boot) -> dict:
    """One series: the law at every d, its exponent at the run's step and at the curvature step,
    with the flow's and the step's parts, beside the measured exponent and n*."""
    t = row["target"]
    pts = [point_law(cfg, t, p) for p in row["points"]]
    ds = [p["d"] for p in pts]
    T = np.array([p["flow_time"] for p in pts])
    b = np.array([p["batch"] for p in pts], float)
    dt = np.array([p["dt"] for p in pts])
    curv = np.array([p["dt_curv"] for p in pts])
    law_seeds = ragged([dict(n=theory.law_n(p["time"], p["batch"], p["dt"])) for p in pts], "n", np.nan)
    fit = sj.bootstrap_passage(ds, law_seeds, valid=ragged(pts, "valid", False).astype(bool), n_boot=n_boot)
    check = checks.get(t["name"])
    floor = sum(p["n_star"] is not None and p["n_star"] <= p["batch"] for p in pts)
    return dict(
        source=cfg["name"], name=t["name"], s=t["s"], link=t["link"], activation=t["activation"],
        loss=t.get("loss", "squared"), r1=t.get("r1", cfg.get("r1", 0.0)), r2=t.get("r2", cfg.get("r2")),
        dynamic=setting_dynamic(t, cfg), metric=t.get("metric", cfg.get("metric", "rho")),
        threshold=cfg["threshold"], d=ds, points=pts,
        n_star=[p["n_star"] for p in pts], n_law=theory.law_n(T, b, dt).tolist(),
        n_law_curv=theory.law_n(T, b, curv).tolist(),
        measured=dict(eta=row["eta"], lo=row["lo"], hi=row["hi"]),
        law=dict(theory.law_exponent(ds, T, b, dt), lo=fit.lo, hi=fit.hi),
        law_curv=theory.law_exponent(ds, T, b, curv),
        step_check=None if check is None else dict(ok=check["ok"], ratio=check["ratio"]),
        one_batch=int(floor))


def compute(docs, n_boot) -> dict:
    out = dict(sources=list(SOURCES), flow_horizon=FLOW_HORIZON, series=[])
    t0, cpu = time.time(), time.process_time()
    for name in SOURCES:
        data = read_data(docs, name)
        checks = {c["target"]: c for c in data.get("step_checks", [])}
        # the exact chain's problem, starts and flows are float64 (the d-dimensional runs' float32)
        jax.config.update("jax_enable_x64", bool(data["config"].get("reduced", False)))
        for row in data["rows"]:
            out["series"].append(series_law(data["config"], row, checks, n_boot))
            print(f"{name} {row['target']['name']}: measured {row['eta']:.2f}, law "
                  f"{out['series'][-1]['law']['eta']:.2f} ({time.time() - t0:.0f} s)", flush=True)
    out["claims"] = claims(out["series"])
    out["seconds"], out["cpu_seconds"] = time.time() - t0, time.process_time() - cpu
    return out


def _key(x):
    return (x["source"], x["s"], x["r1"], x["metric"])


def _split(meas_a, meas_b, a, b) -> dict:
    """A measured exponent gap `a - b` and the law's account of it: the flow's part (the gap of the
    flow-time slopes; the run's step adds the same `s/2` to both), what the law leaves (the
    residual), and the step's part at the per-dynamic curvature step (a prediction)."""
    gap = meas_a - meas_b
    flow = a["law"]["flow"] - b["law"]["flow"]
    step_common = a["law"]["step"] - b["law"]["step"]
    step_curv = a["law_curv"]["step"] - b["law_curv"]["step"]
    return dict(gap=gap, flow=flow, step_common=step_common, residual=gap - flow - step_common,
                step_curv=step_curv, law_curv_gap=flow + step_curv)


def claims(series) -> list:
    """Claim 4 (normalized: the exponent at r2 = 0 minus the one at r2) and claim 5 (the same cell:
    preconditioned minus normalized), each split by `_split`."""
    rows = []
    by = {(_key(x), x["r2"], x["dynamic"]): x for x in series}
    for (k, r2, dyn), x in by.items():
        base = by.get((k, 0.0, dyn))
        if dyn == "normalized" and base is not None and r2 != 0.0:
            rows.append(dict(claim=4, source=k[0], s=k[1], r1=k[2], metric=k[3], r2=r2, what="r2 = 0 minus r2",
                             **_split(base["measured"]["eta"], x["measured"]["eta"], base, x),
                             flags=_flags(base) + _flags(x)))
        other = by.get((k, r2, "normalized"))
        if dyn == "preconditioned" and other is not None:
            rows.append(dict(claim=5, source=k[0], s=k[1], r1=k[2], metric=k[3], r2=r2,
                             what="preconditioned minus normalized",
                             **_split(x["measured"]["eta"], other["measured"]["eta"], x, other),
                             flags=_flags(x) + _flags(other)))
    return rows


def _flags(x) -> list:
    """Why a series' measured exponent is not a clean measurement: a failed step check, n* of one batch."""
    out = []
    if x["step_check"] is not None and not x["step_check"]["ok"]:
        out.append(f"{x['dynamic']} r2={x['r2']:g}: step check failed")
    if x["one_batch"]:
        out.append(f"{x['dynamic']} r2={x['r2']:g}: n* one batch at {x['one_batch']} d")
    return out


def _series_row(x) -> str:
    m, law, lc = x["measured"], x["law"], x["law_curv"]
    ratio = ", ".join(f"{p['dt'] / p['dt_curv']:.2g}" for p in x["points"])
    flags = "; ".join(_flags(x)) or "-"
    diff = law["eta"] - m["eta"] if np.isfinite(m["eta"]) else float("nan")
    return (f"| {x['source'].split('_')[1]} | {x['s']} ({x['link']} / {x['activation']}, {x['loss']}) | {x['r1']:g} | "
            f"{x['r2']:g} | {x['dynamic']}, {x['metric']} | {x['d'][0]}..{x['d'][-1]} | "
            f"{', '.join(sig(v) for v in x['n_star'])} | {', '.join(sig(v) for v in x['n_law'])} | "
            f"{fmt(m['eta'])} {sj.interval_text(m['lo'], m['hi'])} | {fmt(law['eta'])} "
            f"{sj.interval_text(law['lo'], law['hi'])} = {fmt(law['flow'])} + {fmt(law['step'])} | {diff:+.2f} | "
            f"{fmt(lc['eta'])} = {fmt(lc['flow'])} + {fmt(lc['step'])} | {ratio} | {flags} |")


def table(out) -> str:
    series = out["series"]
    diffs = np.array([x["law"]["eta"] - x["measured"]["eta"] for x in series])
    inside = sum(x["measured"]["lo"] <= x["law"]["eta"] <= x["measured"]["hi"] for x in series)
    clean = [abs(dv) for x, dv in zip(series, diffs) if not _flags(x)]
    lines = [
        "![measured against the law's exponent](figures/step_share.png)", "",
        "The law n* = T(d) x batch / dt (`theory.law_n`): T(d) the population flow's time to the series' threshold "
        "(median over the run's own seeds and starts: same dynamic, normalisation, link, activation, loss and spike; "
        "reduced coordinates, Dopri5 at rtol 1e-6; a seed past "
        f"{out['flow_horizon']} x the run's time budget counts as never), batch / dt the samples per unit time at "
        "the run's step (dt = c batch d^(-s/2): d^(s/2) / c, the same for both dynamics). Law eta = flow + step: "
        "the slopes of T(d) and of batch / dt (least squares over the same d as the measured fit; 90% interval: "
        "the same seed bootstrap). Curvature step: dt_curv(d) = the smallest over the seeds of 2 / max |eigenvalue| "
        "of the flow field's Jacobian along the flow up to the passage (the largest stable Euler step for the "
        "population flow): **a prediction, not a run**, and the step's noise is not in it. "
        f"Computed from the committed points (no one-pass run): {out['seconds']:.0f} s wall, "
        f"{out['cpu_seconds']:.0f} s CPU.", "",
        f"Law minus measured exponent: median {np.median(diffs):+.2f}, |.| median {np.median(np.abs(diffs)):.2f}, "
        f"largest |.| {np.max(np.abs(diffs)):.2f} over {len(series)} series ({len(clean)} without a flag: |.| median "
        f"{np.median(clean):.2f}, largest {np.max(clean):.2f}); the law's exponent lies in the measured 90% "
        f"interval in {inside} of {len(series)}.", "",
        "| exp. | s (link / activation, loss) | r1 | r2 | dynamic, metric | d | measured n* at each d | law n* at each "
        "d (run's step) | measured eta [90% CI] | law eta [90% CI] = flow + step | law - measured | law eta at the "
        "curvature step (prediction) = flow + step | dt / dt_curv at each d | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_series_row(x) for x in series])


def claims_table(out) -> str:
    lines = [
        "Each measured exponent gap split by the law (`step_share.claims`): claim 4 = normalized exponent at "
        "r2 = 0 minus the one at r2 (the spike's gain); claim 5 = preconditioned minus normalized in the same "
        "cell (preconditioning's loss). Flow = the gap of the flow-time slopes; step at the run's step = the gap "
        "of the samples-per-time slopes (0: one step rule for every cell and both dynamics); residual = measured "
        "gap - flow - step (what the law does not account for); step at the curvature step = the gap of "
        "batch / dt_curv slopes if each dynamic ran at its own curvature limit (a prediction, not a run).", "",
        "| claim | exp. | s | r1 | metric | r2 | measured gap | flow | step (run's step) | residual | "
        "step (curvature step, prediction) | law gap at the curvature steps | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(out["claims"], key=lambda c: (c["claim"], c["source"], c["s"], c["r1"], c["metric"], c["r2"])):
        lines.append(f"| {c['claim']} | {c['source'].split('_')[1]} | {c['s']} | {c['r1']:g} | {c['metric']} | "
                     f"{c['r2']:g} | {c['gap']:+.2f} | {c['flow']:+.2f} | {c['step_common']:+.2f} | "
                     f"{c['residual']:+.2f} | {c['step_curv']:+.2f} | {c['law_curv_gap']:+.2f} | "
                     f"{'; '.join(c['flags']) or '-'} |")
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    with style.style():
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.0))
        for ax, key, title in zip(axes, ("law", "law_curv"), ("the run's step", "the curvature step (prediction)")):
            for dyn in ("normalized", "preconditioned"):
                xs = [x for x in out["series"] if x["dynamic"] == dyn]
                st = style.dynamic_style(dyn, marker=True)
                m = np.array([x["measured"]["eta"] for x in xs])
                err = np.array([[x["measured"]["eta"] - x["measured"]["lo"], x["measured"]["hi"] - x["measured"]["eta"]]
                                for x in xs]).T
                law = np.array([x[key]["eta"] for x in xs])
                flagged = np.array([bool(_flags(x)) for x in xs])
                ax.errorbar(law, m, yerr=np.maximum(err, 0), fmt="none", ecolor=st["color"], alpha=0.4)
                ax.plot(law[~flagged], m[~flagged], st.get("marker", "o"), color=st["color"], ls="none", label=dyn)
                ax.plot(law[flagged], m[flagged], st.get("marker", "o"), color=st["color"], mfc="white", ls="none",
                        label=f"{dyn}, flagged")
            lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
            ax.plot(lim, lim, "k--", lw=1, label="law = measured")
            ax.set_xlabel(f"law's exponent at {title}")
            ax.set_ylabel("measured exponent (90% CI)")
            ax.set_title(f"n* = T(d) x batch / dt, at {title}", fontsize=9)
        axes[0].legend(fontsize=7, frameon=False)
        figures.save_figure(fig, figures.figure_path(docs, NAME))


def render(out, docs):
    plot(out, docs)
    write_block(docs, NAME, table(out))
    write_block(docs, NAME + "_claims", claims_table(out))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m experiments.step_share", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--render", action="store_true", help="redraw the blocks and the figure from docs/data/step_share.json")
    ap.add_argument("--n-boot", type=int, default=500)
    args = ap.parse_args(argv)
    docs = Path(args.docs)
    render(computed_or_stored(docs, NAME, args.render, lambda: compute(docs, args.n_boot)), docs)


if __name__ == "__main__":
    main()
