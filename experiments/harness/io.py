"""Atomic writes of data and figures, the one JSON writer, and the generated blocks of
docs/results.md (between `<!-- BEGIN name -->` and `<!-- END name -->`; the prose around them is
written by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import spikejax as sj


def write_file(path, data: bytes | str):
    """Write `data` to `path` atomically (temp file, then rename), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sj.atomic_write(path, lambda tmp: Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data))


def json_default(x):
    """numpy scalars and arrays as JSON numbers, booleans and lists (the `default` of `json.dumps`)."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")


def as_json(obj):
    """`obj` as JSON would read it back (numpy values plain): for comparing a config with a stored one."""
    return json.loads(json.dumps(obj, default=json_default))


def write_json(path, obj, indent: int | None = 1):
    """`obj` as JSON (indented by 1), atomically: the one writer of every data file."""
    write_file(path, json.dumps(obj, indent=indent, default=json_default))


def data_path(docs, name) -> Path:
    """`docs/data/<name>.json`."""
    return Path(docs) / "data" / f"{name}.json"


def read_data(docs, name) -> dict:
    """The committed data of an experiment, `docs/data/<name>.json`."""
    return json.loads(data_path(docs, name).read_text())


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


def write_block(docs, name: str, text: str):
    """The block `name` of `docs/results.md`."""
    replace_block(Path(docs) / "results.md", name, text)


def show(out, docs, plot, table):
    """A claim's figures (`plot`) and its block `<name>` of docs/results.md (`table`), from its
    stored data: what a claim module without its own `render` renders."""
    plot(out, docs)
    write_block(docs, out["config"]["name"], table(out))


def computed_or_stored(docs, name, render: bool, compute) -> dict:
    """A script's results: `compute()`, written to `docs/data/<name>.json`; with `render`, that
    file read back (the `--render` of the post-processing scripts)."""
    return computed_or_stored_at(data_path(docs, name), render, compute)


def computed_or_stored_at(path, render: bool, compute) -> dict:
    """`computed_or_stored` at a path of the caller's choice (a script's `--out`)."""
    if render:
        return json.loads(Path(path).read_text())
    out = compute()
    write_json(path, out)
    return out


def finish(out, docs, plot, table) -> dict:
    """The end of a claim's run: its data written (`docs/data/<name>.json`), then shown."""
    write_json(data_path(docs, out["config"]["name"]), out)
    show(out, docs, plot, table)
    return out
