"""Issue 14, the experiments that reuse samples: full-batch gradient descent's `n*` from a grid
(`sj.search_n`, `Empirical(n)`), with a horizon that scales with the flow's escape time, and the
summary table of every measured exponent (`docs/results.md`, block `summary_table`).

Registered in `experiments/reproduce.py` as the kind `"fullbatch"`; the summary is rewritten
after every passage or full-batch run from `docs/data/*.json` (no reruns).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from harness import pyplot as _pyplot, replace_block, save_figure, seed_keys, setting, write_file
from spikejax import DYNAMICS, bootstrap_exponent, make_problem, search_n
from window import predict_n, windowed_search
from theory import vs_paper as _vs_paper


def _n_grid(d, target):
    lo, hi = target["log2_n_over_d"]
    g = np.unique(np.round(d * 2.0 ** np.arange(lo, hi + 1e-9, target.get("log2_step", 1.0))).astype(int))
    if g[0] < 2:
        raise ValueError(f"log2_n_over_d={target['log2_n_over_d']!r} is not allowed at d={d}; the grid must start at n >= 2")
    return g


def fullbatch_point(cfg, target, d, n_pred=None):
    """`search_n` at one `d`: spherical (or other) GD on `n` fixed samples for every `n` of the grid,
    step `dt`, horizon `cfg['horizon']` times the flow's escape time from `0.5 / sqrt(d)` (so it
    scales with `d` as the theory says), right-sign seeds only for odd `s >= 3`. With a target's
    `window`, only that many grid points run, around `n_pred` (`experiments/window.py`)."""
    from theory import escape_time, noise_constant

    s = target["s"]
    p = make_problem(d, key=jax.random.key(d), kappa=cfg.get("kappa", 0.0), r1=cfg.get("r1", 0.0),
                     link=target["link"], activation=target["activation"], noise=cfg["noise"],
                     loss=target.get("loss", "squared"))
    dyn = DYNAMICS[cfg["dynamic"]]()
    keys = seed_keys(p, dyn, d, target["seeds"], s % 2 == 1 and s >= 3)
    ab, _ = noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    dt = setting(target, cfg, "dt")
    steps = int(np.ceil(setting(target, cfg, "horizon") * escape_time(s, d, abs(ab)) / dt))
    grid = _n_grid(d, target)
    t0 = time.time()

    def run(points, n_draw):
        return search_n(p, dyn, n_grid=points, keys=keys, dt=dt, steps=steps, n_draw=n_draw)

    if "window" in target:
        res, windows = windowed_search(run, grid, n_pred, target["window"], cfg["threshold"])
    else:
        res, windows = run(grid, None), None
    return dict(d=d, dt=dt, steps=steps, n_grid=res.n_grid.tolist(), rho=res.rho.tolist(), cos_u=res.cos_u.tolist(),
                valid=res.valid.tolist(), n_star=res.n_star("rho", cfg["threshold"]), seconds=time.time() - t0,
                windows=windows)


def run_fullbatch(cfg, docs: Path, bar):
    """Every target's n* at each d and its fitted eta. The data file is written after every d
    (`partial: true` until the last target), and a rerun of the same config resumes: finished rows
    are kept, a row's finished points are not rerun. `cfg['only_targets']` (`--targets`): only those
    rows run; the others are kept from the data file."""
    path = docs / "data" / f"{cfg['name']}.json"
    names = cfg.get("only_targets")
    stored = json.loads(json.dumps({k: v for k, v in cfg.items() if k != "only_targets"}, default=_default))
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
        write_file(path, json.dumps(out, indent=1, default=_default))

    for target in cfg["targets"]:
        ds = cfg["d"][target["name"]]
        prev = kept.get(target["name"])
        if (names is not None and target["name"] not in names) or (prev is not None and "eta" in prev):
            if prev is not None:
                out["rows"].append(prev)
            bar.update(len(ds))
            continue
        row = dict(target=target, points=list((prev or {}).get("points", [])))
        out["rows"].append(row)
        pts = row["points"]
        bar.update(len(pts))
        for d in ds[len(pts):]:
            bar.set_postfix_str(f"{cfg['name']} {target['name']} d={d}")
            pts.append(fullbatch_point(cfg, target, d, predict_n(ds, [p["n_star"] for p in pts], d)))
            save()
            bar.update(1)
        fit = bootstrap_exponent(ds, np.array([p["n_grid"] for p in pts], float),
                                 np.array([p["rho"] for p in pts], float), valid=np.array([p["valid"] for p in pts]),
                                 threshold=cfg["threshold"], n_boot=cfg.get("n_boot", 500))
        row.update(d=ds, eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c, n_star=fit.n_star.tolist(),
                   seconds=sum(p["seconds"] for p in pts))
        save()
    if all("eta" in r for r in out["rows"]) and len(out["rows"]) == len(cfg["targets"]):
        del out["partial"]
    save()
    plot_fullbatch(out, docs)
    replace_block(docs / "results.md", cfg["name"], fullbatch_table(out))
    write_summary(docs)
    return out


def fullbatch_units(cfg):
    return sum(len(cfg["d"][t["name"]]) for t in cfg["targets"])


def _default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


def _f(x, nd=2):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def generative_rate(s: int) -> int:
    """With sample reuse the generative exponent `k*` governs (He_s: `k* = 1` for odd `s`, 2 for
    even `s`); the rate `d^{max(1, k* - 1)}` up to logs (Dandi et al. 2024, Arnaboldi et al. 2024,
    Lee, Oko, Suzuki, Wu 2024): linear in `d` for He3 and He4."""
    k = 1 if s % 2 else 2
    return max(1, k - 1)


def _ratio(cfg) -> str:
    steps = {t.get("log2_step", 1.0) for t in cfg["targets"]}
    return " / ".join("2" if x == 1.0 else ("sqrt(2)" if x == 0.5 else f"{2 ** x:.3g}") for x in sorted(steps))


def fullbatch_table(out):
    cfg = out["config"]
    lines = [
        f"![n* against d](figures/{cfg['name']}.png)", "",
        f"Full-batch `{cfg['dynamic']}` GD on n fixed samples (`Empirical(n)` via `sj.search_n`), one neuron, "
        f"kappa = {cfg.get('kappa', 0.0):g}, r1 = {cfg.get('r1', 0.0):g}, label noise {cfg['noise']:g}; n* = smallest grid n "
        f"(ratio-{_ratio(cfg)} grid, interpolated in log n) with rho(w_T) >= {cfg['threshold']:g} in half the counted seeds; "
        + (f"searched on a window of {cfg['targets'][0]['window']} grid points around the n* predicted from the smaller d, "
           "on the whole grid's samples, moved while it misses n* or its success fraction does not run from "
           "<= 1/4 to >= 3/4 (`experiments/window.py`); " if any("window" in t for t in cfg["targets"]) else "")
        + f"horizon T = {cfg['horizon']:g} (or the row's own) x the flow's escape time from 0.5/sqrt(d) (grows with d); 90% bootstrap "
        f"intervals over seeds. Scale `{cfg.get('scale', '?')}`. Time to science: {out['seconds']:.0f} s wall, "
        f"{out['cpu_seconds']:.0f} s CPU.", "",
        "| algorithm | s (link / activation, loss) | d | dt, steps at each d | n* at each d | eta [90% CI] | "
        "online (one-pass) rate | rate with reuse (generative exponent) | paper's hypothesis (sufficient n) | verdict | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        t = r["target"]
        s = t["s"]
        lo, hi, gen = r["lo"], r["hi"], generative_rate(s)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            verdict = "no interval"
        else:
            ref = f"online d^{max(1, s - 1)}: " + ("below" if hi < max(1, s - 1) else "not below")
            ref += f"; reuse d^{gen}: " + ("consistent" if lo <= gen <= hi else ("above" if lo > gen else "below"))
            verdict = ref + f"; vs the paper's d^{s}: " + _vs_paper(lo, hi, s, r["d"])
        steps = ", ".join(str(p["steps"]) for p in r["points"])
        nstar = ", ".join("n/a" if not np.isfinite(x) else f"{x:.3g}" for x in r["n_star"])
        lines.append(f"| full-batch {cfg['dynamic']} GD | {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | "
                     f"{r['d'][0]}..{r['d'][-1]} | {r['points'][0]['dt']:g}; {steps} | {nstar} | "
                     f"{_f(r['eta'])} [{_f(lo)}, {_f(hi)}] | d^{max(1, s - 1)} | d^{gen} (up to logs) | d^{s} | {verdict} | "
                     f"{t['seeds']} |")
    return "\n".join(lines)


def plot_fullbatch(out, docs):
    from spikejax.plot import style

    plt = _pyplot()
    rows = out["rows"]
    with style.style():
        fig, ax = plt.subplots(figsize=(8.0, 3.9))
        for r, colour, marker in zip(rows, style.PALETTE, "osD^v"):
            d = np.asarray(r["d"], float)
            ns = np.asarray(r["n_star"], float)
            t = r["target"]
            label = f"s = {t['s']}, {t.get('loss', 'squared')}: eta = {_f(r['eta'])} [{_f(r['lo'])}, {_f(r['hi'])}]"
            ax.plot(d, ns, marker, color=colour, label=label, zorder=3)
            if np.isfinite(r["eta"]):
                from harness import plot_fit

                plot_fit(ax, d, r, colour, alpha=0.18)
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
        cfg = out["config"]
        ax.set_title(f"Full-batch {cfg['dynamic']} GD, kappa = {cfg.get('kappa', 0.0):g}: n* against d", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        save_figure(fig, docs / "figures" / f"{cfg['name']}.png")


# ---------------------------------------------------------------- the summary table (docs/results.md, summary_table)

# complexity_19 (the calibration on the exact chain, 64-256 seeds per d) replaces complexity_6/7 here
SUMMARY_SOURCES = ("complexity_19_chain_calibration", "complexity_8_reuse",
                   "complexity_9_fullbatch", "complexity_10_precond_online", "complexity_11_heavy_tails",
                   "complexity_15_claim4_online", "complexity_18_reuse_fullbatch")


def _summary_row(name, cfg, r):
    t = r["target"]
    s = t["s"]
    reuse = t.get("reuse", 1)
    loss = t.get("loss", "squared")
    if cfg["kind"] == "fullbatch":
        family, known, known_k = f"full-batch {cfg['dynamic']} GD ({loss})", f"d^{generative_rate(s)} (reuse, up to logs)", generative_rate(s)
    else:
        dyn = t.get("dynamic", cfg["dynamic"])
        family = f"{dyn} online SGD ({loss})" if reuse == 1 else f"{dyn} SGD, batch reused {reuse}x ({loss})"
        if t.get("metric", cfg.get("metric", "rho")) == "cos_u":
            family += ", n* on cos_u"
        if t.get("inputs", "gaussian") != "gaussian":
            family += f", {t['inputs']}" + (f" nu = {t['nu']:g}" if "nu" in t else "") + " inputs"
        known_k = max(1, s - 1)
        known = {2: "d log d"}.get(s, f"d^{known_k}") + (" (one-pass)" if reuse == 1 else " (one-pass; reuse at a vanishing step)")
    lo, hi, eta = r["lo"], r["hi"], r["eta"]
    from theory import hypothesis_eta

    r1, r2 = t.get("r1", cfg.get("r1", 0.0)), t.get("r2", cfg.get("r2"))  # a passage target may carry its own
    hyp = hypothesis_eta(s, r1, r2 or 0.0)  # the paper's sufficient d^{eta}: s at r2 = 0
    if not (np.isfinite(lo) and np.isfinite(hi)):
        vs_known, vs_paper = "no interval", "n/a"
    else:
        vs_known = "agrees" if lo <= known_k <= hi else ("below" if hi < known_k else "above")
        if cfg["kind"] != "fullbatch":  # the flow's own slope over these d (the log at s = 2, the start at small d)
            from theory import flow_exponent, noise_constant

            ab, _ = noise_constant(t["link"], t["activation"], loss, cfg["noise"])
            flow = flow_exponent(s, abs(ab), r["d"])[0]
            if vs_known != "agrees" and lo <= flow <= hi:
                vs_known = f"agrees with the flow's {flow:.2f} over these d" + (" (d log d)" if s == 2 else " (pre-asymptotic)")
            elif vs_known != "agrees":
                vs_known += f" (flow over these d: {flow:.2f})"
        vs_paper = _vs_paper(lo, hi, hyp, r["d"])
    spike = f"r2 = {r2:g}" if r2 is not None else f"kappa = {cfg.get('kappa', 0.0):g}"
    if r2 is not None and vs_known != "no interval":
        vs_known = "isotropic reference only (kappa > 0)"
    return (f"| {family} | ({s}, {r1:g}, {spike}) | {r['d'][0]}..{r['d'][-1]} | "
            f"{_f(eta)} [{_f(lo)}, {_f(hi)}] | {known} | d^{hyp:g} (sufficient) | vs known: {vs_known}; vs the paper's "
            f"bound: {vs_paper} | `{name}` ({cfg.get('scale', '?')}) |")


CLAIM4_SOURCES = ("complexity_3_eta_vs_r2", "complexity_4_s_independence", "complexity_16_claim4_fullbatch",
                  "complexity_17_claim4_fullbatch_s3")


def _claim4_row(name, cfg, p):
    """A full-batch n* cell of the claim-4 tables (`run_scaling`): eta on rho, the paper's
    sufficient exponent for its (s, r1, r2), and the cell's step/horizon check."""
    r = p["rho"]
    lo, hi, eta, hyp = r["lo"], r["hi"], r["eta"], p["eta_hyp"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        vs_paper = "no interval"
    else:
        vs_paper = _vs_paper(lo, hi, hyp, p["d"])
    if p.get("horizon_ok") is False:
        vs_paper = f"no verdict (measured {vs_paper}, but n* is not converged)"
    known = "d (reuse, up to logs)" if p["r2"] == 0 else "none known (kappa > 0)"
    check = {True: "step/horizon check passed", False: "step/horizon check FAILED: n* not converged"}.get(
        p.get("horizon_ok"), "not checked")
    return (f"| full-batch {p['dynamic']} GD (squared), n* on rho | ({p['s']}, {p['r1']:g}, r2 = {p['r2']:g}) | "
            f"{p['d'][0]}..{p['d'][-1]} | {_f(eta)} [{_f(lo)}, {_f(hi)}] | {known} | d^{hyp:g} (sufficient) | "
            f"vs the paper's bound: {vs_paper}; {check} | `{name}` ({cfg.get('scale', 'small')}) |")


def summary_table(docs: Path) -> str:
    """One row per measured exponent, read from `docs/data` (no reruns): the issue-14
    experiments, then the claim-4 full-batch cells."""
    lines = ["| algorithm family | (s, r1, r2 or kappa) | d | measured eta [90% CI] | known isotropic rate | "
             "paper's hypothesis | verdict | experiment (scale) |", "|---|---|---|---|---|---|---|---|"]
    for name in CLAIM4_SOURCES:
        path = docs / "data" / f"{name}.json"
        if path.exists():
            out = json.loads(path.read_text())
            lines += [_claim4_row(name, out["config"], p) for p in out["points"]]
    for name in SUMMARY_SOURCES:
        path = docs / "data" / f"{name}.json"
        if not path.exists():
            continue
        out = json.loads(path.read_text())
        for r in out["rows"]:
            lines.append(_summary_row(name, out["config"], r))
    path = docs / "data" / "complexity_13_three_stage.json"
    if path.exists():
        out = json.loads(path.read_text())
        lines += [_three_stage_row("complexity_13_three_stage", out["config"], r) for r in out["rows"]]
    return "\n".join(lines)


def _three_stage_row(name, cfg, r):
    """A row of the paper's experiment 2 (`complexity_13`): n* for cos_u >= threshold at kappa = d^r2."""
    from theory import verdict

    lo, hi = r["lo"], r["hi"]
    return (f"| {cfg['dynamic']} online SGD (squared), n* on cos_u >= {cfg['threshold']:g} | (2, 0, r2 = {r['r2']:g}) | "
            f"{r['d'][0]}..{r['d'][-1]} | {_f(r['eta'])} [{_f(lo)}, {_f(hi)}] | none known (kappa > 0); the bulk's "
            f"1 + r2 = {r['eta_bulk']:.2f} | d^{r['eta_paper']:g} (our reading) | vs the paper's bound: {verdict(lo, hi, r['eta_paper'], r['d'])} | "
            f"`{name}` ({cfg.get('scale', '?')}) |")


def write_summary(docs: Path):
    replace_block(docs / "results.md", "summary_table", summary_table(docs))


# ---------------------------------------------------------------- normalized against preconditioned online SGD


def compare_table(out) -> str:
    """Pairs of passage rows (`cfg['compare']`: [[name_a, name_b], ...]): `n*` of each at every `d`,
    their ratio against `1 + kappa` (the factor by which the bulk is slower), and each exponent."""
    cfg = out["config"]
    rows = {r["target"]["name"]: r for r in out["rows"]}
    lines = [
        f"![n* against d](figures/{cfg['name']}.png)", "",
        f"One neuron, online SGD (`Online(batch, projected=True)`), kappa = d^{cfg.get('r2', 0):g}, r1 = {cfg.get('r1', 0):g}, "
        f"label noise {cfg['noise']:g}; n* = samples when the metric first reaches {cfg['threshold']:g} (median over seeds); "
        f"eta = c batch d^(-s/2) with c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V for both dynamics; budget "
        f"{cfg['horizon']:g} x escape time x (1 + kappa). Scale `{cfg.get('scale', '?')}`. Time to science: "
        f"{out['seconds']:.0f} s wall, {out.get('cpu_seconds', float('nan')):.0f} s CPU.", "",
        "| metric | d | 1 + kappa | n* normalized | n* preconditioned | ratio normalized / preconditioned | "
        "not passed (norm., prec.) |", "|---|---|---|---|---|---|---|",
    ]
    fits = []
    for a, b in cfg["compare"]:
        ra, rb = rows.get(a), rows.get(b)
        if ra is None or rb is None:
            continue
        metric = ra["target"].get("metric", "rho") + (f", r1 = {ra['target']['r1']:g}" if "r1" in ra["target"] else "")
        for pa, pb in zip(ra["points"], rb["points"]):
            ratio = pa["n_star"] / pb["n_star"] if pa["n_star"] and pb["n_star"] else float("nan")
            lines.append(f"| {metric} | {pa['d']} | {1 + pa['kappa']:.1f} | {_g(pa['n_star'])} | {_g(pb['n_star'])} | "
                         f"{_f(ratio)} | {pa['never']:.2f}, {pb['never']:.2f} |")
        for r in (ra, rb):
            fits.append(f"| {r['target'].get('dynamic')} | {metric} | {r['d'][0]}..{r['d'][-1]} | "
                        f"{_f(r['eta'])} [{_f(r['lo'])}, {_f(r['hi'])}] |")
    lines += ["", "| dynamic | metric | d | eta [90% CI] |", "|---|---|---|---|"] + fits
    return "\n".join(lines)


def _g(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


# ---------------------------------------------------------------- claims 4-5 with one-pass SGD: the (s, r1, r2) grid


def _cells(out):
    """`{(s, r1, r2): {dynamic: row}}` of a grid run, in the config's order."""
    cells = {}
    for r in out["rows"]:
        t = r["target"]
        cells.setdefault((t["s"], t["r1"], t["r2"]), {})[t["dynamic"]] = r
    return cells


def grid_table(out) -> str:
    """Claims 4-5 with one-pass SGD: per (s, r1, r2), each dynamic's eta with its interval and
    verdict against the paper's sufficient exponent, n* at the largest d and the ratio
    normalized / preconditioned there (claim 5 expects up to 1 + kappa), and the step check."""
    from theory import hypothesis_eta

    cfg = out["config"]
    checks = {c["target"]: c for c in out.get("step_checks", [])}
    dyns = list(cfg["grid"]["dynamic"])
    lines = [
        f"![eta against r2](figures/{cfg['name']}.png)", "",
        f"One neuron, one-pass SGD (`Online(batch, projected=True)`: exact in law for Gaussian inputs), kappa = d^r2, "
        f"<u, theta> = d^-r1, label noise {cfg['noise']:g}; n* = samples when |rho| first reaches {cfg['threshold']:g} "
        f"(median over seeds; odd s: right-sign seeds only); step eta = c batch d^(-s/2) with the isotropic "
        f"c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V for every cell and both dynamics; budget {cfg['horizon']:g} x "
        f"the isotropic escape time x (1 + kappa); stop when {cfg.get('stop_fraction', 1.0):g} of the seeds passed. "
        f"90% seed-bootstrap intervals. Step check: c halved at each cell's largest d, passes when n* c moves by <= 30%. "
        f"Scale `{cfg.get('scale', '?')}`. Time to science: {out['seconds']:.0f} s wall, "
        f"{out.get('cpu_seconds', float('nan')):.0f} s CPU.", "",
        "| s (link / activation, loss) | r1 | r2 | d | paper's sufficient n | "
        + " | ".join(f"eta {x} [90% CI] | verdict {x} | n* {x} at largest d | step check {x}" for x in dyns)
        + " | n* ratio " + " / ".join(dyns) + " at largest d | 1 + kappa there |",
        "|" + "---|" * (6 + 4 * len(dyns) + 1),
    ]
    for (s, r1, r2), by in _cells(out).items():
        any_r = next(iter(by.values()))
        t, d = any_r["target"], any_r["d"]
        hyp = hypothesis_eta(s, r1, r2)
        cols = []
        for x in dyns:
            r = by.get(x)
            if r is None:
                cols += ["-"] * 4
                continue
            c = checks.get(r["target"]["name"])
            never = r["points"][-1]["never"]
            floor = sum(q["n_star"] <= q["batch"] for q in r["points"] if q["n_star"] is not None)
            verdict = _vs_paper(r["lo"], r["hi"], hyp, r["d"]) if np.isfinite(r["lo"]) and np.isfinite(r["hi"]) else "no interval"
            if c is not None and not c["ok"]:
                verdict = f"no verdict (step check failed; measured: {verdict})"
            if floor:
                verdict += f"; n* is one batch at {floor} of {len(r['points'])} d (passed in the first step)"
            cols += [f"{_f(r['eta'])} [{_f(r['lo'])}, {_f(r['hi'])}]", verdict,
                     f"{_g(r['n_star'][-1])}" + (f" ({never:.0%} not passed when the run stopped)" if never > 0 else ""),
                     "-" if c is None else f"{'pass' if c['ok'] else 'FAIL'} (x{_f(c['ratio'])})"]
        ns = [by[x]["n_star"][-1] if x in by else float("nan") for x in dyns]
        ratio = ns[0] / ns[1] if len(ns) == 2 and all(np.isfinite(v) and v > 0 for v in ns) else float("nan")
        lines.append(f"| {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | {r1:g} | {r2:g} | "
                     f"{d[0]}..{d[-1]} | d^{hyp:g} | " + " | ".join(cols) + f" | {_f(ratio)} | {1 + d[-1] ** r2:.3g} |")
    return "\n".join(lines)


def plot_grid(out, docs):
    """eta against r2, one panel per (s, r1), a series per dynamic, the paper's sufficient exponent dashed."""
    from theory import hypothesis_eta
    from spikejax.plot import style

    plt = _pyplot()
    cfg = out["config"]
    cells = _cells(out)
    checks = {c["target"]: c for c in out.get("step_checks", [])}
    panels = sorted({(s, r1) for s, r1, _ in cells})
    ss, r1s = sorted({p[0] for p in panels}), sorted({p[1] for p in panels})
    with style.style():
        fig, axes = plt.subplots(len(r1s), len(ss), figsize=(3.6 * len(ss), 3.0 * len(r1s) + 0.6), squeeze=False,
                                 sharex=True)
        for (s, r1) in panels:
            ax = axes[r1s.index(r1), ss.index(s)]
            r2s = sorted({r2 for (s_, r1_, r2) in cells if (s_, r1_) == (s, r1)})
            grid = np.linspace(0, 1, 101)
            ax.plot(grid, [hypothesis_eta(s, r1, x) for x in grid], "k--", lw=1, label="paper (sufficient)")
            for k, dyn in enumerate(cfg["grid"]["dynamic"]):
                st = style.dynamic_style(dyn, marker=True)
                rows = [cells[(s, r1, r2)].get(dyn) for r2 in r2s]
                xs = np.array([r2 for r2, r in zip(r2s, rows) if r is not None]) + (k - 0.5) * 0.025
                e = np.array([r["eta"] for r in rows if r is not None])
                lo = np.array([r["lo"] for r in rows if r is not None])
                hi = np.array([r["hi"] for r in rows if r is not None])
                failed = np.array([not checks.get(r["target"]["name"], {}).get("ok", True) for r in rows if r is not None])
                ax.errorbar(xs, e, yerr=[np.maximum(e - lo, 0), np.maximum(hi - e, 0)], fmt="none",
                            ecolor=st["color"], capsize=3)
                ax.plot(xs[~failed], e[~failed], st.get("marker", "o"), color=st["color"], ms=5, ls="none", label=dyn)
                ax.plot(xs[failed], e[failed], st.get("marker", "o"), color=st["color"], mfc="white", ms=5, ls="none",
                        label=f"{dyn}, step check failed")
            ax.set_title(f"s = {s}, r1 = {r1:g}", fontsize=9)
            if r1 == r1s[-1]:
                ax.set_xlabel("r2 (kappa = d^r2)")
            ax.set_ylabel("eta in n* ~ d^eta")
        legend = {}
        for ax in axes.flat:  # every series once, the hollow (failed) markers included wherever they occur
            for h, lab in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(lab, h)
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend), frameon=False, fontsize=8)
        fig.suptitle("Claims 4-5 with one-pass SGD: fitted exponent of n* (|rho| >= "
                     f"{cfg['threshold']:g}) against r2, 90% intervals", fontsize=10)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        save_figure(fig, docs / "figures" / f"{cfg['name']}.png", tight=False)
