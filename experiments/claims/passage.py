"""One-pass and reused-batch SGD (kind `passage`): every seed's first-passage `n*` at each d, the
fitted exponent, the step checks, and three table forms: one row per target, normalized against
preconditioned pairs (`compare`), and the claims 4-5 (s, r1, r2) grid (`[experiment.grid]`)."""

from __future__ import annotations

import math
import time

import numpy as np

from spikejax import bootstrap_passage

from .. import theory
from ..harness import figures
from ..harness.config import setting
from ..harness.io import data_path, read_data, write_block, write_json
from ..harness.onepass import cached_point, flow_slope, onepass_verdict, passage_point, ragged, slopes_text, step_check
from ..harness.tables import fmt, sig

KIND = "passage"


def _only(cfg):
    """The targets this run measures: all, or those named by `--targets` (the others' rows and step
    checks are kept from the committed `docs/data/<name>.json`)."""
    names = cfg.get("only_targets")
    return [t for t in cfg["targets"] if names is None or t["name"] in names]


def units(cfg):
    names = {t["name"] for t in _only(cfg)}
    return (sum(len(cfg["d"][n]) for n in names)
            + sum(len(c["ratios"]) for c in cfg.get("c_checks", []) if c["target"] in names)
            + (len(names) if cfg.get("step_check") == "largest_d" else 0))


def _fit(ds, n, valid, cfg):
    f = bootstrap_passage(ds, n, valid=valid, n_boot=cfg.get("n_boot", 500))
    return f, dict(eta=f.eta, lo=f.lo, hi=f.hi)


def passage_row(cfg, target, ds, pts) -> dict:
    """The fits of one target from its points: `n*` at the main threshold, at every threshold,
    start-corrected (each seed's `n` times the flow time from the median start over the flow time from
    its own), `n*/log d` at `s = 2`."""
    n = ragged(pts, "n", np.nan)  # (D, S): seed counts may differ per d (`seeds_by_d`); padded seeds do not count
    valid = ragged(pts, "valid", False).astype(bool)
    fit, _ = _fit(ds, n, valid, cfg)
    row = dict(target=target, d=ds, points=pts, eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c,
               n_star=fit.n_star.tolist(), seconds=sum(p["seconds"] for p in pts))
    if all("n_all" in p for p in pts) and len(cfg["thresholds"]) > 1:  # the exponent at every threshold
        nall = ragged(pts, "n_all", np.nan)  # (D, S, P)
        row["by_threshold"] = []
        for j, th in enumerate(cfg["thresholds"]):
            fj, e = _fit(ds, nall[:, :, j], valid, cfg)
            row["by_threshold"].append(dict(threshold=th, **e, n_star=fj.n_star.tolist()))
    if all("rho0" in p for p in pts) and target["s"] >= 3:  # each seed moved to the median start
        ab, _ = theory.noise_constant(target["link"], target["activation"], target.get("loss", "squared"), cfg["noise"])
        ft = lambda r0: theory.flow_time(target["s"], abs(ab), r0, cfg["threshold"])
        adj = ragged([dict(a=np.asarray(p["n"], float) * ft(0.674 / np.sqrt(p["d"])) / np.maximum(ft(p["rho0"]), 1e-12))
                      for p in pts], "a", np.nan)
        fa, e = _fit(ds, adj, valid, cfg)
        row["start_corrected"] = dict(**e, n_star=fa.n_star.tolist())
    if target["s"] == 2:  # d log d: the slope of n* / log d
        row["log_corrected"] = _fit(ds, n / np.log(np.asarray(ds, float))[:, None], valid, cfg)[1]
    return row


def _time_text(out) -> str:
    """The run's wall and CPU seconds; a run merged from reruns (`--targets`) has no CPU total."""
    cpu = out.get("cpu_seconds", float("nan"))
    return f"{out['seconds']:.0f} s wall" + (f", {cpu:.0f} s CPU" if math.isfinite(cpu) else
                                              " (the points' own compute time; CPU time is not recorded across reruns)")


