"""Grids of configurations in few compiled calls: group, vmap, chunk, batch, shard, resume.

The grid is the product of every key's values. Configurations are grouped by what changes
the compiled code or array shapes (`d`, `n` bucket, `n_unlabelled`, `batch`, `link`,
`activation`, `loss`, `dynamic`, `source`, ...); inside a group the numeric axes (`kappa`
or `r2`, `r1`, `noise`, `dt`, and `n` through padding with `n_used`) are array inputs of
one `vmap`. A group runs as `seeds x C` nested vmaps: the outer one over seeds, the inner
one over the other C configurations with the seed's key unbatched, so the base draws `z`
are shared inside a seed (common random numbers: one GEMM a step instead of C matvecs).

The time loop is a `lax.scan` of static length `chunk`, driven by a host loop that updates
the progress bar and writes a checkpoint after every chunk. The C axis is split into
batches that fit a memory budget, and sharded over `jax.devices()`. A configuration's
randomness depends only on its seed, so its result does not depend on the grid, the
chunk length, the batch size or the number of devices.
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._config import SCHEMA, load_config, swept_axes
from ._io import Store, environment
from ._problem import check, check_int, make_problem
from ._readout import fit_readout
from ._registry import DYNAMICS, INPUTS
from ._saveat import METRICS, STATUS, SaveAt, record_schedule
from ._simulate import advance, init, prepare, result, state_axes
from ._solvers import Dopri5, Euler
from ._sources import Empirical, Online, Population
from ._inputs import StudentT

SWEEP_STATUS = STATUS + ("error",)

ARRAY_KEYS = ("kappa", "r2", "r1", "noise", "dt", "n")
STATIC_KEYS = tuple(k for k in SCHEMA if k not in ARRAY_KEYS + ("seeds",))
N_BUCKET_RATIO = 4  # sample sizes within this factor share one padded shape


@dataclass
class Group:
    """One compiled call's worth of configurations: `seeds x configs`."""

    static: dict
    n_pad: int | None
    seeds: list
    configs: list  # dicts of array-key values
    index: dict = field(default_factory=dict)  # (seed position, config position) -> grid index


def _buckets(ns):
    """Split sorted sample sizes into buckets whose max is at most N_BUCKET_RATIO x min."""
    out, cur = [], []
    for n in sorted(ns):
        if cur and n > N_BUCKET_RATIO * cur[0]:
            out.append(cur)
            cur = []
        cur.append(n)
    return out + [cur] if cur else out


def plan(config: dict) -> tuple[list[str], list[Group]]:
    """The dataset axes and the compiled groups of a resolved configuration."""
    axes = swept_axes(config)
    keys = list(SCHEMA)
    groups: dict = {}
    positions: dict = {}  # group key -> (seed -> position, array values -> position)
    axis_keys = ["seeds" if a == "seed" else a for a in axes if a != "neuron"]
    where = {k: {v: i for i, v in enumerate(config[k])} for k in axis_keys}
    bucket_of = {}
    for b in _buckets([n for n in config["n"] if n is not None]):
        for n in b:
            bucket_of[n] = max(b)
    for combo in itertools.product(*(config[k] for k in keys)):
        values = dict(zip(keys, combo))
        empirical = values["source"] == "empirical"
        n_pad = bucket_of.get(values["n"]) if empirical else None
        static = {k: values[k] for k in STATIC_KEYS}
        gkey = (tuple(static.items()), n_pad)
        g = groups.setdefault(gkey, Group(static=static, n_pad=n_pad, seeds=[], configs=[]))
        pos_of = positions.setdefault(gkey, ({}, {}))
        arrays = {k: values[k] for k in ARRAY_KEYS}
        c = pos_of[1].setdefault(tuple(arrays.values()), len(g.configs))
        if c == len(g.configs):
            g.configs.append(arrays)
        s = pos_of[0].setdefault(values["seeds"], len(g.seeds))
        if s == len(g.seeds):
            g.seeds.append(values["seeds"])
        g.index[(s, c)] = tuple(where[a][values[a]] for a in axis_keys)
    return axes, list(groups.values())


