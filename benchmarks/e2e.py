"""End to end: the `spikejax sweep` command line as a user runs it, against the numpy loop.

    python benchmarks/e2e.py [--quick] [--grids 1x512,8x64,64x8] [--rounds 2] [--json PATH]

For each grid of S seeds x B configurations (a kappa grid; empirical source, spherical
dynamic, h2 link, ReLU; d = 256, n = 4096, 500 steps by default) it times, in turn
(A B C A B C ...) in one run:

- the CLI in a fresh process (`python -m spikejax.cli sweep cfg.toml --out DIR`): process
  start, imports, compile, data draw, every chunk, checkpoints, the results file; and the
  time to the first finished chunk (the first checkpoint written);
- the GEMM of the engine's shape, S products (B, d) x (d, n), in this process (jax);
- the numpy loop (`suite.numpy_spherical`) on a few configurations with independent data
  each (their draw included), on 2 and on 1 BLAS threads, extrapolated to S x B.

Each CLI run of this tree is run with `--profile`, so every row also holds the CLI's own
account of its phases (start-up, plan, init's compile and run, the step limit, waits for a
background compile, steps, checkpoints) and of each program's compile. Then a profile in
this process of where the CLI's time goes (startup, compile, data draw,
steady state, checkpoints, write), from the sweep's own compiled functions, and the
agreement of the CLI's final rho with the numpy loop run on the engine's own draws.
"""

from __future__ import annotations

if __name__ == "__main__":  # a benchmark run (never a test): clean the BLAS env before numpy loads
    import blasenv  # noqa: F401

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import suite  # noqa: E402

BASE = dict(d=256, n=4096, steps=500, dt=0.05, r1=0.25, noise=0.1, link="h2", activation="relu",
            dynamic="spherical", source="empirical", record=16)
GRIDS = ((1, 512), (8, 64), (64, 8))
QUICK = dict(BASE, d=16, n=64, steps=40)
QUICK_GRIDS = ((1, 4), (2, 2))


def kappas(b):
    return [float(k) for k in np.logspace(0, 2, b)]


def config(seeds, b, base):
    return dict(base, seeds=seeds, kappa=kappas(b))


def write_toml(cfg, path):
    def val(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    with open(path, "w") as f:
        f.write("".join(f"{k} = {val(v)}\n" for k, v in cfg.items()))


def cli_env(root=ROOT, cache=None):
    """The CLI's environment: `root` first on the path; `cache` its compilation cache's home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if cache is not None:
        env["XDG_CACHE_HOME"] = cache
    return env


def cli_run(toml, out, poll=0.01, root=ROOT, cache=None):
    """Run `spikejax sweep` in a fresh process: cold (`--no-cache`, compiling everything)
    or, with `cache` (a directory), with the persistent compilation cache kept there.
    Returns wall seconds, seconds to the first checkpoint (first finished chunk; None when
    the run has one chunk), the in-process seconds the CLI reports, and the process's CPU
    seconds (its children's rusage)."""
    shutil.rmtree(out, ignore_errors=True)
    first = os.path.join(out, "checkpoint", "current.npz")
    cmd = [sys.executable, "-m", "spikejax.cli", "sweep", toml, "--out", out, "--force", "--no-progress"]
    profiled = root == ROOT  # another checkout's CLI may not have --profile
    if profiled:
        cmd.append("--profile")
    if cache is None:
        cmd.append("--no-cache")
    cpu0 = os.times()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(root, cache))
    t_first = None
    while proc.poll() is None:
        if t_first is None and os.path.exists(first):
            t_first = time.perf_counter() - t0
        time.sleep(poll)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"spikejax sweep failed ({proc.returncode}):\n{stderr[-3000:]}")
    cpu1 = os.times()
    found = re.search(r"steps in ([0-9.]+) s", stdout)
    inproc = float(found.group(1)) if found else None
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    row = dict(wall=wall, first_chunk=t_first, in_process=inproc, cpu=cpu)
    if profiled:  # the CLI's own account of its phases (`--profile`), the write excepted
        import spikejax as sj

        totals = sj.load_results(out).attrs["profile"]["totals"]
        row["phases"] = {k: v for k, v in totals.items() if not isinstance(v, dict)}
        row["programs"] = totals["programs"]
    return row


