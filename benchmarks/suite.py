"""The four benchmarks of issue 4, each timing the engine and its baselines on identical work
in one process and checking that they agree. `run.py` prints them; the test suite runs
them at tiny sizes (`tests/test_benchmarks.py`).

Timings are the best of `repeat` runs after a warm-up call (so compile time is excluded,
except in `complexity` and `compile_times`, which measure it). Baselines that would take
minutes at full size are timed on a subset and extrapolated linearly; every row says so.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj

KEY = jax.random.key(0)
# the sweep's key convention for seed 0: directions from KP, w(0) and samples from KS
KP, KS = jax.random.fold_in(KEY, 0), jax.random.fold_in(KEY, 1)


def best_time(fn, *args, repeat=3):
    """Best wall time of `fn(*args)` over `repeat` calls, after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def _peak_fn(size=2048):
    a = jax.random.normal(KEY, (size, size), jnp.float32)
    return jax.jit(lambda a: a @ a), a, 2 * size**3


def gemm_peak(size=2048, repeat=5):
    """fp32 GEMM rate (GFLOP/s) of a `size` x `size` matrix product, best of `repeat`."""
    fn, a, flop = _peak_fn(size)
    return flop / best_time(fn, a, repeat=repeat) / 1e9


def interleaved(cases, repeat=3):
    """Best times of several `(fn, *args)` cases, timed in turn `repeat` times, so that a load
    spike from other processes hits them alike (ratios between them are what counts)."""
    for fn, *args in cases:
        jax.block_until_ready(fn(*args))
    best = [np.inf] * len(cases)
    for _ in range(repeat):
        for i, (fn, *args) in enumerate(cases):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def machine():
    """One line: date, CPU, cores, load, versions, backend."""
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load n/a"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, {cpu}, {os.cpu_count()} cores, {load}, "
        f"python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), numpy {np.__version__}"
    )


# --------------------------------------------------------------------------------------
# 1. Empirical sweep: B configurations (a kappa grid) sharing one data seed
# --------------------------------------------------------------------------------------

DT = 0.05


def _emp_problem(d, kappa):
    return sj.make_problem(d, key=KP, kappa=kappa, r1=0.25, link="h2", activation="relu", noise=0.1)


def _emp_one(d, n, steps):
    """One configuration of the engine's empirical run: prepare/init/advance/result, final `w`."""

    def one(kappa):
        sim, w0 = sj.prepare(_emp_problem(d, kappa), "normalized", "empirical", key=KS, dt=DT, steps=steps, n=n)
        tr = sj.result(sim, sj.advance(sim, sj.init(sim, w0), steps))
        return tr.w, tr.rho[-1]

    return one


@functools.lru_cache(maxsize=None)
def _emp_engine(d, n, steps):
    """The engine path: one vmap of prepare/init/advance/result over the configurations. The
    configurations share the key, so `z` is unbatched (one GEMM a step) and the step counter
    and record pointer stay unbatched (recording is a real `lax.cond`)."""
    return jax.jit(jax.vmap(_emp_one(d, n, steps)))


def _emp_data(d, n, kappas):
    """The engine's own `z` (n, d), labels `y` (B, n) and `w0` (d,), for the baselines."""

    def one(kappa):
        sim, w0 = sj.prepare(_emp_problem(d, kappa), "normalized", "empirical", key=KS, dt=DT, steps=1, n=n)
        return sim.data[1], w0

    y, w0 = jax.jit(jax.vmap(one))(kappas)
    sim, _ = sj.prepare(_emp_problem(d, 1.0), "normalized", "empirical", key=KS, dt=DT, steps=1, n=n)
    return sim.data[0], y, w0[0]


def _numpy_run(z, y, w0, spike, steps):
    """Baseline (a): what a researcher writes in numpy, one configuration, normalized flow,
    sigma neuron, ReLU, squared loss, hand-written gradient."""
    u, v, c, kappa, scale = (np.asarray(getattr(spike, f), np.float64) for f in ("u", "v", "c", "kappa", "scale"))
    th = c * u + np.sqrt(max(1 - c * c, 0.0)) * v
    g = np.sqrt(1 + kappa)
    z = np.asarray(z)
    y = np.asarray(y)
    n = z.shape[0]
    w = np.asarray(w0, np.float64)
    for _ in range(steps):
        sw = np.sqrt(scale) * (w + (g - 1) * (w @ th) * th)  # Sigma^{1/2} w
        norm = np.sqrt(scale * (w @ w + kappa * (w @ th) ** 2))  # ||w||_Sigma
        s = sw / norm
        pre = z @ s.astype(np.float32)
        r = (np.maximum(pre, 0) - y) * (pre > 0) / n
        gs = (r @ z).astype(np.float64)  # dR/ds
        sigma_w = scale * (w + kappa * (w @ th) * th)
        ps = np.sqrt(scale) * (gs + (g - 1) * (gs @ th) * th)
        grad = ps / norm - (gs @ sw) * sigma_w / norm**3
        w_new = w - DT * grad
        w = w_new * (np.linalg.norm(w) / np.linalg.norm(w_new))
    return w


