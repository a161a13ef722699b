"""Online and reused-batch sources at scale: B configurations sharing each fresh batch.

    python benchmarks/online.py [--quick] [--configs 512] [--d 1024] [--batch 64] [--reuse 8] [--json PATH]

One data seed, a kappa grid of B configurations (normalized dynamic, ReLU, h2 link), run
by the sweep's own compiled chunk (`Runner`, as `spikejax sweep` runs it) on a long run
so that every chunk does `chunk` real steps. The B configurations share the seed's key,
so each step draws ONE fresh batch of `batch` x d base draws and every configuration
reads it (common random numbers): the step's products are GEMMs (B, d) x (d, batch).

Timed in turn (A B C A B C ..., best and median of `repeat` after a warm-up) with the
2048^2 fp32 GEMM and the GEMM of the step's own shape, in one process, in wall seconds and
then in process CPU seconds (steadier when other processes share the cores). Flops per
configuration-step: 4 batch d (the neuron's forward and backward products, as in the
empirical benchmark); the step also computes each configuration's labels of the fresh
batch, one more (B, d) x (d, batch) product (2 batch d), reported beside it. Agreement:
one configuration of the sweep against `sj.simulate` alone with the same source. Last,
an account of the online chunk's CPU time (`account`): the draws alone, the forward and
backward products alone, and the rest (per-configuration elementwise work).
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import suite  # noqa: E402

BASE = dict(seeds=1, d=1024, r1=0.25, noise=0.1, link="h2", activation="relu", dynamic="normalized",
            dt=0.05, record=16)


def config(source, configs, d, batch, reuse, steps):
    cfg = dict(BASE, d=d, source=source, batch=batch, steps=steps, kappa=[float(k) for k in np.logspace(0, 2, configs)])
    if source == "reused":
        cfg["reuse"] = reuse
    return cfg


def chunk_case(cfg, chunk):
    """`(run, group)`: `run()` advances the sweep's compiled chunk once (state donated, kept)."""
    (g,) = suite.sweep_groups(cfg, chunk=chunk)
    arrays, state = g["init"](g["keys"], g["params"])
    holder = [state]

    def run():
        holder[0] = g["chunk"](arrays, holder[0])[0]
        return holder[0]

    return run, g, holder