def numpy_configs(cfg, count, rng):
    """The numpy loop on `count` configurations of the grid, each with its own data drawn
    by numpy (included in the time, as it is in the CLI's)."""
    d, n, steps = cfg["d"], cfg["n"], cfg["steps"]
    ks = cfg["kappa"]
    spikes = [suite.spike_numpy(suite.problem(d, ks[i % len(ks)], r1=cfg["r1"], noise=cfg["noise"]))
              for i in range(count)]

    def run():
        out = []
        for sp in spikes:
            x, xt, y, w0 = suite.numpy_spherical_data(rng, sp, d, n, cfg["noise"])
            out.append(suite.numpy_spherical(x, xt, y, w0, cfg["dt"], steps))
        return out

    return run


def agreement(cfg, ds, count=2):
    """Max |rho_T(CLI) - rho_T(numpy loop on the engine's own draws)| over `count` configs
    of the first seed, and the numpy loop's rho values."""
    d, n = cfg["d"], cfg["n"]
    rho = ds["rho"].isel(step=-1)
    if "kappa" in rho.dims:
        rho = rho.transpose("seed", "kappa")
    rho = np.asarray(rho).reshape(cfg["seeds"], -1)
    seed = jax.random.key(0)
    kp, ks = jax.random.fold_in(seed, 0), jax.random.fold_in(seed, 1)
    diffs, vals = [], []
    for c in range(min(count, len(cfg["kappa"]))):
        prob = suite.problem(d, cfg["kappa"][c], key=kp, r1=cfg["r1"], noise=cfg["noise"], link=cfg["link"],
                             activation=cfg["activation"])
        z, y, w0 = suite.engine_data(prob, cfg["dynamic"], key=ks, n=n)
        sp = suite.spike_numpy(prob)
        x, xt = suite.spherical_x(z, sp)
        w = suite.numpy_spherical(x, xt, np.asarray(y), np.asarray(w0), cfg["dt"], cfg["steps"])
        vals.append(suite.numpy_rho(w, sp))
        diffs.append(abs(vals[-1] - float(rho[0, c])))
    return max(diffs), vals


