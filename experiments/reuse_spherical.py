"""The spherical failure (claim 1) for reused batches and extragradient steps, on the exact chain.

Claim 1: under a spike on the target (`theta = u`, `kappa` fixed), the spherical neuron's
population flow stalls at the 1-D fixed point `c*(kappa) < 1` of `|cos_u|`, which the normalized
neuron does not (`theory.spherical_fixed_point`; `c* -> 1/sqrt(pi)` as `kappa` grows). Does it for
the gradient methods that beat one-pass SGD? One neuron, ReLU, `h2` link, squared loss, no label
noise (as the population flow), `r1 = 0`, `d = 256`, batch `b = d/4`, the reuse experiments' step
(per-sample `c/d`, `eta = c b / d`, `c = 0.05`), three sources (`online`, `reused2`: each batch twice,
`egd`: extragradient with displacement `c`), each with `Spherical()` and `Normalized()`, run on
the exact chain (`reduced=True`, float64) to `T = horizon (1 + kappa)` (the bulk moves `1 + kappa`
times slower). Recorded: every seed's final `|cos_u|`; the median against `c*(kappa)`; at
`check_T_kappa` the run repeated to `2T` (a stall does not move) and at `check_c_kappa` at the step
`check_c` (8 times larger: does the step move the stall?).

    python -m experiments.reuse_spherical [--render] [--docs docs]

Writes docs/data/reuse_spherical.json, docs/figures/reuse_spherical.png and the results.md block
`reuse_spherical`.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import numpy as np

from . import theory
from .harness import figures
from .harness.io import computed_or_stored, write_block
from .reuse_spiked import SOURCE_NAMES, batch_size, make_source, step_of

NAME = "reuse_spherical"
SETTINGS = dict(d=256, batch_over_d=0.25, c=0.05, kappa=[3.0, 10.0, 30.0], horizon=12, seeds=16, link="h2",
                activation="relu", loss="squared", noise=0.0, r1=0.0, dynamics=["spherical", "normalized"],
                sources=list(SOURCE_NAMES), check_T_kappa=[3.0, 10.0], check_c_kappa=10.0, check_c=0.4)


@functools.lru_cache(maxsize=None)
def _runner(source, dynamic, steps):
    """One jitted (seeds,) run of the chain: each seed's final `|cos_u|`."""
    import spikejax as sj

    def one(p, key, dt):
        tr = sj.simulate(p, sj.DYNAMICS[dynamic](), source, key=key, dt=dt, steps=steps, reduced=True,
                         saveat=sj.SaveAt(steps=2))
        return abs(tr.cos_u[-1])

    return jax.jit(jax.vmap(one, (None, 0, None)))


def finals(cfg, source, dynamic, kappa, horizon_factor=1.0, c=None) -> dict:
    """Every seed's final `|cos_u|` of one (source, dynamic, kappa) at step `c` (default `cfg["c"]`)."""
    import spikejax as sj

    d, c = cfg["d"], cfg["c"] if c is None else c
    b, eta = batch_size(cfg, d), step_of(cfg, d, c)
    T = horizon_factor * cfg["horizon"] * (1 + kappa)
    steps = int(np.ceil(T / eta))
    p = sj.make_problem(d, key=jax.random.key(d), kappa=kappa, r1=cfg["r1"], link=cfg["link"],
                        activation=cfg["activation"], loss=cfg["loss"], noise=cfg["noise"], reduced=True)
    keys = jax.random.split(jax.random.key(20_000 + d), cfg["seeds"])
    t0 = time.time()
    cos = np.asarray(_runner(make_source(dict(cfg, c=c), source, d), dynamic, steps)(p, keys, eta), float)
    return dict(source=source, dynamic=dynamic, kappa=kappa, c=c, T=T, steps=steps, batch=b, eta=eta,
                cos_u=cos.tolist(), median=float(np.median(cos)), q10=float(np.quantile(cos, 0.1)),
                q90=float(np.quantile(cos, 0.9)), seconds=time.time() - t0)


def compute(cfg) -> dict:
    jax.config.update("jax_enable_x64", True)  # the chain's state is float64
    t0, cpu = time.time(), time.process_time()
    runs, checks = [], []
    for kappa in cfg["kappa"]:
        for src in cfg["sources"]:
            for dyn in cfg["dynamics"]:
                runs.append(finals(cfg, src, dyn, kappa))
                print(f"{time.time() - t0:6.0f} s  kappa={kappa:g} {src} {dyn}: {runs[-1]['median']:.4f}", flush=True)
                if kappa in cfg["check_T_kappa"]:
                    checks.append(dict(what="T doubled", **finals(cfg, src, dyn, kappa, horizon_factor=2.0)))
                if kappa == cfg["check_c_kappa"]:
                    checks.append(dict(what=f"c = {cfg['check_c']:g}", **finals(cfg, src, dyn, kappa, c=cfg["check_c"])))
    fixed = {str(k): theory.spherical_fixed_point(k)[0] for k in cfg["kappa"]}
    return dict(settings=cfg, runs=runs, checks=checks, c_star=fixed, seconds=time.time() - t0,
                cpu_seconds=time.process_time() - cpu)


