"""Labelled results on disk: the results dataset, checkpoints, atomic writes.

A results directory holds `config.json` (the resolved configuration), `results.nc`
(xarray, written with the scipy engine so it needs neither netCDF4 nor h5netcdf) and,
while a sweep runs, `checkpoint/` (one file per finished batch, one for the batch in
flight). Every file is written to a temporary name and moved into place, so a killed run
never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

ENGINE = "scipy"


def atomic_write(path: Path, write):
    """Call `write(tmp_path)` and move the result onto `path` (same directory, atomic)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _save_npz(path: Path, **arrays):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def environment() -> dict:
    """Versions and device, stored with every result."""
    import jax

    import spikejax

    return {
        "spikejax": spikejax.__version__,
        "jax": jax.__version__,
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": ", ".join(str(d) for d in jax.devices()),
    }


class Store:
    """A results directory. Refuses one that holds a different configuration unless `force`."""

    def __init__(self, out, config: dict, *, resume=False, force=False, part=None):
        self.dir = Path(out)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.dir / ("checkpoint" if part is None else f"checkpoint-{part}")
        self.part = part
        text = json.dumps(config, sort_keys=True)
        cfg_path = self.dir / "config.json"
        if cfg_path.exists() and cfg_path.read_text() != text:
            if not force:
                raise ValueError(
                    f"out={str(out)!r} is not allowed; it holds results of a different config "
                    "(pass force=True / --force to overwrite, or choose another directory)"
                )
            shutil.rmtree(self.ckpt, ignore_errors=True)
        if not resume:
            shutil.rmtree(self.ckpt, ignore_errors=True)
        self.ckpt.mkdir(exist_ok=True)
        atomic_write(cfg_path, lambda tmp: Path(tmp).write_text(text))

    def plan(self, plan: dict) -> dict:
        """The batch plan (chunk, memory budget, devices) of the checkpoints here: the saved
        one when resuming (so batch numbers mean the same batches), else `plan`, saved."""
        path = self.ckpt / "plan.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("devices") != plan["devices"]:
                raise ValueError(
                    f"devices={plan['devices']} is not allowed; the checkpoints in {str(self.dir)!r} "
                    f"were made with {saved.get('devices')} devices: resume with as many"
                )
            return saved
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(plan)))
        return plan

    def finished(self, batch: int):
        path = self.ckpt / f"batch-{batch:05d}.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def save_finished(self, batch: int, **arrays):
        _save_npz(self.ckpt / f"batch-{batch:05d}.npz", **arrays)
        current = self.ckpt / "current.npz"
        if current.exists():
            current.unlink()

    def in_flight(self, batch: int):
        """`(steps_done, leaves)` of the batch in flight, if it is `batch`."""
        path = self.ckpt / "current.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            if int(z["batch"]) != batch:
                return None
            n = int(z["num_leaves"])
            return int(z["done"]), [z[f"leaf{i}"] for i in range(n)]

    def save_in_flight(self, batch: int, done: int, leaves):
        arrays = {f"leaf{i}": np.asarray(x) for i, x in enumerate(leaves)}
        _save_npz(self.ckpt / "current.npz", batch=batch, done=done, num_leaves=len(leaves), **arrays)

    def write_results(self, ds: xr.Dataset, name="results.nc"):
        atomic_write(self.dir / name, lambda tmp: ds.to_netcdf(tmp, engine=ENGINE))

    def clear_checkpoints(self):
        shutil.rmtree(self.ckpt, ignore_errors=True)


def load_results(path) -> xr.Dataset:
    """Load `results.nc` from a results directory (or a file path) into memory."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    return xr.load_dataset(path, engine=ENGINE)


def merge_parts(out) -> xr.Dataset:
    """Assemble the `results.part*.nc` of a multi-process sweep into `results.nc`."""
    out = Path(out)
    parts = sorted(out.glob("results.part*.nc"))
    if not parts:
        raise ValueError(f"out={str(out)!r} is not allowed; it holds no results.part*.nc to merge")
    merged = None
    for p in parts:
        ds = xr.load_dataset(p, engine=ENGINE)
        mask = ds["done"]
        if merged is None:
            merged = ds.copy(deep=True)
            continue
        for name, var in ds.data_vars.items():
            merged[name] = xr.where(mask, var, merged[name]) if name != "done" else merged[name] | mask
    if not bool(merged["done"].all()):
        raise ValueError(f"out={str(out)!r}: the parts do not cover every configuration; run the missing processes")
    merged = merged.drop_vars("done")
    merged.attrs = {k: v for k, v in merged.attrs.items() if k != "part"}
    atomic_write(out / "results.nc", lambda tmp: merged.to_netcdf(tmp, engine=ENGINE))
    return merged