@functools.lru_cache(maxsize=None)
def _no_crn(d, steps):
    """Baseline (c): jit(scan(vmap(grad))) with each configuration holding its own copy of the
    data (no common random numbers): a batched matrix-vector product a step."""

    def run(kappas, zb, yb, w0):
        problems = jax.vmap(lambda k: _emp_problem(d, k))(kappas)
        grad = jax.vmap(lambda w, z, y, p: jax.grad(sj.sample_risk)(w, z, y, p, p.spike))

        def body(w, _):
            w_new = w - DT * grad(w, zb, yb, problems)
            return w_new * (jnp.linalg.norm(w, axis=-1) / jnp.linalg.norm(w_new, axis=-1))[:, None], None

        w = jnp.broadcast_to(w0, (kappas.shape[0], d))
        return jax.lax.scan(body, w, None, length=steps)[0]

    return jax.jit(run)


def empirical(d=256, n=4096, steps=500, configs=(64, 512), peak=None, numpy_configs=2, numpy_steps=None,
              loop_configs=4, no_crn_steps=None, check_configs=4, repeat=2, sweep=True):
    """Benchmark 1. Returns a list of row dicts (one per configuration count)."""
    fixed_peak = peak
    rows = []
    for b in configs:
        kappas = jnp.logspace(0, 2, b)
        flop = 4 * n * d * b * steps
        engine = _emp_engine(d, n, steps)
        if fixed_peak is None:  # the GEMM peak timed in turn with the engine
            pfn, pa, pflop = _peak_fn()
            t_peak, t_engine = interleaved([(pfn, pa), (engine, kappas)], repeat=repeat)
            peak = pflop / t_peak / 1e9
        else:
            t_engine = best_time(engine, kappas, repeat=repeat)
        w_engine, rho_engine = (np.asarray(x) for x in engine(kappas))
        z, y, w0 = _emp_data(d, n, kappas)
        row = dict(configs=b, d=d, n=n, steps=steps, peak_gflops=peak, engine_s=t_engine,
                   engine_rate=b * steps / t_engine, engine_gflops=flop / t_engine / 1e9)
        row["engine_frac_peak"] = row["engine_gflops"] / peak
        # (a) numpy loop, a few configurations (and steps), extrapolated
        ns = steps if numpy_steps is None else numpy_steps
        t = time.perf_counter()
        ws = [_numpy_run(z, y[i], w0, _emp_problem(d, kappas[i]).spike, ns) for i in range(numpy_configs)]
        row["numpy_rate"] = numpy_configs * ns / (time.perf_counter() - t)
        row["numpy_note"] = f"{numpy_configs} configs x {ns} steps, extrapolated"
        if ns == steps:
            row["numpy_max_abs_diff"] = float(np.max(np.abs(np.stack(ws) - w_engine[:numpy_configs])))
        # (b) jitted single configuration in a Python loop
        single = jax.jit(_emp_one(d, n, steps))
        jax.block_until_ready(single(kappas[0]))
        t = time.perf_counter()
        wb = [single(k)[0] for k in kappas[:loop_configs]]
        jax.block_until_ready(wb)
        row["loop_rate"] = loop_configs * steps / (time.perf_counter() - t)
        row["loop_note"] = f"{loop_configs} configs timed, extrapolated"
        row["loop_max_abs_diff"] = float(np.max(np.abs(np.stack(wb) - w_engine[:loop_configs])))
        # (c) no common random numbers: per-configuration copies of z
        cs = steps if no_crn_steps is None else no_crn_steps
        zb = jnp.asarray(np.broadcast_to(np.asarray(z), (b,) + z.shape))
        t_c = best_time(_no_crn(d, cs), kappas, zb, y, w0, repeat=1)
        del zb
        row["no_crn_rate"] = b * cs / t_c
        row["no_crn_note"] = f"{cs} steps timed" + ("" if cs == steps else ", rate per config-step")
        m = min(check_configs, b)
        zc = jnp.asarray(np.broadcast_to(np.asarray(z), (m,) + z.shape))
        wc = _no_crn(d, steps)(kappas[:m], zc, y[:m], w0)
        del zc
        row["no_crn_max_abs_diff"] = float(np.max(np.abs(np.asarray(wc) - w_engine[:m])))
        # the sweep command path (includes its compile, chunked host loop and bookkeeping)
        if sweep and hasattr(sj, "sweep"):
            cfg = dict(seeds=[0], d=d, n=n, kappa=[float(k) for k in kappas], r1=0.25, noise=0.1, link="h2",
                       activation="relu", dynamic="normalized", source="empirical", dt=DT, steps=steps)
            t = time.perf_counter()
            ds = sj.sweep(cfg, progress=False)
            row["sweep_s"] = time.perf_counter() - t
            rho_sweep = np.asarray(ds.rho.isel(step=-1)).reshape(-1)
            row["sweep_max_abs_diff"] = float(np.max(np.abs(rho_sweep - rho_engine)))
        rows.append(row)
    return rows


