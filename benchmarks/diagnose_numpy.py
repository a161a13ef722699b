"""Why BENCHMARKS.md's first numpy figure (63 steps/s, 2026-11-28) was wrong: each suspect
measured, d = 256, n = 4096, 500 steps, one configuration at a time.

    python benchmarks/diagnose_numpy.py [--steps 500] [--spinners 0,1,2]

Rows (steps/s, timed in turn in one process; best and median of `--repeat` rounds):
- old harness: `suite.numpy_run_old` timed as the old benchmark timed it: two
  configurations, no warm-up, the JAX data just dispatched (asynchronous: the first
  `np.asarray` waits for it) and `make_problem` run eagerly inside the timed region;
- old loop, warm: the same function on numpy inputs after a warm-up (float64 `w`, two
  dtype conversions a step);
- fair loop: `suite.numpy_normalized` (float32, preallocated, z and z^T kept), 2 BLAS
  threads, and on 1 BLAS thread;
each repeated with 0, 1, 2 busy processes started here (other users' load); and in a child
process with `OPENBLAS_CORETYPE=Prescott` (an env var that picks an old kernel).
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import suite  # noqa: E402

D, N = 256, 4096
SPIN = "import time\nt = time.time()\nwhile time.time() - t < 600: pass\n"


def old_harness(steps, configs=2):
    """The old benchmark's timed region, on freshly dispatched data."""
    kappas = jnp.logspace(0, 2, 64) * (1 + 1e-3 * np.random.rand())
    one = lambda k: suite.engine_data(suite.problem(D, k), "normalized", n=N)[1:]
    y, w0 = jax.jit(jax.vmap(one))(kappas)  # dispatched: still running when the timer starts
    z = suite.engine_data(suite.problem(D, 1.0), "normalized", n=N)[0]  # eager, as before
    w0 = w0[0]
    t = time.perf_counter()
    for i in range(configs):
        suite.numpy_run_old(z, y[i], w0, suite.spike_numpy(suite.problem(D, kappas[i])), steps)
    return configs * steps / (time.perf_counter() - t)


def rates(steps, repeat):
    kappas = jnp.logspace(0, 2, 4)
    z, y, w0 = suite._emp_data(D, N, kappas)
    zn, yn, w0n = np.asarray(z), np.asarray(y), np.asarray(w0)
    zt = np.ascontiguousarray(zn.T)
    sp = suite.spike_numpy(suite.problem(D, kappas[1]))
    spike = sp
    fair = lambda: suite.numpy_normalized(zn, zt, yn[1], w0n, sp, suite.DT, steps)
    cases = {
        "old harness (no warm-up, async JAX data, eager problem)": None,
        "old loop, warm (float64 w, 2 conversions a step)": lambda: suite.numpy_run_old(zn, yn[1], w0n, spike, steps),
        "fair loop, 2 BLAS threads": fair,
        "fair loop, 1 BLAS thread": suite.one_blas_thread(fair),
    }
    for fn in cases.values():
        if fn is not None:
            fn()
    out = {k: [] for k in cases}
    for _ in range(repeat):
        for k, fn in cases.items():
            if fn is None:
                out[k].append(old_harness(steps))
            else:
                t = time.perf_counter()
                fn()
                out[k].append(steps / (time.perf_counter() - t))
    return {k: (max(v), float(np.median(v))) for k, v in out.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--spinners", default="0,1,2")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:  # only the fair loop, in this (environment-modified) process
        r = rates(args.steps, args.repeat)
        print(f"{r['fair loop, 2 BLAS threads'][0]:.0f} {r['fair loop, 1 BLAS thread'][0]:.0f}")
        return
    sys.stdout.reconfigure(line_buffering=True)
    print("diagnosis of the old numpy figure:", suite.machine())
    for k in (int(s) for s in args.spinners.split(",")):
        procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(k)]
        try:
            time.sleep(1.0 if k else 0.0)
            r = rates(args.steps, args.repeat)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        print(f"\n+{k} busy processes ({suite.load()}): steps/s, best / median")
        for name, (best, med) in r.items():
            print(f"  {name:58s} {best:8.0f} / {med:8.0f}")
    env = dict(os.environ, OPENBLAS_CORETYPE="Prescott", SPIKEJAX_BENCH_KEEP_BLAS_ENV="1")
    res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps)],
                         env=env, capture_output=True, text=True)
    print(f"\nOPENBLAS_CORETYPE=Prescott (child process, {suite.load()}): fair loop 2 / 1 BLAS threads, steps/s: "
          f"{res.stdout.strip() or res.stderr[-500:]}")
    print("\nend:", suite.machine())


if __name__ == "__main__":
    main()
