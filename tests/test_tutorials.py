"""The tutorials (docs/tutorials/*.py) run at their tiny size (TINY=1) and say what they should.

Each script is shown on its docs page through snippet includes, so the page's code is the
code run here. Tutorial 4 is also example (a) of docs/extending.md: a dynamic written in
user code, through `simulate`, `sweep` and `search_n`.
"""

from __future__ import annotations

import numpy as np
import pytest

import spikejax as sj

from doc_scripts import DOCS, run_script

TUTORIALS = DOCS / "tutorials"


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_phase_diagram(tmp_path, monkeypatch):
    g = run_script(TUTORIALS / "phase_diagram.py", tmp_path, monkeypatch)
    ds, final = g["ds"], g["final"]
    assert dict(ds.sizes) == {"seed": 2, "r2": 2, "r1": 2, "dynamic": 2, "step": len(ds.step)}
    assert set(ds.status.values.ravel()) == {"ok"}
    # The spherical failure: spike on the target (r1 = 0) and kappa = d, spherical stalls well
    # below |cos_u| = 1 (the README's 0.58 at kappa = 100), normalized reaches u.
    corner = final.cos_u.sel(r1=0.0, r2=1.0)
    assert float(corner.sel(dynamic="spherical")) < 0.7
    assert float(corner.sel(dynamic="normalized")) > 0.999
    # Without a spike (r2 = 0) both reach u.
    assert float(final.cos_u.sel(r2=0.0).min()) > 0.99
    assert g["change"]["max"] < 1e-4  # the flow does not move with a 100x tighter tolerance
    assert (tmp_path / "phase_diagram.png").stat().st_size > 10_000
    assert (tmp_path / "phase_diagram" / "results.nc").exists()
    back = sj.load_results(tmp_path / "phase_diagram")
    np.testing.assert_allclose(back.rho.values, ds.rho.values)


@pytest.mark.slow  # 67 s under load; sj.search_n and passage_n keep their own tests (test_complexity.py)
def test_sample_complexity(tmp_path, monkeypatch):
    g = run_script(TUTORIALS / "sample_complexity.py", tmp_path, monkeypatch)
    fit = g["fit"]
    assert np.all(np.isfinite(fit.n_star))
    assert np.all(np.diff(fit.n_star) > 0)  # more dimensions, more samples
    # every n* is inside its grid (not a bound at either end)
    for s, n in zip(g["searches"], fit.n_star):
        assert s.n_grid[0] < n < s.n_grid[-1]
    assert 0.5 < fit.eta < 2.5  # docs/results.md measures about 1.1 at d = 32..256
    assert fit.lo <= fit.eta <= fit.hi and fit.hi - fit.lo < 2
    assert (tmp_path / "sample_complexity.png").exists()


@pytest.mark.slow  # about 30 s of CPU, mostly compiles (Dopri5 reverse mode, vmapped Dopri5, optax)
def test_inside_jax(tmp_path, monkeypatch):
    g = run_script(TUTORIALS / "inside_jax.py", tmp_path, monkeypatch)
    cos_grid, kappas = np.asarray(g["cos_grid"]), np.asarray(g["kappas"])
    assert cos_grid.shape == (4, 3)
    # the vmapped grid point equals the same run alone
    np.testing.assert_allclose(cos_grid[-1, 0], g["one_point"][0], rtol=1e-8)
    # spherical failure: at r1 = 0 |cos_u| falls with kappa, to about 0.57 at kappa = 1000
    assert np.all(np.diff(cos_grid[:, 0]) < 0) and cos_grid[0, 0] > 0.999 and cos_grid[-1, 0] < 0.65
    # gradients through gradient descent agree with central finite differences
    assert abs(float(g["g_dt"])) > 1e-3 and abs(float(g["g_log_kappa"])) > 1e-4
    np.testing.assert_allclose(g["g_dt"], g["fd_dt"], rtol=1e-5)
    np.testing.assert_allclose(g["g_log_kappa"], g["fd_log_kappa"], rtol=1e-5)
    # reverse mode through the bounded flow solver against differences of the unbounded one
    np.testing.assert_allclose(g["g_flow"], g["fd_flow"], rtol=1e-4)
    assert "while_loop" in g["unbounded_refusal"]
    # optax: Adam really ran (a different path), and both learn
    euler, adam = g["runs"].values()
    assert not np.allclose(euler.w, adam.w, atol=1e-3)
    assert min(abs(float(euler.rho[-1])), abs(float(adam.rho[-1]))) > 0.85
    # the observable: the flow slows down to rest and the bulk part of w vanishes
    tr = g["tr"]
    assert set(tr.ys) == {"speed", "bulk"} and tr.ys["speed"].shape == tr.ts.shape
    assert float(tr.ys["speed"][-1]) < 1e-3 * float(np.max(tr.ys["speed"]))
    assert float(tr.ys["bulk"][0]) > 0.9 and float(tr.ys["bulk"][-1]) < 1e-2
    assert (tmp_path / "inside_jax.png").exists()


