"""One-pass and reused-batch SGD: sample complexity from first passages (the config kind
`"passage"`): each seed's n*, its fits and step checks, the figure and the results.md block.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax
import numpy as np

from harness import fmt, json_default, plot_fit, pyplot as _pyplot, replace_block, save_figure, seed_keys, setting, write_file
from theory import escape_time, flow_exponent, flow_time, known_rate, noise_constant, vs_paper
from spikejax import DYNAMICS, Online, Reused, bootstrap_passage, make_problem, passage_n
import at_scale
import spikejax as sj


def step_constant(target, cfg) -> float:
    """`c` in `eta = c * batch * d^{-s/2}` (Ben Arous-Gheissari-Jagannath's step, per sample
    `c d^{-s/2}`): the retraction's drift `eta^2 V d / (2 b)` against the signal
    `eta s alpha beta rho^{s-1}` at `rho = d^{-1/2}` is `c V / (2 s alpha beta)`, d-free; `c` is
    `ratio * 2 s alpha beta / V` (`ratio` small: the signal wins)."""
    ab, v = noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    return setting(target, cfg, "ratio") * 2 * target["s"] * abs(ab) / v


def flow_ratio(n, valid, rho0, c, d, s, ab, end=0.9) -> tuple[list, float]:
    """Per seed, the SGD time to the first passage (`n c d^{-s/2}`: samples times the step per sample)
    over the flow time from that seed's own start; and their median over the counted seeds
    (a seed that never passed counts as infinitely slow, as in `median_n`)."""
    from spikejax import median_n

    r = np.asarray(n, float) * c * d ** (-s / 2) / np.maximum(flow_time(s, ab, rho0, end), 1e-12)
    return r.tolist(), median_n(r, valid)


def _inputs(target):
    """The input law of a target: `inputs = "gaussian"` (default), `"studentt"` (with `nu`) or `"rademacher"`."""
    from spikejax import Gaussian, Rademacher, StudentT

    name = target.get("inputs", "gaussian")
    laws = dict(gaussian=lambda: Gaussian(), studentt=lambda: StudentT(float(target["nu"])), rademacher=lambda: Rademacher())
    if name not in laws:
        raise ValueError(f"inputs={name!r} is not allowed; choose one of {', '.join(laws)}")
    return laws[name]()


def _passage_source(target, b):
    reuse = target.get("reuse", 1)
    if reuse == 1:
        return Online(b, projected=bool(target.get("projected", True)))
    return Reused(b, reuse)


def passage_point(cfg, target, d, ratio=None, batch=None):
    """`passage_n` at one `d` for one target: right-sign seeds only for odd `s >= 3`. With
    `reduced = true` the samples come from the exact chain (`sj.Chain`, float64, any `d`)."""
    if not setting_or(target, cfg, "reduced", False):
        return _passage_point(cfg, target, d, ratio, batch, {})
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)  # the chain's state is float64; restored for the next config
    try:
        return _passage_point(cfg, target, d, ratio, batch, {"reduced": True})
    finally:
        jax.config.update("jax_enable_x64", before)


def setting_or(target, cfg, key, default):
    return target.get(key, cfg.get(key, default))


def _seeds(cfg, target, d) -> int:
    """The target's seed count at `d`: `seeds`, or `seeds_by_d` (one count per d of its d list)."""
    if "seeds_by_d" not in cfg:
        return target["seeds"]
    return cfg["seeds_by_d"][target["name"]][list(cfg["d"][target["name"]]).index(d)]


