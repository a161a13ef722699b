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
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._config import SCHEMA, load_config, swept_axes
from ._io import Store, check_out, environment, load_results, saved_plan
from ._problem import check, check_int, make_problem
from ._readout import fit_readout
from ._registry import DYNAMICS, INPUTS
from ._saveat import METRICS, STATUS, SaveAt, record_schedule
from ._simulate import advance, init, prepare, result, state_axes, step_limit
from ._solvers import Dopri5, Euler
from ._sources import Empirical, Online, Population, Reused
from ._data import config_keys
from ._inputs import StudentT

SWEEP_STATUS = STATUS + ("error",)

ARRAY_KEYS = ("kappa", "r2", "r1", "noise", "dt", "n")
STATIC_KEYS = tuple(k for k in SCHEMA if k not in ARRAY_KEYS + ("seeds",))
N_BUCKET_RATIO = 4  # sample sizes within this factor share one padded shape


@dataclass
class Group:
    """One compiled call's worth of configurations: `seeds x C`.

    `values[k]` holds the C values of each array key that is set (`kappa` or `r2`, `r1`,
    `n`, `noise`, `dt`); `flat[s, c]` is the flat position (C order) of configuration
    `(seed s, c)` in the grid of shape `grid_shape` (the swept axes but `neuron`).
    `configs[c]` (a dict per configuration) and `index[(s, c)]` (a grid index) are views
    of these arrays."""

    static: dict
    n_pad: int | None
    seeds: list
    values: dict
    flat: np.ndarray
    grid_shape: tuple

    @property
    def size(self) -> int:
        return self.flat.shape[1]

    @property
    def configs(self):
        return _Configs(self)

    @property
    def index(self):
        return _Index(self)


class _Configs:
    def __init__(self, group):
        self.g = group

    def __len__(self):
        return self.g.size

    def __getitem__(self, c):
        if isinstance(c, slice):
            return [self[i] for i in range(*c.indices(len(self)))]
        return {k: (self.g.values[k][c].item() if k in self.g.values else None) for k in ARRAY_KEYS}

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _Index:
    def __init__(self, group):
        self.g = group

    def __getitem__(self, sc):
        return tuple(int(i) for i in np.unravel_index(self.g.flat[sc], self.g.grid_shape))


def _buckets(ns):
    """Split sorted sample sizes into buckets whose max is at most N_BUCKET_RATIO x min."""
    out, cur = [], []
    for n in sorted(ns):
        if cur and n > N_BUCKET_RATIO * cur[0]:
            out.append(cur)
            cur = []
        cur.append(n)
    return out + [cur] if cur else out


def grid_shape(config: dict, axes=None) -> tuple:
    """The shape of the grid of configurations (the swept axes but `neuron`)."""
    axes = swept_axes(config) if axes is None else axes
    return tuple(len(config["seeds" if a == "seed" else a]) for a in axes if a != "neuron")


def plan(config: dict) -> tuple[list[str], list[Group]]:
    """The dataset axes and the compiled groups of a resolved configuration.

    Vectorised: a group's configurations are a product of index arrays, never a Python
    loop over configurations (1e6 configurations plan in well under a second)."""
    axes = swept_axes(config)
    axis_keys = ["seeds" if a == "seed" else a for a in axes if a != "neuron"]
    shape = grid_shape(config, axes)
    stride = dict(zip(axis_keys, np.cumprod((1,) + shape[::-1])[::-1][1:].tolist()))
    n_values = config["n"]
    bucket_of = {}
    for b in _buckets([n for n in n_values if n is not None]):
        for n in b:
            bucket_of[n] = max(b)
    array_order = ("kappa", "r2", "r1", "n", "noise", "dt")  # schema order
    seeds = list(config["seeds"])
    seed_offsets = np.arange(len(seeds), dtype=np.int64) * stride.get("seeds", 0)
    groups = []
    for combo in itertools.product(*(list(enumerate(config[k])) for k in STATIC_KEYS)):
        static = {k: v for k, (_, v) in zip(STATIC_KEYS, combo)}
        base = sum(stride[k] * i for k, (i, _) in zip(STATIC_KEYS, combo) if k in stride)
        if static["source"] == "empirical":
            pads = sorted(set(bucket_of.values()))
            n_sets = [(pad, [i for i, n in enumerate(n_values) if bucket_of[n] == pad]) for pad in pads]
        else:
            n_sets = [(None, list(range(len(n_values))))]
        for n_pad, n_idx in n_sets:
            idx = {k: (n_idx if k == "n" else range(len(config[k]))) for k in array_order}
            mesh = np.meshgrid(*(np.asarray(idx[k], dtype=np.int64) for k in array_order), indexing="ij")
            mesh = dict(zip(array_order, (m.ravel() for m in mesh)))
            offsets = base + sum(stride[k] * mesh[k] for k in array_order if k in stride)
            offsets = np.broadcast_to(np.asarray(offsets, np.int64), mesh["dt"].shape)
            values = {k: np.asarray(config[k])[mesh[k]] for k in array_order if config[k][0] is not None}
            groups.append(Group(static=static, n_pad=n_pad, seeds=seeds, values=values,
                                flat=seed_offsets[:, None] + offsets[None, :], grid_shape=shape))
    return axes, groups