def profile_pieces(cfg, results_nc=None):
    """One measurement of each piece of the CLI's work, in this process, with the sweep's own
    compiled functions (one group; compiled afresh, so compile is measured each call).
    Compile is also given in process CPU seconds: XLA compiles on one thread, so that is
    about what it takes on an idle core, whatever the load."""
    out = {}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jax, spikejax.cli; jax.devices()"],
                   check=True, env=cli_env())
    out["startup_s"] = time.perf_counter() - t  # process start, imports, backend
    (g,) = suite.sweep_groups(cfg)
    keys, params = g["keys"], g["params"]
    t, c = time.perf_counter(), time.process_time()
    c_init = g["init"].lower(keys, params).compile()
    out["compile_init_s"], out["compile_init_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    jax.block_until_ready(c_init(keys, params))
    t = time.perf_counter()
    arrays, state = jax.block_until_ready(c_init(keys, params))
    out["init_s"] = time.perf_counter() - t  # build: directions, samples, labels; record 0
    out["compile_limit_cpu_s"] = out["limit_s"] = 0.0
    limit = g["runner"]._limit  # the step-limit estimate at step 0 (deterministic fixed-step runs)
    if limit is not None:
        c = time.process_time()
        c_limit = limit.lower(arrays, state.w).compile()
        out["compile_limit_cpu_s"] = time.process_time() - c
        out["limit_s"] = suite.best_time(c_limit, arrays, state.w, repeat=1)
    t, c = time.perf_counter(), time.process_time()
    c_chunk = g["chunk"].lower(arrays, state).compile()
    out["compile_chunk_s"], out["compile_chunk_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    state = jax.block_until_ready(c_chunk(arrays, state))[0]  # warm-up; the input state is donated
    t = time.perf_counter()
    state = jax.block_until_ready(c_chunk(arrays, state))[0]
    out["chunk_s"] = time.perf_counter() - t
    out["chunk_len"] = g["chunk_len"]
    out["chunks"] = -(-g["steps"] // g["chunk_len"])
    out["steady_chunk_s"] = out["chunk_s"]  # a chunk only steps (the data are built once, by init)
    # checkpoint of the state after a chunk, and the results file
    with tempfile.TemporaryDirectory() as tmp:
        leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
        t = time.perf_counter()
        with open(os.path.join(tmp, "c.npz"), "wb") as f:
            np.savez(f, **{f"leaf{i}": x for i, x in enumerate(leaves)})
        out["checkpoint_s"] = time.perf_counter() - t
        if results_nc:
            import xarray as xr

            ds = xr.load_dataset(results_nc, engine="scipy")
            t = time.perf_counter()
            ds.to_netcdf(os.path.join(tmp, "r.nc"), engine="scipy")
            out["write_s"] = time.perf_counter() - t
    return out


def measure(grids, base, rounds, numpy_count, log=print, baseline=None):
    """The table of section 5 of BENCHMARKS.md. Every round times, in turn: the CLI cold
    (`--no-cache`), the CLI with its compilation cache warm, the CLI of `baseline` (another
    checkout's root, cold) when given, the GEMMs and the numpy loop; the profile of the
    pieces runs in the first round."""
    rows = []
    rng = np.random.default_rng(0)
    pfn, pa, pflop = suite._peak_fn(int(os.environ.get("SPIKEJAX_PEAK_SIZE", 2048)) if base["d"] >= 128 else 256)
    with tempfile.TemporaryDirectory() as tmp:
        for s, b in grids:
            cfg = config(s, b, base)
            toml = os.path.join(tmp, f"grid_{s}x{b}.toml")
            write_toml(cfg, toml)
            out = os.path.join(tmp, f"out_{s}x{b}")
            nc = os.path.join(out, "results.nc")
            gfn, gargs, gflop = suite.gemm_case(s, b, base["d"], base["n"])
            np2 = numpy_configs(cfg, 1, rng)  # 2 BLAS threads: under load this one is very slow
            np1 = suite.one_blas_thread(numpy_configs(cfg, numpy_count, rng))
            for fn, *args in ((gfn, *gargs), (pfn, pa), (np2,), (np1,)):
                jax.block_until_ready(fn(*args))  # warm-up (compile, first touch)
            cache = os.path.join(tmp, "cache")
            cli_run(toml, out, cache=cache)  # fills the compilation cache for the warm runs
            runs, warm, base_runs, t_gemm, t_peak, t_np2, t_np1, profs = [], [], [], [], [], [], [], []
            for r in range(rounds):  # A B C A B C ...: every piece measured once a round
                runs.append(cli_run(toml, out))
                warm.append(cli_run(toml, out, cache=cache))
                if baseline:
                    base_runs.append(cli_run(toml, out + "_baseline", root=baseline))
                t_gemm.append(suite.best_time(gfn, *gargs, repeat=3))
                t_peak.append(suite.best_time(pfn, pa, repeat=2))
                t0 = time.perf_counter()
                np2()
                t_np2.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                np1()
                t_np1.append((time.perf_counter() - t0) / numpy_count)
                if r == 0:
                    profs.append(profile_pieces(cfg, nc))
                log(f"  {s}x{b} round {r}: CLI {runs[-1]['wall']:.1f} s (first chunk {runs[-1]['first_chunk']}, "
                    f"cpu {runs[-1]['cpu']:.1f} s), warm cache {warm[-1]['wall']:.1f} s"
                    + (f", baseline {base_runs[-1]['wall']:.1f} s (cpu {base_runs[-1]['cpu']:.1f} s)" if baseline else "")
                    + ", "
                    f"GEMM {gflop / t_gemm[-1] / 1e9:.0f} GFLOP/s, numpy {t_np2[-1]:.2f} / {t_np1[-1]:.2f} s a config, "
                    f"chunk {profs[-1]['chunk_s']:.2f} s, {suite.load()}")
            import xarray as xr

            ds = xr.load_dataset(nc, engine="scipy")
            diff, _ = agreement(cfg, ds)
            prof = {k: min(p[k] for p in profs) for k in profs[0]}  # best of each piece over the rounds
            total = s * b * base["steps"]
            flop = 4 * base["n"] * base["d"] * total
            best = min(runs, key=lambda x: x["wall"])
            gemm = gflop / min(t_gemm) / 1e9
            np_per_config = min(min(t_np2), min(t_np1))
            row = dict(seeds=s, configs=b, d=base["d"], n=base["n"], steps=base["steps"], chunk=prof["chunk_len"],
                       load=suite.load(), rounds=rounds, cli_s=best["wall"],
                       cli_s_median=float(np.median([x["wall"] for x in runs])), cli_all=runs,
                       cli_in_process_s=best["in_process"], first_chunk_s=best["first_chunk"],
                       rate=total / best["wall"], gflops=flop / best["wall"] / 1e9,
                       gemm_gflops=gemm, gemm_all=[gflop / t / 1e9 for t in t_gemm],
                       peak2048_gflops=pflop / min(t_peak) / 1e9,
                       numpy_2thread_config_s=min(t_np2), numpy_1thread_config_s=min(t_np1),
                       numpy_s=np_per_config * s * b,
                       numpy_note=f"1 config (2 BLAS threads) and {numpy_count} (1 thread) a round, extrapolated",
                       max_abs_drho=diff, profile=prof, profiles=profs)
            row["cli_warm_s"] = min(x["wall"] for x in warm)
            row["cli_warm_all"] = warm
            row["cli_warm_s_median"] = float(np.median([x["wall"] for x in warm]))
            row["cli_cpu_s"] = min(x["cpu"] for x in runs)
            if baseline:
                row["baseline"] = baseline
                row["baseline_all"] = base_runs
                row["baseline_cli_s"] = min(x["wall"] for x in base_runs)
                row["baseline_cli_s_median"] = float(np.median([x["wall"] for x in base_runs]))
                row["baseline_cpu_s"] = min(x["cpu"] for x in base_runs)
                row["speedup_vs_baseline"] = row["baseline_cli_s"] / row["cli_s"]
                row["speedup_vs_baseline_median"] = row["baseline_cli_s_median"] / row["cli_s_median"]
                row["cpu_ratio_vs_baseline"] = row["baseline_cpu_s"] / row["cli_cpu_s"]
            row["frac_gemm"] = row["gflops"] / gemm
            row["ratio_numpy"] = row["numpy_s"] / best["wall"]
            per_chunk = 4 * base["n"] * base["d"] * s * b * prof["chunk_len"]
            row["steady_frac_gemm"] = per_chunk / prof["steady_chunk_s"] / 1e9 / gemm
            row["frac_peak"] = row["gflops"] / row["peak2048_gflops"]
            row["steady_frac_peak"] = per_chunk / prof["steady_chunk_s"] / 1e9 / row["peak2048_gflops"]
            if best["first_chunk"] is not None:  # the CLI's own steady state: the chunks after the first
                rest = best["wall"] - best["first_chunk"] - prof.get("write_s", 0.0)
                row["cli_after_first_chunk_s"] = rest
                row["cli_steady_frac_gemm"] = per_chunk * (prof["chunks"] - 1) / rest / 1e9 / gemm
            rows.append(row)
            report(row)
    return rows


def _chunk_case(seeds, b, chunk, base, seed_loop):
    """A callable running one chunk of the sweep's compiled chunk function on a long run
    (10^6 steps, so every chunk does `chunk` real steps) of `seeds` x `b` configurations."""
    (g,) = suite.sweep_groups(config(seeds, b, dict(base, steps=10**6)), chunk=chunk, seed_loop=seed_loop)
    arrays, state = g["init"](g["keys"], g["params"])
    holder = [state]

    def run():
        holder[0] = g["chunk"](arrays, holder[0])[0]  # the state is donated: keep the new one
        return holder[0]

    return run


def seed_grouping(total=512, seeds_list=(1, 8, 64), chunk=50, repeat=3, base=BASE, log=print):
    """The sweep's steady state for the same `total` configurations arranged as S seeds x
    B = total / S, both ways the runner can take the seeds (`seed_loop`: "map", seed after
    seed, the CPU default; "vmap", one batched GEMM a step), timed in turn with the GEMM pair
    of each shape (forward S z^T and backward R z, S batched products each) and the 2048^2
    GEMM. Returns one row per (S, seed_loop)."""
    d, n = base["d"], base["n"]
    pfn, pa, pflop = suite._peak_fn(int(os.environ.get("SPIKEJAX_PEAK_SIZE", 2048)) if d >= 128 else 256)
    cases, meta = [(pfn, pa)], []
    for s in seeds_list:
        b = total // s
        fwd, (sa, za), flop = suite.gemm_case(s, b, d, n)
        r = jax.random.normal(jax.random.key(2), (s, b, n), jnp.float32)
        bwd = jax.jit(lambda r, z: jnp.einsum("sbn,snd->sbd", r, z))
        pair = lambda fwd=fwd, bwd=bwd, sa=sa, za=za, r=r: (fwd(sa, za), bwd(r, za))
        cases.append((pair,))
        i_pair = len(cases) - 1
        for loop in (("map", "vmap") if s > 1 else ("map",)):
            cases.append((_chunk_case(s, b, chunk, base, loop),))
            meta.append((s, b, 2 * flop, loop, len(cases) - 1, i_pair))
    rows = []
    for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
        best = suite.interleaved(cases, repeat=repeat, clock=clock)
        peak = pflop / best[0] / 1e9
        for s, b, flop_pair, loop, i, i_pair in meta:
            gemm = flop_pair / best[i_pair] / 1e9
            gflops = 4 * n * d * s * b * chunk / best[i] / 1e9
            rows.append(dict(clock=clock_name, seeds=s, configs=b, seed_loop=loop, chunk=chunk, chunk_s=best[i],
                             rate=s * b * chunk / best[i], chunk_gflops=gflops, gemm_pair_gflops=gemm,
                             frac_gemm=gflops / gemm, peak2048_gflops=peak, frac_peak=gflops / peak, load=suite.load()))
            unit = "CPU " if clock_name == "cpu" else ""
            log(f"  [{clock_name}] {s:3d} seeds x {b:4d}, seed_loop={loop:4s}: {chunk} steps {best[i]:6.2f} {unit}s = "
                f"{rows[-1]['rate']:9.3g} config-steps per {unit}s, {gflops:6.1f} GFLOP per {unit}s; the GEMM pair of "
                f"the S x B shape {gemm:6.1f} ({100 * gflops / gemm:4.0f}%); the 2048^2 GEMM {peak:6.1f} "
                f"({100 * gflops / peak:4.0f}%); {suite.load()}")
    return rows


def report(r):
    p = r["profile"]
    print(f"\n{r['seeds']} seeds x {r['configs']} configs, d={r['d']}, n={r['n']}, {r['steps']} steps "
          f"(chunk {r['chunk']}); {r['load']}")
    print(f"  CLI end to end       {r['cli_s']:7.2f} s (median {r['cli_s_median']:.2f})  {r['rate']:9.3g} config-steps/s"
          f"  {r['gflops']:6.1f} GFLOP/s = {100 * r['frac_gemm']:4.1f}% of the GEMM (S x ({r['configs']},{r['d']})x"
          f"({r['d']},{r['n']})) at {r['gemm_gflops']:.0f} GFLOP/s  [2048^2: {r['peak2048_gflops']:.0f}]")
    print(f"  CLI, cache warm      {r['cli_warm_s']:7.2f} s (median {r['cli_warm_s_median']:.2f}); cold CLI's CPU "
          f"{r['cli_cpu_s']:.1f} s")
    if "baseline" in r:
        print(f"  baseline CLI ({r['baseline']}) {r['baseline_cli_s']:.2f} s (median {r['baseline_cli_s_median']:.2f}, "
              f"CPU {r['baseline_cpu_s']:.1f} s): this one x{r['speedup_vs_baseline']:.2f} faster (medians "
              f"x{r['speedup_vs_baseline_median']:.2f}, CPU x{r['cpu_ratio_vs_baseline']:.2f})")
    print(f"  first chunk done at  {r['first_chunk_s'] or float('nan'):7.2f} s   (CLI's own count, after imports: "
          f"{r['cli_in_process_s']} s)")
    print(f"  numpy loop           {r['numpy_s']:7.2f} s  (per config {r['numpy_2thread_config_s']:.3f} s on 2 BLAS threads,"
          f" {r['numpy_1thread_config_s']:.3f} s on 1; {r['numpy_note']})  -> CLI x{r['ratio_numpy']:.2f}")
    print(f"  end to end {100 * r['frac_peak']:.0f}% of the 2048^2 GEMM; steady state (one chunk) "
          f"{100 * r['steady_frac_gemm']:.0f}% of the shape's GEMM, {100 * r['steady_frac_peak']:.0f}% of the 2048^2; "
          "the CLI's chunks after its first: "
          f"{100 * r.get('cli_steady_frac_gemm', float('nan')):.0f}%")
    parts = [("startup (process, imports)", p["startup_s"]),
             (f"compile init (cpu {p['compile_init_cpu_s']:.2f} s)", p["compile_init_s"]),
             (f"compile chunk (cpu {p['compile_chunk_cpu_s']:.2f} s)", p["compile_chunk_s"]),
             ("init (data, record 0)", p["init_s"]),
             (f"step limit (compile cpu {p['compile_limit_cpu_s']:.2f} s)", p["limit_s"]),
             (f"chunks x {p['chunks']}", p["steady_chunk_s"] * p["chunks"]),
             (f"checkpoints x {p['chunks'] - 1}", p["checkpoint_s"] * (p["chunks"] - 1)),
             ("results.nc", p.get("write_s", 0.0))]
    total = sum(v for _, v in parts)
    print("  profile: " + "; ".join(f"{k} {v:.2f} s" for k, v in parts) +
          f"; sum {total:.2f} s vs CLI {r['cli_s']:.2f} s")
    for name, runs in (("cold", r["cli_all"]), ("warm", r.get("cli_warm_all", []))):
        best = min(runs, key=lambda x: x["wall"]) if runs and "phases" in runs[0] else None
        if best is not None:  # the CLI's own --profile of its fastest run
            ph = best["phases"]
            print(f"  CLI --profile ({name}, {best['wall']:.2f} s): " + "; ".join(
                f"{k} {ph[k]:.2f}" for k in ("start-up", "plan", "prepare", "init compile", "init run", "step limit",
                                            "compile wait", "steps", "checkpoints", "readout") if ph.get(k))
                  + f"; compile {ph['compile']:.2f} s, {ph['compile hidden']:.2f} s of it in the background")
    print(f"  agreement: max |rho_T(CLI) - rho_T(numpy on the engine's draws)| = {r['max_abs_drho']:.1e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny grids (a smoke run)")
    ap.add_argument("--grids", default=None, help="SxB,... e.g. 1x512,8x64,64x8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--numpy-configs", type=int, default=2)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--grouping", action="store_true", help="also the steady state against the seed grouping")
    ap.add_argument("--total", type=int, default=512, help="configurations of the --grouping table")
    ap.add_argument("--baseline", help="the root of another checkout whose CLI is timed in turn (cold), e.g. "
                    "`git archive <commit> | tar -x -C DIR`")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    base = dict(QUICK if args.quick else BASE)
    base.update({k: getattr(args, k) for k in ("d", "n", "steps") if getattr(args, k) is not None})
    grids = QUICK_GRIDS if args.quick else GRIDS
    if args.grids is not None:
        grids = tuple(tuple(int(v) for v in g.split("x")) for g in args.grids.split(",") if g)
    print("spikejax end to end:", suite.machine())
    rows = measure(grids, base, 1 if args.quick else args.rounds, args.numpy_configs,
                   baseline=args.baseline) if grids else []
    grouping = None
    if args.grouping:
        print("\nsteady state against the seed grouping (same configurations, chunk timed in turn with its GEMMs):")
        grouping = seed_grouping(total=8 if args.quick else args.total, seeds_list=(1, 2, 8) if args.quick else (1, 8, 64),
                                 chunk=10 if args.quick else 50, repeat=1 if args.quick else 3,
                                 base=base)
    print("\nend:", suite.machine())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=suite.machine(), rows=rows, grouping=grouping), f, indent=1, default=float)
    return rows


if __name__ == "__main__":
    main()
