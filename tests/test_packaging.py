"""Packaging: the sdist and wheel build, and the wheel works on its own.

The test builds offline and installs offline, so it needs no network and is not `slow`
(about 30 s on the shared 2-core CPU, most of it the demo's import and compile):

- `python -m build --no-isolation` makes the sdist, then the wheel *from the sdist* (so a
  file missing from the sdist breaks the wheel), with the test interpreter's setuptools
  and wheel (the `test` extra installs them) instead of downloading a build environment.
- The wheel goes into a fresh virtual environment. A `--system-site-packages` venv would
  see the *base* interpreter's packages, not those of the `.venv` that runs the tests, so
  the fresh venv instead gets a `.pth` file naming the test interpreter's site-packages:
  jax and the other dependencies come from there (no 600 MB download), `pip install
  --no-index` checks the wheel's declared dependencies against them, and the wheel's own
  `spikejax` sits first on `sys.path`. Lines of a `.pth` file add directories but do not
  run the `.pth` files inside them, so an editable spikejax of the test interpreter stays
  invisible; the test asserts that `spikejax` is imported from the fresh venv.
"""

from __future__ import annotations

import os
import pathlib
import site
import subprocess
import sys
import tomllib
import venv
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["JAX_PLATFORMS"] = "cpu"
    return env


@pytest.mark.slow  # 29 s under load: builds and installs the wheel (make test-all)
def test_wheel_installs_and_runs_demo(tmp_path):
    pytest.importorskip("build", reason="the test extra installs build")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)], env=_clean_env())
    wheels = list(dist.glob("*.whl"))
    sdists = list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert wheels[0].name == f"spikejax-{version}-py3-none-any.whl"
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert {"spikejax/py.typed", "spikejax/cli.py", "spikejax/internal.py", "spikejax/plot/style.py"} <= set(names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    parents = [p for p in site.getsitepackages() if os.path.isdir(p)]
    pathlib.Path(purelib, "_spikejax_test_parent.pth").write_text("\n".join(parents) + "\n")
    env = _clean_env()
    _run([str(py), "-m", "pip", "install", "-q", "--no-index", str(wheels[0])], env=env, cwd=tmp_path)

    where = _run(
        [str(py), "-c", "import pathlib, spikejax; p = pathlib.Path(spikejax.__file__).parent; "
         "print(p); print(spikejax.__version__); print((p / 'py.typed').exists())"],
        env=env, cwd=tmp_path,
    ).split()
    assert pathlib.Path(where[0]).is_relative_to(env_dir), where
    assert where[1:] == [version, "True"], where

    out = tmp_path / "demo"
    text = _run(
        [str(env_dir / "bin" / "spikejax"), "demo", "--d", "16", "--steps", "50", "--seeds", "1",
         "--kappa", "1", "10", "--out", str(out)],
        env=env, cwd=tmp_path,
    )
    assert "kappa" in text, text
    assert (out / "demo.png").stat().st_size > 0 and (out / "demo.pdf").read_bytes()[:4] == b"%PDF"
