"""Running a planned sweep: vmap, shard, chunk, checkpoint, resume.

A group runs as `seeds x C` nested vmaps: the outer one over seeds, the inner one over the
other C configurations with the seed's key unbatched, so the base draws `z` are shared
inside a seed (common random numbers: one GEMM a step instead of C matvecs). The time
loop is a `lax.scan` of static length `chunk`, driven by a host loop that updates the
progress bar and writes a checkpoint after every chunk; batches are sharded over
`jax.devices()`. Phase 2 (a validated ridge readout, `n2`) is a hook run on each batch's
trained first layer. A configuration's randomness depends only on its seed, so its result
does not depend on the grid, the chunk length, the batch size or the number of devices.

Planning lives in `_plan.py`, the dataset in `_results.py`.
"""

from __future__ import annotations

import contextlib

import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._config import load_config
from ._io import Store, load_results
from ._problem import make_problem
from ._readout import fit_readout
from ._registry import DYNAMICS, INPUTS
from ._saveat import METRICS, SaveAt, record_schedule
from ._simulate import advance, init, prepare, result, state_axes, step_limit
from ._solvers import Dopri5, Euler
from ._sources import Empirical, Online, Population, Reused
from ._data import config_keys
from ._inputs import StudentT
from ._plan import ARRAY_KEYS, Group, SweepPlan, default_chunk, make_mesh, network_from, plan, preflight  # noqa: F401
from ._results import SWEEP_STATUS, _failed_batch, empty_results, scatter, to_dataset  # noqa: F401


