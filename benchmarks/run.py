"""Benchmarks, run by `make bench`: engine against baselines on identical work, in one process.

Prints ratios, machine, versions and date. Record results in BENCHMARKS.md.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import spikejax as sj  # noqa: E402


def _time(fn, *args, repeat=3):
    jax.block_until_ready(fn(*args))  # compile and warm
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def population(configs=4096, steps=1000, d=1024, loop_configs=16):
    """Population normalized flow over a kappa grid: 3-coordinate and d-dimensional vmaps
    against a jitted single-configuration run called in a Python loop."""
    kappas = jnp.logspace(0, 3, configs)
    key = jax.random.key(0)

    def one(kappa, reduced, dim):
        p = sj.make_problem(dim, key=key, kappa=kappa, r1=0.25)
        return sj.simulate(p, "normalized", key=key, dt=0.1, steps=steps, record=8, reduced=reduced).rho[-1]

    rows = {}
    for name, reduced, dim in (("3-coordinate vmap", True, d), ("d-dimensional vmap", False, d)):
        fn = jax.jit(jax.vmap(lambda k: one(k, reduced, dim)))
        rows[name] = configs * steps / _time(fn, kappas)
    single = jax.jit(lambda k: one(k, False, d))
    single(kappas[0]).block_until_ready()
    t = time.perf_counter()
    for k in kappas[:loop_configs]:
        single(k).block_until_ready()
    rows["jitted single config, Python loop"] = loop_configs * steps / (time.perf_counter() - t)
    return rows


def main():
    print(f"spikejax benchmarks, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, jax {jax.__version__} ({jax.default_backend()})")
    rows = population()
    base = rows["jitted single config, Python loop"]
    print(f"\npopulation normalized flow, d=1024 (config-steps per second)")
    for name, rate in rows.items():
        print(f"  {name:38s} {rate:12.3g}   x{rate / base:8.1f}")


if __name__ == "__main__":
    main()
