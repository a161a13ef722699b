"""The paper's experiment 2 (kind `three_stage`): one-pass `n*` for `|cos_u| >= threshold` against
`d` at `r1 = 0`, `kappa = d^r2`, beside the population flow's own passage time, and `eta(r2)`."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from spikejax import DYNAMICS, Dopri5, SaveAt, bootstrap_passage, make_problem, simulate

from .. import theory
from ..harness import figures
from ..harness.io import finish
from ..harness.onepass import cached_point, slopes_text
from ..harness.tables import fmt

KIND = "three_stage"


def fmt3(x, nd=3):
    return fmt(x, nd)


@functools.lru_cache(maxsize=16)
def _flow_passage_runner(dynamic, threshold, rtol, steps=400):
    """One jitted (seeds,) runner of the 3-coordinate flow's first passage of `|cos_u|` over
    `threshold`; the problem and `dt = T / steps` are arguments (no recompiling per `kappa`, `T`)."""

    def one(p, key, dt):
        tr = simulate(p, DYNAMICS[dynamic](), key=key, solver=Dopri5(rtol=rtol, atol=rtol * 1e-3), dt=dt, steps=steps,
                      reduced=True, saveat=SaveAt(steps=2, passages={"cos_u": (threshold,)}))
        return tr.passages["cos_u"][0]

    return jax.jit(jax.vmap(one, (None, 0, None)))


def flow_passage_time(d, kappa, keys, threshold, link, activation, dynamic="normalized", T=None, rtol=1e-6):
    """Median over `keys` of the population flow's first time with `|cos_u| >= threshold`
    (3-coordinate form, Dopri5; `T` defaults to `40 (1 + kappa)`, about 10 times the passage
    time seen at r1 = 0): the flow-limit reference `n_flow = t d / c` of one-pass SGD with step `c b / d`."""
    p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=0.0, link=link, activation=activation)
    T = T or 40 * (1 + kappa)
    return float(np.median(np.asarray(_flow_passage_runner(dynamic, threshold, rtol)(p, keys, jnp.asarray(T / 400)), float)))


def run(cfg, docs, bar):
    """Experiment 2: one-pass `n*` for `|cos_u| >= threshold` against `d` at each `r2` (`r1 = 0`), `eta(r2)`."""
    if cfg.get("check_d", cfg["d"][-1]) not in cfg["d"]:
        raise ValueError(f"check_d={cfg['check_d']!r} is not allowed; choose one of the config's d {cfg['d']}")
    t_all, cpu_all = time.time(), time.process_time()
    target = dict(cfg["target"], name="cos", metric="cos_u", dynamic=cfg["dynamic"])
    rows, checks = [], []
    for r2 in cfg["r2"]:
        c_r2 = dict(cfg, r2=r2, r1=0.0, metric="cos_u")
        pts = []
        for d in cfg["d"]:
            bar.set_postfix_str(f"{cfg['name']} r2={r2} d={d}")
            pt = dict(cached_point(c_r2, target, d))
            keys = jax.random.split(jax.random.key(10_000 + d), target["seeds"])
            pt["t_flow"] = flow_passage_time(d, pt["kappa"], keys, cfg["threshold"], target["link"], target["activation"],
                                             cfg["dynamic"])
            pt["n_flow"] = pt["t_flow"] * d / pt["c"]
            pts.append(pt)
            bar.update(1)
        ds = [p["d"] for p in pts]
        n = np.array([p["n"] for p in pts], float)
        valid = np.array([p["valid"] for p in pts], bool)
        fit = bootstrap_passage(ds, n, valid=valid, n_boot=cfg.get("n_boot", 500))
        col = list(cfg["thresholds"]).index(0.9) if 0.9 in cfg["thresholds"] else None
        row = dict(r2=r2, d=ds, points=pts, eta=fit.eta, lo=fit.lo, hi=fit.hi, log_c=fit.log_c, n_star=fit.n_star.tolist(),
                   eta_paper=theory.hypothesis_eta(2, 0.0, r2), eta_bulk=theory.hypothesis_eta_cos(r2),
                   eta_flow=float(np.polyfit(np.log(ds), np.log([p["n_flow"] for p in pts]), 1)[0]))
        if col is not None:
            f9 = bootstrap_passage(ds, np.array([np.asarray(p["n_all"], float)[:, col] for p in pts]), valid=valid,
                                   n_boot=cfg.get("n_boot", 500))
            row["at_0.9"] = dict(eta=f9.eta, lo=f9.lo, hi=f9.hi, n_star=f9.n_star.tolist())
        # the flow limit alone over a wider d (3-coordinate flow: d costs nothing)
        ext = []
        for d in cfg.get("flow_d", []):
            keys = jax.random.split(jax.random.key(10_000 + d), target["seeds"])
            t_flow = flow_passage_time(d, float(d**r2), keys, cfg["threshold"], target["link"], target["activation"],
                                       cfg["dynamic"])
            ext.append(dict(d=d, kappa=float(d**r2), t_flow=t_flow, n_flow=t_flow * d / pts[0]["c"]))
        if len(ext) >= 2:
            x, y = np.log([e["d"] for e in ext]), np.log([e["n_flow"] for e in ext])
            row["flow_wide"] = dict(points=ext, eta=float(np.polyfit(x, y, 1)[0]), local=np.diff(y) / np.diff(x))
        rows.append(row)
        if r2 in cfg.get("check_r2", []):  # the step check at `check_d` (the largest d): c halved, n* c should not move
            d = cfg.get("check_d", cfg["d"][-1])
            bar.set_postfix_str(f"{cfg['name']} r2={r2} d={d} step check")
            pt = cached_point(c_r2, target, d, ratio=cfg["ratio"] / 2)
            base = pts[list(cfg["d"]).index(d)]
            checks.append(dict(r2=r2, d=d, ratio=cfg["ratio"] / 2, c=pt["c"], n_star=pt["n_star"], never=pt["never"],
                               base_n_star=base["n_star"], base_c=base["c"], seconds=pt["seconds"],
                               change=float(pt["n_star"] * pt["c"] / (base["n_star"] * base["c"]) - 1)))
            bar.update(1)
    out = dict(config=cfg, rows=rows, checks=checks, seconds=time.time() - t_all, cpu_seconds=time.process_time() - cpu_all)
    return finish(out, docs, plot, table)


def units(cfg):
    return len(cfg["r2"]) * len(cfg["d"]) + len(cfg.get("check_r2", []))


def _verdict(r, cfg):
    """No bound is for one-pass SGD on `|cos_u| >= threshold` (`theory.verdict`); the paper's shown for reference."""
    return theory.verdict(r["lo"], r["hi"], r["d"], algorithm=theory.ONE_PASS, observable=f"|cos_u| >= {cfg['threshold']:g}",
                          s=2, r1=0.0, r2=r["r2"], dynamic=cfg.get("dynamic"))


