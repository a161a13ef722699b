"""Experiment configs: the sweep's TOML dialect (`spikejax.read_toml`: data only, never
evaluated), an `[experiment]` table with a `kind` and its parameters, and optional
`[scale.<name>]` tables whose keys override the experiment's at that scale."""

from __future__ import annotations

import itertools
from pathlib import Path

import spikejax as sj


def load_experiment(path, scale: str | None = "small", kinds=None, required=()) -> dict:
    """The `[experiment]` table of `path` with `[scale.<scale>]` merged over it.

    **Raises:** `ValueError` naming the file and the key: no `[experiment]` table, an unknown
    scale, a `kind` outside `kinds`, a missing `required` key.
    """
    raw = sj.read_toml(path)
    if "experiment" not in raw:
        raise ValueError(f"config={str(path)!r} is not allowed; it needs an [experiment] table")
    cfg = dict(raw["experiment"])
    scales = raw.get("scale", {})
    if scale is not None and scales:
        if scale not in scales:
            raise ValueError(f"scale={scale!r} is not allowed; {path} defines {', '.join(map(repr, scales))}")
        cfg.update(scales[scale])
    if kinds is not None and cfg.get("kind") not in kinds:
        raise ValueError(f"kind={cfg.get('kind')!r} is not allowed; choose one of {', '.join(kinds)}")
    for key in required:
        if key not in cfg:
            raise ValueError(f"{key} is missing; config {str(path)!r} must give it in [experiment]")
    cfg.setdefault("name", Path(path).stem)
    return cfg


def load_config(path, scale: str = "small", kinds=None, skip_other_scales: bool = True) -> dict:
    """A claim config: `load_experiment` with its kinds.

    `only_scales = [...]` in `[experiment]` marks a config committed at those scales only: at any
    other scale it comes back with `skip = True` (so `make reproduce` at small scale never
    overwrites numbers committed at `large`; `skip_other_scales=False` loads it at its first
    committed scale instead). A config with an `[experiment.grid]` table has its targets built
    by `grid_targets`."""
    raw = sj.read_toml(path)
    only = raw.get("experiment", {}).get("only_scales")
    if only is not None and scale not in only:
        if skip_other_scales:
            return dict(name=Path(path).stem, kind=raw["experiment"].get("kind"), skip=True, only_scales=list(only))
        scale = only[0]
    cfg = load_experiment(path, scale, kinds=kinds)
    if "grid" in cfg:
        cfg["targets"], cfg["d"] = grid_targets(cfg)
    return cfg


def grid_targets(cfg) -> tuple[list, dict]:
    """The targets of `cfg['grid']` (lists of `s`, `r1`, `r2`, `dynamic`; product in that order),
    each with its `[experiment.by_s.<s>]` settings, and their d from `d_by_s`."""
    g, by_s, d_by_s = cfg["grid"], cfg["by_s"], cfg["d_by_s"]
    targets, ds = [], {}
    for s, r1, r2, dyn in itertools.product(g["s"], g["r1"], g["r2"], g["dynamic"]):
        if str(s) not in by_s or str(s) not in d_by_s:
            raise ValueError(f"s={s!r} is not allowed; [experiment.by_s] and d_by_s must both give s = {s}")
        name = f"s{s}_r1_{r1:g}_r2_{r2:g}_{dyn}"
        targets.append(dict(by_s[str(s)], name=name, s=s, r1=r1, r2=r2, dynamic=dyn))
        ds[name] = list(d_by_s[str(s)])
    return targets, ds


def setting(target: dict, cfg: dict, key: str):
    """A target's own `key`, else its experiment's: a target may carry any key per target only.

    **Raises:** `ValueError` naming the key when neither gives it."""
    if key in target:
        return target[key]
    if key in cfg:
        return cfg[key]
    raise ValueError(f"{key} is missing; give it in [experiment] or in target {target.get('name', '?')!r}")


def setting_or(target: dict, cfg: dict, key: str, default):
    """A target's own `key`, else its experiment's, else `default`."""
    return target.get(key, cfg.get(key, default))
