"""Claims 1-2 under non-Gaussian inputs (kind `nongaussian_failure`): spherical and normalized
full-batch GD on `Empirical(n)` at `theta = u` under each input law, final `|cos_u|` and `|rho|`."""

from __future__ import annotations

import time

import jax
import numpy as np

from .. import theory
from ..harness import figures
from ..harness.flows import empirical_finals, median_abs
from ..harness.io import finish
from ..harness.onepass import input_law
from ..harness.tables import fmt

KIND = "nongaussian_failure"


def fmt3(x, nd=3):
    return fmt(x, nd)


def law_name(spec):
    return spec["inputs"] + (f" nu = {spec['nu']:g}" if "nu" in spec else "")


def run(cfg, docs, bar):
    """Claims 1-2 on `Empirical(n)`: spherical and normalized full-batch GD at `theta = u` under each
    input law, final `|cos_u|`, `|rho|` medians and statuses; the step/horizon check on `check` cells."""
    t_all, cpu_all = time.time(), time.process_time()
    d, n = cfg["d"], int(cfg["n_over_d"] * cfg["d"])
    keys = jax.random.split(jax.random.key(40_000), cfg["seeds"])
    rows, checks = [], []

    def cell(spec, kappa, dyn, dt, T):
        t0 = time.time()
        steps = int(np.ceil(T / dt))
        cu, rh, st = empirical_finals(d, kappa, dyn, keys, n, dt, steps, cfg["link"], cfg["activation"], cfg["noise"],
                                       inputs=input_law(spec))
        return dict(cos_u=cu.tolist(), rho=rh.tolist(), cos_u_med=median_abs(cu), rho_med=median_abs(rh), not_ok=int(np.sum(st != 0)),
                    status=np.asarray(st).tolist(), steps=steps, seconds=time.time() - t0)

    for spec in cfg["laws"]:
        for kappa in cfg["kappa"]:
            T = cfg["horizon"] * (1 + kappa)
            row = dict(law=law_name(spec), spec=spec, kappa=kappa, T=T, c_star=theory.spherical_fixed_point(kappa)[0])
            for dyn in ("spherical", "normalized"):
                bar.set_postfix_str(f"{cfg['name']} {row['law']} kappa={kappa:g} {dyn}")
                row[dyn] = cell(spec, kappa, dyn, cfg["dt"], T)
                bar.update(1)
                if [spec["inputs"], spec.get("nu", 0), kappa] in [[c[0], c[1], c[2]] for c in cfg.get("check", [])]:
                    bar.set_postfix_str(f"{cfg['name']} {row['law']} kappa={kappa:g} {dyn} check")
                    longer, finer = cell(spec, kappa, dyn, cfg["dt"], 2 * T), cell(spec, kappa, dyn, cfg["dt"] / 2, T)
                    checks.append(dict(law=row["law"], kappa=kappa, dynamic=dyn, base=row[dyn]["cos_u_med"],
                                       base_rho=row[dyn]["rho_med"], longer=longer["cos_u_med"], finer=finer["cos_u_med"],
                                       longer_rho=longer["rho_med"], finer_rho=finer["rho_med"],
                                       not_ok=longer["not_ok"] + finer["not_ok"]))
                    bar.update(1)
            rows.append(row)
    out = dict(config=cfg, rows=rows, checks=checks, n=n, seconds=time.time() - t_all, cpu_seconds=time.process_time() - cpu_all)
    return finish(out, docs, plot, table)


def units(cfg):
    return 2 * len(cfg["laws"]) * len(cfg["kappa"]) + 2 * len(cfg.get("check", []))


