"""Running a planned sweep: vmap, shard, chunk, checkpoint, resume.

A batch of a group is `seeds x C` configurations. Its `init` builds every configuration's
simulation once (directions, samples, labels, `SigmaHat`), with a `vmap` over the C
configurations of a seed in which the seed's draws `z` stay unbatched (common random
numbers: one GEMM a step instead of C matvecs); the seeds run one after another on CPU
(each seed's samples stay in cache) and as a second `vmap` on accelerators. The time
loop is a `lax.scan` of static length `chunk` that only steps the kept simulations,
driven by a host loop that updates the progress bar and writes a checkpoint after every
chunk; batches are sharded over `jax.devices()`. Phase 2 (a validated ridge readout,
`n2`) is a hook run on each batch's trained first layer. A configuration's randomness
depends only on its seed, so its result does not depend on the grid, the chunk length,
the batch size or the number of devices.

Planning lives in `_plan.py`, the dataset in `_results.py`.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._config import SINGLE, load_config, multi_target
from ._multi_problem import multi_index_problem
from ._io import Store, load_results
from ._depends import depends_on
from ._problem import check_choice, make_problem
from ._readout import fit_readout
from ._registry import DYNAMICS, INPUTS
from ._saveat import SaveAt, record_schedule
from ._simulate import advance, init, prepare, result, state_axes, step_limit
from ._solvers import Dopri5, Euler
from ._sources import Empirical, Online, Population, Reused
from ._data import config_keys
from ._inputs import StudentT
from ._plan import ARRAY_KEYS, Group, SweepPlan, _float_dtype, default_chunk, make_mesh, network_from, plan, preflight  # noqa: F401 (re-exported)
from ._results import (  # noqa: F401
    DIRECTION_METRICS, MULTI_METRICS, SWEEP_STATUS, _failed_batch, empty_results, passage_names, record_names, scatter,
    to_dataset)


class Runner:
    """The compiled functions of one group, on (seeds, C) arrays.

    `init` builds every configuration's `Simulation` once (problem, samples, `SigmaHat`),
    its state at step 0 and its step-limit estimate (a separate program), and keeps the simulations' arrays for
    the batch; `chunk_fn` only steps them (a chunk never redraws the data) and returns the
    status each run would end with. Inside a seed the C configurations are one `vmap` with
    the seed's draws unbatched (one GEMM a step). The seeds run one after another
    (`seed_loop="map"`, a `lax.map`: a seed's samples stay in cache through the chunk; the
    default on CPU, 1.65x at 8 seeds x 64 and 6x at 64 x 8, BENCHMARKS.md) or as a second
    `vmap` (`"vmap"`: one batched GEMM a step; the default on accelerators)."""

    def __init__(self, group: Group, config: dict, chunk: int, mesh=None, seed_loop: str | None = None):
        st = group.static
        self.steps, self.record = config["steps"][0], config["record"][0]
        self.record_count = len(record_schedule(self.steps, self.record))
        self.chunk = chunk
        self.seed_loop = seed_loop or ("map" if jax.default_backend() == "cpu" else "vmap")
        check_choice("seed_loop", self.seed_loop, ("map", "vmap"))
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
        multi = st["target"] != SINGLE
        self.multi = multi
        # a multi-index target records `subspace_metrics` (its default observables) and the first
        # passages of every direction's coverage and best overlap and of the subspace at `threshold`
        saveat = SaveAt(steps=self.record, passages=passage_names(multi_target(st)[1], st["threshold"])
                        if multi else None)

        chain = bool(st["reduced"]) and st["source"] in ("online", "reused")  # built in the chain's frame: any d

        def build(seed_key, p, neuron=None):
            """`(problem, simulation, w0)`; neuron i of a width-m layer draws `w(0)` from
            `fold_in(key, 3 + i)` and shares the samples with the other neurons."""
            keys = config_keys(seed_key)
            kp, ks = keys.problem, keys.run
            if multi:
                g, k = multi_target(st)
                problem = multi_index_problem(
                    st["d"], key=kp, g=g, k=k, spikes=st["spikes"] or (), activation=st["activation"],
                    loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=inputs,
                )
            else:
                spike = {"kappa": p["kappa"]} if "kappa" in p else {"r2": p["r2"]}
                problem = make_problem(
                    st["d"], key=kp, r1=p["r1"], link=st["link"], activation=st["activation"],
                    loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=inputs,
                    reduced=chain, **spike,
                )
            init_key = None if neuron is None else keys.neuron(neuron)
            sim, w0 = prepare(
                problem, dynamic, source(p), key=ks, solver=solver, dt=p["dt"], steps=self.steps,
                saveat=saveat, n_unlabelled=st["n_unlabelled"],
                reduced=st["reduced"], max_norm=st["max_norm"], init_key=init_key, network=net,
            )
            return problem, sim, w0

        sax = state_axes(solver)
        neurons = jnp.arange(width)
        p_shape = {k: jax.ShapeDtypeStruct((), _float_dtype()) for k in ARRAY_KEYS if k in group.values}
        self._layout_args = (build, p_shape)

        def per_neuron(f, *state, out=sax):
            """`f(neuron, ...)` for one neuron, or vmapped over the `width` neurons."""
            if width == 1:
                return f(None, *state)
            axes = (0,) + (sax,) * len(state)
            return jax.vmap(f, axes, out)(neurons, *state)

        checked = not solver.adaptive and source(group.configs[0]).deterministic and width == 1 and net is None

        def init_one(seed_key, p):
            """The simulation's arrays and the state at step 0."""
            _, sim, w0 = build(seed_key, p)
            if width == 1:
                state = init(sim, w0)
            else:
                state = jax.vmap(lambda i: init(sim, build(seed_key, p, i)[2]), 0, sax)(neurons)
            return eqx.partition(sim, eqx.is_array)[0], state

        def limit_one(arrays, w0):
            return step_limit(eqx.combine(arrays, self.layout()[1]), w0)

        def status_one(arrays, state):
            """The status `result` would report now (it adds `oscillating` and `max_steps`)."""
            sim = eqx.combine(arrays, self.layout()[1])
            return per_neuron(lambda i, s: result(sim, s).status, state, out=0)

        def chunk_one(arrays, state):
            sim = eqx.combine(arrays, self.layout()[1])
            state = per_neuron(lambda i, s: advance(sim, s, chunk), state)
            return state, status_one(arrays, state)

        def readout_one(seed_key, p, state):
            """Phase 2 on the trained first layer: `test_mse` of a validated ridge readout."""
            problem, sim, _ = build(seed_key, p)
            lift = lambda i, s: result(build(seed_key, p, i)[1], s).w
            w = lift(None, state)[None] if width == 1 else jax.vmap(lift, (0, sax))(neurons, state)
            fit = fit_readout(config_keys(seed_key).readout, problem, w, n2=st["n2"], n_val=st["n_val"],
                              n_test=st["n_test"], neuron=sim.neuron, sigma_hat=sim.sigma_hat)
            return fit.test_mse

        def nest(f, seed_in, seed_out, config_in, config_out):
            """`f` of one configuration over (seeds, C): a `vmap` over C inside `seed_loop`."""
            inner = jax.vmap(f, config_in, config_out)
            if self.seed_loop == "vmap":
                return jax.vmap(inner, seed_in, seed_out)
            return _seed_map(inner, seed_in, seed_out)

        arrays = lambda: self.layout()[0]  # the simulation's C axes, traced on first use
        self._init = jax.jit(lambda k, p: nest(init_one, 0, (0, sax), (None, 0), (arrays(), sax))(k, p))
        # a separate program (not inside init) so that the three compile in parallel (`precompile`)
        self._limit = jax.jit(lambda a, w: nest(limit_one, 0, 0, (arrays(), 0), 0)(a, w)) if checked else None
        self._chunk = jax.jit(lambda a, s: nest(chunk_one, (0, sax), (sax, 0), (arrays(), sax), (sax, 0))(a, s),
                              donate_argnums=1)
        self._status = jax.jit(lambda a, s: nest(status_one, (0, sax), 0, (arrays(), sax), 0)(a, s))
        vnest = lambda f, a_in, a_out: jax.vmap(jax.vmap(f, a_in[1], a_out), a_in[0], a_out)
        self._readout = jax.jit(vnest(readout_one, ((0, 0, sax), (None, 0, sax)), 0)) if st["n2"] else None
        self.checked = checked
        self.mesh = mesh
        self._layout = None
        self._arrays = self._limits = None
        self._pending = {}

    def layout(self):
        """`(axes, static)` of a configuration's `Simulation`: `axes` is 0 on the array
        leaves that depend on the configuration's parameters and None on those shared by a
        seed's configurations (its samples, directions and keys: kept once a seed, never
        copied C times); `static` holds the non-array leaves."""
        if self._layout is None:
            build, p_shape = self._layout_args
            holder = []

            def arrays(p):
                dyn, static = eqx.partition(build(jax.random.key(0), p)[1], eqx.is_array)
                holder.append(static)
                return dyn

            varying = depends_on(arrays, p_shape)
            self._layout = (jax.tree_util.tree_map(lambda v: 0 if v else None, varying), holder[0])
        return self._layout

    def _place(self, tree):
        if self.mesh is None:
            return tree
        from jax.sharding import NamedSharding, PartitionSpec as P

        def put(x):
            spec = P(None, "c") if getattr(x, "ndim", 0) >= 2 else P()
            return jax.device_put(x, NamedSharding(self.mesh, spec))

        return jax.tree_util.tree_map(put, tree)

    def precompile(self, keys, params):
        """Compile `chunk` and the step limit in background threads (XLA releases the GIL),
        so that they overlap `init`'s compile; their first calls wait for them."""
        if self.mesh is not None:
            return
        arrays, state = jax.eval_shape(self._init, keys, params)
        todo = {"chunk": self._chunk.lower(arrays, state)}  # traced here, in the calling thread
        if self._limit is not None:
            todo["limit"] = self._limit.lower(arrays, state.w)

        def compile_quietly(lowered):
            with contextlib.suppress(Exception):  # a failure is raised again by the first call
                lowered.compile()

        for name, lowered in todo.items():
            self._pending[name] = threading.Thread(target=compile_quietly, args=(lowered,), daemon=True)
            self._pending[name].start()

    def _wait(self, name):
        thread = self._pending.pop(name, None)
        if thread is not None:
            thread.join()

    def init(self, keys, params):
        """The batch's state at step 0; builds and keeps its simulations for `chunk_fn`,
        and estimates the step limits at step 0 (`step_limits`)."""
        self._arrays, state = self._init(self._place(keys), self._place(params))
        if self._limit is None:
            self._limits = np.full(np.shape(params["dt"]), np.nan)
        else:
            self._wait("limit")
            self._limits = np.asarray(self._limit(self._arrays, state.w))
        return state

    def chunk_fn(self, keys, params, state):
        """`(state, status)` after one more chunk of the batch that `init` built."""
        self._wait("chunk")
        return self._chunk(self._arrays, self._place(state))

    def release(self):
        """Drop the batch's simulations (its samples): one batch at a time holds memory."""
        self._arrays = None

    def step_limits(self, keys, params):
        """(seeds, C) plan-time estimates of the largest stable Euler step (`step_limit`), for
        a fixed-step solver on a deterministic source of one-neuron runs (NaN otherwise),
        made by `init`."""
        return self._limits

    def status(self, keys, params, state):
        """(seeds, C[, width]) final status codes."""
        return self._status(self._arrays, self._place(state))

    def readout(self, keys, params, state):
        """(seeds, C) test errors of phase 2, or None when the config has no `n2`."""
        if self._readout is None:
            return None
        return self._readout(self._place(keys), self._place(params), self._place(state))


