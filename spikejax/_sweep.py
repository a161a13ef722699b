"""Running a planned sweep: batches through their chunks, checkpoints, resume, the dataset.

A host loop drives each batch's compiled chunks (`_runner.py`), updates the progress bar
and writes a checkpoint after every chunk; a failing group is marked `error` in the
results, never allowed to kill the sweep. Planning lives in `_plan.py`, the dataset in
`_results.py`, the files in `_io.py`.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._grid import Group
from ._io import Store, load_results, paths
from ._plan import SweepPlan, preflight
from ._profile import NO_PROFILE, Profile
from ._results import empty_results, failed_batch, scatter, to_dataset
from ._runner import Runner, params_array, seed_keys
from ._spec import DIRECTION_METRICS, SweepSpec


@dataclass
class RunStats:
    """What one call of `run` did: the work of this call only (not the resumed part)."""

    config_steps: int = 0
    batches_run: int = 0
    batches_resumed: int = 0
    seconds: float = 0.0


@dataclass
class Running:
    """What every batch of one `run` call shares: the plan, the checkpoint store (None without
    `out`), the progress bar and where notes go (`say`), the call's stats and errors, the
    full-grid host results, and the profile."""

    pre: SweepPlan
    store: Store | None
    bar: object
    say: object
    stats: RunStats
    errors: list
    results: dict
    profile: object = NO_PROFILE


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
    profile: bool = False,
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
    - `profile`: time the sweep's phases and compiles (`spikejax.internal.Profile`) into
      the dataset's attribute `profile` (a dict: totals and the timeline up to writing).

    **Returns:** an `xarray.Dataset` with `cos_u`, `rho`, `cos_theta`, `norm`, `risk`,
    `train_risk` over (swept axes..., `step`), and per configuration `status` (`ok`,
    `nonfinite`, `diverged`, or `error` when its group could not run) and `fail_step`.

    **Raises:** `ValueError`, before anything compiles or is written, for a configuration
    the engine refuses, one that does not fit the memory budget, or an `out` that holds a
    different configuration.
    """
    prof = Profile() if profile else NO_PROFILE
    spec = SweepSpec.of(config)  # resolved once; its float type follows `precision`
    with precision(spec.config):
        with prof.span("plan"):
            pre = preflight(spec, out=out, resume=resume, force=force, max_memory=max_memory, chunk=chunk,
                            devices=devices, process_index=process_index, process_count=process_count)
        return run(pre, out=out, resume=resume, force=force, progress=progress, profile=prof)[0]


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


def run(pre: SweepPlan, *, out=None, resume=False, force=False, progress=True, log=None, profile=NO_PROFILE):
    """Run a planned sweep (`preflight`); returns `(dataset, RunStats)`. `log(line)` gets
    one-line notes (resuming, compiling); by default they go to the progress bar. A
    `Profile` times the phases and compiles (the dataset's attribute `profile`)."""
    t0 = time.perf_counter()
    stats = RunStats()
    spec, part = pre.spec, pre.part
    steps = spec.steps
    if pre.complete:
        stats.batches_resumed = len(pre.batches)
        return load_results(paths(out, part)[0]), stats
    store = None if out is None else Store(out, spec.config, resume=resume, force=force, part=part)
    if store:
        store.plan({"chunk": pre.chunk, "max_memory": pre.max_memory, "devices": pre.n_dev})
    results = empty_results(spec)
    done = np.zeros(results["test_mse"].shape, bool)
    total = sum(len(g.seeds) * (sl.stop - sl.start) * steps for _, g, sl in pre.batches)
    bar = tqdm(total=total, unit="config-step", unit_scale=True, disable=not progress, smoothing=0.1)
    say = log or (tqdm.write if progress else (lambda line: None))
    saved_count = store.batches_saved() if store else 0
    if saved_count:
        say(f"resuming: {saved_count} of {len(pre.batches)} batches done")
    running = Running(pre, store, bar, say, stats, [], results, profile)
    with profile.listening():
        for bi, g, sl in pre.batches:
            saved = _batch(running, bi, g, sl)
            scatter(results, g, sl, saved)
            done.reshape(-1)[g.flat[:, sl]] = True
    bar.close()
    ds = to_dataset(results, spec, done=None if part is None else done)
    ds.attrs["runner"] = runner_attrs(pre)
    if running.errors:
        ds.attrs["errors"] = "\n".join(running.errors)
    if isinstance(profile, Profile):
        ds.attrs["profile"] = profile.record()
    if store:
        with profile.span("write"):
            store.write_results(ds)
            store.clear_checkpoints()
    stats.seconds = time.perf_counter() - t0
    return ds, stats


