"""A sweep's grid, split into compiled groups: pure and before anything compiles.

The grid is the product of every key's values. Configurations are grouped by what changes
the compiled code or array shapes (`d`, `n` bucket, `n_unlabelled`, `batch`, `link`,
`activation`, `loss`, `dynamic`, `source`, ...); inside a group the numeric axes (`kappa`
or `r2`, `r1`, `noise`, `dt`, and `n` through padding with `n_used`) are array inputs of
one `vmap`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ._config import SCHEMA, config_fields
from ._registry import SOURCES
from ._spec import SweepSpec

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


def plan(config) -> tuple[list[str], list[Group]]:
    """The dataset axes and the compiled groups of a configuration (a `SweepSpec`, or a
    config as `SweepSpec.of` takes it).

    Vectorised: a group's configurations are a product of index arrays, never a Python
    loop over configurations (1e6 configurations plan in well under a second)."""
    spec = SweepSpec.of(config)
    config, shape = spec.config, spec.grid_shape
    axis_keys = ["seeds" if a == "seed" else a for a in spec.config_axes]
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
        if "n" in config_fields(SOURCES[static["source"]]):  # sized by n: nested samples share padded shapes
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
    return list(spec.axes), groups


