"""Helpers for the tests of the documentation's scripts (docs/examples/, docs/tutorials/).

The pages show these scripts through snippet includes (`--8<-- "docs/tutorials/x.py:part"`),
so the code on a page is the code a test runs. `coverage_problems` checks the other half:
every line of code of a script is inside a section some page includes.
"""

from __future__ import annotations

import pathlib
import re
import runpy

import matplotlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCRIPT_DIRS = (DOCS / "examples", DOCS / "tutorials")
_INCLUDE = re.compile(r'^\s*--8<--\s+"(docs/[\w/]+\.py)(?::(\w+))?"\s*$')
_MARK = re.compile(r"^\s*# --8<-- \[(start|end):(\w+)\]\s*$")


def run_script(path, out, monkeypatch) -> dict:
    """Run a script as `__main__` at its tiny size (`TINY=1`), figures into `out`; its globals."""
    monkeypatch.setenv("TINY", "1")
    monkeypatch.setenv("SPIKEJAX_OUT", str(out))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        return runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")


def scripts() -> list[pathlib.Path]:
    return sorted(p for d in SCRIPT_DIRS for p in d.glob("*.py"))


def sections(path) -> tuple[dict, list[str]]:
    """`({name: lines}, lines outside every section)` of a script."""
    out, outside, current = {}, [], None
    for line in pathlib.Path(path).read_text().splitlines():
        m = _MARK.match(line)
        if m:
            kind, name = m.groups()
            current = name if kind == "start" else None
            out.setdefault(name, [])
        elif current is None:
            outside.append(line)
        else:
            out[current].append(line)
    return out, outside


def includes() -> set[tuple[str, str | None]]:
    """Every `(script path, section or None)` a page of docs/ includes."""
    found = set()
    for md in DOCS.rglob("*.md"):
        for line in md.read_text().splitlines():
            m = _INCLUDE.match(line)
            if m:
                found.add((m.group(1), m.group(2)))
    return found


def coverage_problems() -> list[str]:
    """What a page would hide: a section no page includes, or code outside every section."""
    inc = includes()
    problems = []
    for path in scripts():
        rel = path.relative_to(ROOT).as_posix()
        secs, outside = sections(path)
        if (rel, None) in inc:
            continue  # the whole file is shown
        for name in secs:
            if (rel, name) not in inc:
                problems.append(f"{rel}: section {name!r} is on no page")
        for line in outside:
            if line.strip() and not line.lstrip().startswith("#"):
                problems.append(f"{rel}: code outside every section: {line!r}")
    return problems
