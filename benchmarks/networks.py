"""Issue 11's two performance targets, one run each beside the fp32 GEMM peak:

1. empirical width-m network: m = 64, d = 256, n = 4096, B configurations (a kappa grid on
   one data seed, so `z` is shared and the pre-activations are one GEMM); 4 m n d flops
   per configuration-step; reported as a fraction of the 2048^3 GEMM rate timed in turn;
2. reduced population network at m = 16: neuron-configuration-steps per second.

Usage: PYTHONPATH=. python benchmarks/networks.py [--configs 512] [--steps 3] [--reduced-configs 256]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj
from suite import _peak_fn, interleaved

KEY = jax.random.key(0)


def empirical(m=64, d=256, n=4096, configs=512, steps=3, repeat=2):
    net = sj.Network(width=m, scaling="mean_field", second_layer="joint")
    src = sj.Empirical(n)

    def one(kappa):
        p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.25, link="h2", noise=0.1)
        sim, w0 = sj.prepare(p, sj.Normalized(), src, key=KEY, dt=0.05, steps=steps, network=net,
                             saveat=sj.SaveAt(steps=2, fn=lambda net, sim: {"a": jnp.linalg.norm(net.a)}))
        return sj.advance(sim, sj.init(sim, w0), steps).w

    engine = jax.jit(jax.vmap(one))
    kappas = jnp.linspace(1.0, 100.0, configs, dtype=jnp.float32)
    pfn, pa, pflop = _peak_fn()
    t_peak, t_engine = interleaved([(pfn, pa), (engine, kappas)], repeat=repeat)
    peak = pflop / t_peak / 1e9
    rate = 4 * m * n * d * configs * steps / t_engine / 1e9
    return dict(m=m, d=d, n=n, configs=configs, steps=steps, engine_s=t_engine, gflops=rate, peak_gflops=peak,
                fraction=rate / peak)


def reduced(m=16, d=256, configs=256, steps=2000, repeat=2):
    net = sj.Network(width=m, scaling="mean_field", second_layer="joint", biases="trained", bias_init=1.0)

    def one(kappa):
        p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.25, link="h2", noise=0.1)
        sim, w0 = sj.prepare(p, sj.Normalized(), key=KEY, dt=0.05, steps=steps, network=net, reduced=True,
                             solver=sj.Euler(), saveat=sj.SaveAt(steps=2, fn=lambda net, sim: {"a": net.a[0]}))
        return sj.advance(sim, sj.init(sim, w0), steps).w

    engine = jax.jit(jax.vmap(one))
    kappas = jnp.linspace(1.0, 100.0, configs, dtype=jnp.float32)
    (t,) = interleaved([(engine, kappas)], repeat=repeat)
    return dict(m=m, configs=configs, steps=steps, engine_s=t, neuron_config_steps_per_s=m * configs * steps / t)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--reduced-configs", type=int, default=256)
    ap.add_argument("--reduced-steps", type=int, default=2000)
    args = ap.parse_args()
    print(datetime.datetime.now().isoformat(timespec="minutes"), platform.processor() or platform.machine(),
          f"jax {jax.__version__}", "load", os.getloadavg())
    print("empirical", empirical(configs=args.configs, steps=args.steps), flush=True)
    print("reduced", reduced(configs=args.reduced_configs, steps=args.reduced_steps), flush=True)
