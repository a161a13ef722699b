import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import spikejax as sj
import spikejax.internal

ROOT = Path(__file__).resolve().parents[1]
POP = dict(seeds=2, d=32, kappa=[1.0, 30.0], r1=[0.0, 0.25], dynamic=["spherical", "normalized"],
           dt=0.3, steps=300, record=12)
EMP = dict(seeds=[3, 5], d=24, r2=[0.0, 0.8], n=[64, 128, 1024], source="empirical", noise=0.2,
           dt=0.2, steps=60, record=10)
# the same layout (two n buckets, two seeds, two r2) at a third of the work
EMP_SMALL = dict(EMP, d=12, n=[32, 64, 512], steps=24, record=6)


def _same(a, b):
    for v in sj.METRICS:
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert (a["status"].values == b["status"].values).all()


@pytest.mark.parametrize("bad,key", [
    (dict(temperature=1.0), "temperature"),
    (dict(d="64"), "d"),
    (dict(d=1), "d"),
    (dict(kappa=-2.0), "kappa"),
    (dict(kappa=1.0, r2=0.5), "kappa/r2"),
    (dict(r1=[0.0, 0.9]), "r1"),
    (dict(dynamic=["normalized", "sgd"]), "dynamic"),
    (dict(steps=[10, 20]), "steps"),
    (dict(dt=0.0), "dt"),
    (dict(seeds=0), "seeds"),
    (dict(source="empirical"), "n"),
    (dict(n_unlabelled=8, d=32), "n_unlabelled"),
    (dict(link="sinc"), "link"),
    (dict(r1=[]), "r1"),
])
def test_bad_config_is_refused_naming_the_key(bad, key):
    cfg = dict(d=32, kappa=1.0)
    cfg.update(bad)
    if "r2" in bad:
        cfg["kappa"] = 1.0
    with pytest.raises(ValueError, match=rf"^{key}="):
        sj.load_config(cfg)


def test_committed_configs_parse():
    import tomllib

    for path in (ROOT / "configs").glob("*.toml"):
        if "experiment" in tomllib.loads(path.read_text()):
            continue  # an experiment file (make reproduce), not a sweep
        cfg = sj.load_config(path)
        axes, groups = sj.plan(cfg)
        assert "seed" in axes and groups


def test_dataset_layout_and_physics():
    ds = sj.sweep(POP, progress=False)
    assert ds["rho"].dims == ("seed", "kappa", "r1", "dynamic", "step")
    assert ds["step"].values[0] == 0 and ds["step"].values[-1] == 300
    assert (ds["status"] == "ok").all()
    final = abs(ds["cos_u"].isel(step=-1)).mean("seed")
    # theta = u, kappa = 30: spherical stalls, normalized recovers u (claim 1)
    assert float(final.sel(kappa=30.0, r1=0.0, dynamic="spherical")) < 0.8
    assert float(final.sel(kappa=30.0, r1=0.0, dynamic="normalized")) > 0.99
    # one configuration of the sweep equals the same configuration simulated alone
    keys = sj.config_keys(1)  # seed 1
    p = sj.make_problem(32, key=keys.problem, kappa=30.0, r1=0.25)
    alone = sj.simulate(p, sj.Spherical(), key=keys.run, dt=0.3, steps=300,
                        saveat=sj.SaveAt(steps=12))
    np.testing.assert_allclose(ds["rho"].sel(seed=1, kappa=30.0, r1=0.25, dynamic="spherical").values,
                               alone.rho, rtol=1e-10)


def test_results_do_not_depend_on_grid_chunk_or_batch():
    full = sj.sweep(EMP_SMALL, progress=False)
    small = dict(EMP_SMALL, seeds=[5], r2=0.8, n=[512])
    alone = sj.sweep(small, progress=False)
    np.testing.assert_allclose(alone["rho"].values.squeeze(), full["rho"].sel(seed=5, r2=0.8, n=512).values,
                               rtol=1e-9)
    rechunked = sj.sweep(EMP_SMALL, progress=False, chunk=7, max_memory=200_000)
    assert len(sj.preflight(EMP_SMALL, max_memory=200_000, chunk=7, trace=False).batches) > 2  # really re-batched
    _same(full, rechunked)


