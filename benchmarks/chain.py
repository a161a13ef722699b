"""The exact chain's rate in samples per second, against the d-dimensional online source.

    python benchmarks/chain.py [--quick] [--seeds 64] [--repeat 3] [--json PATH] [--layouts] [--predraw]

One neuron, spherical online SGD on h3 / h3 (correlation loss, kappa = d^0.5, r1 = 0.25), the
per-sample step 0.5 d^{-3/2}, every seed's run vmapped into one compiled call (as `passage_n`
runs them). The chain (`reduced=True`, float64) is timed at d = 1e3, 1e6 and 1e9 for batches 1,
16 and 256: its rate should not depend on d. The d-dimensional source (`Online(batch)`, float64
too, so both do the same arithmetic per coordinate) is timed at d = 256 and 4096. Cases are
timed in turn (A B C ... A B C, the best of `repeat` after a warm-up compile) in one process,
so the ratios are measured under the same load. Samples per second = seeds x steps x batch /
wall seconds.

`--predraw` instead times the chain at d = 1e6 for batches 1..256 with its batches drawn a block of
steps at a time (the default at batches <= 64, `Chain.predraws`) against step by step, in turn.

`--layouts` instead times JAX's two threefry bit layouts alone (random words and float32 normals
per second, one (16, 64, 256, 4) draw in a compiled scan): the partitionable default against the
whole-block layout that the chain draws with (`_chain.whole_blocks`).
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import spikejax as sj  # noqa: E402


def case(d: int, batch: int, seeds: int, samples: int, reduced: bool):
    """`(run, samples per call)`: one compiled call running `seeds` seeds for `samples / batch` steps."""
    steps = max(2, samples // batch)
    p = sj.make_problem(d, key=jax.random.key(0), r2=0.5, r1=0.25, link="h3", activation="h3",
                        loss="correlation", reduced=reduced)
    saveat = sj.SaveAt(steps=2, passages={"rho": (0.5,)})
    dt = batch * 0.5 * d ** -1.5
    one = lambda k: sj.simulate(p, sj.Spherical(), sj.Online(batch), key=k, dt=dt, steps=steps, saveat=saveat,
                                reduced=reduced).passages["rho"]
    f = jax.jit(jax.vmap(one))
    keys = jax.random.split(jax.random.key(1), seeds)
    return (lambda: jax.block_until_ready(f(keys))), seeds * steps * batch


def timed_in_turn(cases, repeat):
    """The best of `repeat` wall times of each `(..., run, samples)` case, timed A B C ... A B C."""
    best = [np.inf] * len(cases)
    for _ in range(repeat):
        for i, c in enumerate(cases):
            t = time.perf_counter()
            c[-2]()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def predraw(seeds: int, repeat: int, samples: int):
    """The chain's rate with a block of pre-drawn batches against step-by-step draws, per batch."""
    from spikejax.internal import chain_module as _chain, simulate_module as _simulate

    batches, cases, defaults = [1, 4, 16, 64, 256], [], (_chain.PREDRAW_MAX_BATCH, _simulate.PREDRAW_SAMPLES)
    for b in batches:
        for block in (True, False):  # read when the call is traced (its warm-up); a block at any batch
            _chain.PREDRAW_MAX_BATCH, _simulate.PREDRAW_SAMPLES = (2**30, defaults[1]) if block else (defaults[0], 1)
            run, n = case(10**6, b, seeds, samples, True)
            run()
            cases.append((b, block, run, n))
    _chain.PREDRAW_MAX_BATCH, _simulate.PREDRAW_SAMPLES = defaults
    best = timed_in_turn(cases, repeat)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()}, {seeds} seeds, d = 1e6, float64")
    print("| batch | pre-drawn block | step by step | ratio | the default |")
    print("|---|---|---|---|---|")
    for i in range(0, len(cases), 2):
        b = cases[i][0]
        rb, rs = cases[i][3] / best[i], cases[i + 1][3] / best[i + 1]
        print(f"| {b} | {rb:.3g} | {rs:.3g} | {rb / rs:.2f}x | {'block' if sj.Chain(b).predraws else 'step by step'} |")