def _passage_point(cfg, target, d, ratio, batch, run):
    s = target["s"]
    t = dict(target, ratio=ratio) if ratio is not None else target
    c = step_constant(t, cfg)
    b = batch or min(max(1, int(round(target["batch_over_d"] * d))), setting_or(target, cfg, "batch_max", 2**62))
    eta = c * b * d ** (-s / 2)
    r2 = target.get("r2", cfg.get("r2"))
    kappa = float(d**r2) if r2 is not None else cfg.get("kappa", 0.0)
    p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=target.get("r1", cfg.get("r1", 0.0)),
                     link=target["link"], activation=target["activation"], noise=cfg["noise"],
                     loss=target.get("loss", "squared"), inputs=_inputs(target), reduced=bool(run))
    dyn = DYNAMICS[setting(target, cfg, "dynamic")]()
    keys = seed_keys(p, dyn, d, _seeds(cfg, target, d), s % 2 == 1 and s >= 3, **run)
    ab, _ = noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
    slow = 1 + kappa if cfg.get("horizon_kappa", False) else 1.0  # the bulk moves 1 + kappa times slower
    steps = int(min(2**40 if run else 2**22, np.ceil(cfg["horizon"] * slow * escape_time(s, d, abs(ab)) / eta)))
    t0 = time.time()
    res = passage_n(p, dyn, _passage_source(target, b), keys=keys, dt=eta, steps=steps,
                    thresholds=tuple(cfg["thresholds"]), stop_fraction=cfg.get("stop_fraction", 1.0),
                    chunk=cfg.get("chunk", 256), metric=target.get("metric", cfg.get("metric", "rho")), **run)
    th = cfg["threshold"]
    col = int(np.argmin(np.abs(np.asarray(cfg["thresholds"]) - th)))
    ratios, ratio_med = flow_ratio(res.n[:, col], res.valid, res.rho0, c, d, s, abs(ab), th)
    return dict(d=d, c=c, batch=b, eta=eta, steps=steps, ran=res.ran, kappa=kappa, budget=res.budget, seconds=time.time() - t0,
                n=res.n[:, col].tolist(), valid=res.valid.tolist(), n_star=res.n_star(th), never=res.never(th),
                rho0=res.rho0.tolist(), flow_ratio=ratios, flow_ratio_median=ratio_med,
                n_all=res.n.tolist(), n_star_all=[res.n_star(x) for x in cfg["thresholds"]],
                stopped_early=bool(res.ran < steps))


def _only(cfg):
    """The targets this run measures: all, or those named by `--targets` (the others' rows and step
    checks are kept from the committed `docs/data/<name>.json`)."""
    names = cfg.get("only_targets")
    return [t for t in cfg["targets"] if names is None or t["name"] in names]


def ragged(pts, key, fill) -> np.ndarray:
    """`[p[key] for p in pts]` as one array, the seed axis padded with `fill` to the longest."""
    rows = [np.asarray(p[key], float) for p in pts]
    out = np.full((len(rows), max(len(r) for r in rows)) + rows[0].shape[1:], fill, float)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _point_cache(cfg, target, d, ratio, batch):
    """A finished point's file under out/passage_points/ (a killed run resumes without rerunning it),
    keyed by everything that determines it."""
    import hashlib

    keep = {k: v for k, v in cfg.items() if k not in ("name", "scale", "only_targets", "d", "seeds_by_d", "targets")}
    key = json.dumps([keep, target, d, ratio, batch, _seeds(cfg, target, d)], sort_keys=True, default=str)
    return Path("out/passage_points") / f"{cfg['name']}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def cached_point(cfg, target, d, ratio=None, batch=None):
    """`passage_point`, kept on disk for configs with `reduced = true` (the long chain runs)."""
    if not setting_or(target, cfg, "reduced", False):
        return passage_point(cfg, target, d, ratio, batch)
    path = _point_cache(cfg, target, d, ratio, batch)
    if path.exists():
        return json.loads(path.read_text())
    pt = passage_point(cfg, target, d, ratio, batch)
    write_file(path, json.dumps(pt, default=json_default))
    return pt


