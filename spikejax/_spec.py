"""A sweep's specification: what a resolved configuration fixes, computed once and frozen.

Every layer of a sweep (grid, budget, runner, results) reads its axes, grid shape, record
schedule, recorded names and float type from one `SweepSpec` instead of re-deriving them
from the configuration's lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import numpy as np

from ._config import SCHEMA, SINGLE, load_config, multi_target, swept_axes
from ._saveat import METRICS, record_schedule
from ._train import NETWORK_METRICS

# A multi-index target (`target` other than "single_index") records these instead of `METRICS`:
# scalars over (axes..., step), per-direction ones over (axes..., step, direction), and the
# first passages (time t = k dt) of each direction's coverage (`t_cover`) and best overlap
# (`t_best`) and of the smallest principal cosine (`t_subspace`) at the config's `threshold`.
MULTI_METRICS = ("risk", "train_risk")
DIRECTION_METRICS = ("coverage", "principal_cos", "best")
# ... and the signed overlap `M_ij` of direction i with unit j (sj.subspace_metrics' `overlap`): over
# (axes..., step, direction, unit) for a network, (axes..., step, direction) per independent neuron.


def passage_names(k: int, threshold: float) -> dict:
    """The `SaveAt(passages=...)` of a k-index sweep, in the order its `passages` array keeps."""
    names = [f"cover{i + 1}" for i in range(k)] + [f"u{i + 1}" for i in range(k)] + ["subspace"]
    return {name: (threshold,) for name in names}


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """The fixed facts of a resolved configuration (`config`, every value a list).

    `axes`: the dataset's dimensions besides `step` (`seed` first, `neuron` last when
    independent neurons train); `grid_shape`: the configurations' shape (the axes but
    `neuron`); `schedule`: the recorded steps; `names`: the recorded observables; `k`: the
    number of target directions of a multi-index target (None for a single index);
    `float_dtype`: the records' dtype."""

    config: dict
    axes: tuple
    grid_shape: tuple
    steps: int
    record: int
    schedule: tuple
    names: tuple
    k: int | None
    width: int
    network: bool
    float_dtype: np.dtype

    @classmethod
    def of(cls, config) -> SweepSpec:
        """The spec of a config: a `SweepSpec`, a resolved dict (`load_config`'s), a raw dict
        or a TOML path (resolved here)."""
        if isinstance(config, SweepSpec):
            return config
        if not _resolved(config):
            config = load_config(config)
        axes = tuple(swept_axes(config))
        shape = tuple(len(config["seeds" if a == "seed" else a]) for a in axes if a != "neuron")
        steps, record = config["steps"][0], config["record"][0]
        k = None if config["target"][0] == SINGLE else multi_target(
            {key: config[key][0] for key in ("target", "k", "terms")})[1]
        network = bool(config["network"][0])
        names = MULTI_METRICS if k is not None else NETWORK_METRICS if network else METRICS
        x64 = config["precision"][0] == "float64" or jax.config.jax_enable_x64
        return cls(config=config, axes=axes, grid_shape=shape, steps=steps, record=record,
                   schedule=tuple(int(s) for s in record_schedule(steps, record)), names=names, k=k,
                   width=config["width"][0], network=network,
                   float_dtype=np.dtype("float64" if x64 else "float32"))

    def fixed(self, key: str):
        """The value of a key that is not swept (the first value of one that is)."""
        return self.config[key][0]

    @property
    def size(self) -> int:
        """The number of configurations (seeds included)."""
        return int(np.prod(self.grid_shape, dtype=np.int64))

    @property
    def config_axes(self) -> tuple:
        """The axes of a configuration (all but `neuron`)."""
        return tuple(a for a in self.axes if a != "neuron")

    @property
    def units(self) -> int:
        """The rows a record's `overlap` has: a network's `width`, one per independent neuron."""
        return self.width if self.network else 1

    @property
    def independent(self) -> bool:
        """Whether `width > 1` neurons train independently (a `neuron` axis)."""
        return "neuron" in self.axes

    def values(self, axis: str) -> list:
        """An axis's coordinate values."""
        return self.config["seeds" if axis == "seed" else axis]

    def json(self) -> str:
        """The resolved configuration as the canonical JSON that results and checkpoints keep."""
        return json.dumps(self.config, sort_keys=True)


def _resolved(config) -> bool:
    """Whether a dict is already `load_config`'s output (every schema key, every value a list)."""
    return isinstance(config, dict) and set(config) == set(SCHEMA) and all(
        isinstance(v, list) for v in config.values())