def table(out):
    cfg = out["config"]
    t = cfg["target"]
    source = ("samples from the exact chain, `reduced = true`: the same law at a cost free of d" if cfg.get("reduced")
              else "`Online(batch, projected=True)`")
    cap = f", at most {cfg['batch_max']}" if "batch_max" in cfg else ""
    lines = [
        f"![eta against r2](figures/{cfg['name']}.png)", "",
        f"One neuron, `{cfg['dynamic']}` online SGD ({source}, batch = {t['batch_over_d']:g} d{cap}), "
        f"r1 = 0 (theta = u), kappa = d^r2, {t['link']} link, {t['activation']} neuron, squared loss, label noise "
        f"{cfg['noise']:g}; n* = samples when |cos_u| first reaches {cfg['threshold']:g} (median of {t['seeds']} seeds); "
        f"step eta = c batch / d with c = {cfg['ratio']:g} x 2 s alpha_s beta_s / V; budget {cfg['horizon']:g} x escape "
        "time x (1 + kappa). n_flow = t_flow d / c, t_flow the population flow's own time to the threshold (median "
        "seed): the flow limit of the same algorithm. Paper's hypothesis: SPEC claim 4 read as `1 + 2 (s - 1) a` with "
        "`d^-a` the claim-3 initial overlap (`a = (1 - r2)/2` at r1 = 0). Bulk reading: `1 + r2` (see the text). "
        f"90% bootstrap intervals over seeds. Scale `{cfg.get('scale', '?')}`. Time to science: {out['seconds']:.0f} s "
        f"wall, {out['cpu_seconds']:.0f} s CPU.", "",
        "| r2 | d | n* at each d | n* / n_flow at each d | not passed | eta [90% CI] | eta at \\|cos_u\\| >= 0.9 | "
        "flow's slope | paper's hypothesis (sufficient) | bulk reading 1 + r2 | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        nstar = ", ".join("n/a" if not np.isfinite(x) else f"{x:.3g}" for x in r["n_star"])
        rel = ", ".join(fmt3(p["n_star"] / p["n_flow"], 2) for p in r["points"])
        never = ", ".join(f"{p['never']:.2f}" for p in r["points"])
        e9 = r.get("at_0.9", {})
        lines.append(
            f"| {r['r2']:g} | {r['d'][0]}..{r['d'][-1]} | {nstar} | {rel} | {never} | {fmt3(r['eta'], 2)} "
            f"[{fmt3(r['lo'], 2)}, {fmt3(r['hi'], 2)}] | {fmt3(e9.get('eta'), 2)} [{fmt3(e9.get('lo'), 2)}, {fmt3(e9.get('hi'), 2)}] | "
            f"{fmt3(r['eta_flow'], 2)} | {r['eta_paper']:.2f} | {r['eta_bulk']:.2f} | {_verdict(r, cfg)} |")
    wide = [r for r in out["rows"] if "flow_wide" in r]
    if wide:
        fd = [p["d"] for p in wide[0]["flow_wide"]["points"]]
        lines += ["", f"The flow limit alone over a wider range, d = {fd[0]}..{fd[-1]} (the population flow's time to "
                  f"\\|cos_u\\| >= {cfg['threshold']:g}, median seed; n_flow = t_flow d / c): the fitted slope, the local slopes "
                  "between neighbouring d, and t_flow / (1 + kappa).", "",
                  "| r2 | slope over the range | local slopes | t_flow / (1 + kappa) at each d |", "|---|---|---|---|"]
        for r in wide:
            w = r["flow_wide"]
            local = ", ".join(f"{x:.2f}" for x in w["local"])
            per = ", ".join(f"{p['t_flow'] / (1 + p['kappa']):.2f}" for p in w["points"])
            lines.append(f"| {r['r2']:g} | {w['eta']:.2f} | {local} | {per} |")
    lines += ["", "Local slopes of the median n* between consecutive d, and the fit over the large-d end (its range printed), "
              "90% seed-bootstrap intervals with every resample kept (`open`: a resample's median is censored).", "",
              "| r2 | local slopes [90% CI] | fit over the large-d end [90% CI] |", "|---|---|---|"]
    lines += ["| {:g} | {} | {} |".format(r["r2"], *slopes_text(r, cfg.get("n_boot", 1000))) for r in out["rows"]]
    if out["checks"]:
        lines += ["", f"Step check at d = {out['checks'][0]['d']}: c halved; in the flow limit n* c does not move.", "",
                  "| r2 | d | c (base, half) | n* (base, half) | change of n* c | not passed (half) |",
                  "|---|---|---|---|---|---|"]
        for c in out["checks"]:
            lines.append(f"| {c['r2']:g} | {c['d']} | {c['base_c']:.3g}, {c['c']:.3g} | {c['base_n_star']:.3g}, "
                         f"{c['n_star']:.3g} | {c['change']:+.0%} | {c['never']:.2f} |")
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    cfg = out["config"]
    rows = out["rows"]
    with style.style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.5, 4.0), layout="constrained")
        seen, bent_any = [], False
        for r, colour, marker in zip(rows, style.PALETTE, style.MARKERS * 2):
            d, ns = np.asarray(r["d"], float), np.asarray(r["n_star"], float)
            status = figures.statuses(ns, batch=[p["batch"] for p in r["points"]])
            bent = figures.non_monotone(ns)
            figures.plot_cells(a1, d, ns, status, colour, marker, top=[p["budget"] for p in r["points"]],
                               label=f"r2 = {r['r2']:g}" + (" (non-monotone)" if bent else ""))
            seen, bent_any = seen + status, bent_any or bent
            a1.plot(d, [p["n_flow"] for p in r["points"]], ":", color=colour, lw=1)
            if np.isfinite(r["eta"]):
                figures.plot_fit(a1, d, r, colour, alpha=0.15, dashed=bent)
        if bent_any or any(x not in ("measured", "non-monotone") for x in seen):
            for h in figures.status_handles(seen, bent_any):
                a1.add_line(h)  # no data: a legend entry only
        a1.plot([], [], "k:", lw=1, label="flow limit t_flow d / c")
        a1.set_xscale("log")
        a1.set_yscale("log")
        d = np.asarray(cfg["d"], float)
        a1.set_xticks(d, [f"{int(v)}" for v in d])
        a1.minorticks_off()
        a1.set_xlabel("d")
        a1.set_ylabel(f"n*  (|cos_u| >= {cfg['threshold']:g})")
        a1.set_title("samples against d (lines: fits, 90% bands)", fontsize=9)
        r2s = np.array([r["r2"] for r in rows])
        eta = np.array([r["eta"] for r in rows])
        err = np.abs(np.nan_to_num(np.stack([eta - [r["lo"] for r in rows], np.array([r["hi"] for r in rows]) - eta])))
        xx = np.linspace(0, 1, 101)
        a2.plot(xx, [theory.hypothesis_eta(2, 0.0, x) for x in xx], "k--", lw=1, label="paper's hypothesis 2 - r2 (claim 4, s = 2)")
        a2.plot(xx, 1 + xx, color="0.5", ls=":", lw=1.2, label="bulk reading 1 + r2")
        a2.errorbar(r2s, eta, yerr=err, fmt="o", color=style.PALETTE[0], capsize=3, label=f"measured, |cos_u| >= {cfg['threshold']:g}")
        e9 = [r.get("at_0.9", {}).get("eta", np.nan) for r in rows]
        a2.plot(r2s + 0.015, e9, "s", mfc="white", color=style.PALETTE[1], label="measured, |cos_u| >= 0.9")
        a2.plot(r2s - 0.015, [r["eta_flow"] for r in rows], "x", color="0.3", label="flow limit's slope")
        if all("flow_wide" in r for r in rows):
            fd = [p["d"] for p in rows[0]["flow_wide"]["points"]]
            a2.plot(r2s, [r["flow_wide"]["eta"] for r in rows], "+", color="k", ms=9,
                    label=f"flow limit's slope, d = {fd[0]}..{fd[-1]}")
        a2.set_xlabel("r2  (kappa = d^r2)")
        a2.set_ylabel("eta  (n* ~ d^eta)")
        a2.set_xlim(-0.02, 1.02)
        a2.set_title(f"eta against r2 over d = {cfg['d'][0]}..{cfg['d'][-1]}", fontsize=9)
        style.legend_outside(fig)
        fig.suptitle(f"Experiment 2: {cfg['dynamic']} online SGD, r1 = 0, {cfg['target']['link']}/{cfg['target']['activation']}",
                     fontsize=10)
        figures.save_figure(fig, figures.figure_path(docs, cfg["name"]), tight=False)
