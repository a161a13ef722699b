"""Multi-index targets from a config (TOML keys `target`, `k`, `terms`, `spikes`, `threshold`):
a sweep records the subspace observables `sj.simulate` records, and bad values are refused
before anything compiles, naming the key."""

import json
from pathlib import Path

import numpy as np
import pytest

import spikejax as sj

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "multi_index_sweep.toml"


def _toml(path, cfg):
    path.write_text("\n".join(f"{k} = {_value(v)}" for k, v in cfg.items()) + "\n")
    return str(path)


def _value(v):
    """TOML for a value: JSON is TOML for numbers, strings and lists, not for tables."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v)


def _alone(cfg, seed, dt):
    """One configuration of the example, built and run by hand with the sweep's keys."""
    keys = sj.config_keys(seed)
    p = sj.multi_index_problem(cfg["d"], key=keys.problem, g=cfg["target"], k=cfg["k"], spikes=cfg["spikes"],
                               activation=cfg["activation"])
    net = sj.Network(width=cfg["width"], scaling=cfg["scaling"], second_layer=cfg["second_layer"],
                     biases=cfg["biases"], bias_init=cfg["bias_init"], a_init=cfg["a_init"])
    k, th = cfg["k"], (cfg["threshold"],)
    passages = {**{f"cover{i + 1}": th for i in range(k)}, **{f"u{i + 1}": th for i in range(k)}, "subspace": th}
    return sj.simulate(p, sj.Vanilla(), sj.Population(), key=keys.run, solver=sj.Euler(), dt=dt, steps=cfg["steps"],
                       reduced=cfg["reduced"], network=net, saveat=sj.SaveAt(steps=cfg["record"], passages=passages))


@pytest.mark.slow  # 18 s through the CLI; the reduced multi-index runs stay in test_multi_index.py
def test_example_config_through_the_cli_records_what_simulate_records(tmp_path, capsys):
    from spikejax.cli import main

    cfg = sj.read_toml(EXAMPLE)
    assert cfg["d"] <= 16 and cfg["steps"] <= 500  # the committed example stays tiny
    main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "out")])
    capsys.readouterr()
    ds = sj.load_results(tmp_path / "out")
    k = cfg["k"]
    assert ds["coverage"].dims == ("seed", "dt", "step", "direction") and ds.sizes["direction"] == k
    assert ds["t_cover"].dims == ("seed", "dt", "direction") and ds["t_subspace"].dims == ("seed", "dt")
    assert ds["overlap"].dims == ("seed", "dt", "step", "direction", "unit") and ds.sizes["unit"] == cfg["width"]
    assert (ds["status"] == "ok").all()
    for seed in (1,):  # seed 0 differs only by its keys, checked by the assertions below
        for dt in cfg["dt"]:
            alone = _alone(cfg, seed, dt)
            cell = ds.sel(seed=seed, dt=dt)
            for name in ("coverage", "principal_cos", "best", "risk", "overlap"):  # overlap: signed, (k, m)
                np.testing.assert_allclose(cell[name].values, np.asarray(alone.ys[name]), rtol=1e-6, atol=1e-9)
            times = {"t_cover": [alone.passages[f"cover{i + 1}"][0] for i in range(k)],
                     "t_best": [alone.passages[f"u{i + 1}"][0] for i in range(k)]}
            for name, want in times.items():
                np.testing.assert_allclose(cell[name].values, np.asarray(want, float), rtol=1e-6, equal_nan=True)
            np.testing.assert_allclose(cell["t_subspace"].values, float(alone.passages["subspace"][0]),
                                       rtol=1e-6, equal_nan=True)
    # the staircase's u1 is learned within the horizon, from below the threshold
    assert float(ds["coverage"].isel(step=0).sel(direction=1).max()) < cfg["threshold"]
    assert float(ds["coverage"].isel(step=-1).sel(direction=1).min()) > cfg["threshold"]
    assert np.isfinite(ds["t_cover"].sel(direction=1)).all() and (ds["t_cover"].sel(direction=1) > 0).all()
    # the first passage is the first time (recorded or not) the coverage crosses: no record before it is above
    for seed in (0, 1):
        cell = ds.sel(seed=seed, dt=cfg["dt"][0], direction=1)
        t = cell["step"].values * cfg["dt"][0]
        before = t < float(cell["t_cover"])
        assert (cell["coverage"].values[before] < cfg["threshold"]).all()


