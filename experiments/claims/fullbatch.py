"""Full-batch GD with sample reuse (kind `fullbatch`): `n*` from a grid of sample sizes
(`sj.search_n` on `Empirical(n)`) with a horizon that scales with the flow's escape time, and
the fitted exponent against the one-pass rate, the reuse rate and the paper's bound."""

from __future__ import annotations

import json
import time

import jax
import numpy as np

from spikejax import DYNAMICS, bootstrap_exponent, make_problem, search_n

from .. import theory
from ..harness import figures
from ..harness.config import setting
from ..harness.io import as_json, data_path, show, write_json
from ..harness.seeds import seed_keys
from ..harness.tables import fmt
from ..harness.window import predict_n, windowed_search

KIND = "fullbatch"


def n_grid(d, target):
    """`d 2^k` for `k` in `log2_n_over_d` by `log2_step` (default 1), duplicates dropped."""
    lo, hi = target["log2_n_over_d"]
    g = np.unique(np.round(d * 2.0 ** np.arange(lo, hi + 1e-9, target.get("log2_step", 1.0))).astype(int))
    if g[0] < 2:
        raise ValueError(f"log2_n_over_d={target['log2_n_over_d']!r} is not allowed at d={d}; the grid must start at n >= 2")
    return g


def point(cfg, target, d, n_pred=None):
    """`search_n` at one `d`: GD on `n` fixed samples for every `n` of the grid, step `dt`, horizon
    `cfg['horizon']` times the flow's escape time from `0.5 / sqrt(d)` (so it scales with `d` as the
    theory says), right-sign seeds only for odd `s >= 3`. With a target's `window`, only that many
    grid points run, around `n_pred` (`harness/window.py`)."""
    s = target["s"]
    p = make_problem(d, key=jax.random.key(d), kappa=cfg.get("kappa", 0.0), r1=cfg.get("r1", 0.0),
                     link=target["link"], activation=target["activation"], noise=cfg["noise"],
                     loss=target.get("loss", "squared"))
    dyn = DYNAMICS[cfg["dynamic"]]()
    keys = seed_keys(p, dyn, d, target["seeds"], s % 2 == 1 and s >= 3)
    ab, _ = theory.noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    dt = setting(target, cfg, "dt")
    steps = int(np.ceil(setting(target, cfg, "horizon") * theory.escape_time(s, d, abs(ab)) / dt))
    t0 = time.time()

    def run_on(points, n_draw):
        return search_n(p, dyn, n_grid=points, keys=keys, dt=dt, steps=steps, n_draw=n_draw)

    if "window" in target:
        res, windows = windowed_search(run_on, n_grid(d, target), n_pred, target["window"], cfg["threshold"])
    else:
        res, windows = run_on(n_grid(d, target), None), None
    return dict(d=d, dt=dt, steps=steps, n_grid=res.n_grid.tolist(), rho=res.rho.tolist(), cos_u=res.cos_u.tolist(),
                valid=res.valid.tolist(), n_star=res.n_star("rho", cfg["threshold"]),
                n_seeds=res.n_per_seed("rho", cfg["threshold"]), seconds=time.time() - t0,
                windows=windows)


def units(cfg):
    return sum(len(cfg["d"][t["name"]]) for t in cfg["targets"])


def _row(cfg, target, prev, bar, out, save):
    """One target's points (resuming after `prev`'s) and its fit."""
    ds = cfg["d"][target["name"]]
    row = dict(target=target, points=list((prev or {}).get("points", [])))
    out["rows"].append(row)
    pts = row["points"]
    bar.update(len(pts))
    for d in ds[len(pts):]:
        bar.set_postfix_str(f"{cfg['name']} {target['name']} d={d}")
        pts.append(point(cfg, target, d, predict_n(ds, [p["n_star"] for p in pts], d)))
        save()
        bar.update(1)
    fit = bootstrap_exponent(ds, np.array([p["n_grid"] for p in pts], float), np.array([p["rho"] for p in pts], float),
                             valid=np.array([p["valid"] for p in pts]), threshold=cfg["threshold"],
                             n_boot=cfg.get("n_boot", 500))
    row.update(d=ds, eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c, n_star=fit.n_star.tolist(),
               seconds=sum(p["seconds"] for p in pts))
    save()


def run(cfg, docs, bar):
    """Every target's n* at each d and its fitted eta. The data file is written after every d
    (`partial: true` until the last target), and a rerun of the same config resumes: finished rows
    are kept, a row's finished points are not rerun. `cfg['only_targets']` (`--targets`): only those
    rows run; the others are kept from the data file."""
    path = data_path(docs, cfg["name"])
    names = cfg.get("only_targets")
    stored = as_json({k: v for k, v in cfg.items() if k != "only_targets"})
    out = {"config": stored, "rows": [], "partial": True, "seconds": 0.0, "cpu_seconds": 0.0}
    old = json.loads(path.read_text()) if path.exists() else None
    if old is not None and old["config"] != stored:
        old = None  # another config's data: start over
    if old is not None:
        out.update(seconds=old.get("seconds", 0.0), cpu_seconds=old.get("cpu_seconds", 0.0))
    kept = {r["target"]["name"]: r for r in (old or {}).get("rows", [])}
    t_all, cpu_all = time.time(), time.process_time()
    base_s, base_cpu = out["seconds"], out["cpu_seconds"]

    def save():
        out["seconds"] = base_s + time.time() - t_all
        out["cpu_seconds"] = base_cpu + time.process_time() - cpu_all
        write_json(path, out)

    for target in cfg["targets"]:
        prev = kept.get(target["name"])
        if (names is not None and target["name"] not in names) or (prev is not None and "eta" in prev):
            if prev is not None:
                out["rows"].append(prev)
            bar.update(len(cfg["d"][target["name"]]))
            continue
        _row(cfg, target, prev, bar, out, save)
    if all("eta" in r for r in out["rows"]) and len(out["rows"]) == len(cfg["targets"]):
        del out["partial"]
    save()
    show(out, docs, plot, table)
    return out