def _steps(cfg, out, bar):
    """The `c_checks` (n* at several step ratios at one d) and, with `step_check = "largest_d"`,
    every target's step check (c halved at its largest d)."""
    for chk in cfg.get("c_checks", []):
        target = next(t for t in cfg["targets"] if t["name"] == chk["target"])
        if target not in _only(cfg):
            continue
        for ratio in chk["ratios"]:
            bar.set_postfix_str(f"{cfg['name']} c check {target['name']} ratio={ratio}")
            out["c_checks"].append(dict(target=target["name"], ratio=ratio, **passage_point(cfg, target, chk["d"], ratio=ratio)))
            bar.update(1)
    if cfg.get("step_check") == "largest_d":
        out["step_checks"] = []
        for target, row in zip(_only(cfg), out["rows"]):
            d = cfg["d"][target["name"]][-1]
            bar.set_postfix_str(f"{cfg['name']} step check {target['name']} d={d}")
            half = cached_point(cfg, target, d, ratio=setting(target, cfg, "ratio") / 2, point=passage_point)
            out["step_checks"].append(step_check(target["name"], row["points"][-1], half))
            bar.update(1)


def _merge(cfg, out, docs):
    """`--targets`: the rerun rows and checks merged into the committed run, in the config's order."""
    path = data_path(docs, cfg["name"])
    old = read_data(docs, cfg["name"]) if path.exists() else dict(rows=[], c_checks=[], seconds=0.0)
    new_rows = {r["target"]["name"]: r for r in out["rows"]}
    old_rows = {r["target"]["name"]: r for r in old["rows"]}
    out["rows"] = [r for r in (new_rows.get(t["name"], old_rows.get(t["name"])) for t in cfg["targets"]) if r is not None]
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


def run(cfg, docs, bar):
    out = {"config": cfg, "rows": [], "c_checks": []}
    t_all, cpu_all = time.time(), time.process_time()
    for target in _only(cfg):
        ds, pts = cfg["d"][target["name"]], []
        for d in ds:
            bar.set_postfix_str(f"{cfg['name']} {target['name']} d={d}")
            pts.append(cached_point(cfg, target, d, point=passage_point))
            bar.update(1)
        out["rows"].append(passage_row(cfg, target, ds, pts))
    if cfg.get("step_check") == "largest_d":  # the rows first: a run killed in its step checks keeps them
        _write(cfg, dict(out, step_checks=[]), docs, t_all, cpu_all)
    _steps(cfg, out, bar)
    return _write(cfg, out, docs, t_all, cpu_all)


def _write(cfg, out, docs, t_all, cpu_all):
    """Write the run's data (merged into the committed file with `--targets`) and render it."""
    out["seconds"] = time.time() - t_all
    out["cpu_seconds"] = time.process_time() - cpu_all
    if cfg.get("only_targets") is not None:
        _merge(cfg, out, docs)
    write_json(data_path(docs, cfg["name"]), out)
    render(out, docs)
    return out


def refit(out) -> dict:
    """`--render --refit`: every row refitted from its stored points."""
    out["rows"] = [dict(passage_row(out["config"], r["target"], r["d"], r["points"]), seconds=r["seconds"])
                   for r in out["rows"]]
    return out


def render(out, docs):
    cfg = out["config"]
    if cfg.get("grid"):
        plot_grid(out, docs)
    else:
        plot(out, docs)
    write_block(docs, cfg["name"], table(out))


def table(out):
    cfg = out["config"]
    if cfg.get("grid"):
        return grid_table(out)
    return compare_table(out) if cfg.get("compare") else rows_table(out)


# ---------------------------------------------------------------- one row per target


def _algorithm(target, cfg):
    reuse = target.get("reuse", 1)
    what = "online SGD" if reuse == 1 else f"SGD, each batch reused {reuse} steps"
    law = target.get("inputs", "gaussian")
    law = "" if law == "gaussian" and "inputs" not in target else f", {law}" + (f" nu = {target['nu']:g}" if "nu" in target else "") + " inputs"
    return f"{target.get('dynamic', cfg['dynamic'])} {what}{law}"


