"""The command line as a user meets it: as a subprocess, like `spikejax ...` from a shell, where a
fresh interpreter matters (exit codes, signals, file modes); in process for refusals and plans.

Every user error is one line on stderr with a non-zero exit and no traceback; Ctrl-C leaves
a resumable directory; the dataset round-trips with its types."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import spikejax as sj
import spikejax.internal

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(seeds=2, d=16, kappa=[1.0, 3.0], r1=[0.0, 0.25], dt=0.3, steps=60, record=6)


def _toml(path, cfg):
    lines = []
    for k, v in cfg.items():
        lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """One compilation cache for this module's runs (the same tiny programs compile once),
    never the user's."""
    global CACHE
    CACHE = tmp_path_factory.mktemp("xdg-cache")


def _env(tmp_path):
    return dict(os.environ, XDG_CACHE_HOME=str(CACHE), PYTHONPATH=str(ROOT))


def spikejax(tmp_path, *args, umask=None, timeout=300):
    """Run `spikejax ARGS` (under `umask` if given) and return the CompletedProcess (text)."""
    cmd = [sys.executable, "-m", "spikejax.cli", *map(str, args)]
    if umask is not None:
        cmd = ["sh", "-c", f"umask {umask:03o} && exec \"$@\"", "sh", *cmd]
    return subprocess.run(cmd, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def in_process(capsys, *args):
    """`main(args)` in this process (for checks that need no fresh interpreter):
    `(exit code, stdout, stderr)`."""
    from spikejax.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def one_line_error(proc, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_blind_activation_is_refused_before_compiling(tmp_path, capsys):
    cfg = _toml(tmp_path / "b.toml", dict(d=32, kappa=1.0, steps=50, link="h3", activation="h2"))
    proc = in_process(capsys, "sweep", cfg, "--out", tmp_path / "o")
    line = one_line_error(proc)
    assert line.startswith("spikejax sweep: error: activation='h2' is not allowed;")
    assert not (tmp_path / "o").exists()


def test_a_configuration_in_error_makes_the_command_fail(tmp_path):
    """A group that raises at run time (not refused up front) is `error`, exit 1."""
    cfg = _toml(tmp_path / "c.toml", TINY)
    code = textwrap.dedent(f"""
        import sys
        import spikejax.internal as s
        real = s.Runner.chunk_fn
        def boom(self, keys, params, state):
            if self.steps and "kappa" in params and float(params["kappa"][0, -1]) > 2:
                raise RuntimeError("synthetic failure")
            return real(self, keys, params, state)
        s.Runner.chunk_fn = boom
        from spikejax.cli import main
        main(["sweep", {cfg!r}, "--out", "o", "--no-progress", "--max-memory", "10K"])
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "status: ok 4, error 4" in proc.stdout
    assert "could not run" in proc.stderr and "synthetic failure" in proc.stderr


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_sigint_while_compiling_leaves_a_resumable_directory(tmp_path):
    cfg = _toml(tmp_path / "c.toml", TINY)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "spikejax.cli", "sweep", cfg, "--out", out, "--no-progress",
                             "--no-cache"],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stderr.readline()
    while line and "compiling" not in line:
        line = proc.stderr.readline()
    assert "compiling" in line, "the sweep never said it was compiling"
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err
    assert err.strip() == "interrupted; 0/1 batches saved; rerun with --resume", err
    resumed = spikejax(tmp_path, "sweep", cfg, "--out", out, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (sj.load_results(out)["status"] == "ok").all()


@pytest.mark.slow  # 20 s; resuming stays in test_resume_reports_only_the_work_it_did
def test_resume_of_a_finished_sweep_computes_nothing(tmp_path):
    cfg = _toml(tmp_path / "c.toml", TINY)
    first = spikejax(tmp_path, "sweep", cfg, "--out", "o", "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    before = (tmp_path / "o" / "results.nc").stat().st_mtime_ns
    again = spikejax(tmp_path, "sweep", cfg, "--out", "o", "--resume", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing computed" in again.stdout and "compiling" not in again.stderr
    assert (tmp_path / "o" / "results.nc").stat().st_mtime_ns == before


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_resume_reports_only_the_work_it_did(tmp_path, monkeypatch):
    """Two batches, the first saved: a resume computes (and counts) only the second."""
    out = tmp_path / "o"
    monkeypatch.setattr(sj.internal.Store, "clear_checkpoints", lambda self: None)
    sj.sweep(TINY, out=out, progress=False, max_memory=10_000)
    batches = sorted((out / "checkpoint").glob("batch-*.npz"))
    assert len(batches) == 2
    batches[1].unlink()
    (out / "results.nc").unlink()
    proc = spikejax(tmp_path, "sweep", _toml(tmp_path / "c.toml", TINY), "--out", out, "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming: 1 of 2 batches done" in proc.stderr
    assert "(240 config-steps computed here" in proc.stdout and "1 of 2 batches resumed" in proc.stdout


def test_user_errors_are_one_line(tmp_path, capsys):
    assert "no results at" in one_line_error(in_process(capsys, "plot", tmp_path / "no-such-dir"))
    cfg = _toml(tmp_path / "c.toml", TINY)
    line = one_line_error(in_process(capsys, "sweep", cfg, "--out", "/proc/spikejax-cannot-write/o"))
    assert "/proc/spikejax-cannot-write" in line
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "o"
    assert "is a file" in one_line_error(in_process(capsys, "sweep", cfg, "--out", out))
    missing = tmp_path / "missing.toml"
    assert "no such file" in one_line_error(in_process(capsys, "sweep", missing, "--out", tmp_path / "o"))
    typo = _toml(tmp_path / "t.toml", dict(d=16, kapa=1.0))
    assert "did you mean kappa?" in one_line_error(in_process(capsys, "sweep", typo, "--out", tmp_path / "o"))


@pytest.mark.parametrize("n", [100, [100, 200]])
def test_keys_that_do_not_apply_are_refused_naming_the_source(tmp_path, capsys, n):
    cfg = _toml(tmp_path / "c.toml", dict(d=16, kappa=1.0, n=n))
    line = one_line_error(in_process(capsys, "sweep", cfg, "--out", tmp_path / "o", "--dry-run"))
    assert f"n={n!r} is not allowed; n applies only with source='empirical' (here source='population')" in line


@pytest.mark.slow  # 9 s; refusals before anything is written stay in test_user_errors_are_one_line
def test_failed_preflight_leaves_nothing_and_the_corrected_config_runs(tmp_path):
    big = _toml(tmp_path / "big.toml", dict(TINY, d=32, n=4096, source="empirical"))
    line = one_line_error(spikejax(tmp_path, "sweep", big, "--out", "o", "--max-memory", "1M"))
    assert "n=4096 is not allowed here" in line and "MB" in line and "lower n" in line
    assert not (tmp_path / "o").exists()
    # an old refused start left only config.json: nothing to lose, so it does not block
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "config.json").write_text('{"d": [99]}')
    ok = spikejax(tmp_path, "sweep", _toml(tmp_path / "ok.toml", TINY), "--out", "o", "--no-progress")
    assert ok.returncode == 0, ok.stderr[-2000:]


@pytest.mark.slow  # 13 s; the config guard stays in test_sweep.py::test_out_directory_roundtrip_and_config_guard
def test_another_config_is_refused_naming_the_keys_and_force_clears_figures(tmp_path):
    sj.sweep(TINY, out=tmp_path / "o", progress=False)
    (tmp_path / "o" / "curves.png").write_bytes(b"old figure")
    other = _toml(tmp_path / "d.toml", dict(TINY, steps=61, dt=0.2))
    line = one_line_error(spikejax(tmp_path, "sweep", other, "--out", "o"))
    assert "dt: [0.3] -> [0.2]" in line and "steps: [60] -> [61]" in line and "--force" in line
    forced = spikejax(tmp_path, "sweep", other, "--out", "o", "--force", "--no-progress")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert not (tmp_path / "o" / "curves.png").exists()


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_files_are_readable_by_others_and_attributes_keep_their_types(tmp_path):
    cfg = _toml(tmp_path / "c.toml", dict(TINY, reduced=False))
    proc = spikejax(tmp_path, "sweep", cfg, "--out", "o", "--no-progress", "--profile", umask=0o022)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("results.nc", "config.json"):
        assert stat.S_IMODE((tmp_path / "o" / name).stat().st_mode) == 0o644, name
    ds = sj.load_results(tmp_path / "o")
    assert ds.attrs["fixed_reduced"] is False and ds.attrs["fixed_n2"] is None
    assert ds.attrs["fixed_d"] == 16 and ds.attrs["fixed_dynamic"] == "normalized"
    for key in ("equinox", "optax", "xarray", "numpy", "jax", "created"):
        assert ds.attrs[key], key
    assert "sweep" in ds.attrs["command"]
    assert ds["rho"].dtype == np.float32
    for name in ds.data_vars:
        assert ds[name].attrs["long_name"] and ds[name].attrs["description"], name
    docs = (ROOT / "docs" / "sweeps.md").read_text()
    for metric in sj.METRICS:
        assert f"`{metric}`" in docs, metric
    assert ds.attrs["runner"] == {"seed_loop": "map", "chunk": ds.attrs["runner"]["chunk"], "batches": 1,
                                  "max_memory": ds.attrs["runner"]["max_memory"]}
    _check_profile(ds.attrs["profile"], proc.stdout)


def _check_profile(prof, stdout):
    """`--profile`: the table is printed, and the attribute's phases tile the run: the
    main thread's spans never overlap, and they cover the wall time up to writing."""
    assert "where the time went" in stdout and "init" in stdout
    totals, spans = prof["totals"], prof["spans"]
    assert totals["start-up"] > 0 and totals["plan"] > 0 and totals["init"] > 0 and totals["steps"] > 0
    assert {"init", "chunk"} <= set(totals["programs"])
    assert totals["programs"]["chunk"]["hidden"] > 0  # compiled in a background thread
    main = sorted((s, e) for phase, s, e, thread, _ in spans if phase in sj.internal.PROFILE_PHASES
                  and thread == "MainThread")
    assert all(e0 <= s1 + 1e-6 for (_, e0), (s1, _) in zip(main, main[1:])), main
    covered = sum(e - s for s, e in main)
    assert 0.9 * totals["wall"] <= covered <= totals["wall"] + 1e-6, (covered, totals["wall"])


def test_profile_totals_are_the_spans_summed_by_phase_and_thread():
    import threading

    prof = sj.internal.Profile(start=100.0)
    prof.add("plan", 100.0, 101.0)
    prof.add("init", 101.0, 104.0)
    prof.add("compile", 101.5, 103.0, "init")  # init's own compile, on the main thread
    worker = threading.Thread(target=prof.add, args=("compile", 101.0, 103.5, "chunk"))
    worker.start()
    worker.join()
    prof.add("steps", 104.0, 110.0)
    t = prof.totals()
    assert t["wall"] == 10.0 and t["plan"] == 1.0 and t["steps"] == 6.0
    assert t["init compile"] == 1.5 and t["init run"] == 1.5
    assert t["programs"]["chunk"] == {"trace": 0.0, "lower": 0.0, "compile": 2.5, "hidden": 2.5}
    assert t["compile"] == 4.0 and t["compile hidden"] == 2.5
    assert "chunk" in prof.table() and "(background)" in prof.table()


def test_checkpoints_are_readable_by_others(tmp_path, monkeypatch):
    monkeypatch.setattr(sj.internal.Store, "clear_checkpoints", lambda self: None)
    old = os.umask(0o022)
    try:
        sj.sweep(TINY, out=tmp_path, progress=False)
    finally:
        os.umask(old)
    for path in (tmp_path / "checkpoint").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    cfg = _toml(tmp_path / "c.toml", TINY)
    proc = in_process(capsys, "sweep", cfg, "--out", tmp_path / "o", "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for word in ("grid: 8 configurations", "groups: 1", "batches: 1", "memory: about", "time: about"):
        assert word in proc.stdout, proc.stdout
    assert not (tmp_path / "o").exists()


def test_a_grid_too_big_for_host_memory_is_refused_at_once(tmp_path, capsys):
    cfg = _toml(tmp_path / "c.toml", dict(seeds=10_000, d=16, kappa=[float(k) for k in range(10_000)]))
    t = time.perf_counter()
    line = one_line_error(in_process(capsys, "sweep", cfg, "--out", tmp_path / "o", "--dry-run"))
    assert time.perf_counter() - t < 30
    assert "grid='1e+08 configurations' is not allowed" in line and "GB of host memory" in line


def test_planning_a_million_configurations_is_fast():
    cfg = sj.load_config(dict(seeds=10, d=32, kappa=[float(i) for i in range(100)],
                              r1=[i / 200 for i in range(100)], dt=[0.1 * (i + 1) for i in range(10)], steps=10))
    t = time.perf_counter()
    axes, groups = sj.plan(cfg)
    elapsed = time.perf_counter() - t
    assert sum(len(g.seeds) * len(g.configs) for g in groups) == 1_000_000
    assert elapsed < 1.0, elapsed
    flat = np.concatenate([g.flat.ravel() for g in groups])
    assert np.array_equal(np.sort(flat), np.arange(1_000_000))  # every configuration exactly once


def test_every_help_has_descriptions_defaults_and_an_example(capsys):
    for command in ([], ["sweep"], ["demo"], ["merge"], ["info"]):
        proc = in_process(capsys, *command, "--help")
        assert proc.returncode == 0
        assert "example" in proc.stdout, command
    sweep_help = in_process(capsys, "sweep", "--help").stdout
    assert "--dry-run" in sweep_help and "--no-cache" in sweep_help and "(default:" in sweep_help


@pytest.mark.slow  # 7 s; float64 sweeps stay in test_chain.py's reduced sweep
def test_precision_float64_runs_that_sweep_in_double(tmp_path, capsys):
    """`precision = "float64"`: the CLI's run and `sj.sweep` store float64; the setting does
    not leak out of `sj.sweep` into the caller's process."""
    cfg = _toml(tmp_path / "c.toml", dict(TINY, kappa=3.0, r1=0.25, steps=20, precision="float64"))
    proc = spikejax(tmp_path, "sweep", cfg, "--out", "o", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sj.load_results(tmp_path / "o")["rho"].dtype == np.float64
    info = in_process(capsys, "info", tmp_path / "o")
    assert info.returncode == 0 and "status: ok 2" in info.stdout and "precision=float64" in info.stdout
    import jax

    before = bool(jax.config.jax_enable_x64)
    sj.sweep(dict(TINY, kappa=3.0, r1=0.25, steps=20, precision="float64"), progress=False)
    assert bool(jax.config.jax_enable_x64) == before


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_network_keys_run_and_a_width_one_frozen_network_is_the_single_neuron(tmp_path, capsys):
    """`network = true` trains `width` neurons as one network (one compiled call per group);
    width 1 with a frozen `a = 1`, `b = 0` is the single-neuron sweep; bad values are refused
    before anything compiles."""
    base = dict(seeds=2, d=16, kappa=[1.0, 3.0], r1=0.25, dt=0.3, steps=60, record=6, solver="euler",
                precision="float64")
    # the population source: test_networks.py::test_width_one_frozen_network_is_the_single_neuron
    for src in (dict(source="empirical", n=64),):
        one = sj.sweep(dict(base, **src), progress=False)
        net = sj.sweep(dict(base, **src, network=True), progress=False)
        assert net["rho"].dims == one["rho"].dims  # no neuron axis
        for name in ("rho", "cos_u", "risk", "norm") + (("train_risk",) if src else ()):
            np.testing.assert_allclose(net[name], np.abs(one[name]) if name in ("rho", "cos_u") else one[name],
                                       atol=1e-12, rtol=0)
        assert float(np.abs(one["rho"].isel(step=-1) - one["rho"].isel(step=0)).max()) > 0.3  # it moved
    for bad, msg in [(dict(width=0), "width=0 is not allowed"), (dict(scaling="ntk"), "scaling='ntk' is not allowed"),
                     (dict(second_layer="joint", lr_ratio=0.0), "lr_ratio=0.0 is not allowed"),
                     (dict(second_layer="joint", lr_ratio=-1.0), "lr_ratio=-1.0 is not allowed")]:
        bad_cfg = _toml(tmp_path / "bad.toml", dict(base, network=True, **bad))
        assert msg in one_line_error(in_process(capsys, "sweep", bad_cfg, "--out", tmp_path / "b", "--dry-run"))
    line = one_line_error(in_process(capsys, "sweep", _toml(tmp_path / "s.toml", dict(base, scaling="standard")),
                                     "--out", tmp_path / "b", "--dry-run"))
    assert "scaling applies only with network = true" in line


@pytest.mark.slow
def test_network_widths_and_learning_rate_ratios_are_axes_of_the_cli(tmp_path):
    """A jointly trained network through the CLI: widths and learning-rate ratios are axes,
    one compiled call each, and both change the result."""
    base = dict(seeds=2, d=16, kappa=[1.0, 3.0], r1=0.25, dt=0.3, steps=60, record=6, solver="euler")
    cfg = _toml(tmp_path / "n.toml", dict(base, network=True, width=[1, 4], scaling="standard",
                                          second_layer="joint", lr_ratio=[0.5, 2.0], biases="trained", bias_init=1.0))
    proc = spikejax(tmp_path, "sweep", cfg, "--out", "o", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = sj.load_results(tmp_path / "o")
    assert ds["risk"].dims == ("seed", "kappa", "width", "lr_ratio", "step")
    assert (ds["status"] == "ok").all()
    risk = ds["risk"]
    assert float((risk.isel(step=-1) - risk.isel(step=0)).max()) < -0.01  # every run trained
    # the second layer's time scale matters, and so does the width
    assert float(np.abs(risk.isel(step=-1, lr_ratio=0) - risk.isel(step=-1, lr_ratio=1)).min()) > 1e-4
    assert float(np.abs(risk.isel(step=-1, width=0) - risk.isel(step=-1, width=1)).min()) > 1e-4