@pytest.mark.slow  # CI time: test_api's chunked advance and the grid invariance test keep the runner covered
@pytest.mark.parametrize("source", ["empirical", "online"])
def test_seeds_one_by_one_equal_seeds_batched_and_share_their_samples(source):
    """The CPU default runs a batch's seeds one after another (`lax.map`); the accelerator
    default as one more `vmap`. Both equal one configuration simulated alone, and
    a seed's samples (empirical) or batch key (online) are built once, not per configuration."""
    sizes = dict(n=64) if source == "empirical" else dict(batch=16)
    cfg = sj.load_config(dict(seeds=[3, 5, 7], d=12, kappa=[1.0, 30.0], r1=0.25, noise=0.2, source=source,
                              dynamic="spherical", dt=0.2, steps=20, record=6, **sizes))
    _, (g,) = sj.plan(cfg)
    keys, (params, _) = sj.internal.seed_keys(g), sj.internal.params_array(g, slice(0, g.size))
    out = {}
    for mode in ("map", "vmap"):
        runner = sj.internal.Runner(g, cfg, 7, seed_loop=mode)
        state = runner.init(keys, params)
        for _ in range(3):
            state, status = runner.chunk_fn(keys, params, state)
        out[mode] = (np.asarray(state.records["rho"]), np.asarray(status), runner.step_limits(keys, params))
    (rho_m, status_m, lim_m), (rho_v, status_v, lim_v) = out["map"], out["vmap"]
    assert rho_m.shape == (3, 2, 6) and np.isfinite(rho_m).all()
    np.testing.assert_allclose(rho_m, rho_v, rtol=1e-9, atol=1e-12)
    assert (status_m == status_v).all() and (status_m == 0).all()
    np.testing.assert_allclose(lim_m, lim_v, rtol=1e-9, equal_nan=True)
    assert np.isfinite(lim_m).all() == (source == "empirical")  # the limit is for deterministic sources
    keys5 = sj.config_keys(5)
    p = sj.make_problem(12, key=keys5.problem, kappa=30.0, r1=0.25, noise=0.2)
    src = sj.Empirical(64) if source == "empirical" else sj.Online(16)
    alone = sj.simulate(p, sj.Spherical(), src, key=keys5.run, dt=0.2, steps=20, saveat=sj.SaveAt(steps=6))
    np.testing.assert_allclose(rho_m[1, 1], alone.rho, rtol=1e-9, atol=1e-12)
    axes = runner.layout()[0]
    if source == "empirical":
        z_axis, y_axis, _ = axes.data
        assert z_axis is None and y_axis == 0  # z (n, d) once a seed; the labels per configuration
    else:
        assert axes.data is None  # the batch key: one a seed
    assert axes.dt == 0 and axes.problem.u is None  # per configuration; the seed's directions


def test_failures_are_flagged_and_the_rest_completes():
    cfg = dict(seeds=2, d=16, kappa=3.0, link="h1", dynamic="vanilla", solver="euler", dt=[0.1, 1e4], steps=100,
               max_norm=1e3)
    ds = sj.sweep(cfg, progress=False)
    assert (ds["status"].sel(dt=0.1) == "ok").all()
    assert set(ds["status"].sel(dt=1e4).values) <= {"diverged", "nonfinite"}
    assert (ds["fail_step"].sel(dt=1e4) > 0).all()
    assert np.isfinite(ds["rho"].sel(dt=0.1).values).all()


def test_a_group_that_raises_is_marked_error(monkeypatch):
    real = sj.internal.Runner.init

    def boom(self, keys, params):
        if self.steps and "kappa" in params and float(params["kappa"][0, 0]) > 5:
            raise RuntimeError("synthetic failure")
        return real(self, keys, params)

    monkeypatch.setattr(sj.internal.Runner, "init", boom)
    cfg = dict(seeds=1, d=16, kappa=[1.0, 10.0], dynamic=["spherical", "normalized"], steps=20)
    with pytest.warns(UserWarning, match="synthetic failure"):
        ds = sj.sweep(cfg, progress=False, max_memory=3_000)
    assert (ds["status"].sel(kappa=1.0) == "ok").all()
    assert (ds["status"].sel(kappa=10.0) == "error").all()
    assert "synthetic failure" in ds.attrs["errors"]


def test_out_directory_roundtrip_and_config_guard(tmp_path):
    ds = sj.sweep(POP, out=tmp_path, progress=False)
    back = sj.load_results(tmp_path)
    _same(ds, back)
    assert back.attrs["jax"] == jax.__version__ and "config" in back.attrs
    assert not (tmp_path / "checkpoint").exists()
    with pytest.raises(ValueError, match="different config"):
        sj.sweep(dict(POP, steps=301), out=tmp_path, progress=False)
    sj.sweep(dict(POP, steps=301), out=tmp_path, progress=False, force=True)


