"""Issue 5's measurement: a sweep in few compiled calls against the same configurations
run one by one as jitted single-configuration runs in a Python loop, in one process.

    python benchmarks/sweep_vs_loop.py [--quick]

The loop baseline runs a subset of the configurations and is extrapolated linearly (its
cost per configuration is constant); the subset size is printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import spikejax as sj  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMPIRICAL = dict(seeds=8, d=256, n=4096, r2=[0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0],
                 r1=[0.0, 0.25, 0.4, 0.5], dynamic=["normalized", "spherical"], source="empirical",
                 noise=0.5, link="h2", dt=0.1, steps=500, record=16)


def loop_rate(cfg: dict, count: int) -> tuple[float, float]:
    """Config-steps per second of jitted single-configuration runs called in a Python loop,
    and the largest difference from the sweep's final rho on those configurations."""
    cfg = sj.load_config(cfg)
    axes, groups = sj.plan(cfg)
    g = groups[0]
    st = g.static
    steps = cfg["steps"][0]

    @jax.jit
    def one(seed, p):
        key = jax.random.key(seed)
        spike = {"kappa": p["kappa"]} if "kappa" in p else {"r2": p["r2"]}
        problem = sj.make_problem(st["d"], key=jax.random.fold_in(key, 0), r1=p["r1"], link=st["link"],
                                  activation=st["activation"], noise=p["noise"], **spike)
        return sj.simulate(problem, st["dynamic"], st["source"], key=jax.random.fold_in(key, 1), dt=p["dt"],
                           steps=steps, n=g.n_pad, batch=st["batch"], record=cfg["record"][0],
                           reduced=st["reduced"]).rho

    todo = [(s, c) for s in range(len(g.seeds)) for c in range(len(g.configs))][:count]
    params = lambda c: {k: np.float32(v) for k, v in g.configs[c].items() if v is not None and k != "n"}
    t = time.perf_counter()  # includes the loop's one compile, as the sweep's time includes its own
    finals = [one(np.uint32(g.seeds[s]), params(c))[-1] for s, c in todo]
    jax.block_until_ready(finals)
    wall = time.perf_counter() - t
    return count * steps / wall, [g.index[i] for i in todo], np.asarray(finals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = ap.parse_args()
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"({jax.default_backend()}), load {os.getloadavg()[0]:.1f}")
    emp = dict(EMPIRICAL, seeds=2, d=32, n=256, r2=[0.0, 1.0], r1=[0.0], steps=50) if args.quick else EMPIRICAL
    runs = [("configs/phase_diagram.toml", os.path.join(ROOT, "configs/phase_diagram.toml"), 8),
            ("empirical d=256 n=4096", emp, 16)]
    if args.quick:
        runs[0] = ("population tiny", dict(seeds=2, d=16, r2=[0.0, 1.0], r1=[0.0, 0.5], steps=100), 4)
    for name, cfg, loop_count in runs:
        t = time.perf_counter()
        ds = sj.sweep(cfg, progress=False)
        wall = time.perf_counter() - t
        n_cfg, steps = int(ds["status"].size), int(ds["step"].values[-1])
        rate = n_cfg * steps / wall
        lrate, where, finals = loop_rate(cfg, loop_count)
        swept = np.array([ds["rho"].values[idx + (-1,)] for idx in where])
        print(f"\n{name}: {n_cfg} configs x {steps} steps")
        print(f"  sweep (incl. compile)   {wall:8.1f} s   {rate:10.3g} config-steps/s")
        print(f"  jitted loop, {loop_count} configs timed, extrapolated {n_cfg * steps / lrate:8.1f} s   "
              f"{lrate:10.3g} config-steps/s")
        print(f"  ratio sweep / loop       x{rate / lrate:.1f}")
        print(f"  agreement on the loop's configs: max |rho_T(loop) - rho_T(sweep)| = "
              f"{np.max(np.abs(finals - swept)):.2e} (|rho_T| {np.abs(finals).min():.3f}..{np.abs(finals).max():.3f})")


if __name__ == "__main__":
    main()
