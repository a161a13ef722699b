"""A sweep's budget, before anything compiles: the device memory a batch needs, how many
configurations fit, the host memory of the results, and the time model of the pre-flight.
"""

from __future__ import annotations

import jax
import numpy as np

from ._grid import ARRAY_KEYS, Group
from ._registry import SOURCES
from ._spec import DIRECTION_METRICS, SweepSpec


def source_cost(static: dict, n_pad):
    """The group's source's own budget (`AbstractSource.cost`)."""
    return SOURCES[static["source"]].cost(static, n_pad)


def memory_terms(static, n_pad, record):
    """`(per seed, per configuration)` lists of `(what, bytes)` one batch holds on the device."""
    cost = source_cost(static, n_pad)
    f, m, d = cost.itemsize, static.get("width", 1), cost.d or static["d"]  # m neurons (rows or independent)
    per_config = [("the weights and optimizer state", 30 * m * d * f), ("the records", 8 * record * f),
                  *cost.per_config]
    if static["n_unlabelled"]:
        per_config.append((f"SigmaHat and its draws (d={d}, n_unlabelled={static['n_unlabelled']})",
                           (4 * d * d + static["n_unlabelled"] * d) * f))
    return list(cost.per_seed), per_config


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
    per_seed, per_config = memory_terms(group.static, group.n_pad, record)
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
# compilation cache has it: the source's `compile_s`), each scan step of a compiled call a
# fixed overhead, and each config-step the source's `flops / rate`. Calibrated on the 2-core
# development CPU (float32, shared, load about 3) with configs/phase_diagram.toml,
# spherical_failure.toml and empirical_phase_diagram.toml; on another machine it is a guess.
STEP_OVERHEAD_S = 1.5e-5  # one scan step of one compiled call


def estimate_time(batches, steps) -> tuple[float, float]:
    """`(compile, run)` seconds the batches should take under the time model above."""
    groups = {id(g): g for g, _ in batches}
    compile_s = sum(source_cost(g.static, g.n_pad).compile_s for g in groups.values())
    run_s = 0.0
    for g, sl in batches:
        configs = len(g.seeds) * (sl.stop - sl.start)
        cost, d = source_cost(g.static, g.n_pad), g.static["d"]
        flops = (cost.flops + (4 * d * d if g.static["n_unlabelled"] else 0)) * g.static["width"]
        run_s += steps * (STEP_OVERHEAD_S + configs * flops / cost.rate)
    return compile_s, run_s


def results_bytes(spec: SweepSpec) -> int:
    """Host bytes of the full-grid results (and the plan's index arrays)."""
    width = 1 if spec.network else spec.width  # a network records once, not per neuron
    r, item, k = len(spec.schedule), spec.float_dtype.itemsize, spec.k
    # a k-index target adds per-direction records, the signed overlaps and 2k + 1 first passages
    directions = 0 if k is None else (r * (len(DIRECTION_METRICS) + spec.units) * k + 2 * k + 1) * item
    per_config = width * (r * len(spec.names) * item + 8) + directions + 8 + 8 + 8 * len(ARRAY_KEYS)
    return int(np.prod(spec.grid_shape, dtype=np.float64) * per_config)


def default_chunk(steps: int) -> int:
    """About 20 chunks a run (a checkpoint and a progress update each), at least 50 steps."""
    return min(steps, max(50, -(-steps // 20)))