def layouts(repeat: int = 5):
    """Random words and float32 normals per second in each threefry layout, timed in turn."""
    import jax.numpy as jnp

    shape = (16, 64, 256, 4)
    size = int(np.prod(shape))

    def timed(partitionable, draw):
        def total(k):  # the layout is chosen inside the trace, as the chain does (a jit key outside)
            with jax.threefry_partitionable(partitionable):
                x = draw(k)
            return x.sum(dtype=x.dtype)

        f = jax.jit(total)
        jax.block_until_ready(f(jax.random.key(0)))
        return lambda: jax.block_until_ready(f(jax.random.key(0)))

    draws = dict(words=lambda k: jax.random.bits(k, shape, jnp.uint32),
                 normals=lambda k: jax.random.normal(k, shape, jnp.float32))
    cases = {(what, part): timed(part, draw) for what, draw in draws.items() for part in (True, False)}
    best = dict.fromkeys(cases, np.inf)
    for _ in range(repeat):
        for c, run in cases.items():
            t = time.perf_counter()
            for _ in range(10):
                run()
            best[c] = min(best[c], (time.perf_counter() - t) / 10)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()}, jax {jax.__version__}")
    for what in draws:
        fast, slow = size / best[(what, False)], size / best[(what, True)]
        print(f"{what}: whole blocks {fast:.3g}/s, partitionable (default) {slow:.3g}/s: x{fast / slow:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--layouts", action="store_true", help="time the two threefry bit layouts alone")
    ap.add_argument("--predraw", action="store_true", help="time the chain's block of pre-drawn batches against step-by-step draws")
    args = ap.parse_args(argv)
    if args.layouts:
        return layouts(args.repeat + 2)
    if args.predraw:
        return predraw(args.seeds, args.repeat, 2**12 if args.quick else 2**16)
    chain_ds, full_ds, batches = [10**3, 10**6, 10**9], [256, 4096], [1, 16, 256]
    samples = 2**12 if args.quick else 2**16  # per seed and call, chain
    cases = [("chain", d, b, *case(d, b, args.seeds, samples, True)) for d in chain_ds for b in batches]
    cases += [("d-dim", d, b, *case(d, b, args.seeds, max(b * 2, samples // (16 if d > 1000 else 4)), False))
              for d in full_ds for b in batches]
    for c in cases:  # compile and warm up
        c[3]()
    best = timed_in_turn(cases, args.repeat)
    rows = [dict(form=form, d=d, batch=b, samples=n, seconds=best[i], rate=n / best[i])
            for i, (form, d, b, _, n) in enumerate(cases)]
    env = dict(date=time.strftime("%Y-%m-%d %H:%M"), machine=platform.processor() or platform.machine(),
               cores=os.cpu_count(), load=os.getloadavg(), jax=jax.__version__, seeds=args.seeds,
               blas_env_removed=os.environ.get("SPIKEJAX_BENCH_UNSET", ""))
    print(f"# {env}")
    print("| form | d | batch 1 | batch 16 | batch 256 |")
    print("|---|---|---|---|---|")
    for form, ds in (("chain", chain_ds), ("d-dim", full_ds)):
        for d in ds:
            r = {x["batch"]: x["rate"] for x in rows if x["form"] == form and x["d"] == d}
            print(f"| {form} | {d:g} | " + " | ".join(f"{r[b]:.3g}" for b in batches) + " |")
    for b in batches:
        chain = [x["rate"] for x in rows if x["form"] == "chain" and x["batch"] == b]
        full = {x["d"]: x["rate"] for x in rows if x["form"] == "d-dim" and x["batch"] == b}
        print(f"batch {b}: chain spread over d {max(chain) / min(chain):.3f}x; chain / d-dim at d = 256: "
              f"{np.mean(chain) / full[256]:.3g}x, at d = 4096: {np.mean(chain) / full[4096]:.3g}x")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(dict(env=env, rows=rows), fh, indent=1)


if __name__ == "__main__":
    main()