SLOW = dict(seeds=2, d=64, kappa=[2.0, 20.0], n=2048, source="empirical", noise=0.3,
            dynamic=["normalized", "spherical"], dt=0.05, steps=12000, record=16)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "spikejax.cli", *args], cwd=ROOT, **kw)


def _toml(path, cfg):
    path.write_text("\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in cfg.items()))
    return str(path)


def _cli_sweep(cfg_path, out, *extra):
    """An uninterrupted CLI run (float32, like every CLI run) to compare against."""
    p = _cli("sweep", cfg_path, "--out", str(out), "--no-progress", *extra, stdout=subprocess.DEVNULL)
    assert p.wait(timeout=600) == 0
    return sj.load_results(out)


@pytest.mark.slow  # 30 s; tests/test_cli.py interrupts a sweep and resumes it in the default run
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    cfg = _toml(tmp_path / "c.toml", SLOW)
    out = tmp_path / "run"
    proc = _cli("sweep", cfg, "--out", str(out), "--chunk", "100", "--no-progress",
                "--max-memory", "8M", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoint"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpt.glob("batch-*.npz")) and proc.poll() is None:
        time.sleep(0.02)
    while time.time() < deadline and not (ckpt / "current.npz").exists() and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed; make SLOW slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.nc").exists()
    resumed = _cli("sweep", cfg, "--out", str(out), "--chunk", "100", "--no-progress",
                   "--max-memory", "8M", "--resume", stdout=subprocess.DEVNULL)
    assert resumed.wait(timeout=300) == 0
    whole = _cli_sweep(cfg, tmp_path / "whole", "--chunk", "100", "--max-memory", "8M")
    _same(sj.load_results(out), whole)


@pytest.mark.slow  # 45 s of compiles in a second process; sharding itself is checked by make test-all
def test_sharded_over_eight_cpu_devices_equals_one_device():
    code = textwrap.dedent(f"""
        import jax, numpy as np, spikejax as sj
        jax.config.update("jax_enable_x64", True)
        assert len(jax.devices()) == 8
        cfg = {EMP_SMALL!r}
        many = sj.sweep(cfg, progress=False)
        one = sj.sweep(cfg, progress=False, devices=jax.devices()[:1])
        for v in sj.METRICS:
            np.testing.assert_allclose(many[v].values, one[v].values, rtol=1e-9, atol=1e-12)
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip())
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_on_loopback_merge_to_the_single_process_result(tmp_path):
    cfg = _toml(tmp_path / "c.toml", POP)
    out = tmp_path / "multi"
    port = 20000 + os.getpid() % 20000
    procs = [_cli("sweep", cfg, "--out", str(out), "--no-progress", "--coordinator", f"127.0.0.1:{port}",
                  "--process-count", "2", "--process-index", str(i), stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    merged = sj.merge_parts(out)
    single = _cli_sweep(cfg, tmp_path / "single")
    _same(merged, single)
    _same(sj.load_results(out), single)


def test_resume_keeps_the_saved_batch_plan(tmp_path):
    """Resuming with another memory budget or chunk must not renumber the batches."""
    store = sj.internal.Store(tmp_path, sj.load_config(POP))
    plan = store.plan({"chunk": 7, "max_memory": 3000, "devices": 1})
    again = sj.internal.Store(tmp_path, sj.load_config(POP), resume=True)
    assert again.plan({"chunk": 50, "max_memory": 10**9, "devices": 1}) == plan
    with pytest.raises(ValueError, match="^devices="):
        again.plan({"chunk": 50, "max_memory": 10**9, "devices": 8})


@pytest.mark.slow  # an end-to-end case; fit_readout itself is tested in test_readout.py
def test_phase_two_inside_a_sweep_lands_as_test_mse():
    """Width-8 phase 1 then a validated ridge readout: training the first layer beats the
    same readout on the untrained (one-step) layer, and both stay above the noise floor."""
    cfg = dict(seeds=2, d=32, r2=1.0, link="h2", noise=0.3, source="empirical", n=2048, dt=0.2,
               steps=400, width=8, n2=1000, n_val=500, n_test=2000, record=6)
    trained = sj.sweep(cfg, progress=False)
    untrained = sj.sweep(dict(cfg, steps=1), progress=False)
    assert trained["rho"].dims == ("seed", "neuron", "step") and trained["test_mse"].dims == ("seed",)
    t, u = trained["test_mse"].values, untrained["test_mse"].values
    assert np.all(t < u - 0.05), (t, u)
    assert np.all(t > 0.3**2 * 0.8)
    assert float(abs(trained["rho"].isel(step=-1)).mean()) > 0.9