@pytest.mark.slow
def test_custom_terms_equal_the_built_in_name():
    """`target = "custom"` with the staircase's terms is the staircase; `parity3` is `parity`
    at k = 3 (four sweeps: 12 s)."""
    base = dict(seeds=1, d=12, k=3, activation="relu", network=True, width=3, biases="trained", bias_init=1.0,
                dynamic="vanilla", solver="euler", dt=0.1, steps=30, record=4, reduced=True)
    named = sj.sweep(dict(base, target="staircase"), progress=False)
    terms = [{"alpha": [1, 0, 0], "coeff": 1.0}, {"alpha": [1, 1, 0], "coeff": 1.0}, {"alpha": [1, 1, 1], "coeff": 1}]
    custom = sj.sweep(dict(base, target="custom", terms=terms), progress=False)
    np.testing.assert_allclose(custom["coverage"].values, named["coverage"].values, rtol=1e-12)
    parity3 = sj.sweep(dict(base, target="parity3", k=3), progress=False)
    parity = sj.sweep(dict(base, target="parity", k=3), progress=False)
    np.testing.assert_allclose(parity3["risk"].values, parity["risk"].values, rtol=1e-12)
    assert float(np.abs(parity["risk"] - named["risk"]).max()) > 1e-3  # a different target, a different run


BASE = dict(d=16, target="staircase", k=3, network=True, width=4, bias_init=1.0, steps=10)


@pytest.mark.parametrize("change, msg", [
    (dict(target="stairs"), "target='stairs' is not allowed; choose one of 'single_index', 'sum_h2', 'staircase'"),
    (dict(k=None), "k=None is not allowed; target = 'staircase' needs k"),
    (dict(k=0), "k=0 is not allowed; allowed: an integer >= 1"),
    (dict(target="parity3", k=2), "k=2 is not allowed; target = 'parity3' has k = 3"),
    (dict(spikes=[{"align": 3, "r2": 0.5}]), "spikes[0].align=3 is not allowed; allowed: None (orthogonal to the "
                                             "target) or a direction index in [0, 2]"),
    (dict(spikes=[{"align": 0, "r1": 0.7, "r2": 0.5}]), "spikes[0].r1=0.7 is not allowed"),
    (dict(spikes=[{"align": 0, "r2": 0.5}, {"align": 0, "r2": 0.2}]), "each target direction takes at most one spike"),
    (dict(spikes=[{"align": 0}]), "give exactly one of r2 and kappa"),
    (dict(spikes={"align": 0, "r2": 0.5}), "spikes={'align': 0, 'r2': 0.5} is not allowed; expected a list of tables"),
    (dict(d=4, spikes=[{"r2": 0.5}, {"align": 0, "r2": 0.5}]), "d=4 is not allowed; allowed: d >= k + p = 5"),
    (dict(target="custom", k=None, terms=[{"alpha": [1, -1], "coeff": 1.0}]),
     "terms[0].alpha=[1, -1] is not allowed; a non-empty list of integers >= 0"),
    (dict(target="custom", k=3, terms=[{"alpha": [1, 1], "coeff": 1.0}]), "k=3 is not allowed; the terms have 2"),
    (dict(target="custom", k=None, terms=[{"alpha": [1, 1], "coeff": 1.0}, {"alpha": [2], "coeff": 1.0}]),
     "terms[1].alpha=[2] is not allowed; every term has the same number of directions"),
    (dict(target="custom", k=None, terms=[{"alpha": [1, 1], "c": 1.0}]), "terms[0]={'alpha': [1, 1], 'c': 1.0}"),
    (dict(target="custom", k=None), "terms=None is not allowed; target = 'custom' needs terms"),
    (dict(terms=[{"alpha": [1, 1, 1], "coeff": 1.0}]), "terms applies only with target = 'custom'"),
    (dict(kappa=3.0), "kappa=3.0 is not allowed; kappa applies only with target = 'single_index'"),
    (dict(link="h3"), "link='h3' is not allowed; link applies only with target = 'single_index'"),
    (dict(threshold=1.5), "threshold=1.5 is not allowed; allowed: a finite real number in (0.0, 1.0]"),
    (dict(target="single_index", k=None, kappa=1.0, spikes=[{"align": 0, "r2": 0.5}]),
     "spikes applies only with a multi-index target"),
    (dict(k=[2, 3]), "k=[2, 3] is not allowed; must be a single value, not a list"),
    (dict(activation="h2", target="parity"), "activation='h2' is not allowed"),
])
def test_bad_multi_index_keys_are_refused_naming_the_key(change, msg, tmp_path, capsys):
    cfg = {key: value for key, value in (BASE | change).items() if value is not None}
    with pytest.raises(ValueError) as err:
        sj.preflight(cfg, trace=False)
    assert msg in str(err.value), str(err.value)
    from test_cli import in_process, one_line_error

    line = one_line_error(in_process(capsys, "sweep", _toml(tmp_path / "bad.toml", cfg), "--out", tmp_path / "o",
                                     "--dry-run"))
    assert msg in line
