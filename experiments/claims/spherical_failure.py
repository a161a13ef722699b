"""Claims 1-2 (kind `spherical_failure`): the population flows' final `|cos_u|` and `|rho|` over a
(kappa, r1) grid, spherical against normalized, solved to a tolerance and checked at 100x tighter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spikejax import DYNAMICS, Dopri5, SaveAt, make_problem, simulate

from ..harness import figures
from ..harness.io import finish

KIND = "spherical_failure"
PANELS = [(a, b) for a in ("spherical", "normalized") for b in ("cos_u", "rho")]


def units(cfg):
    return 2


def _grid(cfg, dyn, solver, keys):
    """Final `|cos_u|`, `|rho|` and status over (kappa, r1, seed)."""
    d = cfg["d"]

    def final(kappa, r1, key):
        p = make_problem(d, key=jax.random.key(d), kappa=kappa, r1=r1, link=cfg["link"], activation=cfg["activation"])
        tr = simulate(p, DYNAMICS[dyn](), key=key, solver=solver, dt=cfg["dt"], steps=cfg["steps"], reduced=True,
                      saveat=SaveAt(steps=3))
        return jnp.abs(tr.cos_u[-1]), jnp.abs(tr.rho[-1]), tr.status

    f = jax.jit(jax.vmap(jax.vmap(jax.vmap(final, (None, None, 0)), (None, 0, None)), (0, None, None)))
    return [np.asarray(x) for x in f(jnp.asarray(cfg["kappa"], float), jnp.asarray(cfg["r1"], float), keys)]


def run(cfg, docs, bar):
    keys = jax.random.split(jax.random.key(30_000), cfg["seeds"])
    rtol = cfg.get("rtol", 1e-6)
    grids, checks = {}, {}
    for dyn in ("spherical", "normalized"):
        cu, rh, status = _grid(cfg, dyn, Dopri5(rtol=rtol, atol=rtol * 1e-3), keys)
        cu2, rh2, _ = _grid(cfg, dyn, Dopri5(rtol=rtol * 1e-2, atol=rtol * 1e-5), keys)  # the step check: 100x tighter
        grids[dyn] = dict(cos_u=np.median(cu, -1), rho=np.median(rh, -1))
        checks[dyn] = dict(max_change=float(max(np.max(np.abs(cu - cu2)), np.max(np.abs(rh - rh2)))),
                           not_ok=int(np.sum(status != 0)))
        bar.update(1)
    out = dict(config=cfg, checks=checks, **{f"{k}_{m}": v[m] for k, v in grids.items() for m in ("cos_u", "rho")})
    return finish(out, docs, plot, table)


def plot(out, docs):
    plt = figures.pyplot()
    cfg = out["config"]
    kappas, r1s = cfg["kappa"], cfg["r1"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), constrained_layout=True, sharey=True)
    for ax, (dyn, m) in zip(axes, PANELS):
        g = np.asarray(out[f"{dyn}_{m}"], float)
        im = ax.imshow(g.T, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma",
                       extent=[-0.5, len(kappas) - 0.5, -0.5, len(r1s) - 0.5])
        ax.set_xticks(range(len(kappas)), [f"{k:g}" for k in kappas], fontsize=7)
        ax.set_yticks(range(len(r1s)), [f"{r:g}" for r in r1s], fontsize=7)
        ax.set_xlabel("kappa")
        ax.set_title(f"{dyn}: median |{m}(w_T)|", fontsize=9)
        for i in range(len(kappas)):
            for j in range(len(r1s)):
                ax.text(i, j, f"{g[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w" if g[i, j] < 0.6 else "k")
    axes[0].set_ylabel("r1")
    fig.suptitle(f"Population flows, d = {cfg['d']}, {cfg['link']} link, {cfg['activation']} neuron, median of "
                 f"{cfg['seeds']} seeds, T = {cfg['dt'] * cfg['steps']:g}", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.85, pad=0.01)
    figures.save_figure(fig, figures.figure_path(docs, cfg["name"]), tight=False)


def table(out):
    cfg = out["config"]
    kappas, r1s, rtol = np.asarray(cfg["kappa"], float), np.asarray(cfg["r1"], float), cfg.get("rtol", 1e-6)
    lines = [f"![spherical failure heatmap](figures/{cfg['name']}.png)", "",
             f"Population gradient flows (3-coordinate form) solved to rtol {rtol:g} by Dopri5 to T = "
             f"{cfg['dt'] * cfg['steps']:g}, d = {cfg['d']}, link {cfg['link']}, activation {cfg['activation']}, squared "
             f"loss, median over {cfg['seeds']} initialisations. Step check: the whole grid rerun at rtol {rtol * 1e-2:g}; "
             "the largest change of any final |cos_u| or |rho| of any run.", "",
             "| dynamic | min median |cos_u| over the grid | at (kappa, r1) | max | step check: max change | runs not ok |",
             "|---|---|---|---|---|---|"]
    for name in ("spherical", "normalized"):
        g = np.asarray(out[f"{name}_cos_u"], float)
        i, j = np.unravel_index(np.argmin(g), g.shape)
        lines.append(f"| {name} | {g.min():.3f} | ({kappas[i]:g}, {r1s[j]:g}) | {g.max():.3f} | "
                     f"{out['checks'][name]['max_change']:.1e} | {out['checks'][name]['not_ok']} |")
    return "\n".join(lines)