def _memory_terms(static, n_pad, d, record):
    """`(per seed, per configuration)` lists of `(what, bytes)` one batch holds on the device."""
    f = 4
    per_seed, per_config = [], [("the weights and optimizer state", 30 * d * f), ("the records", 8 * record * f)]
    if static["source"] == "empirical":
        per_seed.append((f"the n x d samples (n={n_pad}, d={d})", 3 * n_pad * d * f))
        per_config.append((f"the per-sample residuals (n={n_pad})", 10 * n_pad * f))
    if static["source"] in ("online", "reused"):
        per_seed.append((f"the batch x d draws (batch={static['batch']}, d={d})", 3 * static["batch"] * d * f))
        per_config.append((f"the per-sample residuals (batch={static['batch']})", 10 * static["batch"] * f))
    if static["n_unlabelled"]:
        per_config.append((f"SigmaHat and its draws (d={d}, n_unlabelled={static['n_unlabelled']})",
                           (4 * d * d + static["n_unlabelled"] * d) * f))
    return per_seed, per_config


def _bytes_per_config(static, n_pad, d, record):
    return sum(b for _, b in _memory_terms(static, n_pad, d, record)[1])


def _bytes_per_seed(static, n_pad, d):
    return sum(b for _, b in _memory_terms(static, n_pad, d, 0)[0])


def gb(nbytes: float) -> str:
    """Bytes in human units: '4.8 TB', '310 MB'."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{int(nbytes)} B"


def default_memory_budget() -> int:
    """Half of the accelerator's memory, or half of the host's available memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] * 0.5)
    except Exception:  # noqa: BLE001 (a backend without memory_stats)
        pass
    return host_memory() // 2


