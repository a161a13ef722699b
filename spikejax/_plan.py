"""A sweep's plan, decided before anything compiles: the spec, its groups, batches that fit
the memory budget, the time estimate, and (with `trace`) every group traced once so that
what the engine refuses is refused here. Grid in `_grid.py`, budget in `_budget.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import jax
import numpy as np

from ._budget import (STEP_OVERHEAD_S, batch_size, default_chunk, default_memory_budget, estimate_time, gb,
                      host_memory, memory_terms, results_bytes)
from ._grid import STATIC_KEYS, plan
from ._io import check_out, load_results, paths, saved_plan
from ._problem import check, check_int
from ._runner import traced_runner
from ._spec import SweepSpec


def make_mesh(devices=None):
    """A 1-D mesh named `c` over the devices, or None for one device."""
    devices = jax.devices() if devices is None else devices
    if len(devices) <= 1:
        return None
    from jax.sharding import Mesh

    return Mesh(np.asarray(devices), ("c",))


@dataclass
class SweepPlan:
    """What a sweep will do, decided before anything compiles (`preflight`)."""

    spec: SweepSpec
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
    def config(self) -> dict:
        return self.spec.config

    @property
    def size(self) -> int:
        return self.spec.size

    def trace(self):
        """Trace (never compile) every group once, so that what the engine refuses at trace
        time (a blind activation, say) raises `ValueError` before anything runs."""
        if self.complete:
            return
        for _, g, sl in self.batches:
            if id(g) not in self.runners:
                self.runners[id(g)] = traced_runner(g, self.spec, self.chunk, self.mesh, self.n_dev, sl)

    def summary(self) -> str:
        spec, cfg = self.spec, self.spec.config
        axes = " x ".join(f"{a} {n}" for a, n in zip(spec.config_axes, spec.grid_shape))
        width = spec.width if len(cfg["width"]) == 1 and not spec.network else 1
        per_group = sorted({len(g.seeds) * (sl.stop - sl.start) for _, g, sl in self.batches}, reverse=True)
        splits = [k for k in STATIC_KEYS if len(cfg[k]) > 1] + (["n bucket"] if len({g.n_pad for g in self.groups}) > 1
                                                                else [])
        lines = [
            f"grid: {self.size:,} configurations ({axes}){f' x {width} neurons' if width > 1 else ''}, "
            f"{spec.steps:,} steps, {len(spec.schedule)} records",
            f"groups: {len(self.groups)} compiled call(s){' (by ' + ', '.join(splits) + ')' if splits else ''}; "
            f"batches: {self.total_batches} (up to {per_group[0] if per_group else 0:,} configurations each, "
            f"chunks of {self.chunk} steps)" + (f"; this process runs {len(self.batches)}" if self.part is not None
                                                else ""),
            f"memory: about {gb(self.batch_bytes)} a batch on {self.n_dev} {jax.default_backend()} device(s) "
            f"(budget {gb(self.max_memory)}, {self.budget_from}); results {gb(self.host_bytes)} on the host",
            f"time: about {_duration(sum(self.seconds))}: {_duration(self.seconds[0])} compiling (none when "
            f"cached) + {_duration(self.seconds[1])} running (model in _budget.py: flops / rate + "
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
    spec = SweepSpec.of(config)
    check_int("process_count", process_count, 1)
    check("process_index", process_index, 0 <= process_index < process_count,
          f"allowed: an integer in [0, {process_count - 1}]")
    if chunk is not None:
        check_int("chunk", chunk, 1)
    if max_memory is not None:
        check_int("max_memory", max_memory, 1)
    host, available = results_bytes(spec), host_memory()
    if host > 0.8 * available:
        check("grid", f"{spec.size:.3g} configurations", False,
              f"its results need about {gb(host)} of host memory and {gb(available)} is available: "
              "sweep fewer values, lower record, or split the grid into several sweeps")
    part = None if process_count == 1 else process_index
    if out is not None:
        check_out(out, spec.config, force=force)
    mesh = make_mesh(devices)
    n_dev = 1 if mesh is None else mesh.size
    chunk, budget, budget_from = _batch_plan(spec, out, resume, part, chunk, max_memory, n_dev)
    _, groups = plan(spec)
    batches, biggest = [], 0
    for g in groups:
        size = batch_size(g, spec.record, budget, budget_from)
        size = max(n_dev, size - size % n_dev) if n_dev > 1 else size
        per_seed, per_config = memory_terms(g.static, g.n_pad, spec.record)
        biggest = max(biggest, len(g.seeds) * (sum(b for _, b in per_seed) + size * sum(b for _, b in per_config)))
        batches += [(g, slice(i, min(i + size, g.size))) for i in range(0, g.size, size)]
    mine = [(bi, g, sl) for bi, (g, sl) in enumerate(batches) if bi % process_count == process_index]
    result = SweepPlan(
        spec=spec, groups=groups, batches=mine, total_batches=len(batches), chunk=chunk, max_memory=budget,
        budget_from=budget_from, n_dev=n_dev, mesh=mesh, part=part, batch_bytes=biggest, host_bytes=host,
        seconds=estimate_time([(g, sl) for _, g, sl in mine], spec.steps),
    )
    if out is not None and resume:
        res, ckpt = paths(out, part)
        if res.exists() and not ckpt.exists():
            try:
                result.complete = json.loads(load_results(res).attrs["config"]) == json.loads(spec.json())
            except (OSError, ValueError, KeyError):
                result.complete = False
        if ckpt.exists():
            result.batches_saved = len(list(ckpt.glob("batch-*.npz")))
    if trace:
        result.trace()
    return result


def _batch_plan(spec, out, resume, part, chunk, max_memory, n_dev) -> tuple[int, int, str]:
    """`(chunk, memory budget, where the budget comes from)`: the arguments' or the defaults,
    or, when resuming, the plan saved with the checkpoints (so batch numbers mean the same
    batches)."""
    saved = saved_plan(out, part) if (out is not None and resume) else None
    if saved is None:
        return (chunk or default_chunk(spec.steps), max_memory or default_memory_budget(),
                "--max-memory / max_memory" if max_memory else "the default, half the device's or host's memory")
    if saved.get("devices") != n_dev:
        check("devices", n_dev, False, f"the checkpoints in {str(out)!r} were made with {saved.get('devices')} "
                                       "devices: resume with as many")
    return saved["chunk"], saved["max_memory"], "saved with the checkpoints"