def gradient_layouts(d=256, n=4096, configs=(64, 512), peak=None, repeat=5):
    """Profile of benchmark 1's hot path: `vmap(grad(risk))` over B configurations sharing `z`,
    written as `z @ s` (JAX's default: the batch lands last, (n, B), and the backward GEMM
    contracts `z`'s leading axis) and as the engine's `s @ z^T` (forward `S z^T`, backward
    `R z`). Reports the dots XLA compiled and their GFLOP/s (4 n d flops per configuration)."""
    import re

    z = jax.random.normal(KEY, (n, d), jnp.float32)
    forms = (("z @ s", lambda z, s: z @ s), ("s @ z^T (engine)", lambda z, s: s @ z.T))
    pfn, pa, pflop = _peak_fn()
    rows = []
    for b in configs:
        w = jax.random.normal(jax.random.key(1), (b, d), jnp.float32)
        y = jax.random.normal(jax.random.key(2), (b, n), jnp.float32)
        fns = []
        for _, project in forms:
            def risk(w, y, z, project=project):
                pre = project(z, w / jnp.linalg.norm(w))
                return 0.5 * jnp.mean((jnp.maximum(pre, 0) - y) ** 2)

            fns.append(jax.jit(jax.vmap(jax.grad(risk), in_axes=(0, 0, None))))
        times = interleaved([(pfn, pa)] + [(fn, w, y, z) for fn in fns], repeat=repeat)
        pk = pflop / times[0] / 1e9 if peak is None else peak
        for (name, _), fn, t in zip(forms, fns, times[1:]):
            hlo = fn.lower(w, y, z).compile().as_text()
            dots = sorted(set(re.findall(r"f32\[([0-9,]+)\]\{[0-9,]+\} dot\([^)]*\), (lhs_contracting_dims=\{\d\}, "
                                         r"rhs_contracting_dims=\{\d\})", hlo)))
            gf = 4 * n * d * b / t / 1e9
            rows.append(dict(configs=b, form=name, gflops=gf, frac_peak=gf / pk, peak_gflops=pk,
                             dots=["(" + shape + ") " + dims for shape, dims in dots]))
    return rows


# --------------------------------------------------------------------------------------
# 2. Population sweep: the 3-coordinate form and the d-dimensional closed form
# --------------------------------------------------------------------------------------


def _pop_one(d, steps, reduced, dynamic="normalized"):
    def one(kappa):
        p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.25, link="h2", activation="relu", noise=0.1)
        return sj.simulate(p, dynamic, key=KEY, dt=0.1, steps=steps, reduced=reduced).rho[-1]

    return one