def agreement(source, d, batch, reuse, steps, chunk, configs=4):
    """Max |rho| difference over the records between the sweep's chunks and `sj.simulate`
    alone, for the configurations of a small grid (same seed, same source)."""
    import spikejax as sj

    cfg = config(source, configs, d, batch, reuse, steps)
    run, g, holder = chunk_case(cfg, chunk)
    for _ in range(-(-steps // chunk)):
        run()
    rho = np.asarray(holder[0].records["rho"])[0]
    keys = sj.config_keys(0)
    src = sj.Online(batch) if source == "online" else sj.Reused(batch, reuse)
    diff = 0.0
    for c, kappa in enumerate(cfg["kappa"]):
        p = sj.make_problem(d, key=keys.problem, kappa=kappa, r1=cfg["r1"], noise=cfg["noise"])
        alone = sj.simulate(p, sj.Normalized(), src, key=keys.run, dt=cfg["dt"], steps=steps,
                            saveat=sj.SaveAt(steps=cfg["record"]))
        diff = max(diff, float(np.max(np.abs(np.asarray(alone.rho) - rho[c]))))
    return diff


def measure(configs, d, batch, reuse, chunk, repeat, log=print):
    pfn, pa, pflop = suite._peak_fn(int(os.environ.get("SPIKEJAX_PEAK_SIZE", 2048)) if d >= 256 else 256)
    shape_fn, shape_args, shape_flop = suite.gemm_case(1, configs, d, batch)
    cases, names = [(pfn, pa), (shape_fn, *shape_args)], ["peak", "shape"]
    for source in ("online", "reused"):
        run, _, _ = chunk_case(config(source, configs, d, batch, reuse, 10**6), chunk)
        cases.append((run,))
        names.append(source)
    rows = []
    for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
        best, median, _ = suite.interleaved(cases, repeat=repeat, stats=True, clock=clock)
        peak, shape = pflop / best[0] / 1e9, shape_flop / best[1] / 1e9
        for i, source in enumerate(names[2:], start=2):
            work = configs * chunk
            gflops = 4 * batch * d * work / best[i] / 1e9
            rows.append(dict(clock=clock_name, source=source, configs=configs, d=d, batch=batch,
                             reuse=reuse if source == "reused" else 1, chunk=chunk, chunk_s=best[i],
                             chunk_s_median=median[i], rate=work / best[i], gflops=gflops,
                             gflops_with_labels=1.5 * gflops, peak2048_gflops=peak, shape_gemm_gflops=shape,
                             frac_peak=gflops / peak, frac_peak_with_labels=1.5 * gflops / peak,
                             frac_shape=gflops / shape, load=suite.load()))
            r = rows[-1]
            unit = "CPU " if clock_name == "cpu" else ""
            log(f"  [{clock_name}] {source:6s} B={configs}, d={d}, batch={batch}"
                f"{f', reuse={reuse}' if source == 'reused' else ''}: {chunk} steps {best[i]:.3f} {unit}s (median "
                f"{median[i]:.3f}) = {r['rate']:.3g} config-steps per {unit}s, {gflops:.1f} GFLOP per {unit}s = "
                f"{100 * r['frac_peak']:.0f}% of the 2048^2 GEMM ({peak:.0f}), {100 * r['frac_shape']:.0f}% of the "
                f"step's GEMM shape ({shape:.0f}); with the labels' product {100 * r['frac_peak_with_labels']:.0f}%; "
                f"{suite.load()}")
    return rows


def account(configs, d, batch, chunk, repeat, log=print):
    """Where an online chunk's CPU time goes, timed in turn in this process: the chunk, the
    fresh batches' draws alone (`chunk` draws of batch x d float32 normals), and the step's
    products alone, forward (B, d) x (d, batch) and backward (B, batch) x (batch, d), each
    `chunk` times (the labels' product has the forward shape: counted once more). What is left is the per-configuration elementwise work on (B, d) arrays
    (the covariance's root, the dynamic's update and normalisation, the records)."""
    import jax
    import jax.numpy as jnp

    run, _, _ = chunk_case(config("online", configs, d, batch, 1, 10**6), chunk)

    def draws(key):
        body = lambda c, k: (c + jax.random.normal(jax.random.fold_in(key, k), (batch, d), jnp.float32).sum(), None)
        return jax.lax.scan(body, jnp.float32(0), jnp.arange(chunk))[0]

    rng = np.random.default_rng(0)
    w, r, z = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((configs, d), (configs, batch), (batch, d)))
    fwd = jax.jit(lambda w, z: jax.lax.dot_general(w, z, (((1,), (1,)), ((), ()))))
    bwd = jax.jit(lambda r, z: r @ z)
    cases = [(run,), (jax.jit(draws), jax.random.key(0)), (fwd, w, z), (bwd, r, z)]
    best, _, _ = suite.interleaved(cases, repeat=repeat, stats=True, clock=time.process_time)
    parts = dict(chunk=best[0], draws=best[1], forward=best[2] * chunk, backward=best[3] * chunk)
    parts["labels"] = parts["forward"]  # each configuration's labels: one more product of the forward shape
    parts["rest"] = parts["chunk"] - sum(parts[k] for k in ("draws", "forward", "backward", "labels"))
    flop = 2 * configs * d * batch
    log(f"  [cpu] online chunk of {chunk} steps, B={configs}, d={d}, batch={batch}: {parts['chunk']:.3f} CPU s = "
        + ", ".join(f"{k} {v:.3f} ({100 * v / parts['chunk']:.0f}%)" for k, v in parts.items() if k != "chunk")
        + f"; GEMM rates forward {flop / best[2] / 1e9:.0f}, backward {flop / best[3] / 1e9:.0f} GFLOP per CPU s; "
        + suite.load())
    return parts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--configs", type=int, default=512)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reuse", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.quick:
        args.configs, args.d, args.batch, args.chunk, args.repeat = 8, 32, 16, 10, 1
    print("spikejax online / reused sources:", suite.machine())
    diff = {s: agreement(s, min(args.d, 64), args.batch, args.reuse, 40, 20) for s in ("online", "reused")}
    print(f"  agreement with sj.simulate alone (d={min(args.d, 64)}, 4 configurations, 40 steps): max |drho| "
          + ", ".join(f"{s} {v:.1e}" for s, v in diff.items()))
    rows = measure(args.configs, args.d, args.batch, args.reuse, args.chunk, args.repeat)
    parts = account(args.configs, args.d, args.batch, args.chunk, args.repeat)
    print("end:", suite.machine())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=suite.machine(), agreement=diff, rows=rows, account=parts), f, indent=1,
                      default=float)
    return rows, diff


if __name__ == "__main__":
    main()
