"""Issue 11's two performance targets, one run each beside the fp32 GEMM peak:

1. empirical width-m network: m = 64, d = 256, n = 4096, B configurations (a kappa grid on
   one data seed, so `z` is shared and the pre-activations are one GEMM); 4 m n d flops
   per configuration-step, plus 2 m n d for each of the 2 records (the training risk is a
   forward pass); reported as a fraction of the 2048^3 GEMM rate timed in turn.
   The B configurations run as B / chunk compiled calls of `chunk` configurations in
   sequence (B = 512 at once holds about 2.5 GB of fp32 pre-activations and their
   gradients: chunks of 128 hold a quarter);
2. reduced population network at m = 16: neuron-configuration-steps per second, beside the
   GEMM peak, with trained biases (the Mehler series; the flops of its pair sums and their
   rate) and with zero frozen biases (ReLU's exact arc-cosine path).

Usage: cd benchmarks && PYTHONPATH=..:. python networks.py [--configs 512] [--chunk 128] [--steps 3] [--reduced-configs 256] [--skip-empirical]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import jax
import jax.numpy as jnp

import spikejax as sj
from spikejax.internal import committee
from suite import _peak_fn, interleaved

KEY = jax.random.key(0)


def empirical(m=64, d=256, n=4096, configs=512, steps=3, repeat=2, chunk=128):
    net = sj.Network(width=m, scaling="mean_field", second_layer="joint")
    src = sj.Empirical(n)

    def one(kappa):
        p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.25, link="h2", noise=0.1)
        sim, w0 = sj.prepare(p, sj.Normalized(), src, key=KEY, dt=0.05, steps=steps, network=net,
                             saveat=sj.SaveAt(steps=2, fn=lambda net, sim: {"a": jnp.linalg.norm(net.a)}))
        return sj.advance(sim, sj.init(sim, w0), steps).w

    chunk = min(chunk, configs)
    if configs % chunk:
        raise ValueError(f"configs={configs} is not allowed: a multiple of chunk={chunk}")
    engine = jax.jit(jax.vmap(one))
    kappas = jnp.linspace(1.0, 100.0, configs, dtype=jnp.float32).reshape(-1, chunk)

    def chunked(kappas):  # the chunks in sequence, each one compiled call
        return [engine(k) for k in kappas]

    pfn, pa, pflop = _peak_fn()
    t_peak, t_engine = interleaved([(pfn, pa), (chunked, kappas)], repeat=repeat)
    peak = pflop / t_peak / 1e9
    rate = (4 * steps + 2 * 2) * m * n * d * configs / t_engine / 1e9  # steps, and the 2 records' forward passes
    return dict(m=m, d=d, n=n, configs=configs, chunk=chunk, steps=steps, engine_s=t_engine, gflops=rate,
                peak_gflops=peak, fraction=rate / peak)


def reduced(m=16, d=256, configs=256, steps=2000, repeat=2, degree=32):
    """Neuron-config-steps/s of the reduced population form, timed in turn with the GEMM
    peak, with the same step whose Mehler pair sums are replaced by zeros (what the rest
    of the step costs), and with the step of zero frozen biases (ReLU: the exact arc-cosine
    path, no pair sums), in wall and in process CPU seconds (all threads: under load the
    CPU rate is the steadier one). The pair sums' flops: `9 m^2 (K + 1)` a config-step
    (three sums of `3 (K + 1)` flops over the `m^2` pairs, `committee_grad` with ReLU)."""

    def engine_of(net):
        def one(kappa):
            p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.25, link="h2", noise=0.1)
            sim, w0 = sj.prepare(p, sj.Normalized(), key=KEY, dt=0.05, steps=steps, network=net, reduced=True,
                                 solver=sj.Euler(), saveat=sj.SaveAt(steps=2, fn=lambda net, sim: {"a": net.a[0]}))
            return sj.advance(sim, sj.init(sim, w0), steps).w
        return jax.jit(jax.vmap(one))

    trained = sj.Network(width=m, scaling="mean_field", second_layer="joint", biases="trained", bias_init=1.0)
    zero = sj.Network(width=m, scaling="mean_field", second_layer="joint", biases="frozen", bias_init=0.0)
    kappas = jnp.linspace(1.0, 100.0, configs, dtype=jnp.float32)
    engine, fast = engine_of(trained), engine_of(zero)
    engine(kappas)  # traced with the real pair sums
    real = committee._pair_sums
    committee._pair_sums = lambda ci, cj, corr: jnp.zeros(ci.shape[:1] + corr.shape, corr.dtype)
    try:
        rest = engine_of(trained)
        rest(kappas)
    finally:
        committee._pair_sums = real
    pfn, pa, pflop = _peak_fn()
    flops = 9 * m * m * (degree + 1)
    out = dict(m=m, configs=configs, steps=steps, pair_sum_flops=flops)
    for clock, name in ((time.perf_counter, "wall"), (time.process_time, "cpu")):
        t_peak, t, t_rest, t_fast = interleaved([(pfn, pa), (engine, kappas), (rest, kappas), (fast, kappas)],
                                                repeat=repeat, clock=clock)
        cs = configs * steps
        out[name] = dict(engine_s=t, rest_s=t_rest, neuron_config_steps_per_s=m * cs / t,
                         us_per_config_step=1e6 * t / cs, rest_us_per_config_step=1e6 * t_rest / cs,
                         peak_gflops=pflop / t_peak / 1e9, pair_sum_gflops=flops * cs / max(t - t_rest, 1e-12) / 1e9,
                         zero_bias_s=t_fast, zero_bias_neuron_config_steps_per_s=m * cs / t_fast,
                         zero_bias_us_per_config_step=1e6 * t_fast / cs)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--skip-empirical", action="store_true")
    ap.add_argument("--reduced-configs", type=int, default=256)
    ap.add_argument("--reduced-steps", type=int, default=2000)
    args = ap.parse_args()
    print(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"), platform.processor() or
          platform.machine(), f"{os.cpu_count()} CPUs", f"jax {jax.__version__}", "load", os.getloadavg())
    if not args.skip_empirical:
        print("empirical", empirical(configs=args.configs, steps=args.steps, chunk=args.chunk), flush=True)
    print("reduced", reduced(configs=args.reduced_configs, steps=args.reduced_steps), flush=True)
    print("load after", os.getloadavg())