def host_memory() -> int:
    """The host's available memory in bytes (4 GiB when it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def batch_size(group: Group, record: int, max_memory: int, budget_from: str = "max_memory") -> int:
    """How many of the group's C configurations (with all its seeds) fit the budget."""
    d = group.static["d"]
    per_seed, per_config = _memory_terms(group.static, group.n_pad, d, record)
    seeds = len(group.seeds)
    per = sum(b for _, b in per_config) * seeds
    fixed = sum(b for _, b in per_seed) * seeds
    if max_memory - fixed < per:
        terms = [(what, b * seeds) for what, b in per_seed + per_config]
        what, big = max(terms, key=lambda t: t[1])
        key = "n" if "n=" in what else "batch" if "batch=" in what else "n_unlabelled" if "SigmaHat" in what else "d"
        value = {"n": group.n_pad, "batch": group.static["batch"], "n_unlabelled": group.static["n_unlabelled"],
                 "d": d}[key]
        raise ValueError(
            f"{key}={value!r} is not allowed here; one configuration with its {seeds} seed(s) needs about "
            f"{gb(fixed + per)} ({what}: {gb(big)}) and the memory budget is {gb(max_memory)} ({budget_from}): "
            f"lower {key}{' or d' if key != 'd' else ''}, use fewer seeds, or raise --max-memory if the "
            "device has the room"
        )
    return int(max(1, min(group.size, (max_memory - fixed) // per)))


# The time model of the pre-flight: each group costs one compile (none when the persistent
# compilation cache has it), each scan step of a compiled call a fixed overhead, and each
# config-step `flops / RATE`. Calibrated on the 2-core development CPU (float32, shared,
# load about 3) with configs/phase_diagram.toml, spherical_failure.toml and
# empirical_phase_diagram.toml; on another machine it is a guess.
RATE = {"population": 2e9, "empirical": 2e10, "online": 1e10, "reused": 1e10}  # flop/s a batch sustains
STEP_OVERHEAD_S = 1.5e-5  # one scan step of one compiled call
COMPILE_S = {"reduced": 3.0, "population": 4.0, "empirical": 8.0, "online": 8.0, "reused": 8.0}  # init + chunk


def _flops_per_config_step(static, n_pad, d):
    width = static["width"]
    if static["reduced"]:
        flops = 1000
    elif static["source"] == "empirical":
        flops = 4 * n_pad * d + 30 * n_pad
    elif static["source"] in ("online", "reused"):
        flops = 4 * static["batch"] * d + 40 * static["batch"] * d  # + fresh normal draws
    else:
        flops = 60 * d
    if static["n_unlabelled"]:
        flops += 4 * d * d
    return flops * width


def _kind(static) -> str:
    return "reduced" if static["reduced"] else static["source"]


def estimate_time(batches, steps) -> tuple[float, float]:
    """`(compile, run)` seconds the batches should take under the time model above."""
    groups = {id(g): g for g, _ in batches}
    compile_s = sum(COMPILE_S[_kind(g.static)] for g in groups.values())
    run_s = 0.0
    for g, sl in batches:
        configs = len(g.seeds) * (sl.stop - sl.start)
        rate = RATE["population" if g.static["reduced"] else g.static["source"]]
        run_s += steps * (STEP_OVERHEAD_S + configs * _flops_per_config_step(g.static, g.n_pad, g.static["d"]) / rate)
    return compile_s, run_s


def results_bytes(config: dict, axes) -> int:
    """Host bytes of the full-grid results (and the plan's index arrays)."""
    size = int(np.prod(grid_shape(config, axes), dtype=np.float64))
    width = config["width"][0]
    r = len(record_schedule(config["steps"][0], config["record"][0]))
    item = np.dtype(_float_dtype()).itemsize
    return size * (width * (r * len(METRICS) * item + 8) + 8 + 8 + 8 * len(ARRAY_KEYS))


def _float_dtype():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64


class Runner:
    """The compiled functions of one group; `init` and `chunk` act on (seeds, C) arrays."""

    def __init__(self, group: Group, config: dict, chunk: int, mesh=None):
        st = group.static
        self.steps, self.record = config["steps"][0], config["record"][0]
        self.record_count = len(record_schedule(self.steps, self.record))
        self.chunk = chunk
        use_n = st["source"] == "empirical"
        masked = use_n and len(np.unique(group.values["n"])) > 1

        width = st["width"]

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
        checked = not solver.adaptive and source(group.configs[0]).deterministic and width == 1
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


def empty_results(config: dict, axes: list[str]):
    """Full-grid host arrays; per-neuron arrays carry the `neuron` axis, `test_mse` not.
    Floats in JAX's default dtype (float32 unless `jax_enable_x64`)."""
    shape = grid_shape(config, axes)
    per_neuron = shape + ((config["width"][0],) if "neuron" in axes else ())
    r = len(record_schedule(config["steps"][0], config["record"][0]))
    f = _float_dtype()
    return {
        "records": np.full(per_neuron + (r, len(METRICS)), np.nan, f),
        "status": np.zeros(per_neuron, np.int32),
        "fail_step": np.full(per_neuron, -1, np.int32),
        "test_mse": np.full(shape, np.nan, f),
        "dt_limit": np.full(shape, np.nan, f),
    }


def scatter(results, group: Group, sl: slice, batch: dict):
    """Copy a batch's (seeds, C', ...) outputs into the full grid arrays."""
    flat = group.flat[:, sl]
    grid = results["test_mse"].size
    for name, values in batch.items():
        target = results[name].reshape((grid,) + results[name].shape[results["test_mse"].ndim:])
        target[flat] = values


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


# What each variable means: (long_name, description). docs/sweeps.md says the same.
VARIABLES = {
    "cos_u": ("cosine to the target direction",
              "<w, u> / (||w|| ||u||): the Euclidean angle between the neuron and the target direction u"),
    "rho": ("overlap with the target in the Sigma geometry",
            "<w, u>_Sigma / (||w||_Sigma ||u||_Sigma): the correlation of the neuron's pre-activation "
            "<w, x> with the target's index <u, x>; it decides prediction"),
    "cos_theta": ("cosine to the spike direction",
                  "<w, theta> / (||w|| ||theta||): the Euclidean angle between the neuron and the spike theta"),
    "norm": ("weight norm", "||w||, the Euclidean norm of the first-layer weights"),
    "risk": ("population risk",
             "the expected loss of the neuron (a = 1, b = 0) on fresh data, in closed form"),
    "train_risk": ("training risk",
                   "the mean loss on the n training samples (source='empirical'); NaN for other sources"),
    "status": ("run status",
               "ok; nonfinite (a NaN or inf appeared); diverged (||w|| passed max_norm); oscillating (the last "
               "steps of a fixed-step run alternate: a period-2 orbit of the map, not the flow); max_steps (the "
               "adaptive solver ran out of attempts before the horizon); error (the configuration's group could "
               "not run, see the errors attribute)"),
    "fail_step": ("step of failure", "the first step at which the run was nonfinite or diverged; -1 when ok"),
    "test_mse": ("phase-2 test error",
                 "test mean squared error of the ridge readout trained on n2 fresh samples over the "
                 "frozen first layer (noise floor: noise**2)"),
    "dt_limit": ("Euler step limit",
                 "2 / |lambda_max| of the field's Jacobian at w(0) or at u, whichever is smaller (power "
                 "iteration): a fixed step above it can oscillate; only for fixed-step runs on a deterministic source"),
    "done": ("computed by this process", "true where this part of a multi-process sweep holds results"),
    "step": ("training step", "the step at which the metrics were recorded (log-spaced, with 0 and the last)"),
    "seed": ("seed", "the configuration's seed: its directions, w(0) and samples depend on it alone"),
}


def to_dataset(results, config: dict, axes: list[str], done=None) -> xr.Dataset:
    """The labelled dataset: one dimension per swept key, plus `step`. Attributes keep their
    types (`fixed_reduced` is a bool); `_io` writes them as netCDF can hold them."""
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
    if np.isfinite(results["dt_limit"]).any():
        data["dt_limit"] = (config_dims, results["dt_limit"])
    if done is not None:
        data["done"] = (config_dims, done)
    fixed = {k: v[0] for k, v in config.items() if ("seed" if k == "seeds" else k) not in axes}
    attrs = {"config": json.dumps(config, sort_keys=True), **{f"fixed_{k}": v for k, v in fixed.items()}}
    attrs.update(environment())
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for name in list(ds.data_vars) + list(ds.coords):
        long_name, description = VARIABLES.get(name, (name, SCHEMA_MEANING.get(name, name)))
        ds[name].attrs.update(long_name=long_name, description=description)
    return ds


SCHEMA_MEANING = {
    "d": "dimension", "kappa": "spike strength (Sigma's condition number is 1 + kappa)",
    "r2": "spike exponent, kappa = d**r2", "r1": "alignment exponent, <u, theta> = d**(-r1)",
    "n": "labelled samples (source='empirical')", "n_unlabelled": "samples for SigmaHat (0: the true Sigma)",
    "batch": "samples a step (source='online')", "noise": "label-noise standard deviation tau",
    "dt": "step size", "link": "target link f_*", "activation": "neuron activation phi", "loss": "loss",
    "dynamic": "training dynamic", "source": "where the gradient's expectations come from",
    "normalisation": "covariance normalisation", "input_dist": "input distribution",
    "neuron": "first-layer neuron (width > 1)",
}


@dataclass
class SweepPlan:
    """What a sweep will do, decided before anything compiles (`preflight`)."""

    config: dict
    axes: list
    groups: list
    batches: list  # (batch number, group, slice of its C axis) of this process
    total_batches: int
    chunk: int
    max_memory: int
    budget_from: str
    n_dev: int
    mesh: object
    part: int | None
    batch_bytes: int  # the largest batch's estimated device memory
    host_bytes: int
    seconds: tuple  # the time model's estimate: (compile, run)
    runners: dict = field(default_factory=dict)
    complete: bool = False  # `out` already holds the finished results (resume)
    batches_saved: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(grid_shape(self.config, self.axes), dtype=np.int64))

    def trace(self):
        """Trace (never compile) every group once, so that what the engine refuses at trace
        time (a blind activation, say) raises `ValueError` before anything runs."""
        if self.complete:
            return
        for _, g, sl in self.batches:
            if id(g) not in self.runners:
                self.runners[id(g)] = _traced_runner(g, self.config, self.chunk, self.mesh, self.n_dev, sl)

    def summary(self) -> str:
        cfg, steps = self.config, self.config["steps"][0]
        shape = grid_shape(cfg, self.axes)
        axes = " x ".join(f"{a} {n}" for a, n in zip([a for a in self.axes if a != "neuron"], shape))
        width = cfg["width"][0]
        per_group = sorted({len(g.seeds) * (sl.stop - sl.start) for _, g, sl in self.batches}, reverse=True)
        splits = [k for k in STATIC_KEYS if len(cfg[k]) > 1] + (["n bucket"] if len({g.n_pad for g in self.groups}) > 1
                                                                else [])
        lines = [
            f"grid: {self.size:,} configurations ({axes}){f' x {width} neurons' if width > 1 else ''}, "
            f"{steps:,} steps, {len(record_schedule(steps, cfg['record'][0]))} records",
            f"groups: {len(self.groups)} compiled call(s){' (by ' + ', '.join(splits) + ')' if splits else ''}; "
            f"batches: {self.total_batches} (up to {per_group[0] if per_group else 0:,} configurations each, "
            f"chunks of {self.chunk} steps)" + (f"; this process runs {len(self.batches)}" if self.part is not None
                                                else ""),
            f"memory: about {gb(self.batch_bytes)} a batch on {self.n_dev} {jax.default_backend()} device(s) "
            f"(budget {gb(self.max_memory)}, {self.budget_from}); results {gb(self.host_bytes)} on the host",
            f"time: about {_duration(sum(self.seconds))}: {_duration(self.seconds[0])} compiling (none when "
            f"cached) + {_duration(self.seconds[1])} running (model in _sweep.py: flops / rate + "
            f"{STEP_OVERHEAD_S * 1e6:g} us a step)",
        ]
        if self.complete:
            lines.append("already complete: --resume loads the results, nothing to compute")
        elif self.batches_saved:
            lines.append(f"resuming: {self.batches_saved} of {len(self.batches)} batches done")
        return "\n".join(lines)


def _duration(s: float) -> str:
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class RunStats:
    """What one call of `run` did: the work of this call only (not the resumed part)."""

    config_steps: int = 0
    batches_run: int = 0
    batches_resumed: int = 0
    seconds: float = 0.0


def preflight(
    config,
    *,
    out=None,
    resume: bool = False,
    force: bool = False,
    max_memory: int | None = None,
    chunk: int | None = None,
    devices=None,
    process_index: int = 0,
    process_count: int = 1,
    trace: bool = True,
) -> SweepPlan:
    """Check and plan a sweep without compiling or writing anything: the grid, groups,
    batches, memory and time estimates. With `trace`, every group is traced (not compiled)
    once, so a configuration the engine refuses (a blind activation, say) raises
    `ValueError` here. Same arguments as `sweep`."""
    cfg = load_config(config)
    check_int("process_count", process_count, 1)
    check("process_index", process_index, 0 <= process_index < process_count,
          f"allowed: an integer in [0, {process_count - 1}]")
    if chunk is not None:
        check_int("chunk", chunk, 1)
    if max_memory is not None:
        check_int("max_memory", max_memory, 1)
    axes = swept_axes(cfg)
    host = results_bytes(cfg, axes)
    available = host_memory()
    if host > 0.8 * available:
        size = int(np.prod(grid_shape(cfg, axes), dtype=np.float64))
        check("grid", f"{size:.3g} configurations", False,
              f"its results need about {gb(host)} of host memory and {gb(available)} is available: "
              "sweep fewer values, lower record, or split the grid into several sweeps")
    part = None if process_count == 1 else process_index
    if out is not None:
        check_out(out, cfg, force=force)
    steps, record = cfg["steps"][0], cfg["record"][0]
    mesh = make_mesh(devices)
    n_dev = 1 if mesh is None else mesh.size
    budget_from = "--max-memory / max_memory" if max_memory else "the default, half the device's or host's memory"
    batch_plan = {"chunk": chunk or default_chunk(steps), "max_memory": max_memory or default_memory_budget(),
                  "devices": n_dev}
    saved = saved_plan(out, part) if (out is not None and resume) else None
    if saved is not None:
        if saved.get("devices") != n_dev:
            check("devices", n_dev, False, f"the checkpoints in {str(out)!r} were made with {saved.get('devices')} "
                                           "devices: resume with as many")
        batch_plan, budget_from = saved, "saved with the checkpoints"
    chunk, budget = batch_plan["chunk"], batch_plan["max_memory"]
    axes, groups = plan(cfg)
    batches, biggest = [], 0
    for g in groups:
        size = batch_size(g, record, budget, budget_from)
        size = max(n_dev, size - size % n_dev) if n_dev > 1 else size
        per_seed, per_config = _memory_terms(g.static, g.n_pad, g.static["d"], record)
        biggest = max(biggest, len(g.seeds) * (sum(b for _, b in per_seed) + size * sum(b for _, b in per_config)))
        batches += [(g, slice(i, min(i + size, g.size))) for i in range(0, g.size, size)]
    mine = [(bi, g, sl) for bi, (g, sl) in enumerate(batches) if bi % process_count == process_index]
    result = SweepPlan(
        config=cfg, axes=axes, groups=groups, batches=mine, total_batches=len(batches), chunk=chunk,
        max_memory=budget, budget_from=budget_from, n_dev=n_dev, mesh=mesh, part=part, batch_bytes=biggest,
        host_bytes=host, seconds=estimate_time([(g, sl) for _, g, sl in mine], steps),
    )
    if out is not None and resume:
        res = Path(out) / ("results.nc" if part is None else f"results.part{part}.nc")
        ckpt = Path(out) / ("checkpoint" if part is None else f"checkpoint-{part}")
        if res.exists() and not ckpt.exists():
            try:
                result.complete = json.loads(load_results(res).attrs["config"]) == json.loads(json.dumps(cfg))
            except (OSError, ValueError, KeyError):
                result.complete = False
        if ckpt.exists():
            result.batches_saved = len(list(ckpt.glob("batch-*.npz")))
    if trace:
        result.trace()
    return result


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
    pre = preflight(config, out=out, resume=resume, force=force, max_memory=max_memory, chunk=chunk,
                    devices=devices, process_index=process_index, process_count=process_count)
    return run(pre, out=out, resume=resume, force=force, progress=progress)[0]


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


def _failed_batch(seeds: int, width: int, results):
    """A batch whose group raised: NaN records, status `error`."""
    grid = results["test_mse"].ndim  # per-neuron arrays have extra trailing axes
    lead = (seeds, width)
    return {
        "records": np.full(lead + results["records"].shape[grid:], np.nan, results["records"].dtype),
        "status": np.full(lead + results["status"].shape[grid:], SWEEP_STATUS.index("error"), np.int32),
        "fail_step": np.zeros(lead + results["fail_step"].shape[grid:], np.int32),
        "test_mse": np.full(lead, np.nan, results["test_mse"].dtype),
        "dt_limit": np.full(lead, np.nan, results["dt_limit"].dtype),
    }


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
        bar.set_postfix_str(f"batch {bi + 1}, step {min(done, steps) if not runner.adaptive else done}"
                            + ("" if runner.adaptive else f"/{steps}"), refresh=False)
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