def _seed_map(f, in_axes, out_axes):
    """`jax.vmap(f, in_axes, out_axes)` computed seed by seed with `lax.map`: the leaves with
    no seed axis (a fixed-step run's step counter) are the same for every seed."""
    none = lambda x: x is None

    def spread(axes, args, n):
        return jax.tree_util.tree_map(
            lambda a, x: x if a == 0 else jax.tree_util.tree_map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), x),
            axes, args, is_leaf=none)

    def g(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        n = next(jax.tree_util.tree_leaves(x)[0].shape[0] for a, x in zip(axes, args) if a == 0)
        out = jax.lax.map(lambda xs: f(*xs), spread(axes, args, n))
        return jax.tree_util.tree_map(
            lambda a, x: x if a == 0 else jax.tree_util.tree_map(lambda v: v[0], x), out_axes, out, is_leaf=none)

    return g


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
    arrays, state = jax.eval_shape(runner._init, keys, params)
    jax.eval_shape(runner._chunk, arrays, state)
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
    if fresh:
        runner.precompile(keys, params)
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
    status = None
    while done < (max_attempts if runner.adaptive else steps):
        state, status = runner.chunk_fn(keys, params, state)
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
    saved = {
        "records": np.stack([np.asarray(state.records[m]) for m in record_names(cfg)], -1)[:, keep],
        "status": np.asarray(runner.status(keys, params, state) if status is None else status)[:, keep],
        "fail_step": np.asarray(state.fail_step)[:, keep],
        "test_mse": np.full((len(g.seeds), width), np.nan) if test_mse is None else np.asarray(test_mse)[:, keep],
        "dt_limit": limits[:, keep],
    }
    if runner.multi:
        saved["directions"] = np.stack([np.asarray(state.records[m]) for m in DIRECTION_METRICS], -2)[:, keep]
        saved["passages"] = np.asarray(state.passage)[:, keep]
    runner.release()
    return saved, work
