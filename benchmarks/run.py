"""Benchmarks 1-4, run by `make bench`: engine against baselines on identical work, in one
process, timed in turn. The end-to-end CLI benchmark is `e2e.py`, the scaling table
`scaling.py`, the diagnosis of the old numpy figure `diagnose_numpy.py`.

Prints ratios, machine, versions, date, load and BLAS kernel; `--json PATH` also writes the
raw rows. `--quick` runs smaller sizes. Record results in BENCHMARKS.md.
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402


def _fmt(x, spec=".3g"):
    return "n/a" if x is None else format(x, spec)


def report_empirical(rows):
    print("\n1. empirical sweep (normalized, ReLU, h2), config-steps per second, best (median) of the rounds")
    for r in rows:
        b, e = r["configs"], r["engine_rate"]
        print(f"  B={b}, d={r['d']}, n={r['n']}, {r['steps']} steps; fp32 GEMM 2048^2 {r.get('peak_gflops', 0):.0f} "
              f"GFLOP/s; {r['load']}")
        print(f"    engine (vmap, shared z)       {e:10.3g} ({r['engine_rate_median']:.3g})   {r['engine_gflops']:6.1f} "
              f"GFLOP/s = {100 * r.get('engine_frac_peak', 0):.0f}% of the 2048^2 GEMM")
        if "sweep_s" in r:
            print(f"    sj.sweep (one call, incl. compile) {r['sweep_s']:6.2f} s = {b * r['steps'] / r['sweep_s']:10.3g}"
                  f"   max|drho| vs engine {r['sweep_max_abs_diff']:.1e}")
        for key, name in (("numpy", "(a) numpy loop, 2 BLAS threads"), ("numpy_1thread", "(a) numpy loop, 1 BLAS thread"),
                          ("loop", "(b) jit(scan), one config, loop"), ("no_crn", "(c) jit(scan(vmap)), no CRN")):
            diff = r.get(f"{key}_max_abs_diff")
            print(f"    {name:31s}{r[f'{key}_rate']:10.3g} ({r[f'{key}_rate_median']:.3g})   engine x{e / r[f'{key}_rate']:6.1f}"
                  f" (medians x{r['engine_rate_median'] / r[f'{key}_rate_median']:.1f})   max|dw| {_fmt(diff, '.1e')}"
                  f"   ({r[f'{key}_note']})")


def report_layouts(rows):
    print("\n1b. profile: vmap(grad(risk)) alone, z shared, two ways of writing <x_i, w>")
    for r in rows:
        print(f"    B={r['configs']:4d}  {r['form']:18s} {r['gflops']:6.1f} GFLOP/s = {100 * r['frac_peak']:3.0f}% of peak"
              f"   dots: {'; '.join(r['dots'])}")


def report_population(rows, per_dim):
    print("\n2. population sweep (normalized, ReLU, h2), configs x steps per second")
    for r in rows:
        line = f"  {r['form']:24s} {r['configs']:7d} configs x {r['steps']:5d} steps  {r['rate']:10.3g}"
        if "euler_rate" in r:
            line += (f"   (Euler steps it replaces) vs Euler {r['euler_rate']:.3g}: x{r['rate'] / r['euler_rate']:.2f}"
                     f"   max|drho| vs Euler {r['euler_max_abs_diff']:.1e}")
        elif "loop_rate" in r:
            line += (f"   vs (b) jitted single config {r['loop_rate']:.3g}: x{r['rate'] / r['loop_rate']:.0f}"
                     f"   max|drho| {r['loop_max_abs_diff']:.1e} ({r['loop_note']})")
        else:
            line += f"   max|drho| vs 3-coordinate {r['reduced_max_abs_diff']:.1e}"
        print(line)
    print("  cost per configuration-step (ns) against d:")
    for r in per_dim:
        print(f"    d={r['d']:5d}   3-coordinate {r['3-coordinate']:8.2f}   d-dimensional {r['d-dimensional']:8.2f}")


def report_complexity(r):
    print(f"\n3. sample-complexity search: {len(r['sizes'])} sizes x {r['seeds']} seeds, d={r['d']}, "
          f"{r['steps']} steps (wall time incl. compile)")
    print(f"    one call, n_used padding   {r['padded_s']:7.2f} s   n* = {r['n_star_padded']}")
    print(f"    one call per n             {r['separate_s']:7.2f} s   n* = {r['n_star_separate']}"
          f"   (x{r['separate_s'] / r['padded_s']:.1f})   max|drho| {r['max_abs_diff']:.1e}, "
          f"{100 * r['agree_frac']:.0f}% of runs within 1e-3")
    if "search_n_s" in r:
        print(f"    sj.search_n (one call)     {r['search_n_s']:7.2f} s   n* = {r['search_n_star']:.0f} (interpolated)"
              f"   {100 * r['search_n_agree_frac']:.0f}% of runs within 1e-3 of the padded call")


def report_compile(rows):
    print("\n4. compile time (trace + compile) and XLA buffers per configuration")
    for r in rows:
        mem = r["bytes_per_config"]
        print(f"    {r['kind']:26s} steps {r['steps']:7d}  configs {r['configs']:5d}  {r['seconds']:6.2f} s"
              f"   {_fmt(None if mem is None else mem / 1024, '.1f')} KiB/config")


def report_config_compile(rows):
    print("    the sweep's compiled functions for each configs/*.toml group (init, one chunk):")
    for r in rows:
        if "error" in r:
            print(f"    {r['config']:30s} error: {r['error']}")
        else:
            print(f"    {r['config']:30s} {r['group']:12s} {r['configs']:4d} configs, steps {r['steps']:6d}, "
                  f"chunk {r['chunk']:5d}: init {r['init_s']:5.2f} s, chunk {r['chunk_s']:5.2f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--only", default="1234", help="which benchmarks, e.g. 12")
    ap.add_argument("--json", help="write the raw rows here")
    ap.add_argument("--scale", type=int, default=1, help="multiply the configuration counts (10 for a GPU)")
    ap.add_argument("--peak-size", type=int, default=2048, help="side of the square GEMM timed as the peak")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    print("spikejax benchmarks:", suite.machine())
    out = {"machine": suite.machine()}
    if "1" in args.only:
        kw = dict(configs=(64,), steps=100, no_crn_steps=10) if args.quick else dict(no_crn_steps=20, repeat=3)
        kw["configs"] = tuple(args.scale * b for b in kw.get("configs", (64, 512)))
        out["empirical"] = suite.empirical(peak_size=args.peak_size, **kw)
        report_empirical(out["empirical"])
        out["layouts"] = suite.gradient_layouts()
        report_layouts(out["layouts"])
    if "2" in args.only:
        kw = dict(configs=(10_000,), dims=(64, 1024)) if args.quick else {}
        kw["configs"] = tuple(args.scale * b for b in kw.get("configs", (10_000, 100_000)))
        out["population"], out["per_dim"] = suite.population(**kw)
        report_population(out["population"], out["per_dim"])
    if "3" in args.only:
        out["complexity"] = suite.complexity(**(dict(steps=100) if args.quick else {}))
        report_complexity(out["complexity"])
    if "4" in args.only:
        out["compile"] = suite.compile_times(**(dict(steps_list=(100, 10_000)) if args.quick else {}))
        report_compile(out["compile"])
        configs = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "*.toml")))
        out["config_compile"] = suite.config_compile_times(configs)
        report_config_compile(out["config_compile"])
    print("\nend:", suite.machine())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)


if __name__ == "__main__":
    main()