def population(configs=(10_000, 100_000), steps=1000, d=1024, full_configs=10_000, full_steps=100,
               loop_configs=20, dims=(64, 256, 1024, 4096), dim_configs=1000, dim_steps=100, repeat=2):
    """Benchmark 2. Returns `(rows, per_dim)`: rates per form and size, and the cost per
    configuration-step (ns) against `d` for both forms."""
    rows = []
    single = jax.jit(_pop_one(d, steps, True))
    for b in configs:
        kappas = jnp.logspace(0, 3, b)
        fn = jax.jit(jax.vmap(_pop_one(d, steps, True)))
        t = best_time(fn, kappas, repeat=repeat)
        rho = np.asarray(fn(kappas))
        m = min(loop_configs, b)
        single(kappas[0]).block_until_ready()
        t0 = time.perf_counter()
        looped = [single(k) for k in kappas[:m]]
        jax.block_until_ready(looped)
        t_loop = time.perf_counter() - t0
        rows.append(dict(form="3-coordinate", configs=b, steps=steps, d=d, rate=b * steps / t, seconds=t,
                         loop_rate=m * steps / t_loop, loop_note=f"{m} configs timed, extrapolated",
                         loop_max_abs_diff=float(np.max(np.abs(np.stack(looped) - rho[:m])))))
    # the d-dimensional form: O(d) a step and (configs, d) state, so fewer configs and steps
    kappas = jnp.logspace(0, 3, full_configs)
    fn = jax.jit(jax.vmap(_pop_one(d, full_steps, False)))
    t = best_time(fn, kappas, repeat=repeat)
    full = np.asarray(fn(kappas))
    red = np.asarray(jax.jit(jax.vmap(_pop_one(d, full_steps, True)))(kappas))
    rows.append(dict(form=f"d-dimensional (d={d})", configs=full_configs, steps=full_steps, d=d,
                     rate=full_configs * full_steps / t, seconds=t,
                     reduced_max_abs_diff=float(np.max(np.abs(full - red)))))
    # cost per configuration-step against d: the 3-coordinate form over enough steps that
    # its O(d) setup (directions, w0, the reduction) is amortised, as in a real sweep
    per_dim = []
    sizes = {"3-coordinate": (True, 10 * dim_configs, 10 * dim_steps), "d-dimensional": (False, dim_configs, dim_steps)}
    for dim in dims:
        out = dict(d=dim)
        for name, (reduced, b, n_steps) in sizes.items():
            fn = jax.jit(jax.vmap(_pop_one(dim, n_steps, reduced)))
            out[name] = 1e9 * best_time(fn, jnp.logspace(0, 3, b), repeat=repeat) / (b * n_steps)
        per_dim.append(out)
    return rows, per_dim


# --------------------------------------------------------------------------------------
# 3. Sample-complexity search: 8 sample sizes x 8 seeds
# --------------------------------------------------------------------------------------


def complexity(d=64, sizes=tuple(int(64 * 2 ** (k / 2)) for k in range(8)), seeds=8, steps=300,
               kappa=20.0, threshold=0.9):
    """Benchmark 3: one compiled call over (seed, n) via `n_used` padding against one compiled
    call per sample size (each at its own shape, on the first n of the same draws). Both wall
    times include compilation. `n*` is the smallest n whose median |rho(w_T)| over seeds
    reaches `threshold`. The two paths sum the loss in different orders (masked weights
    against a mean), and at small n some runs are chaotic (a 1e-14 change of w0 moves the
    final rho by 0.6, float64), so agreement is reported as the max |rho| difference, the
    fraction of runs within 1e-3, and the same n*."""
    p = sj.make_problem(d, key=KEY, kappa=kappa, r1=0.0, link="h2", activation="relu", noise=0.1)
    keys = jax.random.split(jax.random.key(1), seeds)
    n_max = max(sizes)
    ns = jnp.asarray(sizes, jnp.float32)

    def padded(keys, ns):
        def one(key, m):
            return sj.simulate(p, "normalized", "empirical", key=key, dt=0.2, steps=steps, n=n_max, n_used=m).rho[-1]

        return jax.vmap(lambda k: jax.vmap(lambda m: one(k, m))(ns))(keys)

    t = time.perf_counter()
    rho_pad = np.asarray(jax.jit(padded)(keys, ns))  # (seeds, sizes)
    t_pad = time.perf_counter() - t

    def separate(n):
        def one(key):  # the first n of the same draws: the same data sets as the padded run
            sim, w0 = sj.prepare(p, "normalized", "empirical", key=key, dt=0.2, steps=steps, n=n_max)
            z, y, _ = sim.data
            sim = eqx.tree_at(lambda s: s.data, sim, (z[:n], y[:n], None), is_leaf=lambda x: x is None)
            return sj.result(sim, sj.advance(sim, sj.init(sim, w0), steps)).rho[-1]

        return jax.jit(jax.vmap(one))

    t = time.perf_counter()
    rho_sep = np.stack([np.asarray(separate(n)(keys)) for n in sizes], axis=1)
    t_sep = time.perf_counter() - t

    def n_star(rho):
        ok = np.median(np.abs(rho), axis=0) >= threshold
        return int(np.asarray(sizes)[np.argmax(ok)]) if ok.any() else None

    out = {}
    if hasattr(sj, "search_n"):  # the engine's command path for this search
        t = time.perf_counter()
        found = sj.search_n(p, "normalized", n_grid=list(sizes), keys=keys, dt=0.2, steps=steps, sign="abs")
        out = dict(search_n_s=time.perf_counter() - t, search_n_star=found.n_star("rho", threshold),
                   search_n_agree_frac=float(np.mean(np.abs(found.rho - np.abs(rho_pad)) < 1e-3)))
    return dict(**out, d=d, sizes=list(sizes), seeds=seeds, steps=steps, padded_s=t_pad, separate_s=t_sep,
                max_abs_diff=float(np.max(np.abs(np.abs(rho_pad) - np.abs(rho_sep)))),
                agree_frac=float(np.mean(np.abs(rho_pad - rho_sep) < 1e-3)), n_star_padded=n_star(rho_pad),
                n_star_separate=n_star(rho_sep))


