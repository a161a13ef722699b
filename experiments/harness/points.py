"""A committed store of finished points: one JSON file under docs/data that a long scan adds each
point to as it finishes, so that a scan longer than one sitting resumes on a fresh clone (the disk
cache under out/ does not travel with the repository). Several processes may add to one store."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from .io import json_default, write_file

KEEP = ("d", "c", "batch", "eta", "n_star", "never", "n", "valid", "seconds", "budget", "steps", "ran", "flow_time")


def trimmed(point) -> dict:
    """The fields of a `passage_point` that a scan reads back (its per-seed passages, step and budget),
    or of a flow's result (its time to the threshold)."""
    return {k: point[k] for k in KEEP if k in point}


@contextmanager
def _locked(path: Path):
    lock = Path("out") / "locks" / (path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_points(path) -> dict:
    """`{key: point}` of the store at `path` (empty when there is none)."""
    path = Path(path)
    return json.loads(path.read_text())["points"] if path.exists() else {}


def add_point(path, key: str, point) -> dict:
    """Add one finished point (trimmed) under `key`, atomically and under a lock; returns it."""
    path, pt = Path(path), trimmed(point)
    with _locked(path):
        pts = read_points(path)
        pts[key] = pt
        rows = (f"{json.dumps(k)}: {json.dumps(v, default=json_default)}" for k, v in sorted(pts.items()))
        write_file(path, '{"points": {\n' + ",\n".join(rows) + "\n}}\n")  # a line a point: short diffs
    return pt