class Runner:
    """The compiled functions of one group; `init` and `chunk` act on (seeds, C) arrays."""

    def __init__(self, group: Group, config: dict, chunk: int, mesh=None):
        st = group.static
        self.steps, self.record = config["steps"][0], config["record"][0]
        self.record_count = len(record_schedule(self.steps, self.record))
        self.chunk = chunk
        use_n = st["source"] == "empirical"
        masked = use_n and len(np.unique(group.values["n"])) > 1

        net = network_from(st)  # a width-m network trained as a whole, or None (independent neurons)
        width = 1 if net is not None else st["width"]

        dynamic = DYNAMICS[st["dynamic"]]()
        if st["source"] == "empirical":
            source = lambda p: Empirical(group.n_pad, p["n"] if masked else None)
        elif st["source"] == "online":
            source = lambda p: Online(st["batch"])
        elif st["source"] == "reused":
            source = lambda p: Reused(st["batch"], st["reuse"])
        else:
            source = lambda p: Population()
        solver_name = st["solver"]
        if solver_name == "auto":
            solver_name = "dopri5" if st["source"] == "population" else "euler"
        solver = Dopri5(rtol=st["rtol"], atol=st["rtol"] * 1e-3) if solver_name == "dopri5" else Euler()
        inputs = StudentT(st["nu"]) if st["input_dist"] == "student_t" else INPUTS[st["input_dist"]]()
        self.adaptive = solver.adaptive

        def build(seed_key, p, neuron=None):
            """`(problem, simulation, w0)`; neuron i of a width-m layer draws `w(0)` from
            `fold_in(key, 3 + i)` and shares the samples with the other neurons."""
            keys = config_keys(seed_key)
            kp, ks = keys.problem, keys.run
            spike = {"kappa": p["kappa"]} if "kappa" in p else {"r2": p["r2"]}
            problem = make_problem(
                st["d"], key=kp, r1=p["r1"], link=st["link"], activation=st["activation"],
                loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=inputs, **spike,
            )
            init_key = None if neuron is None else keys.neuron(neuron)
            sim, w0 = prepare(
                problem, dynamic, source(p), key=ks, solver=solver, dt=p["dt"], steps=self.steps,
                saveat=SaveAt(steps=self.record), n_unlabelled=st["n_unlabelled"],
                reduced=st["reduced"], max_norm=st["max_norm"], init_key=init_key, network=net,
            )
            return problem, sim, w0

        sax = state_axes(solver)
        neurons = jnp.arange(width)

        def per_neuron(f, *state, out=sax):
            """`f(neuron, ...)` for one neuron, or vmapped over the `width` neurons."""
            if width == 1:
                return f(None, *state)
            axes = (0,) + (sax,) * len(state)
            return jax.vmap(f, axes, out)(neurons, *state)

        def init_one(seed_key, p):
            return per_neuron(lambda i: init(*build(seed_key, p, i)[1:]))

        def chunk_one(seed_key, p, state):
            return per_neuron(lambda i, s: advance(build(seed_key, p, i)[1], s, chunk), state)

        def readout_one(seed_key, p, state):
            """Phase 2 on the trained first layer: `test_mse` of a validated ridge readout."""
            problem, sim, _ = build(seed_key, p)
            lift = lambda i, s: result(build(seed_key, p, i)[1], s).w
            w = lift(None, state)[None] if width == 1 else jax.vmap(lift, (0, sax))(neurons, state)
            fit = fit_readout(config_keys(seed_key).readout, problem, w, n2=st["n2"], n_val=st["n_val"],
                              n_test=st["n_test"], neuron=sim.neuron, sigma_hat=sim.sigma_hat)
            return fit.test_mse

        def status_one(seed_key, p, state):
            """The final status: `result` adds `oscillating` and `max_steps` to the state's."""
            return per_neuron(lambda i, s: result(build(seed_key, p, i)[1], s).status, state, out=0)

        nest = lambda f, a_in, a_out: jax.vmap(jax.vmap(f, a_in[1], a_out), a_in[0], a_out)
        self._init = jax.jit(nest(init_one, ((0, 0), (None, 0)), sax))
        self._chunk = jax.jit(nest(chunk_one, ((0, 0, sax), (None, 0, sax)), sax), donate_argnums=2)
        self._readout = jax.jit(nest(readout_one, ((0, 0, sax), (None, 0, sax)), 0)) if st["n2"] else None
        self._status = jax.jit(nest(status_one, ((0, 0, sax), (None, 0, sax)), 0))
        checked = not solver.adaptive and source(group.configs[0]).deterministic and width == 1 and net is None
        limit_one = lambda seed_key, p: step_limit(*build(seed_key, p)[1:])
        self._limit = jax.jit(nest(limit_one, ((0, 0), (None, 0)), 0)) if checked else None
        self.mesh = mesh

    def _place(self, tree):
        if self.mesh is None:
            return tree
        from jax.sharding import NamedSharding, PartitionSpec as P

        def put(x):
            spec = P(None, "c") if getattr(x, "ndim", 0) >= 2 else P()
            return jax.device_put(x, NamedSharding(self.mesh, spec))

        return jax.tree_util.tree_map(put, tree)

    def init(self, keys, params):
        keys, params = self._place(keys), self._place(params)
        return self._init(keys, params)

    def chunk_fn(self, keys, params, state):
        return self._chunk(self._place(keys), self._place(params), self._place(state))

    def step_limits(self, keys, params):
        """(seeds, C) plan-time estimates of the largest stable Euler step (`step_limit`), for
        a fixed-step solver on a deterministic source of one-neuron runs; NaN otherwise."""
        if self._limit is None:
            return np.full(np.shape(params["dt"]), np.nan)
        return np.asarray(self._limit(self._place(keys), self._place(params)))

    def status(self, keys, params, state):
        """(seeds, C[, width]) final status codes."""
        return self._status(self._place(keys), self._place(params), self._place(state))

    def readout(self, keys, params, state):
        """(seeds, C) test errors of phase 2, or None when the config has no `n2`."""
        if self._readout is None:
            return None
        return self._readout(self._place(keys), self._place(params), self._place(state))


def params_array(group: Group, sl: slice, n_dev: int = 1):
    """(seeds, C) arrays of the array keys for a slice of C, padded to a multiple of `n_dev`."""
    width = len(range(*sl.indices(group.size)))
    pad = (-width) % n_dev
    out = {}
    for k in ARRAY_KEYS:
        if k not in group.values:
            continue
        arr = np.asarray(group.values[k][sl], dtype=float)
        arr = np.concatenate([arr, np.repeat(arr[-1:], pad)])
        out[k] = jnp.asarray(np.broadcast_to(arr, (len(group.seeds), len(arr))))
    return out, pad


def seed_keys(group: Group):
    """(seeds,) root keys `jax.random.key(seed)` of a group; `config_keys` splits each."""
    return jax.vmap(jax.random.key)(jnp.asarray(group.seeds, dtype=jnp.uint32))


@dataclass
class RunStats:
    """What one call of `run` did: the work of this call only (not the resumed part)."""

    config_steps: int = 0
    batches_run: int = 0
    batches_resumed: int = 0
    seconds: float = 0.0


