"""Claim 4 with full-batch GD (kind `scaling`): `n*(d)` from a grid of sample sizes for every
(s, r1, r2, dynamic) cell, the fitted exponent on rho and cos_u, and the step/horizon check of
every cell at its largest d."""

from __future__ import annotations

import json
import time

import numpy as np

from spikejax import bootstrap_exponent

from .. import theory
from ..harness import figures, search
from ..harness.io import as_json, data_path, show, write_json
from ..harness.onepass import slopes_text
from ..harness.tables import check_row, check_word, fmt, pass_line
from ..harness.window import predict_n

KIND = "scaling"
MEMO_GROUP = True  # the scaling configs share `harness.search.MEMO` (same cells), so one process runs them


def _cells(cfg):
    """`(target, r1, r2, dynamic)` of every cell, in the table's order."""
    return [(t, r1, r2, dyn) for t in cfg["targets"] for r1 in t.get("r1", cfg["r1"])
            for r2 in t.get("r2", cfg["r2"]) for dyn in cfg["dynamics"]]


def units(cfg):
    cells = _cells(cfg)
    return sum(len(cfg["d"][str(t["s"])]) for t, *_ in cells) + (len(cells) if search.horizon_rule(cfg) == "largest_d" else 0)


def _fit(ds, res, metric, cfg):
    fit = bootstrap_exponent(ds, np.stack([r.n_grid for r in res]), np.stack([getattr(r, metric) for r in res]),
                             valid=np.stack([r.valid for r in res]), threshold=cfg["threshold"],
                             n_boot=cfg.get("n_boot", 500))
    return dict(eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c, n_star=fit.n_star.tolist())


def _cell(cfg, t, r1, r2, dyn, bar, out):
    """n* at each d of one cell, its fits, and its check at the largest d (appended to `out`)."""
    ds, noise, th = cfg["d"][str(t["s"])], cfg["noise"], cfg["threshold"]
    res, seconds = [], []
    for d in ds:
        bar.set_postfix_str(f"{cfg['name']} s={t['s']} r1={r1} r2={r2} {dyn} d={d}")
        t0 = time.time()
        n_pred = predict_n(ds, [r.n_star("rho", th) for r in res], d)
        res.append(search.measure_point(t, d, r1, r2, dyn, noise, steps=search.steps_at(t, d, ds), n_pred=n_pred,
                                        threshold=th))
        seconds.append(time.time() - t0)
        bar.update(1)
    point = dict(s=t["s"], link=t["link"], activation=t["activation"], r1=r1, r2=r2, dynamic=dyn, d=ds,
                 eta_hyp=theory.hypothesis_eta(t["s"], r1, r2), valid_fraction=[float(r.valid.mean()) for r in res],
                 valid=[r.valid for r in res], n_seeds=[r.n_per_seed("rho", th) for r in res], seconds=seconds)
    if "window" in t:
        point["windows"] = [search.MEMO[("windows",) + search.point_key(t, d, r1, r2, dyn, noise, 0,
                                                                         search.steps_at(t, d, ds), t["dt"])] for d in ds]
    for metric in ("rho", "cos_u"):
        point[metric] = _fit(ds, res, metric, cfg)
    if search.horizon_rule(cfg) == "largest_d":
        bar.set_postfix_str(f"{cfg['name']} s={t['s']} r1={r1} r2={r2} {dyn} horizon check d={ds[-1]}")
        chk = search.check_point(t, ds[-1], r1, r2, dyn, noise, th, steps=search.steps_at(t, ds[-1], ds))
        out["horizon"].append(dict(s=t["s"], d=ds[-1], r1=r1, r2=r2, dynamic=dyn, **chk))
        point["horizon_ok"] = chk["ok"]
        bar.update(1)
    out["points"].append(point)


def run(cfg, docs, bar):
    """Every cell; the data file is written after each (`partial: true` until the last), and a rerun
    of the same config resumes after the cells it finds there."""
    path = data_path(docs, cfg["name"])
    out = {"config": cfg, "points": [], "horizon": [], "partial": True}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("partial") and as_json(cfg) == old["config"]:
            out.update(points=old["points"], horizon=old["horizon"])
    done = {(p["s"], p["r1"], p["r2"], p["dynamic"]) for p in out["points"]}
    for t, r1, r2, dyn in _cells(cfg):
        if (t["s"], r1, r2, dyn) in done:
            bar.update(len(cfg["d"][str(t["s"])]) + (search.horizon_rule(cfg) == "largest_d"))
            continue
        _cell(cfg, t, r1, r2, dyn, bar, out)
        write_json(path, out)
    del out["partial"]
    write_json(path, out)
    show(out, docs, plot, table)
    return out