def table(out) -> str:
    cfg = out["settings"]
    lines = [
        "![final |cos_u| against kappa for each source, spherical and normalized](figures/reuse_spherical.png)", "",
        f"One neuron (ReLU, `{cfg['link']}` link, squared loss, no label noise), `theta = u`, d = {cfg['d']}, batch "
        f"d/4, step `eta = c b / d` with c = {cfg['c']:g}, run on the exact chain to T = {cfg['horizon']:g} (1 + kappa); "
        f"{cfg['seeds']} seeds. Median final \\|cos_u\\| [10%, 90% of seeds] against claim 1's fixed point c*(kappa) "
        f"of the spherical population flow. {out['seconds']:.0f} s wall, {out['cpu_seconds']:.0f} s CPU.", "",
        "| kappa | c*(kappa) | source | spherical | spherical - c* | normalized |", "|---|---|---|---|---|---|"]
    by = {(r["kappa"], r["source"], r["dynamic"]): r for r in out["runs"]}
    q = lambda r: f"{r['median']:.4f} [{r['q10']:.3f}, {r['q90']:.3f}]"  # noqa: E731
    for kappa in cfg["kappa"]:
        cs = out["c_star"][str(kappa)]
        for src in cfg["sources"]:
            sph, nor = by[(kappa, src, "spherical")], by[(kappa, src, "normalized")]
            lines.append(f"| {kappa:g} | {cs:.4f} | {SOURCE_NAMES[src]} | {q(sph)} | {sph['median'] - cs:+.4f} | {q(nor)} |")
    if out["checks"]:
        lines += ["", "Checks: the run to 2T (a stall stays) at kappa = "
                  f"{', '.join(f'{k:g}' for k in cfg['check_T_kappa'])}, and at kappa = {cfg['check_c_kappa']:g} a step "
                  f"{cfg['check_c'] / cfg['c']:g} times larger (c = {cfg['check_c']:g}).", "",
                  "| check | kappa | source | dynamic | median \\|cos_u\\| | change against the main run |",
                  "|---|---|---|---|---|---|"]
        for ch in out["checks"]:
            base = by[(ch["kappa"], ch["source"], ch["dynamic"])]
            lines.append(f"| {ch['what']} | {ch['kappa']:g} | {SOURCE_NAMES[ch['source']]} | {ch['dynamic']} | {ch['median']:.4f} | "
                         f"{ch['median'] - base['median']:+.4f} |")
    return "\n".join(lines)


def plot(out, docs):
    plt, style = figures.pyplot(), figures.style()
    cfg = out["settings"]
    with style.style():
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        kk = np.geomspace(1, max(cfg["kappa"]) * 1.5, 200)
        ax.plot(kk, [theory.spherical_fixed_point(k)[0] for k in kk], "k--", lw=1, label="c*(kappa): spherical flow's stall (claim 1)")
        ax.axhline(1 / np.sqrt(np.pi), color="0.6", lw=0.8, ls=":", label="c* as kappa grows: 1/sqrt(pi)")
        for j, (src, colour, marker) in enumerate(zip(cfg["sources"], style.PALETTE, style.MARKERS)):
            for dyn, fill in (("spherical", True), ("normalized", False)):
                rs = sorted((r for r in out["runs"] if r["source"] == src and r["dynamic"] == dyn), key=lambda r: r["kappa"])
                x = np.array([r["kappa"] for r in rs]) * (1 + 0.06 * (j - 1))
                m = np.array([r["median"] for r in rs])
                err = np.stack([m - [r["q10"] for r in rs], np.array([r["q90"] for r in rs]) - m])
                ax.errorbar(x, m, yerr=err, fmt=marker, color=colour, mfc=colour if fill else "white", capsize=3,
                            label=f"{SOURCE_NAMES[src]}, {dyn}")
        ax.set_xscale("log")
        ax.set_xticks(cfg["kappa"], [f"{k:g}" for k in cfg["kappa"]])
        ax.minorticks_off()
        ax.set_xlabel("kappa")
        ax.set_ylabel("final |cos_u|  (median, 10-90% of seeds)")
        style.legend_outside(fig)
        fig.suptitle(f"The spherical stall under reuse and extragradient (exact chain, d = {cfg['d']}, c = {cfg['c']:g})",
                     fontsize=10)
        figures.save_figure(fig, figures.figure_path(docs, NAME), tight=False)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m experiments.reuse_spherical", description=__doc__.split("\n\n")[0])
    ap.add_argument("--render", action="store_true", help="redraw the table and figure from docs/data/reuse_spherical.json")
    ap.add_argument("--docs", default="docs")
    args = ap.parse_args(argv)
    out = computed_or_stored(args.docs, NAME, args.render, lambda: compute(dict(SETTINGS)))
    plot(out, args.docs)
    write_block(args.docs, NAME, table(out))


if __name__ == "__main__":
    main()
