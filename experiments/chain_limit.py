"""The exact chain's n*/d^{s-1} against the d -> infinity limit's tau*, at s = 3.

h3 link, h3 activation, correlation loss, isotropic (kappa = 0), spherical dynamic, plain
neuron, per-sample step c d^{-3/2} with c = 0.5, threshold rho = 0.5, right-sign seeds
(selected before the run, so every simulated seed counts). c = 0.5 rather than 2: the
retraction at macroscopic rho, c^2 rho E_rho[g^2] / 2, against the signal
c sqrt(d) 3 rho^2 (1 - rho^2), is a relative correction c E_rho[g^2] / (6 sqrt(d) rho (1-rho^2));
at rho = 0.5 it is 0.85 at c = 2, d = 2^8 (a near stall) and 0.21 at c = 0.5.

Each d runs until 60 % of its seeds passed (`stop_fraction`); the rest are censored at the
run's end, so the chain's CDF is known below that time only, and the KS distance is the
largest CDF gap below it; its null law (the limit against itself, same seeds, same cut) gives
the p-value. Medians carry 95 % bootstrap intervals. Writes docs/figures/chain_limit.png and
docs/data/chain_limit.json. Measured on 2 busy CPU cores: the chain took 29, 17, 43, 120 and 576 s
at d = 2^8 .. 2^12, the limit (2 x 8000 paths) 40-100 s a run: about 15 minutes in all.
Run: python -m experiments.chain_limit [d ...] [--render]   (only those d, merged into the existing JSON;
no argument: every d; `--render`, or the old `plot`: none, re-plot from the JSON). The limit (16000 paths) is recomputed each run with fixed keys.
"""

import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import spikejax as sj  # noqa: E402
from spikejax import limit_passage, passage_shift  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from experiments.harness import write_file  # noqa: E402
C, THRESHOLD, S = 0.5, 0.5, 3
DIMS = {2**8: 128, 2**9: 128, 2**10: 128, 2**11: 64, 2**12: 64}
STOP = 0.6
BDIV = 512  # batch d^2 / 512: dtau = 1/512 a step, c dtau = 1e-3


def problem(d):
    return sj.make_problem(d, key=None, kappa=0.0, link="h3", activation="h3", loss="correlation", reduced=True)


def right_sign_keys(d, seeds):
    """The first `seeds` keys whose w(0) has the escaping sign (one chain step reads rho(w(0)))."""
    keys = jax.random.split(jax.random.key(d), 3 * seeds)
    r = sj.passage_n(problem(d), sj.Spherical(), sj.Online(1), keys=keys, dt=1e-9, steps=1, thresholds=(THRESHOLD,),
                     reduced=True, chunk=1)
    keys = keys[np.flatnonzero(r.valid)[:seeds]]
    assert keys.shape[0] == seeds
    return keys


