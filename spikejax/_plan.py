"""Sweep planning, pure and before anything compiles: configurations to groups and batches.

The grid is the product of every key's values. Configurations are grouped by what changes
the compiled code or array shapes (`d`, `n` bucket, `n_unlabelled`, `batch`, `link`,
`activation`, `loss`, `dynamic`, `source`, ...); inside a group the numeric axes (`kappa`
or `r2`, `r1`, `noise`, `dt`, and `n` through padding with `n_used`) are array inputs of
one `vmap`. The C axis of a group is split into batches that fit a memory budget; the
pre-flight (`preflight`) checks everything, estimates memory and time, and traces (never
compiles) each group once so that what the engine refuses is refused here.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._config import SCHEMA, load_config, swept_axes
from ._io import check_out, load_results, saved_plan
from ._problem import check, check_int
from ._saveat import record_schedule

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


def network_from(static: dict):
    """The `sj.Network` a group trains (`network = true`), or None: `width` independent
    neurons (today's phase 1). Its keys are static: one compiled call per value."""
    if not static.get("network"):
        return None
    from ._train import Network

    return Network(width=static["width"], scaling=static["scaling"], second_layer=static["second_layer"],
                   lr_ratio=static["lr_ratio"], biases=static["biases"], a_init=static["a_init"],
                   bias_init=static["bias_init"])


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
    f, m = 4, static.get("width", 1)  # m neurons (a network's rows, or independent neurons)
    if static["reduced"] and static["source"] in ("online", "reused"):  # the chain: float64 in its frame
        f, d = 8, 4 if static["source"] == "online" else 3 + static["batch"]
    per_seed, per_config = [], [("the weights and optimizer state", 30 * m * d * f), ("the records", 8 * record * f)]
    if static["source"] == "empirical":
        per_seed.append((f"the n x d samples (n={n_pad}, d={d})", 3 * n_pad * d * f))
        per_config.append((f"the per-sample residuals (n={n_pad})", 10 * m * n_pad * f))
    if static["source"] in ("online", "reused"):
        per_seed.append((f"the batch x d draws (batch={static['batch']}, d={d})", 3 * static["batch"] * d * f))
        per_config.append((f"the per-sample residuals (batch={static['batch']})", 10 * m * static["batch"] * f))
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
    """The host's available memory in bytes (8 GiB when it cannot be read)."""
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
    if static["reduced"] and static["source"] == "online":
        flops = 100 * static["batch"]  # the exact chain: O(batch) a step, free of d
    elif static["reduced"] and static["source"] == "reused":
        flops = 4 * static["batch"] * (static["batch"] + 3) + 100 * static["batch"]
    elif static["reduced"]:
        flops = 1000
    elif static["source"] == "empirical":
        flops = 4 * n_pad * d + 30 * n_pad
    elif static["source"] in ("online", "reused"):
        flops = 4 * static["batch"] * d + 40 * static["batch"] * d  # + fresh normal draws
    else:
        flops = 60 * d
    if static["n_unlabelled"]:
        flops += 4 * d * d
    if static.get("network") and static["source"] == "population":
        flops += 400 * width  # the pair sums of the closed form: O(m^2) a step
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
    width = 1 if config["network"][0] else config["width"][0]  # a network records once, not per neuron
    r = len(record_schedule(config["steps"][0], config["record"][0]))
    item = np.dtype(_float_dtype()).itemsize
    from ._results import DIRECTION_METRICS, _multi_k, record_names  # (imports this module)

    k = _multi_k(config)  # a k-index target adds per-direction records and 2k + 1 first passages
    directions = 0 if k is None else (r * len(DIRECTION_METRICS) * k + 2 * k + 1) * item
    return size * (width * (r * len(record_names(config)) * item + 8) + directions + 8 + 8 + 8 * len(ARRAY_KEYS))


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
                from ._sweep import _traced_runner  # the runner needs the plan: import on use

                self.runners[id(g)] = _traced_runner(g, self.config, self.chunk, self.mesh, self.n_dev, sl)

    def summary(self) -> str:
        cfg, steps = self.config, self.config["steps"][0]
        shape = grid_shape(cfg, self.axes)
        axes = " x ".join(f"{a} {n}" for a, n in zip([a for a in self.axes if a != "neuron"], shape))
        width = cfg["width"][0] if len(cfg["width"]) == 1 and not cfg["network"][0] else 1
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
            f"cached) + {_duration(self.seconds[1])} running (model in _plan.py: flops / rate + "
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

def _float_dtype():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64