# --------------------------------------------------------------------------------------
# 4. Compile time against steps and grid size; memory per configuration
# --------------------------------------------------------------------------------------


def _compile_case(kind, d, steps, configs, n=1024):
    if kind == "population (3-coordinate)":
        one = _pop_one(d, steps, True)
    else:

        def one(kappa):
            p = _emp_problem(d, kappa)
            return sj.simulate(p, "normalized", "empirical", key=KEY, dt=DT, steps=steps, n=n).rho[-1]

    kappas = jnp.logspace(0, 2, configs)
    t = time.perf_counter()
    compiled = jax.jit(jax.vmap(one)).lower(kappas).compile()
    seconds = time.perf_counter() - t
    mem = compiled.memory_analysis()
    total = None
    if mem is not None:
        total = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
    return seconds, total


KINDS = ("population (3-coordinate)", "empirical (n=1024)")


def compile_times(steps_list=(100, 1000, 10_000, 100_000), configs_list=(1, 64, 1024), d=256, kinds=KINDS):
    """Benchmark 4: trace + compile seconds, and XLA's buffer total (temp + arguments +
    outputs) per configuration, for a population and an empirical sweep."""
    rows = []
    for kind in kinds:
        for steps in steps_list:
            s, mem = _compile_case(kind, d, steps, configs_list[-1])
            rows.append(dict(kind=kind, steps=steps, configs=configs_list[-1], seconds=s,
                             bytes_per_config=None if mem is None else mem / configs_list[-1]))
        for b in configs_list[:-1]:
            s, mem = _compile_case(kind, d, steps_list[0], b)
            rows.append(dict(kind=kind, steps=steps_list[0], configs=b, seconds=s,
                             bytes_per_config=None if mem is None else mem / b))
    return rows


def config_compile_times(paths):
    """Compile seconds of the sweep's two compiled functions (init and one chunk) for every
    group of each config file, at the full grid width. Uses the sweep's internals (`plan`,
    `Runner`); a row says "error" if they changed shape."""
    from spikejax import _config, _sweep

    rows = []
    import tomllib

    for path in paths:
        with open(path, "rb") as f:
            if "experiment" in tomllib.load(f):  # a sample-complexity experiment, not a sweep
                continue
        try:
            cfg = _config.load_config(path)
            _, groups = _sweep.plan(cfg)
            steps = cfg["steps"][0]
            chunk = _sweep.default_chunk(steps)
            for g in groups:
                runner = _sweep.Runner(g, cfg, chunk)
                keys = _sweep.seed_keys(g)
                params, _ = _sweep.params_array(g, slice(0, len(g.configs)))
                t = time.perf_counter()
                runner._init.lower(keys, params).compile()
                t_init = time.perf_counter() - t
                state = runner._init(keys, params)
                t = time.perf_counter()
                runner._chunk.lower(keys, params, state).compile()
                t_chunk = time.perf_counter() - t
                rows.append(dict(config=os.path.basename(path), group=str(g.static.get("dynamic")), steps=steps,
                                 chunk=chunk, configs=len(g.seeds) * len(g.configs), init_s=t_init, chunk_s=t_chunk))
        except Exception as err:  # noqa: BLE001 - report, never abort the benchmark run
            rows.append(dict(config=os.path.basename(path), error=repr(err)))
    return rows