def _batch(running: Running, bi, g: Group, sl: slice):
    """One batch's host arrays: from its finished checkpoint, or run (an error marks the
    batch's configurations `error` and the sweep goes on)."""
    width, store, stats = sl.stop - sl.start, running.store, running.stats
    saved = store.finished(bi) if store else None
    if saved is not None:
        stats.batches_resumed += 1
        running.bar.update(len(g.seeds) * width * running.pre.spec.steps)
        return saved
    try:
        saved, work = _run_batch(running, bi, g, sl)
        stats.config_steps += work
        stats.batches_run += 1
    except Exception as err:  # noqa: BLE001 (one bad group must not kill the sweep)
        warnings.warn(f"a group of the sweep failed and is marked 'error': {err!r}", stacklevel=3)
        running.errors.append(f"{g.static}: {err!r}")
        saved = failed_batch(len(g.seeds), width, running.results)
    if store:
        with running.profile.span("checkpoints"):
            store.save_finished(bi, **saved)
    return saved


def runner_attrs(pre: SweepPlan) -> dict:
    """How the sweep ran (the dataset's attribute `runner`): the seed loop (a `lax.map` over
    seeds on CPU, a `vmap` on accelerators), the chunk, the batches and the memory budget."""
    loops = sorted({r.seed_loop for r in pre.runners.values()})
    return {"seed_loop": ", ".join(loops) or Runner.default_seed_loop(), "chunk": pre.chunk,
            "batches": len(pre.batches), "max_memory": pre.max_memory}


def _run_batch(running: Running, bi, g: Group, sl: slice):
    """Run (or continue) one batch through all its chunks; returns its host arrays and the
    config-steps computed here."""
    pre, bar, say, profile = running.pre, running.bar, running.say, running.profile
    runners, key = pre.runners, id(g)
    fresh = key not in runners or not runners[key].compiled
    with profile.span("prepare"):
        if key not in runners:
            runners[key] = Runner(g, pre.spec, pre.chunk, pre.mesh)
        runner = runners[key]
        runner.profile = profile
        if fresh:
            bar.set_description_str("compiling…", refresh=True)
            if bar.disable:
                say(f"compiling group {list(runners).index(key) + 1}…")
        params, _ = params_array(g, sl, pre.n_dev)
        keys = seed_keys(g)
        if fresh:
            runner.precompile(keys, params)  # traces the chunk here; compiles it in the background
    state = runner.init(keys, params)
    width = sl.stop - sl.start
    limits = runner.step_limits(keys, params)
    _warn_above_limit(limits[:, :width], np.asarray(params["dt"])[:, :width], bi, say)
    state, status, work = _chunks(running, bi, g, width, runner, (keys, params, state), fresh)
    keep = slice(0, width)
    with profile.span("readout"):
        test_mse = runner.readout(keys, params, state)
        status = np.asarray(runner.status(keys, params, state) if status is None else status)
    saved = {
        "records": np.stack([np.asarray(state.records[m]) for m in pre.spec.names], -1)[:, keep],
        "status": status[:, keep],
        "fail_step": np.asarray(state.fail_step)[:, keep],
        "test_mse": np.full((len(g.seeds), width), np.nan) if test_mse is None else np.asarray(test_mse)[:, keep],
        "dt_limit": limits[:, keep],
    }
    if runner.multi:
        saved["directions"] = np.stack([np.asarray(state.records[m]) for m in DIRECTION_METRICS], -2)[:, keep]
        saved["overlap"] = np.asarray(state.records["overlap"])[:, keep]
        saved["passages"] = np.asarray(state.passage)[:, keep]
    runner.release()
    return saved, work


def _warn_above_limit(limits, dt, bi, say):
    above = limits < dt
    if above.any():
        say(f"warning: dt is above the Euler step's stability limit at w(0) or at u for {int(above.sum())} of "
            f"{above.size} configurations of batch {bi + 1} (limit as low as {np.nanmin(limits):.3g}): the map can "
            "sit on period-2 orbits (status 'oscillating'); use solver = 'dopri5' for the flow, or a smaller dt")


def _chunks(running: Running, bi, g: Group, width: int, runner, inputs, fresh):
    """Step a batch chunk by chunk to its horizon (a fixed-step run's `steps`, an adaptive
    one's time or `max_steps` attempts), checkpointing after each; `inputs` is the runner's
    `(keys, params, state)`. Returns `(state, status, work)`."""
    pre, store, bar = running.pre, running.store, running.bar
    keys, params, state = inputs
    steps, chunk = pre.spec.steps, pre.chunk
    done = bar_done = work = 0
    resumed = store.in_flight(bi) if store else None
    if resumed is not None:
        done, leaves = resumed
        state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state), [jnp.asarray(x) for x in leaves])
        bar_done = len(g.seeds) * width * min(done, steps) if not runner.adaptive else 0
        bar.update(bar_done)
    status, profile = None, runner.profile
    while done < (pre.spec.fixed("max_steps") if runner.adaptive else steps):
        state, status = runner.chunk_fn(keys, params, state)
        with profile.span("steps"):
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
            with profile.span("checkpoints"):
                store.save_in_flight(bi, done, jax.tree_util.tree_leaves(state))
    bar.update(len(g.seeds) * width * steps - bar_done)
    work += len(g.seeds) * width * steps - bar_done
    return state, status, work