def passage_row(cfg, target, ds, pts) -> dict:
    """The fits of one target from its points: `n*` at the main threshold, at every threshold, start-corrected
    (each seed's `n` times the flow time from the median start over the flow time from its own), `n*/log d` at `s = 2`."""
    n = ragged(pts, "n", np.nan)  # (D, S): seed counts may differ per d (`seeds_by_d`); padded seeds do not count
    valid = ragged(pts, "valid", False).astype(bool)
    fit = bootstrap_passage(ds, n, valid=valid, n_boot=cfg.get("n_boot", 500))
    row = dict(target=target, d=ds, points=pts, eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c,
               n_star=fit.n_star.tolist(), seconds=sum(p["seconds"] for p in pts))
    if all("n_all" in p for p in pts) and len(cfg["thresholds"]) > 1:  # the exponent at every threshold
        nall = ragged(pts, "n_all", np.nan)  # (D, S, P)
        row["by_threshold"] = []
        for j, th in enumerate(cfg["thresholds"]):
            fj = bootstrap_passage(ds, nall[:, :, j], valid=valid, n_boot=cfg.get("n_boot", 500))
            row["by_threshold"].append(dict(threshold=th, eta=fj.eta, lo=fj.lo, hi=fj.hi, n_star=fj.n_star.tolist()))
    if all("rho0" in p for p in pts) and target["s"] >= 3:  # each seed moved to the median start
        ab, _ = noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
        adj = ragged([dict(a=np.asarray(p["n"], float) * flow_time(target["s"], abs(ab), 0.674 / np.sqrt(p["d"]),
                                                                 cfg["threshold"])
                            / np.maximum(flow_time(target["s"], abs(ab), p["rho0"], cfg["threshold"]), 1e-12))
                       for p in pts], "a", np.nan)
        fa = bootstrap_passage(ds, adj, valid=valid, n_boot=cfg.get("n_boot", 500))
        row["start_corrected"] = dict(eta=fa.eta, lo=fa.lo, hi=fa.hi, n_star=fa.n_star.tolist())
    if target["s"] == 2:  # d log d: the slope of n* / log d
        fl = bootstrap_passage(ds, n / np.log(np.asarray(ds, float))[:, None], valid=valid,
                               n_boot=cfg.get("n_boot", 500))
        row["log_corrected"] = dict(eta=fl.eta, lo=fl.lo, hi=fl.hi)
    return row


def run_passage(cfg, docs: Path, bar):
    out = {"config": cfg, "rows": [], "c_checks": []}
    t_all, cpu_all = time.time(), time.process_time()
    for target in _only(cfg):
        ds = cfg["d"][target["name"]]
        pts = []
        for d in ds:
            bar.set_postfix_str(f"{cfg['name']} {target['name']} d={d}")
            pts.append(cached_point(cfg, target, d))
            bar.update(1)
        out["rows"].append(passage_row(cfg, target, ds, pts))
    for chk in cfg.get("c_checks", []):
        target = next(t for t in cfg["targets"] if t["name"] == chk["target"])
        if target not in _only(cfg):
            continue
        for ratio in chk["ratios"]:
            bar.set_postfix_str(f"{cfg['name']} c check {target['name']} ratio={ratio}")
            pt = passage_point(cfg, target, chk["d"], ratio=ratio)
            out["c_checks"].append(dict(target=target["name"], ratio=ratio, **pt))
            bar.update(1)
    if cfg.get("step_check") == "largest_d":  # every target: c halved at its largest d (n* c should not move)
        out["step_checks"] = []
        for target, row in zip(_only(cfg), out["rows"]):
            d = cfg["d"][target["name"]][-1]
            ratio = setting(target, cfg, "ratio") / 2
            bar.set_postfix_str(f"{cfg['name']} step check {target['name']} d={d}")
            pt = passage_point(cfg, target, d, ratio=ratio)
            out["step_checks"].append(step_check(target["name"], row["points"][-1], pt))
            bar.update(1)
    out["seconds"] = time.time() - t_all
    out["cpu_seconds"] = time.process_time() - cpu_all
    if cfg.get("only_targets") is not None:  # merge into the committed run, in the config's order
        path = docs / "data" / f"{cfg['name']}.json"
        old = json.loads(path.read_text()) if path.exists() else dict(rows=[], c_checks=[], seconds=0.0)
        new_rows = {r["target"]["name"]: r for r in out["rows"]}
        old_rows = {r["target"]["name"]: r for r in old["rows"]}
        out["rows"] = [new_rows.get(t["name"], old_rows.get(t["name"])) for t in cfg["targets"]]
        out["rows"] = [r for r in out["rows"] if r is not None]
        out["c_checks"] = [c for c in old["c_checks"] if c["target"] not in new_rows] + out["c_checks"]
        if "step_checks" in out:
            checks = {c["target"]: c for c in old.get("step_checks", []) + out["step_checks"]}
            out["step_checks"] = [checks[t["name"]] for t in cfg["targets"] if t["name"] in checks]
        out["rerun"] = dict(targets=sorted(new_rows), seconds=out["seconds"], cpu_seconds=out["cpu_seconds"])
        # the time to science is what the points took to compute (a cached point keeps its own seconds);
        # CPU seconds are known only when nothing came from the cache or an earlier run
        out["seconds"] = sum(r["seconds"] for r in out["rows"])
        out["cpu_seconds"] = float("nan")
        out["config"] = {k: v for k, v in cfg.items() if k != "only_targets"}
    write_file(docs / "data" / f"{cfg['name']}.json", json.dumps(out, indent=1, default=json_default))
    render_passage(out, docs)
    return out