def _eta_text(r, cfg, flow):
    text = f"{fmt(r['eta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]; flow over this d range: {flow:.2f}"
    for bt in r.get("by_threshold", []):
        if bt["threshold"] != cfg["threshold"]:
            text += f"; at \\|rho\\| >= {bt['threshold']:g}: {fmt(bt['eta'])} [{fmt(bt['lo'])}, {fmt(bt['hi'])}]"
    if "start_corrected" in r:
        sc = r["start_corrected"]
        text += f"; start-corrected: {fmt(sc['eta'])} [{fmt(sc['lo'])}, {fmt(sc['hi'])}]"
    return text


def _row(r, cfg):
    t = r["target"]
    s = t["s"]
    ab, _ = theory.noise_constant(t["link"], t["activation"], t.get("loss", "squared"), cfg["noise"])
    flow, nc = theory.flow_exponent(s, abs(ab), r["d"])
    ratio = np.asarray(r["n_star"], float) * r["points"][0]["c"] / nc
    verdict = onepass_verdict(r, cfg, flow) + f" (n* c / flow time: {ratio.min():.2f}-{ratio.max():.2f})"
    own = [p.get("flow_ratio_median") for p in r["points"]]
    if all(x is not None for x in own):
        verdict += "; per-seed time / own-start flow time (median): " + ", ".join(fmt(x) for x in own)
    never = ", ".join(f"{p['never']:.2f}" for p in r["points"])
    nstar = ", ".join(fmt(x, 0) if not np.isfinite(x) else f"{x:.3g}" for x in r["n_star"])
    seeds = t.get("seeds", "per d: " + "/".join(map(str, (cfg.get("seeds_by_d") or {}).get(t["name"], []))))
    return (f"| {_algorithm(t, cfg)} | {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | "
            f"{cfg.get('r1', 0.0):g} | {cfg.get('kappa', 0.0):g} | {r['d'][0]}..{r['d'][-1]} | {nstar} | {_eta_text(r, cfg, flow)} | "
            f"{theory.known_rate(s)} | d^{s} | {verdict} | {seeds}, {never} | {r['points'][0]['c']:.3g}, {t['batch_over_d']:g} d |")