def table(out):
    cfg = out["config"]
    lines = [
        f"![final overlaps by input law](figures/{cfg['name']}.png)", "",
        f"Full-batch GD (Euler, dt = {cfg['dt']:g}) on n = {out['n']} ({cfg['n_over_d']:g} d) fixed samples (`Empirical(n)`), "
        f"d = {cfg['d']}, theta = u (r1 = 0), {cfg['link']} link, {cfg['activation']} neuron, squared loss, label noise "
        f"{cfg['noise']:g}, horizon T = {cfg['horizon']:g} (1 + kappa); inputs x = Sigma^(1/2) z with i.i.d. unit-variance "
        f"coordinates z of each law (u is a random direction). Median over {cfg['seeds']} seeds of the final |cos_u| and |rho|; "
        "c* = the Gaussian population spherical fixed point (claim 1). Runs not ok: status != ok (diverged, oscillating). "
        f"Scale `{cfg.get('scale', '?')}`. Time to science: {out['seconds']:.0f} s wall, {out['cpu_seconds']:.0f} s CPU.", "",
        "| inputs | kappa | c* | spherical \\|cos_u\\| | spherical \\|rho\\| | normalized \\|cos_u\\| | normalized \\|rho\\| | "
        "runs not ok (sph., norm.) |", "|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        s, m = r["spherical"], r["normalized"]
        lines.append(f"| {r['law']} | {r['kappa']:g} | {fmt3(r['c_star'])} | {fmt3(s['cos_u_med'])} | {fmt3(s['rho_med'])} | "
                     f"{fmt3(m['cos_u_med'])} | {fmt3(m['rho_med'])} | {s['not_ok']}, {m['not_ok']} |")
    if out["checks"]:
        lines += ["", "Step/horizon check: the cell rerun with T doubled and with dt halved (same T); medians "
                  "|cos_u| (|rho|).", "",
                  "| inputs | kappa | dynamic | base | 2T | dt/2 | runs not ok |", "|---|---|---|---|---|---|---|"]
        for c in out["checks"]:
            lines.append(f"| {c['law']} | {c['kappa']:g} | {c['dynamic']} | {fmt3(c['base'])} ({fmt3(c['base_rho'])}) | "
                         f"{fmt3(c['longer'])} ({fmt3(c['longer_rho'])}) | {fmt3(c['finer'])} ({fmt3(c['finer_rho'])}) | {c['not_ok']} |")
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    cfg = out["config"]
    rows = out["rows"]
    laws = list(dict.fromkeys(r["law"] for r in rows))
    kappas = cfg["kappa"]
    with style.style():
        fig, axes = plt.subplots(1, len(kappas), figsize=(4.2 * len(kappas) + 2.8, 3.8), layout="constrained",
                                 sharey=True, squeeze=False)
        x = np.arange(len(laws))
        for ax, kappa in zip(axes.flat, kappas):
            sel = {r["law"]: r for r in rows if r["kappa"] == kappa}
            for k, (dyn, off) in enumerate((("spherical", -0.18), ("normalized", 0.18))):
                st = style.dynamic_style(dyn, marker=True, index=k)
                for metric, fill, dx in (("cos_u", True, 0.0), ("rho", False, 0.06)):
                    y = [sel[l][dyn][f"{metric}_med"] for l in laws]
                    ax.plot(x + off + dx, y, st["marker"], color=st["color"], mfc=st["color"] if fill else "white",
                            ms=7, linestyle="none", label=f"{dyn}, |{metric}|")
                    pts = [sel[l][dyn][metric] for l in laws]
                    for i, p in enumerate(pts):
                        ax.plot(np.full(len(p), x[i] + off + dx), p, ".", color="0.7", ms=2, zorder=1)
            ax.axhline(sel[laws[0]]["c_star"], color="k", ls=":", lw=1, label="Gaussian population fixed point c*")
            ax.set_xticks(x, [l.replace("studentt ", "t, ").replace("rademacher", "Rad.").replace("gaussian", "Gauss.")
                              for l in laws], fontsize=8)
            ax.set_title(f"kappa = {kappa:g}", fontsize=9)
            ax.set_ylim(0, 1.05)
        axes.flat[0].set_ylabel("median final overlap")
        style.legend_outside(fig)
        fig.suptitle(f"Claims 1-2 under non-Gaussian inputs: full-batch GD, d = {cfg['d']}, n = {out['n']}, theta = u",
                     fontsize=10)
        figures.save_figure(fig, figures.figure_path(docs, cfg["name"]), tight=False)
