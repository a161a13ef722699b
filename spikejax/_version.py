"""The package version, read from the installed distribution's metadata.

`pyproject.toml` is the one place the version is written. An installed spikejax (wheel,
sdist or `pip install -e .`) reports its metadata. Run from a source tree that was never
installed (`PYTHONPATH=...`), there is no metadata and the version is read from the
`pyproject.toml` beside the package; elsewhere it is `"0+unknown"`.
"""

from __future__ import annotations

import importlib.metadata
import pathlib


def _version() -> str:
    try:
        return importlib.metadata.version("spikejax")
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        with open(pyproject, "rb") as f:
            project = tomllib.load(f)["project"]
        if project.get("name") == "spikejax":
            return str(project["version"])
    except (OSError, KeyError, ValueError):
        pass
    return "0+unknown"


__version__ = _version()