def _ratio(cfg) -> str:
    steps = {t.get("log2_step", 1.0) for t in cfg["targets"]}
    return " / ".join("2" if x == 1.0 else ("sqrt(2)" if x == 0.5 else f"{2 ** x:.3g}") for x in sorted(steps))


def row_verdict(r, cfg) -> str:
    """A full-batch row against the bounds for full-batch GD (`theory.verdict`: the paper's claim 4
    and, isotropic, the reuse rate), and the one-pass rate beside it for reference."""
    s = r["target"]["s"]
    text = theory.verdict(r["lo"], r["hi"], r["d"], algorithm=theory.FULL_BATCH, observable=theory.WEAK, s=s,
                          r1=cfg.get("r1", 0.0), r2=None, isotropic=cfg.get("kappa", 0.0) == 0.0)
    if np.isfinite(r["lo"]) and np.isfinite(r["hi"]):
        text += "; " + theory.reference(r["lo"], r["hi"], theory.one_pass_bound(s))
    return text


def table(out):
    cfg = out["config"]
    lines = [
        f"![n* against d](figures/{cfg['name']}.png)", "",
        f"Full-batch `{cfg['dynamic']}` GD on n fixed samples (`Empirical(n)` via `sj.search_n`), one neuron, "
        f"kappa = {cfg.get('kappa', 0.0):g}, r1 = {cfg.get('r1', 0.0):g}, label noise {cfg['noise']:g}; n* = smallest grid n "
        f"(ratio-{_ratio(cfg)} grid, interpolated in log n) with rho(w_T) >= {cfg['threshold']:g} in half the counted seeds; "
        + (f"searched on a window of {cfg['targets'][0]['window']} grid points around the n* predicted from the smaller d, "
           "on the whole grid's samples, moved while it misses n* or its success fraction does not run from "
           "<= 1/4 to >= 3/4 (`experiments/harness/window.py`); " if any("window" in t for t in cfg["targets"]) else "")
        + f"horizon T = {cfg['horizon']:g} (or the row's own) x the flow's escape time from 0.5/sqrt(d) (grows with d); 90% bootstrap "
        f"intervals over seeds. Scale `{cfg.get('scale', '?')}`. Time to science: {out['seconds']:.0f} s wall, "
        f"{out['cpu_seconds']:.0f} s CPU.", "",
        "| algorithm | s (link / activation, loss) | d | dt, steps at each d | n* at each d | eta [90% CI] | "
        "online (one-pass) rate | rate with reuse (generative exponent) | paper's hypothesis (sufficient n) | verdict | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        t, s = r["target"], r["target"]["s"]
        steps = ", ".join(str(p["steps"]) for p in r["points"])
        nstar = ", ".join("n/a" if not np.isfinite(x) else f"{x:.3g}" for x in r["n_star"])
        lines.append(f"| full-batch {cfg['dynamic']} GD | {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | "
                     f"{r['d'][0]}..{r['d'][-1]} | {r['points'][0]['dt']:g}; {steps} | {nstar} | "
                     f"{fmt(r['eta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}] | d^{max(1, s - 1)} | "
                     f"d^{theory.generative_rate(s)} (up to logs) | d^{s} | {row_verdict(r, cfg)} | {t['seeds']} |")
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    rows, cfg = out["rows"], out["config"]
    with style.style():
        fig, ax = plt.subplots(figsize=(8.0, 3.9))
        seen, bent_any = [], False
        for r, colour, marker in zip(rows, style.PALETTE, "osD^v"):
            d, t, ns = np.asarray(r["d"], float), r["target"], np.asarray(r["n_star"], float)
            # the searched grid's (or the last window's) ends: a bottom n* is start-dominated, none censored
            ends = [(p["windows"] or [p["n_grid"]])[-1] if p.get("windows") else p["n_grid"] for p in r["points"]]
            status = figures.statuses(ns, first_n=[e[0] for e in ends])
            bent = figures.non_monotone(ns)
            label = (f"s = {t['s']}, {t.get('loss', 'squared')}: eta = {fmt(r['eta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]"
                     + (", non-monotone" if bent else ""))
            figures.plot_cells(ax, d, ns, status, colour, marker, top=[e[-1] for e in ends], label=label)
            seen, bent_any = seen + status, bent_any or bent
            if np.isfinite(r["eta"]):
                figures.plot_fit(ax, d, r, colour, alpha=0.18, dashed=bent)
        d = np.array(sorted({float(x) for r in rows for x in r["d"]}))
        firsts = [np.asarray(r["n_star"], float)[0] for r in rows]
        ref = float(np.nanmin(firsts)) if np.any(np.isfinite(firsts)) else float("nan")
        if np.isfinite(ref):
            ax.plot(d, ref * d / d[0], ":", color="k", lw=1, label="slope 1 (reuse: generative exponent)")
            ax.plot(d, ref * (d / d[0]) ** 2, "--", color="0.4", lw=1, label="slope 2 (one-pass rate, s = 3)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(d, [f"{int(v)}" for v in d])
        ax.minorticks_off()
        ax.set_xlabel("d")
        ax.set_ylabel("samples n* to reach rho >= 0.9")
        ax.set_title(f"Full-batch {cfg['dynamic']} GD, kappa = {cfg.get('kappa', 0.0):g}: n* against d", fontsize=9)
        handles, _ = ax.get_legend_handles_labels()
        handles += figures.status_handles(seen, bent_any)
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        figures.save_figure(fig, figures.figure_path(docs, cfg["name"]))
