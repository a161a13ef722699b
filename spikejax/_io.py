"""Labelled results on disk: the results dataset, checkpoints, atomic writes.

A results directory holds `config.json` (the resolved configuration), `results.nc`
(xarray, written with the scipy engine so it needs neither netCDF4 nor h5netcdf) and,
while a sweep runs, `checkpoint/` (one file per finished batch, one for the batch in
flight). Every file is written to a temporary name and moved into place, so a killed run
never leaves a half-written file. Files get the usual permissions (0666 less the umask,
so 0644 under the common umask 022), never the 0600 of a temporary file.

netCDF attributes hold numbers and strings, not `True`/`False`/`None`: attributes with
such values are written as JSON text and listed in the `json_attrs` attribute, and
`load_results` decodes them, so `ds.attrs["fixed_reduced"]` is `True` again after a
round trip.
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file


def atomic_write(path: Path, write):
    """Call `write(tmp_path)` and move the result onto `path` (same directory, atomic).
    The file gets the mode a plain `open` would give it (0666 less the umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
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
    """Versions, device, time and command line, stored with every result."""
    import datetime
    import shlex

    import equinox
    import jax
    import jaxlib
    import optax

    from ._version import __version__

    return {
        "spikejax": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "equinox": equinox.__version__,
        "optax": optax.__version__,
        "xarray": xr.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": ", ".join(str(d) for d in jax.devices()),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([os.path.basename(sys.argv[0]) or "python", *sys.argv[1:]]),
    }


def encode_attrs(attrs: dict) -> dict:
    """Attributes netCDF can store: `True`/`False`/`None` (and lists, dicts) become JSON text,
    their names listed in `json_attrs`."""
    out, encoded = {}, []
    for k, v in attrs.items():
        if k == "json_attrs":
            continue
        if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, (list, tuple, dict)):
            out[k] = json.dumps(v.item() if isinstance(v, np.bool_) else v)
            encoded.append(k)
        else:
            out[k] = v
    if encoded:
        out["json_attrs"] = " ".join(encoded)
    return out


def decode_attrs(attrs: dict) -> dict:
    """The inverse of `encode_attrs`."""
    names = str(attrs.get("json_attrs", "")).split()
    return {k: (json.loads(v) if k in names else v) for k, v in attrs.items() if k != "json_attrs"}


def _to_netcdf(ds: xr.Dataset, tmp):
    ds = ds.copy(deep=False)
    ds.attrs = encode_attrs(ds.attrs)
    ds.to_netcdf(tmp, engine=ENGINE)


def config_diff(old: dict, new: dict) -> list[str]:
    """`key: old -> new` for each key whose value differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


FIGURES = "*.png"  # what `spikejax plot` writes into a results directory


def paths(out, part=None) -> tuple[Path, Path]:
    """`(results file, checkpoint directory)` in a results directory: `results.nc` and
    `checkpoint/`, or `results.part{i}.nc` and `checkpoint-{i}/` for part i of a
    multi-process sweep. The one rule every reader and writer uses."""
    out = Path(out)
    if part is None:
        return out / "results.nc", out / "checkpoint"
    return out / f"results.part{part}.nc", out / f"checkpoint-{part}"


class Store:
    """A results directory. Refuses one that holds a different configuration unless `force`."""

    def __init__(self, out, config: dict, *, resume=False, force=False, part=None):
        self.dir = Path(out)
        self.results, self.ckpt = paths(out, part)
        self.part = part
        check_out(out, config, force=force)
        text = json.dumps(config, sort_keys=True)
        cfg_path = self.dir / "config.json"
        if cfg_path.exists() and cfg_path.read_text() != text:
            self.remove_previous(ours_only=False)
        if force and not resume:
            self.remove_previous(ours_only=False)
        if not resume:
            shutil.rmtree(self.ckpt, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ckpt.mkdir(exist_ok=True)
        atomic_write(cfg_path, lambda tmp: Path(tmp).write_text(text))

    def remove_previous(self, ours_only=True):
        """Delete the results, checkpoints and figures of an earlier run here (only this
        part's checkpoints and results in a multi-process sweep: the others run beside it)."""
        shutil.rmtree(self.ckpt, ignore_errors=True)
        if self.part is not None and self.results.exists():
            self.results.unlink()
        if ours_only or self.part is not None:
            return
        for pattern in ("checkpoint*", "results.nc", "results.part*.nc", FIGURES):
            for p in self.dir.glob(pattern):
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def complete(self):
        """The results of a finished run of this config here, or None."""
        if not self.results.exists() or self.ckpt.exists() and any(self.ckpt.glob("*.npz")):
            return None
        return load_results(self.results)

    def batches_saved(self) -> int:
        return len(list(self.ckpt.glob("batch-*.npz"))) if self.ckpt.exists() else 0

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

    def write_results(self, ds: xr.Dataset):
        atomic_write(self.results, lambda tmp: _to_netcdf(ds, tmp))

    def clear_checkpoints(self):
        shutil.rmtree(self.ckpt, ignore_errors=True)


def saved_plan(out, part=None):
    """The batch plan saved with the checkpoints in `out`, or None."""
    path = paths(out, part)[1] / "plan.json"
    return json.loads(path.read_text()) if path.exists() else None


def check_out(out, config: dict, *, force=False):
    """Refuse a directory that holds results of a different configuration (naming the keys
    that differ) unless `force`, or that cannot be written. Creates nothing."""
    out = Path(out)
    check_path = out
    while not check_path.exists():
        check_path = check_path.parent
    if not check_path.is_dir():
        raise ValueError(f"out={str(out)!r} is not allowed; {str(check_path)!r} is a file, not a directory")
    if not os.access(check_path, os.W_OK | os.X_OK):
        raise ValueError(f"out={str(out)!r} is not allowed; {str(check_path)!r} is not writable")
    cfg_path = out / "config.json"
    if force or not cfg_path.exists():
        return
    try:
        old = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        old = {}
    if old == json.loads(json.dumps(config, sort_keys=True)):
        return
    has_results = any(out.glob("results*.nc")) or any(out.glob("checkpoint*/batch-*.npz")) or any(
        out.glob("checkpoint*/current.npz"))
    if not has_results:
        return  # a config.json and nothing else (a refused or killed start): nothing to lose
    diff = config_diff(old, json.loads(json.dumps(config)))
    raise ValueError(
        f"out={str(out)!r} is not allowed; it holds results of a different config ("
        + "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
        + "): pass --force (force=True) to overwrite them, or choose another directory"
    )


def load_results(path) -> xr.Dataset:
    """Load `results.nc` from a results directory (or a file path) into memory, with the
    attributes' types restored (`fixed_reduced` is `True`, not `'True'`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.exists():
        raise FileNotFoundError(f"no results at {str(path)!r}: run `spikejax sweep CONFIG --out DIR` first")
    ds = xr.load_dataset(path, engine=ENGINE)
    ds.attrs = decode_attrs(ds.attrs)
    return ds


def merge_parts(out) -> xr.Dataset:
    """Assemble the `results.part*.nc` of a multi-process sweep into `results.nc`."""
    out = Path(out)
    parts = sorted(out.glob("results.part*.nc"))
    if not parts:
        raise ValueError(f"out={str(out)!r} is not allowed; it holds no results.part*.nc to merge")
    merged = None
    for p in parts:
        ds = load_results(p)
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
    atomic_write(out / "results.nc", lambda tmp: _to_netcdf(merged, tmp))
    return merged
