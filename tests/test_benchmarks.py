"""Smoke runs of the benchmarks at tiny sizes: they run, and engine and baselines agree.

No timing is asserted. The default set (engine against baselines) stays under 30 s on
2 cores; the run-only checks and the sample-complexity one (four compiles) are marked slow
(`make test-all` runs them). The benchmarks run in the engine's default dtype (float32 here, so
the tolerances are float32 ones even though the rest of the suite enables float64). The
BLAS environment is left as it is (only the benchmark scripts clean it).
"""

import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import e2e  # noqa: E402
import online  # noqa: E402
import scaling  # noqa: E402
import suite  # noqa: E402


@pytest.fixture(autouse=True)
def float32():
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


@pytest.mark.slow  # 10 s; the empirical source against numpy stays in test_sources.py and the CLI in test_cli.py
def test_empirical_benchmark_agrees():
    (row,) = suite.empirical(d=16, n=64, steps=20, configs=(8,), numpy_configs=2, loop_configs=2, check_configs=8,
                             repeat=1, peak=False)
    for key in ("numpy", "loop", "no_crn"):
        assert row[f"{key}_max_abs_diff"] < 1e-4, (key, row)
    assert all(row[f"{k}_rate"] > 0 for k in ("engine", "numpy", "numpy_1thread", "loop", "no_crn"))


def test_fair_numpy_loop_matches_the_old_one():
    kappa = 3.0
    p = suite.problem(16, kappa)
    z, y, w0 = (np.asarray(a) for a in suite.engine_data(p, "normalized", n=64))
    old = suite.numpy_run_old(z, y, w0, suite.spike_numpy(p), 30)
    new = suite.numpy_normalized(z, np.ascontiguousarray(z.T), y, w0, suite.spike_numpy(p), suite.DT, 30)
    np.testing.assert_allclose(new, old, atol=1e-5)


@pytest.mark.slow  # 20 s; the empirical benchmark's agreement stays in the default run
def test_population_benchmark_agrees():
    rows, per_dim = suite.population(configs=(50,), steps=30, d=32, full_configs=20, full_steps=30,
                                     loop_configs=3, dims=(), repeat=1)
    assert rows[0]["loop_max_abs_diff"] < 1e-5
    assert rows[1]["form"].endswith("Dopri5 flow") and rows[1]["euler_max_abs_diff"] < 0.05  # T = 3: dt = 0.1 is close
    assert rows[2]["reduced_max_abs_diff"] < 1e-4
    assert per_dim == []


@pytest.mark.slow  # four compiles (padded, two shapes, search_n): over the smoke set's 30 s budget
def test_complexity_benchmark_agrees():
    r = suite.complexity(d=16, sizes=(32, 64), seeds=2, steps=20, threshold=0.0)
    assert r["max_abs_diff"] < 1e-4
    assert r["n_star_padded"] == r["n_star_separate"] == 32
    assert r["search_n_agree_frac"] == 1.0


@pytest.mark.slow  # runs only (no baseline to agree with): kept out of the fast smoke set
def test_gradient_layouts_profile_runs():
    rows = suite.gradient_layouts(d=8, n=32, configs=(4,), peak=1.0, repeat=1)
    assert [r["form"] for r in rows] == ["z @ s", "s @ z^T (engine)"]
    assert all(r["dots"] and r["gflops"] > 0 for r in rows)


@pytest.mark.slow  # runs only (no baseline to agree with): kept out of the fast smoke set
def test_compile_benchmark_runs():
    rows = suite.compile_times(steps_list=(10, 100), configs_list=(2,), d=8, kinds=suite.KINDS[:1])
    assert len(rows) == 2
    assert all(r["seconds"] > 0 for r in rows)
    np.testing.assert_array_less(0, [r["bytes_per_config"] or 1 for r in rows])


@pytest.mark.slow  # 13 s; the engine and the numpy loop agree in test_empirical_benchmark_agrees (the CLI: tests/test_cli.py)
def test_end_to_end_cli_agrees_with_numpy(tmp_path):
    """The sweep CLI in a fresh process, then the numpy spherical loop on the engine's draws."""
    import xarray as xr

    cfg = e2e.config(2, 2, dict(e2e.QUICK, steps=20))
    toml = tmp_path / "grid.toml"
    e2e.write_toml(cfg, toml)
    run = e2e.cli_run(str(toml), str(tmp_path / "out"))
    assert run["wall"] > 0
    ds = xr.load_dataset(tmp_path / "out" / "results.nc", engine="scipy")
    diff, rhos = e2e.agreement(cfg, ds)
    assert diff < 1e-4, (diff, rhos)
    # the numpy loop on its own draws (what the end-to-end ratio times) runs and stays on the sphere
    sp = suite.spike_numpy(suite.problem(16, 2.0))
    x, xt, y, w0 = suite.numpy_spherical_data(np.random.default_rng(0), sp, 16, 64)
    assert abs(np.linalg.norm(suite.numpy_spherical(x, xt, y, w0, 0.05, 10)) - 1) < 1e-5


@pytest.mark.slow  # 44 s under load; the online source against numpy stays in tests/test_sources.py
@pytest.mark.parametrize("source", ["online", "reused"])
def test_online_benchmark_agrees(source):
    """The sweep's chunks on a grid sharing each fresh batch equal `sj.simulate` alone."""
    assert online.agreement(source, d=16, batch=8, reuse=3, steps=20, chunk=7, configs=2) < 1e-5


@pytest.mark.slow  # 40 s under load: the benchmark's own fit (make bench runs it)
def test_scaling_point_and_fit():
    row = scaling.point("population-3", 8, repeat=1, work=1e4)
    assert row["bytes_per_config"] > 0 and "valid" in row
    row = dict(row, ns_per_config_step=3.0, valid=True)  # the fit, on known values (timing is load-dependent)
    model = scaling.fit([row, dict(row, d=16, ns_per_config_step=6.0)])
    assert model["d_range"] == [8, 16] and model["ns_per_config_step"]["c_per_nd"] == 0
