"""The worked examples of docs/extending.md, each run as a test.

The page includes the scripts of docs/examples/ section by section (and (a), the new
dynamic, from docs/tutorials/new_dynamic.py, run by tests/test_tutorials.py), so what it
shows is what runs here; `test_pages_show_every_line` makes sure no code is left off a page
and `test_every_script_is_run` that no script is left untested. Each script asserts its own
claims inline; the tests below check numbers again from its globals.
"""

from __future__ import annotations

import os
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj

from doc_scripts import DOCS, ROOT, coverage_problems, run_script, scripts

EXAMPLES = DOCS / "examples"
RUN_BY_TESTS = {
    "docs/examples/my_extensions.py",  # test_every_kind_by_name, with by_name.py
    "docs/examples/by_name.py",
    "docs/examples/observable.py",
    "docs/examples/two_spikes.py",
    "docs/examples/new_link.py",
    "docs/examples/new_source.py",
    "docs/tutorials/phase_diagram.py",  # tests/test_tutorials.py
    "docs/tutorials/sample_complexity.py",
    "docs/tutorials/inside_jax.py",
    "docs/tutorials/new_dynamic.py",
}


def test_every_script_is_run():
    assert {p.relative_to(ROOT).as_posix() for p in scripts()} == RUN_BY_TESTS


def test_pages_show_every_line():
    assert coverage_problems() == []


def test_observable(tmp_path, monkeypatch):
    g = run_script(EXAMPLES / "observable.py", tmp_path, monkeypatch)
    full, reduced = g["full"], g["reduced"]
    assert set(full.ys) == {"rho", "bulk"} and full.ys["bulk"].shape == (8,)
    np.testing.assert_array_equal(full.steps, [0, 1, 3, 7, 20, 54, 147, 400])
    # the same records on the d-dimensional and on the 3-coordinate form (float64 here)
    np.testing.assert_allclose(full.ys["bulk"], reduced.ys["bulk"], atol=1e-7)
    # bulk^2 = 1 - (overlap with span{u, theta})^2: check the final record independently
    p = g["problem"]
    basis = np.linalg.qr(np.stack([np.asarray(p.u), np.asarray(p.covariance.theta)]).T)[0]
    w = np.asarray(full.w)
    np.testing.assert_allclose(full.ys["bulk"][-1], np.linalg.norm(w - basis @ (basis.T @ w)) / np.linalg.norm(w),
                               rtol=1e-6)


@pytest.mark.slow  # 21 s; the multi-spike covariance stays in test_data.py
def test_two_spikes(tmp_path, monkeypatch):
    g = run_script(EXAMPLES / "two_spikes.py", tmp_path, monkeypatch)
    assert isinstance(g["problem"].covariance, sj.MultiSpikeCovariance)
    sigma = np.asarray(g["sigma"])
    # eigenvalues: 1 along theta1, 6/21 along theta2, 1/21 on the other 30 directions
    np.testing.assert_allclose(np.linalg.eigvalsh(sigma), np.sort([1.0, 6 / 21] + [1 / 21] * 30), atol=1e-10)
    assert g["cov_gap"] < 6 / np.sqrt(20_000)
    rho, cos_u = g["rho"], g["cos_u"]
    assert rho[1] > 0.95 and cos_u[1] > cos_u[0] + 0.2
    assert abs(float(g["flow"].cos_u[-1])) > 0.999


def test_new_link(tmp_path, monkeypatch):
    g = run_script(EXAMPLES / "new_link.py", tmp_path, monkeypatch)
    link = g["link"]
    np.testing.assert_allclose(link.coeffs, [0, 0, 1, 0.5], atol=1e-12)
    assert g["even"].information_exponent() == 2 and g["cubic"].information_exponent() == 3
    assert "s=3" in g["refusal"] and "beta_3 = 0" in g["refusal"]
    assert abs(float(g["tr"].rho[-1])) > 0.999
    assert abs(float(g["mc_risk"]) - float(g["tr"].risk[-1])) < 0.02


def test_user_link_exponent_in_float32():
    """The information exponent of a user callable under JAX's default float32 (the tests run
    in float64): float32 quadrature once read x**3 - 3x as exponent 1 and let ReLU through."""
    with jax.enable_x64(False):
        cubic = sj.hermite_function(lambda x: x**3 - 3 * x)
        assert jnp.asarray(1.0).dtype == jnp.float32
    assert cubic.information_exponent() == 3
    np.testing.assert_allclose(cubic.coeffs, [0, 0, 0, np.sqrt(6)], atol=1e-10)


@pytest.mark.slow  # 18 s; a registered source stays checked in test_extragradient.py and test_sources.py
def test_new_source(tmp_path, monkeypatch):
    g = run_script(EXAMPLES / "new_source.py", tmp_path, monkeypatch)
    mine, builtin = g["mine"], g["builtin"]
    np.testing.assert_array_equal(mine.w, builtin.w)
    np.testing.assert_array_equal(mine.ys["rho"], builtin.ys["rho"])
    # and the batch schedule matters: reuse 10 is neither online nor full batch
    assert not np.allclose(mine.w, g["online"].w, atol=1e-3)
    assert not np.allclose(mine.w, g["full_batch"].w, atol=1e-3)
    # a different key gives a different run (the key reaches the batches)
    other = sj.simulate(g["problem"], sj.Normalized(), g["FreshEveryR"](batch=64, reuse=10), key=jax.random.key(4),
                        dt=0.05, steps=200)
    assert not np.allclose(other.w, mine.w, atol=1e-3)


@pytest.mark.slow  # 72 s; a registered kind reaches a sweep in test_tutorials.py and test_extragradient.py
def test_every_kind_by_name(tmp_path):
    """A user's file registers a dynamic, a source, a solver, a loss, an input law, a link and
    a multi-index target; from a directory outside the repository, by_name.py runs each in
    `simulate`, a TOML sweep and the searches and checks it against a built-in (a step of the
    half-speed flow is half a step, the source draws what `sj.Reused` draws, Heun is second
    order, ...). The command line reaches the same names with `--import`."""
    import shutil
    import subprocess
    import sys

    import xarray as xr

    for name in ("my_extensions.py", "by_name.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "by_name.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "registered classes ran in simulate" in done.stdout
    cli = subprocess.run([sys.executable, "-m", "spikejax.cli", "sweep", "by_name.toml", "--import", "my_extensions",
                          "--out", "cli_results", "--no-progress"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    api = xr.load_dataset(tmp_path / "by_name_results" / "results.nc", engine="scipy")
    via_cli = xr.load_dataset(tmp_path / "cli_results" / "results.nc", engine="scipy")
    np.testing.assert_array_equal(via_cli["rho"].values, api["rho"].values)
    assert (via_cli["status"].values == "ok").all()
    unknown = subprocess.run([sys.executable, "-m", "spikejax.cli", "sweep", "by_name.toml", "--out", "x",
                              "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert unknown.returncode == 2 and "link='h2_plus_h3' is not allowed; choose one of" in unknown.stderr  # no --import
