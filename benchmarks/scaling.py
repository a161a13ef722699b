"""Cost per configuration-step and memory per configuration against d and n, per source.

    python benchmarks/scaling.py [--quick] [--json benchmarks/scaling.json]

Sources: population in the exact 3-coordinate form, population in d dimensions, empirical
(n fixed samples, B configurations sharing one seed's draws), online (a fresh batch of n
samples a step, shared by the B configurations of a seed). Normalized dynamic, ReLU, h2.

For each point the engine's `jit(vmap(simulate))` over B configurations is compiled at two
run lengths, T and 3T steps, and timed in turn (T, 3T, T, 3T, ...; best of `repeat` after a
warm-up); the cost per
configuration-step is the slope `(t(3T) - t(T)) / (2 T B)` and the per-run setup (data
draw, w(0), first record) the intercept. Memory is XLA's buffer total (arguments, outputs,
temporaries) of the compiled call: for the sample sources at two widths B and B/8, split
into bytes per configuration (slope) and bytes shared by a seed (intercept: its draws).

The JSON (`benchmarks/scaling.json`) holds the raw points and a fitted model per source,
`ns per config-step = a + b d + c n d` (least squares over the points, in the points'
range), so that `spikejax sweep --dry-run` could predict a sweep's time and memory:
time ~ setup + configs * steps * ns, memory ~ seeds * (shared + configs * per_config).
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import suite  # noqa: E402

SOURCES = ("population-3", "population-d", "empirical", "online")
WIDTH = {"population-3": 10_000, "population-d": 1000, "empirical": 64, "online": 64}


def _fn(source, d, n, steps):
    def one(kappa):
        p = suite.problem(d, kappa)
        kw = dict(dt=0.05, steps=steps, record=8)
        if source == "population-3":
            return suite.trajectory(p, "normalized", reduced=True, **kw)[1][-1]
        if source == "population-d":
            return suite.trajectory(p, "normalized", **kw)[1][-1]
        if source == "empirical":
            return suite.trajectory(p, "normalized", "empirical", n=n, **kw)[1][-1]
        return suite.trajectory(p, "normalized", "online", batch=n, **kw)[1][-1]

    return jax.jit(jax.vmap(one))


def _steps(source, d, n, b, work):
    """A run length giving about `work` flops (sample sources) or element-steps."""
    per = {"population-3": 50.0, "population-d": 30.0 * d}.get(source, 4.0 * n * d)
    return int(np.clip(work / (per * b), 5, 2000))


def point(source, d, n=None, repeat=2, work=2e10):
    b = WIDTH[source]
    kappas = jnp.logspace(0, 2, b)
    t1 = _steps(source, d, n or 1, b, work)
    compiled = [_fn(source, d, n, steps).lower(kappas).compile() for steps in (t1, 3 * t1)]
    mems = [suite.compiled_bytes(c) for c in compiled]
    times = suite.interleaved([(c, kappas) for c in compiled], repeat=repeat)  # T, 3T, T, 3T, ...
    ns = max(times[1] - times[0], 1e-12) / (2 * t1 * b) * 1e9
    setup = max(times[0] - t1 * b * ns * 1e-9, 0.0)
    row = dict(source=source, d=d, n=n, configs=b, steps=[t1, 3 * t1], seconds=times, ns_per_config_step=ns,
               setup_s=setup, load=suite.load(), valid=valid(times))
    if source in ("empirical", "online"):
        small = b // 8
        m_small = suite.compiled_bytes(_fn(source, d, n, t1).lower(kappas[:small]).compile())
        per = (mems[0] - m_small) / (b - small)
        row.update(bytes_per_config=per, bytes_shared=max(mems[0] - b * per, 0.0))
    else:
        row.update(bytes_per_config=mems[0] / b, bytes_shared=0.0)
    if source in ("empirical", "online"):
        row["gflops"] = 4 * n * d / ns
    return row


def valid(times):
    """A point is usable when the 3T run took clearly longer than the T run (else the load's
    noise exceeded the steps' cost: rerun it)."""
    return bool(times[1] > 1.5 * times[0])


def fit(rows):
    """`ns = a + b d + c n d` with a, b, c >= 0, least squares in relative error (c = 0 for
    the population sources). A rough model: between the measured points interpolate the
    points themselves (log-log), which the JSON also holds."""
    from scipy.optimize import nnls

    rows = [r for r in rows if r.get("valid", True)]
    if not rows:
        return dict(ns_per_config_step=None, max_rel_error=None, d_range=None, n_range=None, bytes_per_config_max=None)
    d = np.array([r["d"] for r in rows], float)
    nd = np.array([(r["n"] or 0) * r["d"] for r in rows], float)
    y = np.array([r["ns_per_config_step"] for r in rows])
    cols = [np.ones_like(d), d] + ([nd] if nd.any() else [])
    a = np.stack(cols, 1) / y[:, None]
    coef, _ = nnls(a, np.ones_like(y))
    coef = list(coef) + [0.0] * (3 - len(coef))
    pred = np.stack(cols, 1) @ np.asarray(coef[: len(cols)])
    return dict(ns_per_config_step=dict(a=coef[0], b_per_d=coef[1], c_per_nd=coef[2]),
                max_rel_error=float(np.max(np.abs(pred / y - 1))),
                d_range=[int(d.min()), int(d.max())],
                n_range=[min((r["n"] for r in rows if r["n"]), default=None),
                         max((r["n"] for r in rows if r["n"]), default=None)],
                bytes_per_config_max=max(r["bytes_per_config"] for r in rows))


def markdown(points):
    """The points as the BENCHMARKS.md tables: one against d (n = 4096 for the sample
    sources), one against n (d = 256)."""
    by = {(r["source"], r["d"], r["n"]): r for r in points}
    dims = sorted({r["d"] for r in points})
    ns = sorted({r["n"] for r in points if r["n"]})

    def cell(r):
        if r is None:
            return ""
        if not r.get("valid", True):
            return "noise (rerun)"
        text = f"{r['ns_per_config_step']:.3g} ns"
        if "gflops" in r:
            text += f" ({r['gflops']:.0f} GFLOP/s)"
        text += f"; {r['bytes_per_config'] / 1024:.3g} KiB"
        if r["bytes_shared"]:
            text += f" + {r['bytes_shared'] / 2**20:.3g} MiB/seed"
        return text

    lines = ["| source | " + " | ".join(f"d = {d}" for d in dims) + " |", "|---" * (len(dims) + 1) + "|"]
    for src in SOURCES:
        n = 4096 if src in ("empirical", "online") else None
        lines.append(f"| {src} | " + " | ".join(cell(by.get((src, d, n))) for d in dims) + " |")
    lines += ["", "| source (d = 256) | " + " | ".join(f"n = {n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for src in ("empirical", "online"):
        lines.append(f"| {src} | " + " | ".join(cell(by.get((src, 256, n))) for n in ns) + " |")
    return "\n".join(lines)


def measure(dims, ns, repeat, work, log=print):
    rows = []
    for source in SOURCES:
        pts = [(d, 4096 if source in ("empirical", "online") else None) for d in dims]
        if source in ("empirical", "online"):
            pts += [(256, n) for n in ns if n != 4096]
        for d, n in pts:
            t = time.perf_counter()
            r = point(source, d, n, repeat=repeat, work=work)
            rows.append(r)
            log(f"  {source:13s} d={d:5d} n={n or '-':>5}  {r['ns_per_config_step']:10.1f} ns/config-step"
                f"  setup {r['setup_s']:.3f} s  {r['bytes_per_config'] / 1024:9.1f} KiB/config"
                f"  shared {r['bytes_shared'] / 2**20:7.1f} MiB" + (f"  {r['gflops']:.0f} GFLOP/s" if "gflops" in r else "")
                + f"  ({time.perf_counter() - t:.0f} s, {r['load']})")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None, help="write the table here (e.g. benchmarks/scaling.json)")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    print("spikejax scaling:", suite.machine())
    if args.quick:
        dims, ns, repeat, work = (64, 256), (1024,), 1, 2e8
    else:
        dims, ns, repeat, work = (64, 256, 1024, 4096, 8192), (256, 1024, 16384), 3, 6e10
    rows = measure(dims, ns, repeat, work)
    models = {s: fit([r for r in rows if r["source"] == s]) for s in SOURCES}
    out = dict(
        about="spikejax cost per configuration-step (ns) and memory per configuration; "
              "normalized dynamic, ReLU, h2, float32, CPU. time ~ setup_s + configs * steps * ns * 1e-9; "
              "memory ~ seeds * (bytes_shared + configs * bytes_per_config). Rates vary 2x with machine load.",
        date=datetime.date.today().isoformat(), machine=suite.machine(), widths=WIDTH, models=models, points=rows)
    print("\nmodels (ns per config-step = a + b d + c n d):")
    for s, m in models.items():
        c = m["ns_per_config_step"]
        print(f"  {s:13s} a {c['a']:9.2f}  b {c['b_per_d']:9.4f}  c {c['c_per_nd']:.3e}"
              f"   (largest relative error at the points {100 * m['max_rel_error']:.0f}%)")
    print("\n" + markdown(rows))
    print("end:", suite.machine())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return out


if __name__ == "__main__":
    main()