def _bottoms(p, targets):
    """The grid's (or the last window's) bottom at each d of a point."""
    if "windows" in p:
        return [w[-1][0] for w in p["windows"]]
    return [search.n_grid(d, targets[p["s"]])[0] for d in p["d"]]


def _row(p, targets):
    # "<=": n* is the grid's (or the last window's) bottom, an upper bound; "-": not reached at its top.
    nstar = ", ".join("-" if not np.isfinite(x) else ("<=" if x <= b else "") + f"{x:.0f}"
                      for x, b in zip(np.asarray(p["rho"]["n_star"], float), _bottoms(p, targets)))
    er, ec = p["rho"], p["cos_u"]
    vf = ", ".join(f"{v:.2f}" for v in p["valid_fraction"]) if p["s"] % 2 and p["s"] >= 3 else "all"
    return (f"| {p['s']} | {p['r1']:g} | {p['r2']:g} | {p['dynamic']} | {', '.join(map(str, p['d']))} | {nstar} | "
            f"{fmt(er['eta'])} [{fmt(er['lo'])}, {fmt(er['hi'])}] | {fmt(ec['eta'])} [{fmt(ec['lo'])}, {fmt(ec['hi'])}] | "
            f"{p['eta_hyp']:.2f} | {vf} | {check_word(p.get('horizon_ok'), p['rho']['n_star'][-1])} |")


