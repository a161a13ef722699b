"""The small shared harness of the experiment scripts: config loading, atomic writes of
data and figures, and replacement of the generated blocks of docs/results.md.

An experiment config is the same TOML dialect as a sweep's, read by the same reader
(`spikejax.read_toml`: data only, never evaluated): an `[experiment]` table with a `kind`
and its parameters, and optional `[scale.<name>]` tables whose keys override the
experiment's at that scale.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

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


def setting(target: dict, cfg: dict, key: str):
    """A target's own `key`, else its experiment's: a target may carry any key per target only.

    **Raises:** `ValueError` naming the key when neither gives it."""
    if key in target:
        return target[key]
    if key in cfg:
        return cfg[key]
    raise ValueError(f"{key} is missing; give it in [experiment] or in target {target.get('name', '?')!r}")


def seed_keys(problem, dynamic, d: int, seeds: int, right_sign_only: bool, **run):
    """The seed keys of an experiment at `d`: the first `seeds` of `4 seeds` keys split from
    `key(10_000 + d)`, or with `right_sign_only` (odd `s >= 3`) the first `seeds` of those whose
    `rho(w(0))` has the escaping sign, so no run is spent on seeds the sign rule would not count.
    `run`: `prepare`'s keywords (`reduced=True` for the exact chain)."""
    import jax

    keys = jax.random.split(jax.random.key(10_000 + d), 4 * seeds)
    if right_sign_only:
        keys = keys[sj.right_sign(problem, sj.initial_rho(problem, dynamic, keys, **run))]
    return keys[:seeds]


def write_file(path, data: bytes | str):
    """Write `data` to `path` atomically (temp file, then rename), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sj.atomic_write(path, lambda tmp: Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data))


def write_json(path, obj):
    """`obj` as indented JSON, atomically; numpy scalars and arrays become numbers and lists."""

    def default(x):
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
        raise TypeError(f"cannot write {type(x).__name__} as JSON")

    write_file(path, json.dumps(obj, indent=1, default=default))


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, tight: bool = True):
    """Write `fig` as PNG and PDF (same stem) atomically, then close it."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=130)
        write_file(path.with_suffix(f".{fmt}"), buf.getvalue())
    pyplot().close(fig)


def replace_block(md_path, name: str, text: str):
    """Replace the text between the `name` markers of `md_path` (append the block if absent),
    holding a lock on `<md_path>.lock` so that processes writing other blocks lose nothing."""
    import fcntl

    md_path = Path(md_path)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    with open(md_path.with_name(md_path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _replace_block(md_path, name, text)


def _replace_block(md_path, name: str, text: str):
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    body = md_path.read_text() if md_path.exists() else "# Results\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in body and end in body:
        head, rest = body.split(begin, 1)
        body = head + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    write_file(md_path, body)


def fmt(x, nd=2):
    """A number for a table: `nd` decimals, `n/a` when missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def json_default(x):
    """numpy scalars and arrays as JSON (the `default` of `json.dumps`)."""
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.bool_,)):
        return bool(x)
    raise TypeError(type(x))


def plot_fit(ax, d, r, colour, *, alpha, line_label=None, band_label=None):
    """The fitted `n* = exp(log_c) d^eta` over the range of `d`, through the centre of the
    data in log d, and its 90% interval band (slopes `lo`..`hi` pivoting there)."""
    x = np.log(d)
    xm, ym = x.mean(), r["log_c"] + r["eta"] * x.mean()
    xx = np.linspace(x.min(), x.max(), 50)
    ax.plot(np.exp(xx), np.exp(ym + r["eta"] * (xx - xm)), "-", color=colour, zorder=2, label=line_label)
    if np.isfinite(r["lo"]):
        lo, hi = ym + r["lo"] * (xx - xm), ym + r["hi"] * (xx - xm)
        ax.fill_between(np.exp(xx), np.exp(np.minimum(lo, hi)), np.exp(np.maximum(lo, hi)),
                        color=colour, alpha=alpha, lw=0, label=band_label)
