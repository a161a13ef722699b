"""Claim 3 (kind `init_alignment`): `E |rho(w(0))|` against `d` in each (r1, r2) regime, its slope in
log-log with a bootstrap interval over draws, against the hypothesis `-a(r1, r2)`."""

from __future__ import annotations

import jax
import numpy as np

from spikejax import Normalized, make_problem, prepare
from spikejax import rho as rho_of

from .. import theory
from ..harness import figures
from ..harness.io import finish

KIND = "init_alignment"


def units(cfg):
    return len(cfg["regimes"]) * len(cfg["d"])


def _draws(r1, r2, d, n, bar):
    p = make_problem(d, key=jax.random.key(d), r2=r2, r1=r1, link="h2", activation="relu")
    keys = jax.random.split(jax.random.key(20_000 + d), n)
    w0 = jax.vmap(lambda k: prepare(p, Normalized(), key=k)[1])(keys)
    bar.update(1)
    return np.abs(np.asarray(jax.vmap(lambda w: rho_of(w, p))(w0)))


def run(cfg, docs, bar):
    ds, n = cfg["d"], cfg["seeds"]
    rng = np.random.default_rng(0)
    rows = []
    for r1, r2 in cfg["regimes"]:
        vals = np.array([_draws(r1, r2, d, n, bar) for d in ds])  # (D, n)
        m = vals.mean(1)
        slope = np.polyfit(np.log(ds), np.log(m), 1)[0]
        boot = [np.polyfit(np.log(ds), np.log(vals[np.arange(len(ds))[:, None], rng.integers(0, n, (len(ds), n))].mean(1)), 1)[0]
                for _ in range(500)]
        lo, hi = np.quantile(boot, [0.05, 0.95])
        regime = "r2 <= r1" if r2 <= r1 else ("r1 <= r2 <= 2 r1" if r2 <= 2 * r1 else "r2 >= 2 r1")
        rows.append(dict(r1=r1, r2=r2, regime=regime, slope=slope, lo=lo, hi=hi, hypothesis=-theory.init_exponent(r1, r2),
                         mean_abs_rho=m.tolist()))
    out = dict(config=cfg, rows=rows)
    return finish(out, docs, plot, table)


def plot(out, docs):
    plt = figures.pyplot()
    ds = out["config"]["d"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for r, c in zip(out["rows"], plt.cm.tab10.colors):
        m, slope = np.asarray(r["mean_abs_rho"]), r["slope"]
        ax.loglog(ds, m, "o", color=c)
        ax.loglog(ds, np.exp(np.polyfit(np.log(ds), np.log(m), 1)[1]) * np.asarray(ds, float) ** slope, "-", color=c,
                  label=f"r1={r['r1']:g}, r2={r['r2']:g}: slope {slope:.3f} (hyp. {r['hypothesis']:.3f})")
    ax.set_xlabel("d")
    ax.set_ylabel("E |rho(w(0))|")
    ax.legend(fontsize=7)
    figures.save_figure(fig, figures.figure_path(docs, out["config"]["name"]))


def table(out):
    cfg = out["config"]
    lines = [f"![|rho(w(0))| against d](figures/{cfg['name']}.png)", "",
             f"d in {cfg['d']}, {cfg['seeds']} draws of w(0) per d; slope of log E|rho| against log d, 90% bootstrap "
             "interval over draws.", "",
             "| r1 | r2 | regime | measured slope [90% CI] | hypothesis | difference |", "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['r1']:g} | {r['r2']:g} | {r['regime']} | {r['slope']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | "
                     f"{r['hypothesis']:.3f} | {r['slope'] - r['hypothesis']:+.3f} |")
    return "\n".join(lines)