def table(out):
    name = out["config"]["name"]
    lines = [
        f"![n* against d]({'figures/' + name + '_nstar.png'})", "",
        f"![eta against r2]({'figures/' + name + '_eta.png'})" if len({p['r2'] for p in out['points']}) > 1 else "", "",
        "n\\* on rho at each d (`<=`: the grid's bottom, an upper bound; `-`: not reached at the grid's top).", "",
        *_window_note(out["config"]),
        "| s | r1 | r2 | dynamic | d | n*(rho) | eta (rho) [90% CI] | eta (cos_u) [90% CI] | hypothesis | right-sign fraction | step/horizon check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    targets = {t["s"]: t for t in out["config"]["targets"]}
    lines += [_row(p, targets) for p in out["points"]]
    lines += _slopes_lines(out["points"])
    if out.get("horizon"):
        lines += ["", "Step/horizon check of every cell at its largest d (n* on rho): the search rerun with the "
                  "horizon doubled (2x steps) and with dt halved at that doubled horizon (dt/2, 2x steps), on the grid "
                  "points that bracket the base n* within 30% (the window), on the base's samples and seeds; `ok` when "
                  "both reruns stay within 30% of the base. A rerun value `<=x` is at the window's bottom (an upper "
                  "bound), `>x` not reached by the window's top.", "",
                  "| s | d | r1 | r2 | dynamic | dt, steps | n* base | 2x steps | dt/2, 2x steps | window | ok |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [check_row(h, h["s"], h["d"], f"{h['r1']:g}", f"{h['r2']:g}", h["dynamic"], f"{h['dt']:g}, {h['steps']}")
                  for h in out["horizon"]]
        lines += ["", pass_line(out["horizon"])]
    return "\n".join(lines)


def _slopes_lines(points):
    """Local slopes per octave and the fit over the large-d end of the cells that recorded each
    seed's n* (`n_seeds`; runs since 2026-12-07), as `slopes_text` gives them for one-pass rows."""
    rows = [p for p in points if "n_seeds" in p]
    if not rows:
        return []
    lines = ["", "Local slopes between consecutive d and the fit over the large-d end (each seed's n* on rho, "
             "censored above the window's top; 90% seed bootstrap, every resample kept, `open` where a "
             "resample's median is censored):", "",
             "| s | r1 | r2 | dynamic | local slopes [90% CI] | fit over the large-d end [90% CI] |",
             "|---|---|---|---|---|---|"]
    for p in rows:
        pts = [dict(n=np.where(np.isfinite(n), n, np.nan).tolist(), valid=v) for n, v in
               zip(np.asarray(p["n_seeds"], float), p["valid"])]
        local, fit = slopes_text(dict(d=p["d"], points=pts))
        lines.append(f"| {p['s']} | {p['r1']:g} | {p['r2']:g} | {p['dynamic']} | {local} | {fit} |")
    return lines


def _window_note(cfg):
    """The caption's line for targets searched on a window of their grid (`harness/window.py`)."""
    ws = sorted({t["window"] for t in cfg["targets"] if "window" in t})
    if not ws:
        return []
    return [f"Searched on a window of {', '.join(map(str, ws))} consecutive grid points (ratio "
            f"2^{cfg['targets'][0].get('log2_step', 0.5):g}) around the n\\* predicted from the smaller d, on the "
            "whole grid's samples (the first two d run the whole grid); a window that misses n\\*, or whose success "
            "fraction does not run from <= 1/4 to >= 3/4, moves and reruns (`experiments/harness/window.py`). "
            + ("Right-sign seeds only (drawn until there are `seeds` of them). "
               if any(t.get("right_sign_seeds") for t in cfg["targets"]) else ""), ""]


def plot(out, docs):
    """n* against d per (s, r1, dynamic) panel with the fitted lines, and eta against r2."""
    _plot_nstar(out, docs)
    if len({p["r2"] for p in out["points"]}) >= 2:
        _plot_eta(out, docs)


def _tops(p, targets):
    """The grid's (or the last window's) top at each d of a point: where a censored n* is drawn."""
    if "windows" in p:
        return [w[-1][-1] for w in p["windows"]]
    return [search.n_grid(d, targets[p["s"]])[-1] for d in p["d"]]


def _nstar_series(ax, p, k, colour, targets):
    """One (cell, r2) series: n* by status (`figures.statuses`: hollow at the grid's bottom, past its
    top or where the step/horizon check failed), its fit (dashed through non-monotone medians) and
    its eta; returns the statuses and whether the medians are non-monotone."""
    style = figures.style()
    d, e = np.asarray(p["d"], float), p["rho"]
    ns = np.asarray(e["n_star"], float)
    failed = [i == len(d) - 1 and p.get("horizon_ok") is False for i in range(len(d))]
    status = figures.statuses(ns, first_n=_bottoms(p, targets), failed=failed)
    figures.plot_cells(ax, d, ns, status, colour[p["r2"]], style.MARKERS[k % len(style.MARKERS)],
                       top=_tops(p, targets))
    bent = figures.non_monotone(ns)
    if np.isfinite(e["eta"]):
        ax.plot(d, np.exp(e["log_c"]) * d ** e["eta"], "--" if bent else "-", color=colour[p["r2"]], lw=1.2)
        ax.text(0.03, 0.97 - 0.09 * k, f"eta={e['eta']:.2f} [{fmt(e['lo'])}, {fmt(e['hi'])}]"
                + (" non-monotone" if bent else ""), transform=ax.transAxes, fontsize=7, color=colour[p["r2"]], va="top")
    return status, bent


def _plot_nstar(out, docs):
    from matplotlib.lines import Line2D

    plt, style = figures.pyplot(), figures.style()
    cfg, pts = out["config"], out["points"]
    panels = sorted({(p["s"], p["r1"], p["dynamic"]) for p in pts})
    r2_values = sorted({p["r2"] for p in pts})
    colour = {r2: style.PALETTE[i % len(style.PALETTE)] for i, r2 in enumerate(r2_values)}
    targets = {t["s"]: t for t in cfg["targets"]}
    with style.style():
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 3.4, max(3.1 * rows, 3.6)), squeeze=False,
                                 layout="constrained")
        seen, bent = [], False
        for ax, (s, r1, dyn) in zip(axes.flat, panels):
            sel = [p for p in pts if (p["s"], p["r1"], p["dynamic"]) == (s, r1, dyn)]
            for p in sel:
                st, b = _nstar_series(ax, p, r2_values.index(p["r2"]), colour, targets)
                seen, bent = seen + st, bent or b
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (hi / lo) ** (0.13 * len(sel)))  # room above the data for the eta lines
            style.log_ticks(ax, "both")
            t = targets[s]
            ax.set_title(f"s={s} ({t['link']}/{t['activation']}, r1={r1:g}), {dyn}", fontsize=9)
            ax.set_xlabel("d")
            ax.set_ylabel("n* (rho >= 0.9)")
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        handles = [Line2D([], [], marker=style.MARKERS[k % len(style.MARKERS)], color=colour[r2], ls="-",
                          label=f"r2={r2:g}") for k, r2 in enumerate(r2_values)]
        handles += figures.status_handles(seen, bent)
        style.legend_outside(fig, handles, [h.get_label() for h in handles], title="spike r2 (kappa = d^r2)")
        fig.suptitle("Empirical full-batch GD: n* against d with least-squares fits and 90% bootstrap intervals")
        figures.save_figure(fig, figures.figure_path(docs, f"{cfg['name']}_nstar"), tight=False)


