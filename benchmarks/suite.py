"""The benchmarks: the engine and its baselines on identical work, in one process, timed in
turn (A B A B ...) so that a load spike from the other users of the machine hits them alike.
`run.py` prints them; `tests/test_benchmarks.py` runs each at tiny size (agreement only).

Every call into `spikejax` goes through the adapter functions of the first section (the
core API is being redesigned: string dynamics and sources become objects; only these
functions need to follow it).

Timings: the best (and the median) of `repeat` rounds after one warm-up call of every case
(compile excluded, except in `complexity` and `compile_times`, which measure it). Baselines
that would take minutes at full size are timed on a subset of configurations and
extrapolated linearly; every row says so.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj

KEY = jax.random.key(0)
# the sweep's key layout for seed 0: directions from KP, w(0) and samples from KS
KP, KS = sj.config_keys(KEY).problem, sj.config_keys(KEY).run

# ======================================================================================
# Adapters: the only calls into spikejax
# ======================================================================================


def problem(d, kappa, *, key=KP, r1=0.25, link="h2", activation="relu", noise=0.1):
    """A spiked single-index problem (spike strength `kappa`, `<u, theta> = d**-r1`)."""
    return sj.make_problem(d, key=key, kappa=kappa, r1=r1, link=link, activation=activation, noise=noise)


def _source(source, n=None, n_used=None, batch=None):
    return {"empirical": lambda: sj.Empirical(n, n_used), "online": lambda: sj.Online(batch),
            "population": sj.Population}[source]()


def trajectory(prob, dynamic, source="population", *, key=KS, dt, steps, n=None, n_used=None, batch=None,
               reduced=False, record=32, solver="euler", rtol=1e-6):
    """One configuration run by the engine: `(final w, rho at the recorded steps)`.
    `dynamic` is `"spherical"`, `"normalized"`, ...; `source` `"population"`, `"empirical"`
    (`n` samples, the first `n_used` counting) or `"online"` (`batch` fresh samples a step);
    `solver` `"euler"` (`steps` steps of `dt`) or `"dopri5"` (the flow to `T = dt * steps`)."""
    solver = sj.Euler() if solver == "euler" else sj.Dopri5(rtol=rtol, atol=rtol * 1e-3)
    tr = sj.simulate(prob, sj.DYNAMICS[dynamic](), _source(source, n, n_used, batch), key=key, solver=solver,
                     dt=dt, steps=steps, reduced=reduced, saveat=sj.SaveAt(steps=record))
    return tr.w, tr.rho


def trajectory_on_prefix(prob, dynamic, *, key, dt, steps, n_max, n):
    """Final rho of an empirical run on the first `n` of the `n_max` samples drawn from `key`
    (its own array shape, so one compile per `n`)."""
    import equinox as eqx

    sim, w0 = sj.prepare(prob, sj.DYNAMICS[dynamic](), sj.Empirical(n_max), key=key, dt=dt, steps=steps)
    z, y, _ = sim.data
    sim = eqx.tree_at(lambda s: s.data, sim, (z[:n], y[:n], None), is_leaf=lambda x: x is None)
    return sj.result(sim, sj.advance(sim, sj.init(sim, w0), steps)).rho[-1]


def engine_data(prob, dynamic, *, key=KS, n):
    """The engine's own draws for one empirical configuration: base draws `z` (n, d) (inputs
    `x = Sigma^{1/2} z`), labels `y` (n,) and `w(0)` (d,)."""
    sim, w0 = sj.prepare(prob, sj.DYNAMICS[dynamic](), sj.Empirical(n), key=key, steps=1)
    return sim.data[0], sim.data[1], w0


def risk_grad(w, z, y, prob, neuron):
    """Gradient of the empirical squared-loss risk of one neuron on base draws `z`;
    `neuron` is `"sigma"` (normalized by `||w||_Sigma`) or `"plain"`."""
    cov = prob.covariance if neuron == "sigma" else None
    return jax.grad(sj.sample_risk)(w, z, y, prob, cov)


def spike_numpy(prob):
    """The spike's fields as float64 numpy: `u, v, c, kappa, scale` (`Sigma = scale (I +
    kappa theta theta^T)`, `theta = c u + sqrt(1 - c^2) v`)."""
    cov = prob.covariance
    u, theta = np.asarray(prob.u, np.float64), np.asarray(cov.theta, np.float64)
    c = float(u @ theta)
    rest = theta - c * u
    v = rest / np.linalg.norm(rest) if np.linalg.norm(rest) > 1e-12 else np.zeros_like(u)
    return {"u": u, "v": v, "c": np.float64(c), "kappa": np.asarray(cov.kappa, np.float64),
            "scale": np.asarray(cov.scale, np.float64)}


def search_n(prob, dynamic, *, n_grid, keys, dt, steps, threshold):
    """The engine's sample-complexity search: `(n*, |rho| at the last step (seeds, sizes))`."""
    found = sj.search_n(prob, sj.DYNAMICS[dynamic](), n_grid=list(n_grid), keys=keys, dt=dt, steps=steps, sign="abs")
    return found.n_star("rho", threshold), np.asarray(found.rho)


def run_sweep(config, **kw):
    """`sj.sweep` in process (an xarray Dataset)."""
    return sj.sweep(config, progress=False, **kw)


def sweep_groups(config, chunk=None, seed_loop=None):
    """The sweep's compiled pieces for each group of a config (dict or TOML path): a list of
    dicts with `init(keys, params) -> (arrays, state)` and `chunk(arrays, state) ->
    (state, status)` (jitted), `keys`, `params`, `chunk_len`, `seeds`, `configs`, `steps`,
    `static`, `runner`. Uses the sweep's internals; `seed_loop` as in `Runner`."""
    from spikejax import internal

    cfg = sj.load_config(config)
    _, groups = sj.plan(cfg)
    steps = cfg["steps"][0]
    chunk = chunk or internal.default_chunk(steps)
    out = []
    for g in groups:
        runner = internal.Runner(g, cfg, chunk, seed_loop=seed_loop)
        params, _ = internal.params_array(g, slice(0, len(g.configs)))
        out.append(dict(init=runner._init, chunk=runner._chunk, keys=internal.seed_keys(g), params=params,
                        chunk_len=chunk, seeds=len(g.seeds), configs=len(g.configs), steps=steps,
                        static=g.static, runner=runner))
    return out


# ======================================================================================
# Timing and the machine
# ======================================================================================


def best_time(fn, *args, repeat=3):
    """Best wall time of `fn(*args)` over `repeat` calls, after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def interleaved(cases, repeat=3, stats=False, clock=time.perf_counter):
    """Times of several `(fn, *args)` cases, timed in turn (A B C A B C ...) `repeat` times
    after one warm-up call each, so that a load spike from other processes hits them alike.
    Returns the best time of each case, or with `stats` `(best, median, warm-up outputs)`.
    `clock=time.process_time` times in process CPU seconds (all threads): a descheduled
    process accrues none, so under heavy load a ratio of CPU times is steadier than one of
    wall times (it still feels the shared caches)."""
    outs = [jax.block_until_ready(fn(*args)) for fn, *args in cases]
    times = [[] for _ in cases]
    for _ in range(repeat):
        for i, (fn, *args) in enumerate(cases):
            t = clock()
            jax.block_until_ready(fn(*args))
            times[i].append(clock() - t)
    best = [min(t) for t in times]
    if stats:
        return best, [float(np.median(t)) for t in times], outs
    return best


def _peak_fn(size=2048):
    a = jax.random.normal(KEY, (size, size), jnp.float32)
    return jax.jit(lambda a: a @ a), a, 2 * size**3


def gemm_peak(size=2048, repeat=5):
    """fp32 GEMM rate (GFLOP/s) of a `size` x `size` matrix product, best of `repeat`."""
    fn, a, flop = _peak_fn(size)
    return flop / best_time(fn, a, repeat=repeat) / 1e9


def gemm_case(seeds, b, d, n):
    """`(fn, args, flop)`: the engine's forward GEMM shape, `seeds` products (b, d) x (d, n)."""
    s = jax.random.normal(KEY, (seeds, b, d), jnp.float32)
    z = jax.random.normal(jax.random.key(1), (seeds, n, d), jnp.float32)
    fn = jax.jit(lambda s, z: jnp.einsum("sbd,snd->sbn", s, z))
    return fn, (s, z), 2 * seeds * b * d * n


def blas():
    """numpy's BLAS as threadpoolctl reports it: one line (library, version, kernel, threads)."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl, or the [bench] extra)"
    rows = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
                     f"{i.get('num_threads')} threads" for i in rows) or "no BLAS found"


def load():
    try:
        return "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load n/a"


def machine():
    """One line: date, CPU, cores, load, versions, backend, BLAS kernel, BLAS env removed."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = sys.modules.get("blasenv")
    unset = ("; unset " + ", ".join(env.UNSET)) if env is not None and env.UNSET else ""
    return (
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, {cpu}, {os.cpu_count()} cores, {load()}, "
        f"python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), numpy {np.__version__}, "
        f"BLAS {blas()}{unset}"
    )


# ======================================================================================
# numpy baselines, written as a competent researcher writes them
# ======================================================================================


def one_blas_thread(fn):
    """`fn` run with numpy's BLAS limited to one thread (threadpoolctl; unchanged without it).
    On 2 shared cores a 2-thread OpenBLAS matrix-vector product waits for its slower thread,
    which another process may hold: one thread is often faster under load."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return fn

    def run(*args):
        with threadpool_limits(1, user_api="blas"):
            return fn(*args)

    return run


def numpy_normalized(z, zt, y, w0, spike, dt, steps):
    """One configuration of the normalized flow (Sigma neuron, ReLU, squared loss) in numpy,
    float32, with the hand-written gradient: preallocated buffers, no dtype conversions in
    the loop, `z` (n, d) and `z^T` (d, n) both kept C-contiguous so that the two
    matrix-vector products a step (`z s` and `z^T r`) read memory in order.

    With `s = Sigma^{1/2} w / N`, `N = ||w||_Sigma`, `r = (relu(z s) - y) relu'(z s) / n` and
    `q = z^T r`: `grad = Sigma^{1/2} q / N - <q, Sigma^{1/2} w> Sigma w / N^3`."""
    f = np.float32
    u, v, c, kappa, scale = (spike[k] for k in ("u", "v", "c", "kappa", "scale"))
    th = (c * u + np.sqrt(max(1 - c * c, 0.0)) * v).astype(f)
    g1, rs, kappa, scale, dt = f(np.sqrt(1 + kappa) - 1), f(np.sqrt(scale)), f(kappa), f(scale), f(dt)
    n, d = z.shape
    inv_n = f(1.0 / n)
    w = np.array(w0, f)
    s, q, new = np.empty(d, f), np.empty(d, f), np.empty(d, f)
    pre, r, on = np.empty(n, f), np.empty(n, f), np.empty(n, bool)
    for _ in range(steps):
        a = w @ th
        norm = np.sqrt(scale * (w @ w + kappa * a * a))
        np.multiply(th, g1 * a, out=s)
        s += w
        s *= rs / norm  # s = Sigma^{1/2} w / N
        np.dot(z, s, out=pre)
        np.maximum(pre, 0, out=r)
        r -= y
        np.greater(pre, 0, out=on)
        np.multiply(r, on, out=r)
        r *= inv_n
        np.dot(zt, r, out=q)
        b = q @ th
        cw = (q @ s) * scale / (norm * norm)  # <q, Sigma^{1/2} w> scale / N^3
        cth = rs / norm * g1 * b - cw * kappa * a
        # w_new = w - dt grad = (1 + dt cw) w - dt (rs / N) q - dt cth theta
        np.multiply(q, -dt * rs / norm, out=new)
        new += th * (-dt * cth)
        new += w * (1 + dt * cw)
        new *= np.sqrt(w @ w) / np.sqrt(new @ new)
        w, new = new, w
    return w


def numpy_spherical(x, xt, y, w0, dt, steps):
    """One configuration of spherical gradient descent (plain neuron, ReLU, squared loss) in
    numpy, float32, preallocated, `x` (n, d) and `x^T` (d, n) both kept C-contiguous:
    `g = x^T r`, `g -= w <w, g>`, `w <- (w - dt g) / ||w - dt g||`."""
    f = np.float32
    n, d = x.shape
    dt, inv_n = f(dt), f(1.0 / n)
    w = np.array(w0, f)
    g = np.empty(d, f)
    pre, r, on = np.empty(n, f), np.empty(n, f), np.empty(n, bool)
    for _ in range(steps):
        np.dot(x, w, out=pre)
        np.maximum(pre, 0, out=r)
        r -= y
        np.greater(pre, 0, out=on)
        np.multiply(r, on, out=r)
        r *= inv_n
        np.dot(xt, r, out=g)
        g -= w * ((w @ g) / (w @ w))
        g *= -dt
        w += g
        w /= np.sqrt(w @ w)
    return w


def numpy_spherical_data(rng, spike, d, n, noise=0.1):
    """A researcher's own data for one spherical configuration, float32: `x = Sigma^{1/2} z`
    (n, d) and its transpose, h2 labels `y = He2(<u, x> / ||u||_Sigma) / sqrt 2 + noise eps`,
    and `w(0)` uniform on the sphere."""
    f = np.float32
    u, v, c, kappa, scale = (spike[k] for k in ("u", "v", "c", "kappa", "scale"))
    th = (c * u + np.sqrt(max(1 - c * c, 0.0)) * v).astype(f)
    z = rng.standard_normal((n, d), dtype=f)
    x = z + np.outer(z @ th, th * f(np.sqrt(1 + kappa) - 1))
    x *= f(np.sqrt(scale))
    xt = np.ascontiguousarray(x.T)
    uu = u.astype(f)
    t = (x @ uu) / f(np.sqrt(scale * (1 + kappa * (u @ th) ** 2)))
    y = (t * t - 1) / f(np.sqrt(2)) + f(noise) * rng.standard_normal(n, dtype=f)
    w0 = rng.standard_normal(d, dtype=f)
    return x, xt, y, w0 / np.sqrt(w0 @ w0)


def spherical_x(z, spike):
    """`x = z Sigma^{1/2}` (float32) for base draws `z` (the engine's own, for agreement)."""
    f = np.float32
    u, v, c, kappa, scale = (spike[k] for k in ("u", "v", "c", "kappa", "scale"))
    th = (c * u + np.sqrt(max(1 - c * c, 0.0)) * v).astype(f)
    z = np.asarray(z, f)
    x = (z + np.outer(z @ th, th * f(np.sqrt(1 + kappa) - 1))) * f(np.sqrt(scale))
    return x, np.ascontiguousarray(x.T)


def numpy_rho(w, spike):
    """`<w, u>_Sigma / (||w||_Sigma ||u||_Sigma)`, the engine's `rho`."""
    u, v, c, kappa, scale = (spike[k] for k in ("u", "v", "c", "kappa", "scale"))
    th = c * u + np.sqrt(max(1 - c * c, 0.0)) * v
    w = np.asarray(w, np.float64)
    inner = lambda a, b: scale * (a @ b + kappa * (a @ th) * (b @ th))
    return float(inner(w, u) / np.sqrt(inner(w, w) * inner(u, u)))


def numpy_run_old(z, y, w0, spike, steps, dt=0.05):
    """The numpy baseline of BENCHMARKS.md's first table (2026-11-28), kept unchanged for
    `diagnose_numpy.py`: float64 `w`, two dtype conversions a step, arrays arriving as JAX
    arrays (converted once per call). `spike` is `spike_numpy(problem)`."""
    u, v, c, kappa, scale = (np.asarray(spike[f], np.float64) for f in ("u", "v", "c", "kappa", "scale"))
    th = c * u + np.sqrt(max(1 - c * c, 0.0)) * v
    g = np.sqrt(1 + kappa)
    z = np.asarray(z)
    y = np.asarray(y)
    n = z.shape[0]
    w = np.asarray(w0, np.float64)
    for _ in range(steps):
        sw = np.sqrt(scale) * (w + (g - 1) * (w @ th) * th)
        norm = np.sqrt(scale * (w @ w + kappa * (w @ th) ** 2))
        s = sw / norm
        pre = z @ s.astype(np.float32)
        r = (np.maximum(pre, 0) - y) * (pre > 0) / n
        gs = (r @ z).astype(np.float64)
        sigma_w = scale * (w + kappa * (w @ th) * th)
        ps = np.sqrt(scale) * (gs + (g - 1) * (gs @ th) * th)
        grad = ps / norm - (gs @ sw) * sigma_w / norm**3
        w_new = w - dt * grad
        w = w_new * (np.linalg.norm(w) / np.linalg.norm(w_new))
    return w


# ======================================================================================
# 1. Empirical sweep: B configurations (a kappa grid) sharing one data seed
# ======================================================================================

DT = 0.05


@functools.lru_cache(maxsize=None)
def _emp_engine(d, n, steps):
    """The engine path: one vmap of `trajectory` over the configurations. They share the key,
    so `z` is unbatched (one GEMM a step: common random numbers)."""

    def one(kappa):
        w, rho = trajectory(problem(d, kappa), "normalized", "empirical", dt=DT, steps=steps, n=n)
        return w, rho[-1]

    return jax.jit(jax.vmap(one))


def _emp_data(d, n, kappas):
    """The engine's own `z` (n, d), labels `y` (B, n) and `w0` (d,), materialised."""
    one = lambda kappa: engine_data(problem(d, kappa), "normalized", n=n)[1:]
    y, w0 = jax.jit(jax.vmap(one))(kappas)
    z = engine_data(problem(d, 1.0), "normalized", n=n)[0]
    return jax.block_until_ready((z, y, w0[0]))


def _jax_body(d):
    """One normalized step in JAX (the engine's gradient), for the two JAX baselines."""

    def step(w, kappa, z, y):
        p = problem(d, kappa)
        w_new = w - DT * risk_grad(w, z, y, p, "sigma")
        return w_new * (jnp.linalg.norm(w) / jnp.linalg.norm(w_new))

    return step


@functools.lru_cache(maxsize=None)
def _single(d, steps):
    """Baseline (b): `jax.jit` of one configuration's `lax.scan`, called in a Python loop."""
    step = _jax_body(d)

    def run(kappa, z, y, w0):
        return jax.lax.scan(lambda w, _: (step(w, kappa, z, y), None), w0, None, length=steps)[0]

    return jax.jit(run)


@functools.lru_cache(maxsize=None)
def _no_crn(d, steps):
    """Baseline (c): `jit(scan(vmap))` with each configuration holding its own copy of the
    data (no common random numbers): a batched matrix-vector product a step."""
    step = jax.vmap(_jax_body(d))

    def run(kappas, zb, yb, w0):
        w = jnp.broadcast_to(w0, (kappas.shape[0], d))
        return jax.lax.scan(lambda w, _: (step(w, kappas, zb, yb), None), w, None, length=steps)[0]

    return jax.jit(run)


def empirical(d=256, n=4096, steps=500, configs=(64, 512), numpy_configs=4, loop_configs=4, no_crn_steps=None,
              check_configs=4, repeat=3, sweep=False, peak=True, peak_size=2048):
    """Benchmark 1: the engine (`vmap` over B configurations sharing `z`) against (a) the
    numpy loop, (b) the jitted single-configuration loop, (c) `jit(scan(vmap))` without
    common random numbers, and the 2048^2 GEMM, all timed in turn in one process.
    Returns one row dict per B."""
    rows = []
    for b in configs:
        kappas = jnp.logspace(0, 2, b)
        z, y, w0 = _emp_data(d, n, kappas)
        zn, yn, w0n = np.asarray(z), np.asarray(y), np.asarray(w0)
        zt = np.ascontiguousarray(zn.T)
        spikes = [spike_numpy(problem(d, k)) for k in kappas[:numpy_configs]]
        m = min(loop_configs, b)
        cs = steps if no_crn_steps is None else no_crn_steps
        zb = jnp.array(np.broadcast_to(zn, (b,) + zn.shape))  # (c): B copies of the data
        single = _single(d, steps)
        np_loop = lambda: [numpy_normalized(zn, zt, yn[i], w0n, spikes[i], DT, steps) for i in range(numpy_configs)]
        cases = [
            (_emp_engine(d, n, steps), kappas),
            (np_loop,),
            (lambda: [single(kappas[i], z, y[i], w0) for i in range(m)],),
            (_no_crn(d, cs), kappas, zb, y, w0),
        ]
        cases.append((one_blas_thread(np_loop),))  # (a') the same loop on one BLAS thread
        if peak:
            pfn, pa, pflop = _peak_fn(peak_size)
            cases.append((pfn, pa))
        best, med, outs = interleaved(cases, repeat=repeat, stats=True)
        del zb
        w_engine, rho_engine = (np.asarray(x) for x in outs[0])
        flop = 4 * n * d * b * steps
        row = dict(configs=b, d=d, n=n, steps=steps, load=load(), engine_s=best[0], engine_s_median=med[0],
                   engine_rate=b * steps / best[0], engine_rate_median=b * steps / med[0],
                   engine_gflops=flop / best[0] / 1e9)
        if peak:
            row["peak_gflops"] = pflop / best[-1] / 1e9
            row["engine_frac_peak"] = row["engine_gflops"] / row["peak_gflops"]
        for key, i, count, st, note in (("numpy", 1, numpy_configs, steps, f"{numpy_configs} configs timed"),
                                        ("loop", 2, m, steps, f"{m} configs timed"),
                                        ("no_crn", 3, b, cs, f"{b} configs x {cs} steps timed"),
                                        ("numpy_1thread", 4, numpy_configs, steps, f"{numpy_configs} configs timed")):
            row[f"{key}_rate"] = count * st / best[i]
            row[f"{key}_rate_median"] = count * st / med[i]
            row[f"{key}_note"] = note
        row["numpy_max_abs_diff"] = float(np.max(np.abs(np.stack(outs[1]) - w_engine[:numpy_configs])))
        row["loop_max_abs_diff"] = float(np.max(np.abs(np.stack([np.asarray(w) for w in outs[2]]) - w_engine[:m])))
        k = min(check_configs, b)
        zc = jnp.array(np.broadcast_to(zn, (k,) + zn.shape))
        wc = _no_crn(d, steps)(kappas[:k], zc, y[:k], w0)
        row["no_crn_max_abs_diff"] = float(np.max(np.abs(np.asarray(wc) - w_engine[:k])))
        if sweep:  # the sweep command path in process (includes its compile)
            cfg = dict(seeds=[0], d=d, n=n, kappa=[float(x) for x in kappas], r1=0.25, noise=0.1, link="h2",
                       activation="relu", dynamic="normalized", source="empirical", dt=DT, steps=steps)
            t = time.perf_counter()
            ds = run_sweep(cfg)
            row["sweep_s"] = time.perf_counter() - t
            row["sweep_max_abs_diff"] = float(np.max(np.abs(np.asarray(ds.rho.isel(step=-1)).reshape(-1) - rho_engine)))
        rows.append(row)
    return rows


def gradient_layouts(d=256, n=4096, configs=(64, 512), peak=None, repeat=5):
    """Profile of benchmark 1's hot path: `vmap(grad(risk))` over B configurations sharing `z`,
    written as `z @ s` (JAX's default: the batch lands last, (n, B), and the backward GEMM
    contracts `z`'s leading axis) and as the engine's `s @ z^T` (forward `S z^T`, backward
    `R z`). Reports the dots XLA compiled and their GFLOP/s (4 n d flops per configuration).
    Pure JAX (no engine call): what XLA makes of the two layouts."""
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


# ======================================================================================
# 2. Population sweep: the 3-coordinate form and the d-dimensional closed form
# ======================================================================================


def _pop_one(d, steps, reduced, dynamic="normalized", solver="euler"):
    def one(kappa):
        return trajectory(problem(d, kappa, key=KEY), dynamic, key=KEY, dt=0.1, steps=steps, reduced=reduced,
                          solver=solver)[1][-1]

    return one


def population(configs=(10_000, 100_000), steps=1000, d=1024, full_configs=10_000, full_steps=100,
               loop_configs=20, dims=(64, 256, 1024, 4096), dim_configs=1000, dim_steps=100, repeat=2):
    """Benchmark 2. Returns `(rows, per_dim)`: rates per form and size (the engine and the
    jitted single-configuration loop timed in turn), and the cost per configuration-step
    (ns) against `d` for both forms."""
    rows = []
    single = jax.jit(_pop_one(d, steps, True))
    for b in configs:
        kappas = jnp.logspace(0, 3, b)
        fn = jax.jit(jax.vmap(_pop_one(d, steps, True)))
        m = min(loop_configs, b)
        best, med, outs = interleaved([(fn, kappas), (lambda: [single(k) for k in kappas[:m]],)], repeat=repeat,
                                      stats=True)
        rho = np.asarray(outs[0])
        rows.append(dict(form="3-coordinate", configs=b, steps=steps, d=d, rate=b * steps / best[0], seconds=best[0],
                         loop_rate=m * steps / best[1], loop_note=f"{m} configs timed, extrapolated",
                         loop_max_abs_diff=float(np.max(np.abs(np.stack(outs[1]) - rho[:m]))), load=load()))
    # the flow to rtol 1e-6 (Dopri5) over the same horizon T = 0.1 * steps, timed in turn with
    # Euler: its rate counts the Euler steps it replaces ("equivalent config-steps")
    b = configs[-1]
    kappas = jnp.logspace(0, 3, b)
    flow = jax.jit(jax.vmap(_pop_one(d, steps, True, solver="dopri5")))
    euler = jax.jit(jax.vmap(_pop_one(d, steps, True)))
    best, _, outs = interleaved([(flow, kappas), (euler, kappas)], repeat=repeat, stats=True)
    rows.append(dict(form="3-coordinate, Dopri5 flow", configs=b, steps=steps, d=d, rate=b * steps / best[0],
                     seconds=best[0], euler_rate=b * steps / best[1],
                     euler_max_abs_diff=float(np.max(np.abs(np.asarray(outs[0]) - np.asarray(outs[1])))), load=load()))
    # the d-dimensional form: O(d) a step and (configs, d) state, so fewer configs and steps
    kappas = jnp.logspace(0, 3, full_configs)
    fn = jax.jit(jax.vmap(_pop_one(d, full_steps, False)))
    t = best_time(fn, kappas, repeat=repeat)
    full = np.asarray(fn(kappas))
    red = np.asarray(jax.jit(jax.vmap(_pop_one(d, full_steps, True)))(kappas))
    rows.append(dict(form=f"d-dimensional (d={d})", configs=full_configs, steps=full_steps, d=d,
                     rate=full_configs * full_steps / t, seconds=t,
                     reduced_max_abs_diff=float(np.max(np.abs(full - red)))))
    per_dim = []
    sizes = {"3-coordinate": (True, 10 * dim_configs, 10 * dim_steps), "d-dimensional": (False, dim_configs, dim_steps)}
    for dim in dims:
        out = dict(d=dim)
        for name, (reduced, b, n_steps) in sizes.items():
            fn = jax.jit(jax.vmap(_pop_one(dim, n_steps, reduced)))
            out[name] = 1e9 * best_time(fn, jnp.logspace(0, 3, b), repeat=repeat) / (b * n_steps)
        per_dim.append(out)
    return rows, per_dim


# ======================================================================================
# 3. Sample-complexity search: 8 sample sizes x 8 seeds
# ======================================================================================


def complexity(d=64, sizes=tuple(int(64 * 2 ** (k / 2)) for k in range(8)), seeds=8, steps=300,
               kappa=20.0, threshold=0.9, engine_search=True):
    """Benchmark 3: one compiled call over (seed, n) via `n_used` padding against one compiled
    call per sample size (each at its own shape, on the first n of the same draws). Both wall
    times include compilation. `n*` is the smallest n whose median |rho(w_T)| over seeds
    reaches `threshold`. The two paths sum the loss in different orders (masked weights
    against a mean), and at small n some runs are chaotic (a 1e-14 change of w0 moves the
    final rho by 0.6, float64), so agreement is reported as the max |rho| difference, the
    fraction of runs within 1e-3, and the same n*."""
    p = problem(d, kappa, key=KEY, r1=0.0)
    keys = jax.random.split(jax.random.key(1), seeds)
    n_max = max(sizes)
    ns = jnp.asarray(sizes, jnp.float32)

    def padded(keys, ns):
        def one(key, m):
            return trajectory(p, "normalized", "empirical", key=key, dt=0.2, steps=steps, n=n_max, n_used=m)[1][-1]

        return jax.vmap(lambda k: jax.vmap(lambda m: one(k, m))(ns))(keys)

    t = time.perf_counter()
    rho_pad = np.asarray(jax.jit(padded)(keys, ns))  # (seeds, sizes)
    t_pad = time.perf_counter() - t

    def separate(n):
        return jax.jit(jax.vmap(lambda key: trajectory_on_prefix(p, "normalized", key=key, dt=0.2, steps=steps,
                                                                  n_max=n_max, n=n)))

    t = time.perf_counter()
    rho_sep = np.stack([np.asarray(separate(n)(keys)) for n in sizes], axis=1)
    t_sep = time.perf_counter() - t

    def n_star(rho):
        ok = np.median(np.abs(rho), axis=0) >= threshold
        return int(np.asarray(sizes)[np.argmax(ok)]) if ok.any() else None

    out = {}
    if engine_search:
        t = time.perf_counter()
        star, rho_found = search_n(p, "normalized", n_grid=sizes, keys=keys, dt=0.2, steps=steps, threshold=threshold)
        out = dict(search_n_s=time.perf_counter() - t, search_n_star=star,
                   search_n_agree_frac=float(np.mean(np.abs(rho_found - np.abs(rho_pad)) < 1e-3)))
    return dict(**out, d=d, sizes=list(sizes), seeds=seeds, steps=steps, padded_s=t_pad, separate_s=t_sep,
                max_abs_diff=float(np.max(np.abs(np.abs(rho_pad) - np.abs(rho_sep)))),
                agree_frac=float(np.mean(np.abs(rho_pad - rho_sep) < 1e-3)), n_star_padded=n_star(rho_pad),
                n_star_separate=n_star(rho_sep))


# ======================================================================================
# 4. Compile time against steps and grid size; memory per configuration
# ======================================================================================


def _compile_case(kind, d, steps, configs, n=1024):
    if kind == "population (3-coordinate)":
        one = _pop_one(d, steps, True)
    else:

        def one(kappa):
            return trajectory(problem(d, kappa), "normalized", "empirical", key=KEY, dt=DT, steps=steps, n=n)[1][-1]

    kappas = jnp.logspace(0, 2, configs)
    t = time.perf_counter()
    compiled = jax.jit(jax.vmap(one)).lower(kappas).compile()
    seconds = time.perf_counter() - t
    return seconds, compiled_bytes(compiled)


def compiled_bytes(compiled):
    """XLA's buffer total (temporaries + arguments + outputs) of a compiled call, or None."""
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes


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
    group of each config file, at the full grid width; a row says "error" if the sweep's
    internals changed shape."""
    import tomllib

    rows = []
    for path in paths:
        with open(path, "rb") as f:
            if "experiment" in tomllib.load(f):  # a sample-complexity experiment, not a sweep
                continue
        try:
            for g in sweep_groups(path):
                t = time.perf_counter()
                g["init"].lower(g["keys"], g["params"]).compile()
                t_init = time.perf_counter() - t
                arrays, state = g["init"](g["keys"], g["params"])
                t = time.perf_counter()
                g["chunk"].lower(arrays, state).compile()
                t_chunk = time.perf_counter() - t
                rows.append(dict(config=os.path.basename(path), group=str(g["static"].get("dynamic")),
                                 steps=g["steps"], chunk=g["chunk_len"], configs=g["seeds"] * g["configs"],
                                 init_s=t_init, chunk_s=t_chunk))
        except Exception as err:  # noqa: BLE001 - report, never abort the benchmark run
            rows.append(dict(config=os.path.basename(path), error=repr(err)))
    return rows