def chain_tau(d, seeds):
    b = max(1, d * d // BDIV)
    keys = right_sign_keys(d, seeds)
    r = sj.passage_n(problem(d), sj.Spherical(), sj.Online(b), keys=keys, dt=b * C * d ** (-S / 2),
                     steps=int(40 * d * d / b), thresholds=(THRESHOLD,), reduced=True, chunk=16, stop_fraction=STOP)
    assert r.valid.all()
    tau = r.n[:, 0] / d ** (S - 1)
    cut = b * r.ran / d ** (S - 1)  # censored seeds: tau > cut
    return np.where(np.isnan(tau), np.inf, tau), cut, b


def censored_ks(x, lim_sorted, cut):
    """sup over t < cut of |F_x(t) - F_lim(t)| (x: +inf for the censored)."""
    pts = np.concatenate([np.sort(x[x < cut]), lim_sorted[lim_sorted < cut]])
    if pts.size == 0:
        return 0.0
    fx = lambda t, side: np.searchsorted(np.sort(x), t, side) / x.size
    fl = lambda t, side: np.searchsorted(lim_sorted, t, side) / lim_sorted.size
    return float(max(np.max(np.abs(fx(pts, "right") - fl(pts, "right"))),
                     np.max(np.abs(fx(pts, "left") - fl(pts, "left")))))


def as_tau(values):
    """Stored seeds (None or inf: censored) as floats with +inf."""
    return np.array([np.inf if v is None else v for v in values], float)


def median_ci(tau, seed):
    """95 % bootstrap interval of the median (4000 resamples; the lower median of each, so a
    censored +inf enters only when half a resample is censored: then the upper end is None,
    read: above the run's cut)."""
    rng = np.random.default_rng(seed)
    boot = np.quantile(rng.choice(as_tau(tau), (4000, len(tau))), 0.5, axis=1, method="lower")
    lo, hi = np.quantile(boot, [0.025, 0.975], method="nearest")
    return [float(lo), float(hi) if np.isfinite(hi) else None]


def plot(rows, lim_tau, paths, lim_med, D):
    """docs/figures/chain_limit.png: the CDFs, the medians against d^{-1/2}, the KS distances."""
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw=dict(width_ratios=[1.5, 1, 1]))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(rows)))
    for row, col in zip(rows, colors):
        x = as_tau(row["tau"])
        x = x[np.isfinite(x)]
        ax.step(np.concatenate([[0], x]), np.arange(0, x.size + 1) / row["seeds"], where="post", color=col, lw=1.3,
                label=f"chain, $d=2^{{{int(np.log2(row['d']))}}}$ ({row['seeds']} seeds)")
    ax.plot(lim_tau, np.arange(1, lim_tau.size + 1) / paths, "k--", lw=2, label=r"limit $\tau^*$ (SDE, 8000 paths)")
    ax.axhline(STOP, color="0.6", lw=0.8, ls=":")
    ax.text(0.02, STOP + 0.015, "chain runs stop here (60 % passed)", fontsize=7, color="0.4", transform=ax.get_yaxis_transform())
    ax.set_xlim(0, 2.0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(r"$n^*/d^{2}$  (first $\rho \geq 0.5$)")
    ax.set_ylabel("empirical CDF")
    ax.set_title(r"$s=3$: He$_3$ link and activation, correlation loss, step $0.5\,d^{-3/2}$", fontsize=9)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    ds = np.array([r["d"] for r in rows], float)
    med = np.array([r["median"] for r in rows])
    cuts = np.array([r["cut"] for r in rows])
    ci = np.array([[r["median_ci95"][0], r["median_ci95"][1] if r["median_ci95"][1] is not None else np.nan]
                   for r in rows]).T
    open_hi = np.isnan(ci[1])
    ci[1] = np.where(open_hi, cuts, ci[1])
    xs = ds ** -0.5
    bx.errorbar(xs, med, yerr=[med - ci[0], ci[1] - med], fmt="o", color="C0", capsize=3, label="chain median (95 % CI)")
    if open_hi.any():
        bx.plot(xs[open_hi], ci[1][open_hi], "^", color="C0", ms=6, label="CI open above (censored)")
    bx.axhline(lim_med, color="k", ls="--", label=r"limit median $\tau^*$")
    xx = np.linspace(0, xs.max() * 1.1, 50)
    bx.plot(xx, lim_med + D * xx, color="C3", lw=1, label=r"limit $+\,D\,d^{-1/2}$")
    for r_, x_ in zip(rows, xs):
        bx.annotate(f"$2^{{{int(np.log2(r_['d']))}}}$", (x_, r_["median"]), textcoords="offset points", xytext=(5, 3), fontsize=7)
    bx.set_xlim(0, xs.max() * 1.15)
    bx.set_ylim(0.2, max(1.3, ci[1].max() * 1.08))
    bx.set_xlabel(r"$d^{-1/2}$")
    bx.set_ylabel(r"median $n^*/d^{2}$")
    bx.legend(loc="lower left", fontsize=7)
    bx.set_title("medians", fontsize=9)
    cx.plot(np.log2(ds), [r["ks_distance"] for r in rows], "o-", color="C0", label="chain vs limit")
    cx.plot(np.log2(ds), [r["ks_null95"] for r in rows], "s:", color="0.5", label="95 % of limit vs itself")
    cx.set_xticks(np.log2(ds))
    cx.set_xticklabels([f"$2^{{{int(v)}}}$" for v in np.log2(ds)])
    cx.set_xlabel("$d$")
    cx.set_ylabel("KS distance (below the cut)")
    cx.set_ylim(0, max(0.4, 1.2 * max(r["ks_distance"] for r in rows)))
    cx.legend(loc="upper right", fontsize=7)
    cx.set_title("distance to the limit law", fontsize=9)
    fig.tight_layout()
    (ROOT / "docs/figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs/figures/chain_limit.png", dpi=150)


def main(dims=None):
    t0 = time.time()
    dims = {d: DIMS[d] for d in (DIMS if dims is None else dims)}
    path = ROOT / "docs/data/chain_limit.json"
    old = {r["d"]: r for r in json.loads(path.read_text())["chain"]} if path.exists() and dims != DIMS else {}
    lim = limit_passage("h3", "h3", c=C, loss="correlation", paths=8000, key=jax.random.key(0), dtau=1e-3)
    lim2 = limit_passage("h3", "h3", c=C, loss="correlation", paths=8000, key=jax.random.key(1), dtau=1e-3)
    D = passage_shift("h3", "h3", c=C, threshold=THRESHOLD)
    lim_tau = np.sort(lim.tau[~np.isnan(lim.tau)])
    null_pool = lim2.tau[~np.isnan(lim2.tau)]
    lim_med = float(np.median(lim_tau))
    print(f"limit: median tau* = {lim_med:.4f}, step error {lim.step_error:.2e}, D = {D:.4f}, "
          f"not exploded {int(np.isnan(lim.tau).sum())}", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for d, seeds in dims.items():
        t = time.time()
        tau, cut, b = chain_tau(d, seeds)
        lo, hi = median_ci(tau, d)
        ks = censored_ks(tau, lim_tau, cut)
        null = np.array([censored_ks(np.where(v < cut, v, np.inf), lim_tau, cut)
                         for v in rng.choice(null_pool, (1000, tau.size))])
        rows.append(dict(d=d, batch=b, seeds=int(tau.size), censored=int(np.sum(np.isinf(tau))), cut=float(cut),
                         median=float(np.median(tau)), median_ci95=[lo, hi],
                         limit_median_plus_shift=lim_med + D * d ** (1 - S / 2),
                         ks_distance=ks, ks_null95=float(np.quantile(null, 0.95)), ks_pvalue=float(np.mean(null >= ks)),
                         tau=[float(x) if np.isfinite(x) else None for x in np.sort(tau)], seconds=time.time() - t))
        print(f"d = {d:5d}  b = {b:5d}  seeds {tau.size:3d} (censored {rows[-1]['censored']} at {cut:.3f})  "
              f"median n*/d^2 = {rows[-1]['median']:.3f} [{lo:.3f}, {hi}]  limit {lim_med:.3f} "
              f"(+D/sqrt d: {rows[-1]['limit_median_plus_shift']:.3f})  KS = {ks:.3f} (null 95 % {rows[-1]['ks_null95']:.3f}, "
              f"p = {rows[-1]['ks_pvalue']:.3f})  {rows[-1]['seconds']:.0f} s", flush=True)
    old.update({r["d"]: r for r in rows})
    rows = [old[d] for d in sorted(old)]
    for r_ in rows:  # stored runs: the interval recomputed from their seeds (inf: censored)
        r_["tau"] = [v if v is not None and np.isfinite(v) else None for v in r_["tau"]]
        r_["median_ci95"] = median_ci(r_["tau"], r_["d"])
    out = dict(setting=dict(link="h3", activation="h3", loss="correlation", kappa=0.0, dynamic="spherical",
                            c=C, threshold=THRESHOLD, s=S, sign="right_sign (preselected)", batch=f"d^2/{BDIV}",
                            stop_fraction=STOP),
               limit=dict(paths=int(lim.tau.size), median=lim_med, step_error=lim.step_error, shift_D=D,
                          not_exploded=int(np.isnan(lim.tau).sum()),
                          quantiles={str(q): float(np.quantile(lim_tau, q)) for q in (0.1, 0.25, 0.5, 0.6, 0.75, 0.9)}),
               chain=rows, seconds=time.time() - t0,
               notes="median_ci95: bootstrap (4000 resamples) of the chain's median; ks_distance: sup over "
                     "tau < cut of |F_chain - F_limit| (tau null: censored, passed after cut; median_ci95 upper end null: "
                     "above the cut); ks_null95, ks_pvalue: "
                     "the same statistic for samples of the limit itself (1000 draws, same size and cut)")
    write_file(path, json.dumps(out, indent=1))  # atomic: a killed run leaves the old file whole

    plot(rows, lim_tau, int(lim.tau.size), lim_med, D)
    print(f"total {time.time() - t0:.0f} s")


def cli(argv=None):
    """The common flag dialect: dimensions to run, or `--render` (re-plot from the JSON, no run)."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dims", nargs="*", help="the d to run (default: every d); `plot` = --render")
    ap.add_argument("--render", action="store_true", help="re-plot from docs/data/chain_limit.json, no run")
    args = ap.parse_args(argv)
    render = args.render or args.dims == ["plot"]
    main([] if render else [int(a) for a in args.dims] or None)


if __name__ == "__main__":
    cli()
