"""Claim 5 with full-batch GD (kind `preconditioning`): normalized against preconditioned `n*` at
one `d`, against the spike `1 + kappa` (true Sigma) and against the unlabelled samples of SigmaHat,
each cell with its step/horizon check."""

from __future__ import annotations

import json

import numpy as np

from ..harness import figures, search
from ..harness.io import data_path, finish, show, write_json
from ..harness.tables import check_row, check_word, fmt, pass_line

KIND = "preconditioning"
MEMO_GROUP = True
DYNAMICS = ("normalized", "preconditioned")


def units(cfg):
    cells = 2 * (len(cfg["r2"]) + len(cfg["n_unlabelled_over_d"]))
    return cells * (2 if search.horizon_rule(cfg) == "largest_d" else 1)


def run(cfg, docs, bar):
    t, d, th = cfg["target"], cfg["d"], cfg["threshold"]
    checked = search.horizon_rule(cfg) == "largest_d"  # one d: every cell is checked there

    def cell(dyn, r2, n_unlabelled=0):
        res = search.measure_point(t, d, cfg["r1"], r2, dyn, cfg["noise"], n_unlabelled=n_unlabelled)
        row = dict(dynamic=dyn, n_unlabelled=n_unlabelled, n_star_rho=res.n_star("rho", th),
                   n_star_cos_u=res.n_star("cos_u", th))
        bar.update(1)
        if checked:
            bar.set_postfix_str(f"{cfg['name']} r2={r2} n_unlabelled={n_unlabelled} {dyn} horizon check")
            row["horizon"] = search.check_point(t, d, cfg["r1"], r2, dyn, cfg["noise"], th, n_unlabelled=n_unlabelled)
            bar.update(1)
        return row

    rows, unl = [], []
    for r2 in cfg["r2"]:
        for dyn in DYNAMICS:
            bar.set_postfix_str(f"{cfg['name']} r2={r2} {dyn}")
            rows.append(dict(r2=r2, kappa=d**r2, **cell(dyn, r2)))
    for k in cfg["n_unlabelled_over_d"]:
        for dyn in DYNAMICS:
            bar.set_postfix_str(f"{cfg['name']} n_unlabelled={k}d {dyn}")
            unl.append(cell(dyn, cfg["r2_unlabelled"], int(k * d)))
    out = dict(config=cfg, kappa_rows=rows, unlabelled_rows=unl)
    return finish(out, docs, plot, table)


def _setting(cfg):
    t = cfg["target"]
    return (f"d={cfg['d']}, s={t['s']} ({t['link']} link, {t['activation']}), r1={cfg['r1']:g}, noise {cfg['noise']:g}, "
            f"{t['seeds']} seeds, full-batch GD dt={t['dt']:g}, {t['steps']} steps")


def _series(ax, sel, x, st, top, k):
    """n* on rho (filled) and cos_u (open) of one dynamic; not reached: a triangle at the grid's top."""
    for j, (metric, fill) in enumerate((("rho", True), ("cos_u", False))):
        y = np.array([r[f"n_star_{metric}"] for r in sel], float)
        y = np.where(np.isfinite(y), y, np.nan)
        ax.plot(x, y, color=st["color"], linestyle=st["linestyle"] if fill else ":", marker=st["marker"],
                mfc=st["color"] if fill else "white", lw=1.3 if fill else 1.0, label=f"{sel[0]['dynamic']}, n* on {metric}")
        miss = ~np.isfinite(y)
        if miss.any():  # side by side at the grid's top, so none hides another
            ax.plot(x[miss] * 1.09 ** (2 * k + j - 1.5), np.full(miss.sum(), top), "^", color=st["color"],
                    mfc=st["color"] if fill else "white", ms=6, clip_on=False)


def _axes(a1, a2, out, top):
    from matplotlib.ticker import NullFormatter

    cfg, d = out["config"], out["config"]["d"]
    found = [r[f"n_star_{m}"] for r in out["kappa_rows"] + out["unlabelled_rows"] for m in ("rho", "cos_u")]
    low = min(v for v in found if np.isfinite(v))
    ticks = [v for v in (10, 20, 50, 100, 200, 500, 1000, 1500, 2000, 3000, 4000, 6000, 10000, 20000, 50000)
             if low * 0.8 <= v <= top]
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(low * 0.8, top * 1.5)
        ax.axhline(top, color="0.6", lw=0.8, zorder=0)
        ax.text(0.02, top * 1.12, f"grid top {top:.0f} (triangles: not reached on the grid)",
                transform=ax.get_yaxis_transform(), fontsize=7, color="0.35", va="bottom")
        figures.style().log_ticks(ax, "both")
        ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_ylabel("n*  (median seed reaches 0.9)")
    a1.set_xlabel("condition number 1 + kappa  (kappa = d^r2)")
    xs = sorted({r["n_unlabelled"] for r in out["unlabelled_rows"]})
    a2.set_xticks(xs, [f"{v}\n({v / d:g} d)" for v in xs])
    a2.xaxis.set_minor_formatter(NullFormatter())
    a2.set_xlabel("unlabelled samples for SigmaHat")
    a1.set_title("true Sigma, kappa swept")
    a2.set_title(f"SigmaHat at r2={cfg['r2_unlabelled']:g} (1 + kappa = {1 + d ** cfg['r2_unlabelled']:.0f})")


