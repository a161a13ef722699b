"""Smoke runs of the four benchmarks at tiny sizes: they run, and engine and baselines agree.

No timing is asserted. The benchmarks run in the engine's default dtype (float32 here, so
the tolerances are float32 ones even though the rest of the suite enables float64).
"""

import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import suite  # noqa: E402


@pytest.fixture(autouse=True)
def float32():
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def test_empirical_benchmark_agrees():
    (row,) = suite.empirical(d=16, n=64, steps=20, configs=(8,), peak=1.0, numpy_configs=2,
                             loop_configs=2, check_configs=8, repeat=1)
    for key in ("numpy", "loop", "no_crn", "sweep"):
        assert row[f"{key}_max_abs_diff"] < 1e-4, (key, row)
    assert row["numpy_rate"] > 0 and row["loop_rate"] > 0 and row["no_crn_rate"] > 0
    assert row["engine_gflops"] > 0


def test_population_benchmark_agrees():
    rows, per_dim = suite.population(configs=(50,), steps=30, d=32, full_configs=20, full_steps=30,
                                     loop_configs=3, dims=(), repeat=1)
    assert rows[0]["loop_max_abs_diff"] < 1e-5
    assert rows[1]["reduced_max_abs_diff"] < 1e-4
    assert per_dim == []


def test_complexity_benchmark_agrees():
    r = suite.complexity(d=16, sizes=(32, 64), seeds=2, steps=20, threshold=0.0)
    assert r["max_abs_diff"] < 1e-4
    assert r["n_star_padded"] == r["n_star_separate"] == 32
    assert r["search_n_agree_frac"] == 1.0


def test_gradient_layouts_profile_runs():
    rows = suite.gradient_layouts(d=8, n=32, configs=(4,), peak=1.0, repeat=1)
    assert [r["form"] for r in rows] == ["z @ s", "s @ z^T (engine)"]
    assert all(r["dots"] and r["gflops"] > 0 for r in rows)


def test_compile_benchmark_runs():
    rows = suite.compile_times(steps_list=(10, 100), configs_list=(2,), d=8, kinds=suite.KINDS[:1])
    assert len(rows) == 2
    assert all(r["seconds"] > 0 for r in rows)
    np.testing.assert_array_less(0, [r["bytes_per_config"] or 1 for r in rows])