def render_passage(out, docs: Path):
    """The figure, the results.md block and the summary table of a passage run."""
    cfg = out["config"]
    if cfg.get("grid"):
        at_scale.plot_grid(out, docs)
        table = at_scale.grid_table(out)
    else:
        plot_passage(out, docs)
        table = at_scale.compare_table(out) if cfg.get("compare") else passage_table(out)
    replace_block(docs / "results.md", cfg["name"], table)
    at_scale.write_summary(docs)


def step_check(name, base, half) -> dict:
    """The step check of one target at one d: `n* c` with `c` halved over `n* c` at the base `c`
    (one-pass SGD at a small enough step needs samples in proportion to 1/c); it passes within 30%."""
    nc = lambda p: p["n_star"] * p["c"] if p["n_star"] is not None and np.isfinite(p["n_star"]) else float("nan")
    ratio = nc(half) / nc(base) if np.isfinite(nc(base)) and nc(base) > 0 else float("nan")
    return dict(target=name, d=base["d"], c=base["c"], n_star=base["n_star"], c_half=half["c"],
                n_star_half=half["n_star"], never_half=half["never"], ratio=ratio,
                ok=bool(np.isfinite(ratio) and abs(ratio - 1) <= 0.3), seconds=half["seconds"])


def passage_units(cfg):
    names = {t["name"] for t in _only(cfg)}
    return (sum(len(cfg["d"][n]) for n in names)
            + sum(len(c["ratios"]) for c in cfg.get("c_checks", []) if c["target"] in names)
            + (len(names) if cfg.get("step_check") == "largest_d" else 0))


def _algorithm(target, cfg):
    reuse = target.get("reuse", 1)
    what = "online SGD" if reuse == 1 else f"SGD, each batch reused {reuse} steps"
    law = target.get("inputs", "gaussian")
    law = "" if law == "gaussian" and "inputs" not in target else f", {law}" + (f" nu = {target['nu']:g}" if "nu" in target else "") + " inputs"
    return f"{target.get('dynamic', cfg['dynamic'])} {what}{law}"