def plot(out, docs):
    """n* against 1 + kappa (true Sigma) and against n_unlabelled (SigmaHat), normalized against
    preconditioned, rho filled and cos_u open; a cell not reached on the grid is drawn at the
    grid's top with an upward triangle."""
    plt, style = figures.pyplot(), figures.style()
    cfg = out["config"]
    top = float(search.n_grid(cfg["d"], cfg["target"])[-1])
    with style.style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.9), layout="constrained")
        for k, dyn in enumerate(DYNAMICS):
            st = style.dynamic_style(dyn, marker=True, index=k)
            sel = [r for r in out["kappa_rows"] if r["dynamic"] == dyn]
            _series(a1, sel, np.array([1 + r["kappa"] for r in sel], float), st, top, k)
            sel = [r for r in out["unlabelled_rows"] if r["dynamic"] == dyn]
            _series(a2, sel, np.array([r["n_unlabelled"] for r in sel], float), st, top, k)
            ref = [r for r in out["kappa_rows"] if r["dynamic"] == dyn and r["r2"] == cfg["r2_unlabelled"]]
            if ref and np.isfinite(ref[0]["n_star_rho"]):
                a2.axhline(ref[0]["n_star_rho"], color=st["color"], ls=(0, (1, 2)), lw=1,
                           label=f"{dyn}, true Sigma, n* on rho")
        _axes(a1, a2, out, top)
        style.legend_outside(fig)
        fig.suptitle(f"Claim 5, preconditioning: {_setting(cfg)}")
        figures.save_figure(fig, figures.figure_path(docs, cfg["name"]), tight=False)


def table(out):
    cfg = out["config"]
    d = cfg["d"]
    rows, unl = out["kappa_rows"], out["unlabelled_rows"]

    def ok(*rs):
        return ", ".join(check_word(r["horizon"]["ok"], r["horizon"]["base"]) if "horizon" in r else "not run" for r in rs)

    def pair(sel):
        return [next(r for r in sel if r["dynamic"] == dy) for dy in DYNAMICS]

    lines = [f"![n* against kappa and n_unlabelled](figures/{cfg['name']}.png)", "",
             f"{_setting(cfg)}. Step/horizon check (last column, normalized, preconditioned): each cell rerun with "
             "the horizon doubled and with dt halved at that horizon, on the grid points bracketing its n*(rho) within "
             "30%, same samples and seeds.", "",
             "| r2 | 1 + kappa | normalized n*(rho) | preconditioned n*(rho) | normalized n*(cos_u) | preconditioned n*(cos_u) | step/horizon check |",
             "|---|---|---|---|---|---|---|"]
    for r2 in cfg["r2"]:
        a, b = pair([r for r in rows if r["r2"] == r2])
        lines.append(f"| {r2:g} | {1 + a['kappa']:.0f} | {fmt(a['n_star_rho'], 0)} | {fmt(b['n_star_rho'], 0)} | "
                     f"{fmt(a['n_star_cos_u'], 0)} | {fmt(b['n_star_cos_u'], 0)} | {ok(a, b)} |")
    lines += ["", f"With SigmaHat from n_unlabelled samples (r2 = {cfg['r2_unlabelled']:g}):", "",
              "| n_unlabelled | normalized n*(rho) | preconditioned n*(rho) | normalized n*(cos_u) | preconditioned n*(cos_u) | step/horizon check |",
              "|---|---|---|---|---|---|"]
    for k in cfg["n_unlabelled_over_d"]:
        a, b = pair([r for r in unl if r["n_unlabelled"] == int(k * d)])
        lines.append(f"| {int(k * d)} | {fmt(a['n_star_rho'], 0)} | {fmt(b['n_star_rho'], 0)} | {fmt(a['n_star_cos_u'], 0)} | "
                     f"{fmt(b['n_star_cos_u'], 0)} | {ok(a, b)} |")
    if all("horizon" in r for r in rows + unl):
        hs = [dict(r["horizon"], dynamic=r["dynamic"], r2=r.get("r2", cfg["r2_unlabelled"]), n_unlabelled=r["n_unlabelled"])
              for r in rows + unl]
        lines += ["", "The step/horizon checks (n* on rho at d = " + str(d) + "; `<=x`: at the window's bottom, `>x`: not "
                  "reached by its top; n/a: no base n* to check):", "",
                  "| r2 | n_unlabelled | dynamic | n* base | 2x steps | dt/2, 2x steps | window | ok |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [check_row(h, f"{h['r2']:g}", h["n_unlabelled"], h["dynamic"]) for h in hs]
        lines += ["", pass_line(hs)]
    return "\n".join(lines)


def check_units(cfg):
    return 2 * (len(cfg["r2"]) + len(cfg["n_unlabelled_over_d"]))


def check(cfg, docs, bar):
    """`--checks-only`: the step/horizon check of every committed cell, its base n* read from docs/data."""
    path = data_path(docs, cfg["name"])
    out = json.loads(path.read_text())
    t, d = cfg["target"], cfg["d"]
    rows = out["kappa_rows"] + out["unlabelled_rows"]
    cost = lambda r: (r["n_star_rho"] if np.isfinite(r["n_star_rho"]) else 0.0) * d * t["seeds"] * t["steps"]
    todo = sorted((r for r in rows if "horizon" not in r), key=cost)
    for r in todo:
        r2 = r.get("r2", cfg["r2_unlabelled"])
        bar.set_postfix_str(f"{cfg['name']} r2={r2} n_unlabelled={r['n_unlabelled']} {r['dynamic']} horizon check")
        r["horizon"] = search.check_point(t, d, cfg["r1"], r2, r["dynamic"], cfg["noise"], cfg["threshold"],
                                          n_unlabelled=r["n_unlabelled"], base_n=r["n_star_rho"])
        bar.update(1)
        write_json(path, out)
    bar.update(len(rows) - len(todo))
    out["checks_only"] = True
    write_json(path, out)
    show(out, docs, plot, table)