def _plot_eta(out, docs):
    plt, style = figures.pyplot(), figures.style()
    pts = out["points"]
    curves = sorted({(p["s"], p["r1"]) for p in pts})
    with style.style():
        fig, axes = plt.subplots(1, len(curves), figsize=(3.3 * len(curves) + 2.6, 3.3), squeeze=False,
                                 layout="constrained", sharey=True)
        for ax, (s, r1) in zip(axes.flat, curves):
            r2s = np.linspace(0, 1, 101)
            ax.plot(r2s, [theory.hypothesis_eta(s, r1, r) for r in r2s], "k--", lw=1, label="hypothesis (claim 4)")
            for k, (dyn, off) in enumerate((("normalized", -0.01), ("preconditioned", 0.01))):
                sel = [p for p in pts if (p["s"], p["r1"], p["dynamic"]) == (s, r1, dyn)]
                if not sel:
                    continue
                st = style.dynamic_style(dyn, marker=True, index=k)
                r2 = np.array([p["r2"] for p in sel]) + off
                eta, lo, hi = (np.array([p["rho"][x] for p in sel]) for x in ("eta", "lo", "hi"))
                err = np.abs(np.nan_to_num(np.stack([eta - lo, hi - eta])))
                ax.errorbar(r2, eta, yerr=err, fmt=st.get("marker", "o"), color=st["color"], capsize=3,
                            label=f"{dyn} (rho)")
                ax.plot(r2 + 2 * off, np.array([p["cos_u"]["eta"] for p in sel]), st.get("marker", "o"), mfc="none",
                        color=st["color"], alpha=0.7, label=f"{dyn} (cos_u)")
            ax.set_title(f"s={s}, r1={r1:g}", fontsize=9)
            ax.set_xlabel("r2  (kappa = d^r2)")
        axes.flat[0].set_ylabel("eta  (n* ~ d^eta)")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        style.legend_outside(fig, handles, labels)
        fig.suptitle("Fitted exponents against the spike, 90% intervals (full-batch GD)")
        figures.save_figure(fig, figures.figure_path(docs, f"{out['config']['name']}_eta"), tight=False)


def check_units(cfg):
    return len(_cells(cfg))


def _cost(t, d, n):
    return (n if np.isfinite(n) else 0.0) * d * t["seeds"] * t["steps"]


def check(cfg, docs, bar):
    """`--checks-only`: the step/horizon check of every cell of the committed table, each cell's base
    n* read from docs/data (not rerun), cheapest first; the data file is written after each, so an
    interrupted run resumes where it stopped."""
    path = data_path(docs, cfg["name"])
    out = json.loads(path.read_text())
    targets = {t["s"]: t for t in cfg["targets"]}
    cell = lambda p: (p["s"], p["r1"], p["r2"], p["dynamic"])
    done = {cell(h): h for h in out.get("horizon", []) if "window" in h and cell(h) in
            {cell(p) for p in out["points"] if "horizon_ok" in p}}
    todo = sorted((p for p in out["points"] if cell(p) not in done),
                  key=lambda p: _cost(targets[p["s"]], p["d"][-1], p["rho"]["n_star"][-1]))
    for p in todo:
        t, d = targets[p["s"]], p["d"][-1]
        bar.set_postfix_str(f"{cfg['name']} s={p['s']} r1={p['r1']} r2={p['r2']} {p['dynamic']} horizon check d={d}")
        chk = search.check_point(t, d, p["r1"], p["r2"], p["dynamic"], cfg["noise"], cfg["threshold"],
                                 base_n=p["rho"]["n_star"][-1], steps=search.steps_at(t, d, p["d"]))
        done[cell(p)] = dict(s=p["s"], d=d, r1=p["r1"], r2=p["r2"], dynamic=p["dynamic"], **chk)
        p["horizon_ok"] = chk["ok"]
        out["horizon"] = [done[cell(q)] for q in out["points"] if cell(q) in done]  # in the table's order
        bar.update(1)
        write_json(path, out)
    bar.update(len(out["points"]) - len(todo))
    out["checks_only"] = True
    write_json(path, out)
    show(out, docs, plot, table)