def _traced_runner(g: Group, cfg, chunk, mesh, n_dev, sl):
    """The group's `Runner`, its init and chunk traced on abstract values (no compile), so
    that what the engine refuses at trace time is refused before anything runs."""
    runner = Runner(g, cfg, chunk, mesh)
    params, _ = params_array(g, sl, n_dev)
    keys = seed_keys(g)
    state = jax.eval_shape(runner._init, keys, params)
    jax.eval_shape(runner._chunk, keys, params, state)
    return runner


def sweep(
    config,
    *,
    out=None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    max_memory: int | None = None,
    chunk: int | None = None,
    devices=None,
    process_index: int = 0,
    process_count: int = 1,
) -> xr.Dataset:
    """Run every configuration of a grid and return the labelled results.

    **Arguments:**
    - `config`: a dict or the path of a TOML file (see `docs/sweeps.md` for the keys).
    - `out`: a results directory: `results.nc`, `config.json` and checkpoints go there.
    - `resume`: continue from the checkpoints in `out` instead of starting over; when `out`
      already holds the finished results of this config, load them and compute nothing.
    - `force`: overwrite an `out` that holds a different configuration (its results,
      checkpoints and figures are removed).
    - `progress`: show a progress bar (config-steps done, rate, ETA).
    - `max_memory`: bytes a batch may use (default: half the device's or host's memory).
    - `chunk`: steps per compiled chunk (default about `steps / 20`).
    - `devices`: shard the configuration axis over these (default `jax.devices()`).
    - `process_index`, `process_count`: this process's share of a multi-process sweep;
      each writes `results.part{index}.nc`, and `merge_parts(out)` assembles them.

    **Returns:** an `xarray.Dataset` with `cos_u`, `rho`, `cos_theta`, `norm`, `risk`,
    `train_risk` over (swept axes..., `step`), and per configuration `status` (`ok`,
    `nonfinite`, `diverged`, or `error` when its group could not run) and `fail_step`.

    **Raises:** `ValueError`, before anything compiles or is written, for a configuration
    the engine refuses, one that does not fit the memory budget, or an `out` that holds a
    different configuration.
    """
    with precision(load_config(config)):
        pre = preflight(config, out=out, resume=resume, force=force, max_memory=max_memory, chunk=chunk,
                        devices=devices, process_index=process_index, process_count=process_count)
        return run(pre, out=out, resume=resume, force=force, progress=progress)[0]


@contextlib.contextmanager
def precision(config: dict):
    """Run a sweep in its config's `precision`: `"float64"` turns on `jax_enable_x64` for
    this sweep only (restored after; compiled code is cached per setting), `"float32"`
    (the default) runs in JAX's default dtype."""
    want = config["precision"][0] == "float64"
    before = bool(jax.config.jax_enable_x64)
    if want and not before:
        jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        if want and not before:
            jax.config.update("jax_enable_x64", False)


def run(pre: SweepPlan, *, out=None, resume=False, force=False, progress=True, log=None):
    """Run a planned sweep (`preflight`); returns `(dataset, RunStats)`. `log(line)` gets
    one-line notes (resuming, compiling); by default they go to the progress bar."""
    import time

    t0 = time.perf_counter()
    stats = RunStats()
    cfg, axes, part = pre.config, pre.axes, pre.part
    steps = cfg["steps"][0]
    if pre.complete:
        stats.batches_resumed = len(pre.batches)
        return load_results(Path(out) / ("results.nc" if part is None else f"results.part{part}.nc")), stats
    store = None if out is None else Store(out, cfg, resume=resume, force=force, part=part)
    if store:
        store.plan({"chunk": pre.chunk, "max_memory": pre.max_memory, "devices": pre.n_dev})
    results = empty_results(cfg, axes)
    done = np.zeros(results["test_mse"].shape, bool)
    total = sum(len(g.seeds) * (sl.stop - sl.start) * steps for _, g, sl in pre.batches)
    bar = tqdm(total=total, unit="config-step", unit_scale=True, disable=not progress, smoothing=0.1)
    say = log or (tqdm.write if progress else (lambda line: None))
    saved_count = store.batches_saved() if store else 0
    if saved_count:
        say(f"resuming: {saved_count} of {len(pre.batches)} batches done")
    runners, errors = pre.runners, []
    for bi, g, sl in pre.batches:
        width = sl.stop - sl.start
        saved = store.finished(bi) if store else None
        if saved is None:
            try:
                saved, work = _run_batch(runners, g, sl, cfg, pre.chunk, pre.mesh, pre.n_dev, store, bi, bar, say)
                stats.config_steps += work
                stats.batches_run += 1
            except Exception as err:  # noqa: BLE001 (one bad group must not kill the sweep)
                warnings.warn(f"a group of the sweep failed and is marked 'error': {err!r}", stacklevel=2)
                errors.append(f"{g.static}: {err!r}")
                saved = _failed_batch(len(g.seeds), width, results)
            if store:
                store.save_finished(bi, **saved)
        else:
            stats.batches_resumed += 1
            bar.update(len(g.seeds) * width * steps)
        scatter(results, g, sl, saved)
        done.reshape(-1)[g.flat[:, sl]] = True
    bar.close()
    ds = to_dataset(results, cfg, axes, done=None if part is None else done)
    if errors:
        ds.attrs["errors"] = "\n".join(errors)
    if store:
        store.write_results(ds)
        store.clear_checkpoints()
    stats.seconds = time.perf_counter() - t0
    return ds, stats