def passage_table(out):
    cfg = out["config"]
    name = cfg["name"]
    kappa = cfg.get("kappa", 0.0)
    lines = [
        f"![n* against d](figures/{name}.png)", "",
        f"One neuron, `{cfg['dynamic']}`, kappa = {kappa:g}, r1 = {cfg.get('r1', 0.0):g}, label noise {cfg['noise']:g}; "
        f"n* = samples consumed when |rho| first reaches {cfg['threshold']:g} (median over seeds; odd s: right-sign "
        f"seeds only); eta = c batch d^(-s/2) with c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V (see docs/decisions.md); "
        f"step budget {cfg['horizon']:g} x the flow's escape time; 90% bootstrap intervals over seeds. "
        f"Time to science: {out['seconds']:.0f} s wall" + (
            f", {out['cpu_seconds']:.0f} s CPU" if math.isfinite(out.get("cpu_seconds", float("nan"))) else
            " (the points' own compute time; CPU time is not recorded across reruns)")
        + " (all cores; the wall time depends on the machine's other load).", "",
        "| algorithm | s (link / activation, loss) | r1 | kappa | d | n* at each d | eta [90% CI] | known isotropic rate | "
        "paper's hypothesis (sufficient n) | verdict | seeds, not passed | c, batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        t = r["target"]
        s = t["s"]
        known = max(1, s - 1)
        lo, hi = r["lo"], r["hi"]
        eta_txt = f"{fmt(r['eta'])} [{fmt(lo)}, {fmt(hi)}]"
        ab, _ = noise_constant(t["link"], t["activation"], t.get("loss", "squared"), cfg["noise"])
        flow, nc = flow_exponent(s, abs(ab), r["d"])
        ratio = np.asarray(r["n_star"], float) * r["points"][0]["c"] / nc
        eta_txt += f"; flow over this d range: {flow:.2f}"
        if not (np.isfinite(lo) and np.isfinite(hi)):
            verdict = "no interval"
        elif s >= 3 and lo <= known <= hi:
            verdict = f"agrees with the known rate d^{known}"
        elif lo <= flow <= hi:
            verdict = (f"agrees with the flow over this d range ({flow:.2f}); "
                       + ("d log d: n*/d grows linearly in log d" if s == 2 else
                          f"below the asymptotic {known}: rho0 is not small at d = {r['d'][0]}, pre-asymptotic"))
        else:
            verdict = _off_rate(r, cfg, known, flow, "BELOW" if hi < known else "ABOVE")
        if np.isfinite(lo) and np.isfinite(hi):  # the paper's sufficient d^s (kappa = 0), up to its log factor
            verdict += f"; vs the paper's d^{s}: " + vs_paper(lo, hi, s, r["d"])
        verdict += f" (n* c / flow time: {ratio.min():.2f}-{ratio.max():.2f})"
        for bt in r.get("by_threshold", []):
            if bt["threshold"] != cfg["threshold"]:
                eta_txt += f"; at \\|rho\\| >= {bt['threshold']:g}: {fmt(bt['eta'])} [{fmt(bt['lo'])}, {fmt(bt['hi'])}]"
        if "start_corrected" in r:
            sc = r["start_corrected"]
            eta_txt += f"; start-corrected: {fmt(sc['eta'])} [{fmt(sc['lo'])}, {fmt(sc['hi'])}]"
        own = [p.get("flow_ratio_median") for p in r["points"]]
        if all(x is not None for x in own):
            verdict += "; per-seed time / own-start flow time (median): " + ", ".join(fmt(x) for x in own)
        never = ", ".join(f"{p['never']:.2f}" for p in r["points"])
        nstar = ", ".join(fmt(x, 0) if not np.isfinite(x) else f"{x:.3g}" for x in r["n_star"])
        lines.append(
            f"| {_algorithm(t, cfg)} | {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | "
            f"{cfg.get('r1', 0.0):g} | {kappa:g} | {r['d'][0]}..{r['d'][-1]} | {nstar} | {eta_txt} | "
            f"{known_rate(s)} | d^{s} | {verdict} | {t.get('seeds', 'per d: ' + '/'.join(map(str, (cfg.get('seeds_by_d') or {}).get(t['name'], []))))}, {never} | "
            f"{r['points'][0]['c']:.3g}, {t['batch_over_d']:g} d |")
    if out["c_checks"]:
        lines += ["", "Step-size check (one d; n* should scale as 1/c once c is small, i.e. n* c constant: "
                  "a smaller step costs proportionally more samples, the exponent does not move):", "",
                  "| target | d | drift/signal ratio | c | n* | n* x c | median per-seed SGD time / flow time from its own "
                  "start | not passed |", "|---|---|---|---|---|---|---|---|"]
        for c in out["c_checks"]:
            lines.append(f"| {c['target']} | {c['d']} | {c['ratio']:g} | {c['c']:.3g} | {fmt(c['n_star'], 0)} | "
                         f"{fmt(c['n_star'] * c['c'], 0)} | {fmt(c.get('flow_ratio_median'))} | {c['never']:.2f} |")
    return "\n".join(lines)


def _off_rate(r, cfg, known, flow, side) -> str:
    """The label of a whole-range fit off the known rate and the flow's slope: with at least 4
    d, the fit over the large-d end (`sj.tail_fit`, every seed kept) says whether the small-d
    octaves alone pull it off; otherwise (or if the end misses it too) it asks to investigate."""
    label = f"{side} the known rate {known} and the flow's {flow:.2f}"
    if len(r["d"]) < 4:
        return label + ": investigate"
    pts = r["points"]
    tail = sj.tail_fit(r["d"], ragged(pts, "n", np.nan), ragged(pts, "valid", False).astype(bool),
                       n_boot=cfg.get("n_boot", 1000))
    end = f"the fit over d = {tail.d_lo:g}..{tail.d_hi:g} is {fmt(tail.eta)} {sj.interval_text(tail.lo, tail.hi)}"
    if tail.lo <= known <= tail.hi:
        return label + f" over the whole range, from its small-d octaves: {end}, which contains {known}"
    return label + f": investigate ({end})"


def plot_passage(out, docs):
    from spikejax.plot import style

    plt = _pyplot()
    rows = out["rows"]
    with style.style():
        lines = -(-len(rows) // 4)  # at most 4 panels a row, the rows as even as they go
        cols = -(-len(rows) // lines)
        fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.8 * lines), squeeze=False)
        for ax in axes.flat[len(rows):]:
            ax.set_visible(False)
        for ax, r, colour in zip(axes.flat, rows, style.PALETTE * 2):
            d = np.asarray(r["d"], float)
            ns = np.asarray(r["n_star"], float)
            for p in r["points"]:
                v = np.asarray(p["n"], float)[np.asarray(p["valid"], bool)]
                ax.plot(np.full(v.size, p["d"]), v, ".", color="0.7", ms=3, zorder=1)
            ax.plot(d, ns, "o", color=colour, zorder=3, label="n* (median)")
            if np.isfinite(r["eta"]):
                plot_fit(ax, d, r, colour, alpha=0.2, line_label=f"fit: eta = {r['eta']:.2f}",
                         band_label=f"90% CI [{r['lo']:.2f}, {r['hi']:.2f}]")
                k = max(1, r["target"]["s"] - 1)
                ref = d**k * (np.log(d) if r["target"]["s"] == 2 else 1)
                ax.plot(d, ref * ns[0] / ref[0], ":", color="k", lw=1,
                        label=f"known rate {known_rate(r['target']['s'])}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(d, [f"{int(v)}" for v in d])
            ax.minorticks_off()
            ax.set_xlabel("d")
            t = r["target"]
            metric = "|cos_u|" if t.get("metric", out["config"].get("metric", "rho")) == "cos_u" else "|rho|"
            ax.set_ylabel(f"samples n* to reach {metric} >= {out['config']['threshold']:g}")
            title = f"s = {t['s']}: {t['link']} / {t['activation']}, {t.get('loss', 'squared')} loss"
            cf = out["config"]
            title = (f"{t.get('dynamic', cf['dynamic'])} "
                     + (f"SGD, batch reused {t['reuse']}x" if t.get("reuse", 1) > 1 else "online SGD")
                     + (f", kappa = d^{cf['r2']:g}" if "r2" in cf else f", kappa = {cf.get('kappa', 0.0):g}")
                     + (f", {t['inputs']}" + (f" nu = {t['nu']:g}" if "nu" in t else "") if "inputs" in t else "")
                     + (f", r1 = {t['r1']:g}" if "r1" in t else "")
                     + "\n" + title)
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=7, loc="upper left", frameon=False)
        save_figure(fig, docs / "figures" / f"{out['config']['name']}.png")