def _bytes_per_config(static, n_pad, d, record):
    f = 4
    per = (30 * d + 8 * record) * f
    if static["source"] == "empirical":
        per += 10 * n_pad * f
    if static["source"] == "online":
        per += 10 * static["batch"] * f
    if static["n_unlabelled"]:
        per += (4 * d * d + static["n_unlabelled"] * d) * f
    return per


def _bytes_per_seed(static, n_pad, d):
    f = 4
    if static["source"] == "empirical":
        return 3 * n_pad * d * f
    if static["source"] == "online":
        return 3 * static["batch"] * d * f
    return 0


def default_memory_budget() -> int:
    """Half of the accelerator's memory, or half of the host's available memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] * 0.5)
    except Exception:  # noqa: BLE001 (a backend without memory_stats)
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 4 << 30


def batch_size(group: Group, record: int, max_memory: int) -> int:
    """How many of the group's C configurations (with all its seeds) fit the budget."""
    d = group.static["d"]
    per = _bytes_per_config(group.static, group.n_pad, d, record) * len(group.seeds)
    fixed = _bytes_per_seed(group.static, group.n_pad, d) * len(group.seeds)
    room = max_memory - fixed
    if room < per:
        raise ValueError(
            f"max_memory={max_memory} is not allowed; one configuration of this group needs about "
            f"{fixed + per} bytes (d={d}, n={group.n_pad}, {len(group.seeds)} seeds): raise it"
        )
    return int(max(1, min(len(group.configs), room // per)))


class Runner:
    """The compiled functions of one group; `init` and `chunk` act on (seeds, C) arrays."""

    def __init__(self, group: Group, config: dict, chunk: int, mesh=None):
        st = group.static
        self.steps, self.record = config["steps"][0], config["record"][0]
        self.record_count = len(record_schedule(self.steps, self.record))
        self.chunk = chunk
        use_n = st["source"] == "empirical"
        masked = use_n and len({c["n"] for c in group.configs}) > 1

        width = st["width"]

        dynamic = DYNAMICS[st["dynamic"]]()
        if st["source"] == "empirical":
            source = lambda p: Empirical(group.n_pad, p["n"] if masked else None)
        elif st["source"] == "online":
            source = lambda p: Online(st["batch"])
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
            kp, ks = seed_keys_of(seed_key)
            spike = {"kappa": p["kappa"]} if "kappa" in p else {"r2": p["r2"]}
            problem = make_problem(
                st["d"], key=kp, r1=p["r1"], link=st["link"], activation=st["activation"],
                loss=st["loss"], noise=p["noise"], normalisation=st["normalisation"], inputs=inputs, **spike,
            )
            init_key = None if neuron is None else jax.random.fold_in(seed_key, 3 + neuron)
            sim, w0 = prepare(
                problem, dynamic, source(p), key=ks, solver=solver, dt=p["dt"], steps=self.steps,
                saveat=SaveAt(steps=self.record), n_unlabelled=st["n_unlabelled"],
                reduced=st["reduced"], max_norm=st["max_norm"], init_key=init_key,
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
            fit = fit_readout(jax.random.fold_in(seed_key, 2), problem, w, n2=st["n2"], n_val=st["n_val"],
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
    configs = group.configs[sl]
    pad = (-len(configs)) % n_dev
    configs = configs + [configs[-1]] * pad
    out = {}
    for k in ARRAY_KEYS:
        vals = [c[k] for c in configs]
        if vals[0] is None:
            continue
        arr = np.asarray(vals, dtype=float)
        out[k] = jnp.asarray(np.broadcast_to(arr, (len(group.seeds), len(configs))))
    return out, pad


def seed_keys_of(seed_key):
    """The key layout of one seed: `(problem directions, samples and w(0))`; neuron `i` of a
    width-m layer draws `w(0)` from `fold_in(seed_key, 3 + i)`, phase 2 from `fold_in(seed_key, 2)`."""
    return jax.random.fold_in(seed_key, 0), jax.random.fold_in(seed_key, 1)


def seed_keys(group: Group):
    return jax.vmap(jax.random.key)(jnp.asarray(group.seeds, dtype=jnp.uint32))


def empty_results(config: dict, axes: list[str]):
    """Full-grid host arrays; per-neuron arrays carry the `neuron` axis, `test_mse` not."""
    shape = tuple(len(config["seeds" if a == "seed" else a]) for a in axes if a != "neuron")
    per_neuron = shape + ((config["width"][0],) if "neuron" in axes else ())
    r = len(record_schedule(config["steps"][0], config["record"][0]))
    return {
        "records": np.full(per_neuron + (r, len(METRICS)), np.nan),
        "status": np.zeros(per_neuron, np.int32),
        "fail_step": np.full(per_neuron, -1, np.int32),
        "test_mse": np.full(shape, np.nan),
    }


def scatter(results, group: Group, sl: slice, batch: dict):
    """Copy a batch's (seeds, C', ...) outputs into the full grid arrays."""
    for s in range(len(group.seeds)):
        for c in range(sl.stop - sl.start):
            idx = group.index[(s, sl.start + c)]
            for name, values in batch.items():
                results[name][idx] = values[s, c]


def make_mesh(devices=None):
    """A 1-D mesh named `c` over the devices, or None for one device."""
    devices = jax.devices() if devices is None else devices
    if len(devices) <= 1:
        return None
    from jax.sharding import Mesh

    return Mesh(np.asarray(devices), ("c",))


def default_chunk(steps: int) -> int:
    """About 20 chunks a run (a checkpoint and a progress update each), at least 50 steps."""
    return min(steps, max(50, -(-steps // 20)))


def to_dataset(results, config: dict, axes: list[str], done=None) -> xr.Dataset:
    """The labelled dataset: one dimension per swept key, plus `step`."""
    coords = {a: config["seeds" if a == "seed" else a] for a in axes if a != "neuron"}
    if "neuron" in axes:
        coords["neuron"] = np.arange(config["width"][0])
    coords["step"] = record_schedule(config["steps"][0], config["record"][0])
    dims = tuple(axes)
    config_dims = tuple(a for a in axes if a != "neuron")
    data = {m: (dims + ("step",), results["records"][..., i]) for i, m in enumerate(METRICS)}
    data["status"] = (dims, np.asarray(SWEEP_STATUS, dtype=object)[results["status"]])
    data["fail_step"] = (dims, results["fail_step"])
    if config["n2"][0] is not None:
        data["test_mse"] = (config_dims, results["test_mse"])
    if done is not None:
        data["done"] = (config_dims, done)
    fixed = {k: v[0] for k, v in config.items() if ("seed" if k == "seeds" else k) not in axes}
    attrs = {"config": json.dumps(config, sort_keys=True), **{f"fixed_{k}": str(v) for k, v in fixed.items()}}
    attrs.update(environment())
    return xr.Dataset(data, coords=coords, attrs=attrs)


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
    - `resume`: continue from the checkpoints in `out` instead of starting over.
    - `force`: overwrite an `out` that holds a different configuration.
    - `progress`: show a progress bar (config-steps done, rate, ETA).
    - `max_memory`: bytes a batch may use (default: half the device's or host's memory).
    - `chunk`: steps per compiled chunk (default about `steps / 20`).
    - `devices`: shard the configuration axis over these (default `jax.devices()`).
    - `process_index`, `process_count`: this process's share of a multi-process sweep;
      each writes `results.part{index}.nc`, and `merge_parts(out)` assembles them.

    **Returns:** an `xarray.Dataset` with `cos_u`, `rho`, `cos_theta`, `norm`, `risk`,
    `train_risk` over (swept axes..., `step`), and per configuration `status` (`ok`,
    `nonfinite`, `diverged`, or `error` when its group could not run) and `fail_step`.
    """
    cfg = load_config(config)
    check_int("process_count", process_count, 1)
    check("process_index", process_index, 0 <= process_index < process_count,
          f"allowed: an integer in [0, {process_count - 1}]")
    if chunk is not None:
        check_int("chunk", chunk, 1)
    if max_memory is not None:
        check_int("max_memory", max_memory, 1)
    axes, groups = plan(cfg)
    steps, record = cfg["steps"][0], cfg["record"][0]
    mesh = make_mesh(devices)
    n_dev = 1 if mesh is None else mesh.size
    part = None if process_count == 1 else process_index
    store = None if out is None else Store(out, cfg, resume=resume, force=force, part=part)
    batch_plan = {"chunk": chunk or default_chunk(steps), "max_memory": max_memory or default_memory_budget(),
                  "devices": n_dev}
    if store:
        batch_plan = store.plan(batch_plan)
    chunk, max_memory = batch_plan["chunk"], batch_plan["max_memory"]
    batches = []
    for g in groups:
        size = batch_size(g, record, max_memory)
        size = max(n_dev, size - size % n_dev) if n_dev > 1 else size
        batches += [(g, slice(i, min(i + size, len(g.configs)))) for i in range(0, len(g.configs), size)]
    mine = [(bi, g, sl) for bi, (g, sl) in enumerate(batches) if bi % process_count == process_index]
    results = empty_results(cfg, axes)
    done = np.zeros(results["test_mse"].shape, bool)
    total = sum(len(g.seeds) * (sl.stop - sl.start) * steps for _, g, sl in mine)
    bar = tqdm(total=total, unit="config-step", unit_scale=True, disable=not progress, smoothing=0.1)
    runners, errors = {}, []
    for bi, g, sl in mine:
        width = sl.stop - sl.start
        saved = store.finished(bi) if store else None
        if saved is None:
            try:
                saved = _run_batch(runners, g, sl, cfg, chunk, mesh, n_dev, store, bi, bar)
            except Exception as err:  # noqa: BLE001 (one bad group must not kill the sweep)
                warnings.warn(f"a group of the sweep failed and is marked 'error': {err!r}", stacklevel=2)
                errors.append(f"{g.static}: {err!r}")
                saved = _failed_batch(len(g.seeds), width, results)
            if store:
                store.save_finished(bi, **saved)
        else:
            bar.update(len(g.seeds) * width * steps)
        scatter(results, g, sl, saved)
        for s in range(len(g.seeds)):
            for c in range(width):
                done[g.index[(s, sl.start + c)]] = True
    bar.close()
    ds = to_dataset(results, cfg, axes, done=None if part is None else done)
    if errors:
        ds.attrs["errors"] = "\n".join(errors)
    if store:
        store.write_results(ds, "results.nc" if part is None else f"results.part{part}.nc")
        store.clear_checkpoints()
    return ds


def _failed_batch(seeds: int, width: int, results):
    """A batch whose group raised: NaN records, status `error`."""
    grid = results["test_mse"].ndim  # per-neuron arrays have extra trailing axes
    lead = (seeds, width)
    return {
        "records": np.full(lead + results["records"].shape[grid:], np.nan),
        "status": np.full(lead + results["status"].shape[grid:], SWEEP_STATUS.index("error"), np.int32),
        "fail_step": np.zeros(lead + results["fail_step"].shape[grid:], np.int32),
        "test_mse": np.full(lead, np.nan),
    }


def _run_batch(runners, g: Group, sl: slice, cfg, chunk, mesh, n_dev, store, bi, bar):
    """Run (or continue) one batch through all its chunks; returns its host arrays."""
    steps = cfg["steps"][0]
    key = id(g)
    if key not in runners:
        runners[key] = Runner(g, cfg, chunk, mesh)
    runner = runners[key]
    params, _ = params_array(g, sl, n_dev)
    keys = seed_keys(g)
    state = runner.init(keys, params)
    width = sl.stop - sl.start
    done = bar_done = 0
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
        bar.update(step)
        bar.set_postfix_str(f"batch {bi + 1}, step {min(done, steps) if not runner.adaptive else done}"
                            + ("" if runner.adaptive else f"/{steps}"), refresh=False)
        if finished:
            break
        if store:
            store.save_in_flight(bi, done, jax.tree_util.tree_leaves(state))
    bar.update(len(g.seeds) * width * steps - bar_done)
    keep = slice(0, width)
    test_mse = runner.readout(keys, params, state)
    return {
        "records": np.stack([np.asarray(state.records[m]) for m in METRICS], -1)[:, keep],
        "status": np.asarray(runner.status(keys, params, state))[:, keep],
        "fail_step": np.asarray(state.fail_step)[:, keep],
        "test_mse": np.full((len(g.seeds), width), np.nan) if test_mse is None else np.asarray(test_mse)[:, keep],
    }