def _run_batch(runners, g: Group, sl: slice, cfg, chunk, mesh, n_dev, store, bi, bar, say):
    """Run (or continue) one batch through all its chunks; returns its host arrays and the
    config-steps computed here."""
    steps = cfg["steps"][0]
    key = id(g)
    fresh = key not in runners or not getattr(runners[key], "compiled", False)
    if key not in runners:
        runners[key] = Runner(g, cfg, chunk, mesh)
    runner = runners[key]
    if fresh:
        bar.set_description_str("compiling…", refresh=True)
        if bar.disable:
            say(f"compiling group {list(runners).index(key) + 1}…")
    params, _ = params_array(g, sl, n_dev)
    keys = seed_keys(g)
    state = runner.init(keys, params)
    width = sl.stop - sl.start
    limits = runner.step_limits(keys, params)
    above = limits[:, :width] < np.asarray(params["dt"])[:, :width]
    if above.any():
        say(f"warning: dt is above the Euler step's stability limit at w(0) or at u for {int(above.sum())} of "
            f"{above.size} configurations of batch {bi + 1} (limit as low as {np.nanmin(limits):.3g}): the map can "
            "sit on period-2 orbits (status 'oscillating'); use solver = 'dopri5' for the flow, or a smaller dt")
    done = bar_done = work = 0
    max_attempts = cfg["max_steps"][0]
    resumed = store.in_flight(bi) if store else None
    if resumed is not None:
        done, leaves = resumed
        treedef = jax.tree_util.tree_structure(state)
        state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in leaves])
        bar_done = len(g.seeds) * width * min(done, steps) if not runner.adaptive else 0
        bar.update(bar_done)
    while done < (max_attempts if runner.adaptive else steps):
        state = runner.chunk_fn(keys, params, state)
        jax.block_until_ready(state)
        if fresh:
            runner.compiled, fresh = True, False
            bar.set_description_str("", refresh=False)
        done += chunk
        if runner.adaptive:  # progress as the fraction of the horizon reached
            t, horizon = np.asarray(state.t), np.asarray(params["dt"]) * steps
            frac = float(np.mean(np.minimum(t / horizon.reshape(horizon.shape + (1,) * (t.ndim - horizon.ndim)), 1)))
            step = int(len(g.seeds) * width * steps * frac) - bar_done
            finished = not np.any((np.asarray(state.ptr) < runner.record_count) & (np.asarray(state.status) == 0))
        else:
            step = len(g.seeds) * width * min(chunk, steps - (done - chunk))
            finished = done >= steps
        bar_done += step
        work += step
        bar.update(step)
        where = f"{done} adaptive attempts" if runner.adaptive else f"step {min(done, steps)}/{steps}"
        bar.set_postfix_str(f"batch {bi + 1}, {where}", refresh=False)
        if finished:
            break
        if store:
            store.save_in_flight(bi, done, jax.tree_util.tree_leaves(state))
    bar.update(len(g.seeds) * width * steps - bar_done)
    work += len(g.seeds) * width * steps - bar_done
    keep = slice(0, width)
    test_mse = runner.readout(keys, params, state)
    return {
        "records": np.stack([np.asarray(state.records[m]) for m in METRICS], -1)[:, keep],
        "status": np.asarray(runner.status(keys, params, state))[:, keep],
        "fail_step": np.asarray(state.fail_step)[:, keep],
        "test_mse": np.full((len(g.seeds), width), np.nan) if test_mse is None else np.asarray(test_mse)[:, keep],
        "dt_limit": limits[:, keep],
    }, work