@pytest.mark.slow  # 44 s under load; a registered dynamic runs by name in test_extending.py
def test_new_dynamic(tmp_path, monkeypatch):
    """Tutorial 4 = docs/extending.md (a): sign descent through simulate, sweep and search_n."""
    try:
        g = run_script(TUTORIALS / "new_dynamic.py", tmp_path, monkeypatch)
    finally:
        sj.DYNAMICS.pop("sign_spherical", None)  # the registry is global: leave it as found
    sign = g["sign"]
    assert abs(float(sign.rho[-1])) > 0.95  # it learns
    np.testing.assert_allclose(sign.norm, 1.0, atol=1e-6)  # on the sphere at every record
    assert sj.STATUS[int(sign.status)] == "oscillating"  # a constant-step sign method chatters at the end
    assert g["by_hand_gap"] < 1e-10  # 50 steps equal a hand-written loop (float64 here)
    assert "reduced_exact" in g["refusal"] and g["equivariance_gap"] > 0.5
    ds = g["ds"]
    assert list(ds.dynamic.values) == ["spherical", "sign_spherical"]
    final = g["final"]
    assert float(final.sel(dynamic="sign_spherical").min()) > 0.95
    # the sweep's sign runs are the simulate runs: same dynamic object, same flow
    assert set(ds.status.sel(dynamic="sign_spherical").values.ravel()) == {"oscillating"}
    assert set(ds.status.sel(dynamic="spherical").values.ravel()) == {"ok"}
    search = g["search"]
    assert search.rho.shape == (4, 6)
    assert 32 < g["n_star"] < 1024  # inside the grid
    assert (tmp_path / "new_dynamic.png").exists()


def test_registered_dynamic_reaches_a_sweep_config(tmp_path):
    """What registration does: a name in sj.DYNAMICS is accepted by a sweep's config (dict or
    TOML), an unknown one is refused with the registered names listed, reduced=True is
    refused (at the pre-flight, before anything runs) for a dynamic that is not
    reduced_exact, and the command line, its own process, does not know the name."""
    import os
    import subprocess
    import sys

    import jax.numpy as jnp

    class Sign(sj.AbstractDynamic):
        def direction(self, w, grad, sim):
            return jnp.sign(grad)

        def retract(self, w_new, w_old, sim):
            return w_new / jnp.linalg.norm(w_new)

    base = {"d": 8, "kappa": 1.0, "steps": 4, "solver": "euler"}
    with pytest.raises(ValueError, match="dynamic='sign'"):
        sj.load_config({**base, "dynamic": "sign"})
    toml = tmp_path / "sign.toml"
    toml.write_text('d = 8\nkappa = 1.0\nsteps = 4\nsolver = "euler"\ndynamic = "sign"\n')
    sj.DYNAMICS["sign"] = Sign
    try:
        assert sj.load_config({**base, "dynamic": "sign"})["dynamic"] == ["sign"]
        assert sj.load_config(toml)["dynamic"] == ["sign"]
        cli = subprocess.run(
            [sys.executable, "-c", "import sys; from spikejax.cli import main; main(sys.argv[1:])",
             "sweep", str(toml), "--out", str(tmp_path / "out"), "--dry-run"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(DOCS.parent)}, timeout=120,
        )
        assert cli.returncode == 2 and "dynamic='sign' is not allowed" in cli.stderr, cli.stderr
        with pytest.raises(ValueError, match="'vanilla', 'sign'"):
            sj.load_config({**base, "dynamic": "sgn"})
        with pytest.raises(ValueError, match="reduced_exact"):
            sj.sweep({**base, "dynamic": "sign", "reduced": True}, progress=False)
    finally:
        del sj.DYNAMICS["sign"]


@pytest.mark.slow  # two sweeps: 35 s wall on the shared 2-core machine (load 10)
def test_parameterised_dynamic_registers_as_a_factory():
    """The sweep calls `sj.DYNAMICS[name]()`: a dynamic with a parameter registers a factory
    (`functools.partial`), and the parameter reaches the run: half the speed at twice the
    step is the same Euler run as spherical descent."""
    import functools

    class ScaledSpherical(sj.AbstractDynamic):
        beta: float = 1.0

        def direction(self, w, grad, sim):
            return self.beta * (grad - w * (w @ grad) / (w @ w))

        def retract(self, w_new, w_old, sim):
            return w_new / (w_new @ w_new) ** 0.5

    sj.DYNAMICS["half_speed"] = functools.partial(ScaledSpherical, beta=0.5)
    try:
        base = {"d": 8, "kappa": 4.0, "r1": 0.25, "steps": 20, "record": 2, "solver": "euler", "seeds": 2}
        half = sj.sweep({**base, "dynamic": "half_speed", "dt": 0.2}, progress=False)
        full = sj.sweep({**base, "dynamic": "spherical", "dt": 0.1}, progress=False)
    finally:
        del sj.DYNAMICS["half_speed"]
    assert half.attrs["fixed_dynamic"] == "half_speed"
    np.testing.assert_allclose(half.rho.values, full.rho.values, rtol=1e-12)
    assert np.abs(full.rho.values[..., -1] - full.rho.values[..., 0]).min() > 1e-3  # it moved