def rows_table(out):
    cfg = out["config"]
    lines = [
        f"![n* against d](figures/{cfg['name']}.png)", "",
        f"One neuron, `{cfg['dynamic']}`, kappa = {cfg.get('kappa', 0.0):g}, r1 = {cfg.get('r1', 0.0):g}, label noise "
        f"{cfg['noise']:g}; n* = samples consumed when |rho| first reaches {cfg['threshold']:g} (median over seeds; odd s: "
        f"right-sign seeds only); eta = c batch d^(-s/2) with c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V (see "
        f"docs/decisions.md); step budget {cfg['horizon']:g} x the flow's escape time; 90% bootstrap intervals over seeds. "
        f"Time to science: {_time_text(out)} (all cores; the wall time depends on the machine's other load).", "",
        "| algorithm | s (link / activation, loss) | r1 | kappa | d | n* at each d | eta [90% CI] | known isotropic rate | "
        "paper's hypothesis (sufficient n) | verdict | seeds, not passed | c, batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r, cfg) for r in out["rows"]]
    if out["c_checks"]:
        lines += ["", "Step-size check (one d; n* should scale as 1/c once c is small, i.e. n* c constant: "
                  "a smaller step costs proportionally more samples, the exponent does not move):", "",
                  "| target | d | drift/signal ratio | c | n* | n* x c | median per-seed SGD time / flow time from its own "
                  "start | not passed |", "|---|---|---|---|---|---|---|---|"]
        for c in out["c_checks"]:
            lines.append(f"| {c['target']} | {c['d']} | {c['ratio']:g} | {c['c']:.3g} | {fmt(c['n_star'], 0)} | "
                         f"{fmt(c['n_star'] * c['c'], 0)} | {fmt(c.get('flow_ratio_median'))} | {c['never']:.2f} |")
    return "\n".join(lines)


def _d_label(v) -> str:
    """A d tick: the number, or `2^k` past 10^5 (six-digit labels run into each other)."""
    k = int(round(np.log2(v)))
    return f"$2^{{{k}}}$" if v >= 1e5 and 2**k == int(v) else f"{int(v)}"


def _panel(ax, r, colour, cfg, check=None):
    """One target's n* against d: every seed (grey), the medians by status (`figures.statuses`: hollow
    where not a measurement; `check`: its step check at the largest d), the fit (dashed through
    non-monotone medians) and the known rate."""
    d, ns, t = np.asarray(r["d"], float), np.asarray(r["n_star"], float), r["target"]
    for p in r["points"]:
        v = np.asarray(p["n"], float)[np.asarray(p["valid"], bool)]
        ax.plot(np.full(v.size, p["d"]), v, ".", color="0.7", ms=3, zorder=1)
    failed = [check is not None and not check["ok"] and i == len(d) - 1 for i in range(len(d))]
    status = figures.statuses(ns, batch=[p["batch"] for p in r["points"]], failed=failed)
    figures.plot_cells(ax, d, ns, status, colour, top=[p["budget"] for p in r["points"]], label="n* (median)")
    bent = figures.non_monotone(ns)
    if np.isfinite(r["eta"]):
        figures.plot_fit(ax, d, r, colour, alpha=0.2, dashed=bent,
                         line_label=f"fit: eta = {r['eta']:.2f}" + (" (non-monotone medians)" if bent else ""),
                         band_label=f"90% CI [{r['lo']:.2f}, {r['hi']:.2f}]")
        ref = d ** max(1, t["s"] - 1) * (np.log(d) if t["s"] == 2 else 1)
        ax.plot(d, ref * ns[0] / ref[0], ":", color="k", lw=1, label=f"known rate {theory.known_rate(t['s'])}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(d, [_d_label(v) for v in d])
    ax.minorticks_off()
    ax.set_xlabel("d")
    metric = "|cos_u|" if t.get("metric", cfg.get("metric", "rho")) == "cos_u" else "|rho|"
    ax.set_ylabel(f"samples n* to reach {metric} >= {cfg['threshold']:g}")
    title = (f"{t.get('dynamic', cfg['dynamic'])} "
             + (f"SGD, batch reused {t['reuse']}x" if t.get("reuse", 1) > 1 else "online SGD")
             + (f", kappa = d^{cfg['r2']:g}" if "r2" in cfg else f", kappa = {cfg.get('kappa', 0.0):g}")
             + (f", {t['inputs']}" + (f" nu = {t['nu']:g}" if "nu" in t else "") if "inputs" in t else "")
             + (f", r1 = {t['r1']:g}" if "r1" in t else "")
             + f"\ns = {t['s']}: {t['link']} / {t['activation']}, {t.get('loss', 'squared')} loss")
    ax.set_title(title, fontsize=9)
    handles, _ = ax.get_legend_handles_labels()
    if any(x not in ("measured", "non-monotone") for x in status):
        handles += figures.status_handles(status)
    ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    rows = out["rows"]
    with style.style():
        lines = -(-len(rows) // 4)  # at most 4 panels a row, the rows as even as they go
        cols = -(-len(rows) // lines)
        fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.8 * lines), squeeze=False)
        for ax in axes.flat[len(rows):]:
            ax.set_visible(False)
        checks = {c["target"]: c for c in out.get("step_checks", [])}
        for ax, r, colour in zip(axes.flat, rows, style.PALETTE * 2):
            _panel(ax, r, colour, out["config"], checks.get(r["target"]["name"]))
        figures.save_figure(fig, figures.figure_path(docs, out["config"]["name"]))


# ---------------------------------------------------------------- normalized against preconditioned pairs


def compare_table(out) -> str:
    """Pairs of rows (`cfg['compare']`: [[name_a, name_b], ...]): `n*` of each at every `d`, their
    ratio against `1 + kappa` (the factor by which the bulk is slower), and each exponent."""
    cfg = out["config"]
    rows = {r["target"]["name"]: r for r in out["rows"]}
    lines = [
        f"![n* against d](figures/{cfg['name']}.png)", "",
        f"One neuron, online SGD (`Online(batch, projected=True)`), kappa = d^{cfg.get('r2', 0):g}, r1 = {cfg.get('r1', 0):g}, "
        f"label noise {cfg['noise']:g}; n* = samples when the metric first reaches {cfg['threshold']:g} (median over seeds); "
        f"eta = c batch d^(-s/2) with c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V for both dynamics; budget "
        f"{cfg['horizon']:g} x escape time x (1 + kappa). Scale `{cfg.get('scale', '?')}`. Time to science: "
        f"{_time_text(out)}.", "",
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
            lines.append(f"| {metric} | {pa['d']} | {1 + pa['kappa']:.1f} | {sig(pa['n_star'])} | {sig(pb['n_star'])} | "
                         f"{fmt(ratio)} | {pa['never']:.2f}, {pb['never']:.2f} |")
        fits += [f"| {r['target'].get('dynamic')} | {metric} | {r['d'][0]}..{r['d'][-1]} | "
                 f"{fmt(r['eta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}] |" for r in (ra, rb)]
    lines += ["", "| dynamic | metric | d | eta [90% CI] |", "|---|---|---|---|"] + fits
    return "\n".join(lines)


# ---------------------------------------------------------------- claims 4-5: the (s, r1, r2) grid


def _cells(out):
    """`{(s, r1, r2): {dynamic: row}}` of a grid run, in the config's order."""
    cells = {}
    for r in out["rows"]:
        t = r["target"]
        cells.setdefault((t["s"], t["r1"], t["r2"]), {})[t["dynamic"]] = r
    return cells


def _grid_cols(r, c, cfg):
    """One dynamic's columns of a grid row: eta, verdict, n* at the largest d, step check."""
    if r is None:
        return ["-"] * 4
    never = r["points"][-1]["never"]
    floor = sum(q["n_star"] <= q["batch"] for q in r["points"] if q["n_star"] is not None)
    verdict = onepass_verdict(r, cfg, flow_slope(r, cfg))  # as the summary judges the row
    if c is not None and not c["ok"]:
        verdict = f"no verdict (step check failed; measured: {verdict})"
    if floor:
        verdict += f"; n* is one batch at {floor} of {len(r['points'])} d (passed in the first step)"
    return [f"{fmt(r['eta'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]", verdict,
            sig(r["n_star"][-1]) + (f" ({never:.0%} not passed when the run stopped)" if never > 0 else ""),
            "-" if c is None else f"{'pass' if c['ok'] else 'FAIL'} (x{fmt(c['ratio'])})"]


def grid_table(out) -> str:
    """Claims 4-5 with one-pass SGD: per (s, r1, r2), each dynamic's eta with its interval and
    verdict (`theory.verdict`), n* at the largest d and the ratio normalized / preconditioned there
    (claim 5 expects up to 1 + kappa), and the step check."""
    cfg = out["config"]
    checks = {c["target"]: c for c in out.get("step_checks", [])}
    dyns = list(cfg["grid"]["dynamic"])
    lines = [
        f"![eta against r2](figures/{cfg['name']}.png)", "",
        f"One neuron, one-pass SGD ({_grid_source(cfg)}), kappa = d^r2, "
        f"<u, theta> = d^-r1, label noise {cfg['noise']:g}; n* = samples when |rho| first reaches {cfg['threshold']:g} "
        f"(median over seeds; odd s: right-sign seeds only); step eta = c batch d^(-s/2) with the isotropic "
        f"c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V for every cell and both dynamics; budget {cfg['horizon']:g} x "
        f"the isotropic escape time x (1 + kappa); stop when {cfg.get('stop_fraction', 1.0):g} of the seeds passed. "
        f"90% seed-bootstrap intervals. Step check: c halved at each cell's largest d, passes when n* c moves by <= 30%. "
        f"Scale `{cfg.get('scale', '?')}`. Time to science: {_time_text(out)}.", "",
        "| s (link / activation, loss) | r1 | r2 | d | paper's sufficient n | "
        + " | ".join(f"eta {x} [90% CI] | verdict {x} | n* {x} at largest d | step check {x}" for x in dyns)
        + " | n* ratio " + " / ".join(dyns) + " at largest d | 1 + kappa there |",
        "|" + "---|" * (6 + 4 * len(dyns) + 1),
    ]
    for (s, r1, r2), by in _cells(out).items():
        any_r = next(iter(by.values()))
        t, d = any_r["target"], any_r["d"]
        cols = sum((_grid_cols(by.get(x), checks.get(by[x]["target"]["name"]) if x in by else None, cfg)
                    for x in dyns), [])
        ns = [by[x]["n_star"][-1] if x in by else float("nan") for x in dyns]
        ratio = ns[0] / ns[1] if len(ns) == 2 and all(np.isfinite(v) and v > 0 for v in ns) else float("nan")
        lines.append(f"| {s} ({t['link']} / {t['activation']}, {t.get('loss', 'squared')}) | {r1:g} | {r2:g} | "
                     f"{d[0]}..{d[-1]} | d^{theory.hypothesis_eta(s, r1, r2):g} | " + " | ".join(cols)
                     + f" | {fmt(ratio)} | {1 + d[-1] ** r2:.3g} |")
    if out["rows"] and max(len(r["d"]) for r in out["rows"]) >= 2:
        lines += ["", *grid_slopes_table(out)]
    return "\n".join(lines)


def _grid_source(cfg) -> str:
    if cfg.get("reduced"):
        return (f"the exact chain, `reduced = true`: the law of `Online(batch)` at a cost free of d, batch capped at "
                f"{cfg.get('batch_max', 'no cap')}")
    return "`Online(batch, projected=True)`: exact in law for Gaussian inputs"


def grid_slopes_table(out) -> list:
    """Each grid row's local slopes between consecutive d and its fit over the large-d end
    (`sj.local_slopes`, `sj.tail_fit`: 90% seed bootstrap, every resample kept, `open` where a
    resample's median is censored)."""
    cfg = out["config"]
    lines = ["Local slopes of the median n* between consecutive d, and the fit over the large-d end (its range "
             "printed), 90% seed-bootstrap intervals with every resample kept (`open`: a resample's median is "
             "censored).", "",
             "| s | r1 | r2 | dynamic | local slopes [90% CI] | fit over the large-d end [90% CI] |", "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        t = r["target"]
        local, fit = slopes_text(r, cfg.get("n_boot", 1000))
        lines.append(f"| {t['s']} | {t['r1']:g} | {t['r2']:g} | {t['dynamic']} | {local} | {fit} |")
    return lines


def _grid_marks(r, checks):
    """How a grid cell's eta is drawn: `step` (its step check failed: half hollow), `partial` (a d's
    n* start-dominated or censored, `figures.statuses`: hollow), `bent` (non-monotone medians: dashed
    interval)."""
    status = figures.statuses(r["n_star"], batch=[p["batch"] for p in r["points"]])
    return dict(step=not checks.get(r["target"]["name"], {}).get("ok", True),
                partial=any(x in ("start-dominated", "censored") for x in status), bent=figures.non_monotone(r["n_star"]))


def _grid_panel(ax, cells, checks, cfg, s, r1, last):
    r2s = sorted({r2 for (s_, r1_, r2) in cells if (s_, r1_) == (s, r1)})
    grid = np.linspace(0, 1, 101)
    ax.plot(grid, [theory.hypothesis_eta(s, r1, x) for x in grid], "k--", lw=1, label="paper (sufficient)")
    style = figures.style()
    for k, dyn in enumerate(cfg["grid"]["dynamic"]):
        st = style.dynamic_style(dyn, marker=True)
        mk, c = st.get("marker", "o"), st["color"]
        at_step = [theory.spiked_fixed_step_exponent(s, r1, x, dyn) for x in grid]
        ax.plot(grid, [np.nan if e is None else e for e in at_step], ":", color=c, lw=1.2,
                label=f"derived at the runs' step, {dyn}")
        for r2 in r2s:
            r = cells[(s, r1, r2)].get(dyn)
            if r is None:
                continue
            x, e, m = r2 + (k - 0.5) * 0.025, r["eta"], _grid_marks(r, checks)
            eb = ax.errorbar([x], [e], yerr=[[max(e - r["lo"], 0)], [max(r["hi"] - e, 0)]], fmt="none", ecolor=c,
                             capsize=3)
            if m["bent"]:
                eb.lines[2][0].set_linestyle((0, (2, 1.5)))
            look = (dict(mfc="white") if m["partial"] else
                    dict(fillstyle="left", mfcalt="white") if m["step"] else {})
            ax.plot([x], [e], mk, color=c, ms=6, ls="none", mew=1.2, label=dyn if not look else None, **look)
            if m["bent"]:
                ax.annotate("nm", (x, e), xytext=(4, -2), textcoords="offset points", fontsize=7, color=c)
    ax.set_title(f"s = {s}, r1 = {r1:g}", fontsize=9)
    if last:
        ax.set_xlabel("r2 (kappa = d^r2)")
    ax.set_ylabel("eta in n* ~ d^eta")


def _grid_legend():
    """What hollow, half hollow and `nm` mean on the grid figure."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", color="0.3", mfc="white", ls="none",
                   label="hollow: a d's n* start-dominated (under 3 batches) or censored"),
            Line2D([], [], marker="o", color="0.3", fillstyle="left", mfcalt="white", ls="none",
                   label="half hollow: step check failed"),
            Line2D([], [], color="0.3", ls=(0, (2, 1.5)), label="nm, dashed interval: fitted through non-monotone medians")]


def plot_grid(out, docs):
    """eta against r2, one panel per (s, r1), a series per dynamic with the exponent derived at the runs'
    step dotted (`theory.spiked_fixed_step_exponent`), the paper's sufficient exponent dashed."""
    plt, style = figures.pyplot(), figures.style()
    cfg = out["config"]
    cells = _cells(out)
    checks = {c["target"]: c for c in out.get("step_checks", [])}
    panels = sorted({(s, r1) for s, r1, _ in cells})
    ss, r1s = sorted({p[0] for p in panels}), sorted({p[1] for p in panels})
    with style.style():
        height = 3.0 * len(r1s) + 1.1  # the legend's three rows under the panels
        fig, axes = plt.subplots(len(r1s), len(ss), figsize=(3.6 * len(ss), height), squeeze=False, sharex=True)
        for (s, r1) in panels:
            _grid_panel(axes[r1s.index(r1), ss.index(s)], cells, checks, cfg, s, r1, r1 == r1s[-1])
        legend = {}
        for ax in axes.flat:  # every series once, the hollow (failed) markers included wherever they occur
            for h, lab in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(lab, h)
        for h in _grid_legend():
            legend[h.get_label()] = h
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=3, frameon=False, fontsize=8)
        fig.suptitle("Claims 4-5 with one-pass SGD: fitted exponent of n* (|rho| >= "
                     f"{cfg['threshold']:g}) against r2, 90% intervals", fontsize=10)
        fig.tight_layout(rect=(0, 0.95 / height, 1, 1))
        figures.save_figure(fig, figures.figure_path(docs, cfg["name"]), tight=False)
