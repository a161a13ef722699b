"""The paper's experiments of issue 14 (`experiments/claims/`: spherical_vs_normalized,
three_stage, nongaussian_failure) at tiny sizes: each kind runs end to end and a number it reports
is checked against an independent computation."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import spikejax as sj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the experiments package, from any cwd
from experiments import theory  # noqa: E402
from experiments.claims import KINDS, claim  # noqa: E402
from experiments.harness.config import load_config  # noqa: E402
from experiments.harness.onepass import passage_point  # noqa: E402
from experiments.harness.parallel import QuietBar as _Bar  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "claims"


def _cfg(name, **over):
    cfg = load_config(CONFIGS / f"{name}.toml", "small", kinds=KINDS)
    return dict(cfg, scale="tiny", **over)


def test_fixed_point_limit():
    """c*(kappa) falls to 2 beta_2 = 1/sqrt(pi) as kappa grows; rho* = c*/sigma_w."""
    c, rho = theory.spherical_fixed_point(8.0)
    assert c == pytest.approx(0.72158, abs=1e-4)
    assert rho == pytest.approx(c / np.sqrt((1 + 8 * c * c) / 9), rel=1e-12)
    assert theory.spherical_fixed_point(1e8)[0] == pytest.approx(1 / np.sqrt(np.pi), abs=1e-3)


@pytest.mark.slow
def test_spherical_vs_normalized_kind_hits_the_fixed_point(tmp_path):
    cfg = _cfg("complexity_12_spherical_vs_normalized", d=[16], seeds=2, fb_d=[16], fb_n_over_d=[8], fb_seeds=2,
               horizon=20)
    out = claim("spherical_vs_normalized").run(cfg, tmp_path, _Bar())
    row = out["rows"][0]
    assert row["kappa"] == 4.0
    assert row["spherical"]["cos_u_med"] == pytest.approx(theory.spherical_fixed_point(4.0)[0], abs=1e-3)
    assert row["normalized"]["cos_u_med"] > 0.999
    assert row["spherical"]["change_2T"] < 1e-4 and row["spherical"]["not_ok"] == 0
    assert "complexity_12_spherical_vs_normalized" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "figures" / "complexity_12_spherical_vs_normalized.png").exists()


def _post_hoc_n(cfg, target, pt, seed, threshold):
    """The first step with `|metric| >= threshold`, from a run that records every step."""
    p = sj.make_problem(pt["d"], key=jax.random.key(pt["d"]), kappa=pt["kappa"], r1=target.get("r1", cfg.get("r1", 0.0)),
                        link=target["link"], activation=target["activation"], noise=cfg["noise"])
    key = jax.random.split(jax.random.key(10_000 + pt["d"]), 4 * target["seeds"])[seed]
    dyn = sj.DYNAMICS[target.get("dynamic", cfg["dynamic"])]()
    tr = sj.simulate(p, dyn, sj.Online(pt["batch"], projected=True), key=key, dt=pt["eta"], steps=pt["ran"],
                     saveat=sj.SaveAt(steps=tuple(range(pt["ran"] + 1))))
    m = np.abs(np.asarray(getattr(tr, target["metric"])))
    k = np.nonzero(m >= threshold)[0]
    return float(k[0] * pt["batch"]) if k.size else float("nan")


@pytest.mark.slow
def test_three_stage_kind_first_passages_match_a_recorded_run(tmp_path):
    cfg = _cfg("complexity_13_three_stage", r2=[0.5], d=[8, 12, 16, 24], check_r2=[0.5], n_boot=20, flow_d=[8, 64])
    cfg["target"] = dict(cfg["target"], seeds=2)
    out = claim("three_stage").run(cfg, tmp_path, _Bar())
    row = out["rows"][0]
    target = dict(cfg["target"], metric="cos_u", dynamic="normalized")
    pt = row["points"][0]
    assert pt["kappa"] == pytest.approx(8**0.5)
    for seed in range(2):
        assert pt["n"][seed] == _post_hoc_n(dict(cfg, r1=0.0), target, pt, seed, 0.99)
    assert np.isfinite(row["eta"]) and row["lo"] <= row["eta"] <= row["hi"]
    # one-pass SGD at this step is in the flow limit: n* within 50% of t_flow d / c
    assert all(0.5 < p["n_star"] / p["n_flow"] < 1.5 for p in row["points"])
    assert row["flow_wide"]["points"][0]["t_flow"] == pytest.approx(pt["t_flow"], rel=1e-6)  # same seeds, same flow
    assert len(out["checks"]) == 1 and "flow limit alone" in (tmp_path / "results.md").read_text()


def test_three_stage_refuses_a_step_check_outside_its_d(tmp_path):
    cfg = _cfg("complexity_13_three_stage", d=[8, 16], check_d=12)
    with pytest.raises(ValueError, match=r"check_d=12 is not allowed; choose one of the config's d \[8, 16\]"):
        claim("three_stage").run(cfg, tmp_path, _Bar())
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_three_stage_on_the_chain_is_in_the_flow_limit_and_checks_the_step_at_check_d(tmp_path, monkeypatch):
    """Experiment 2 with `reduced = true` (complexity_21): the chain's n* is within 50% of the flow
    limit t_flow d / c, as the d-dimensional run's is; the step check runs at `check_d`; the table
    prints local slopes."""
    monkeypatch.chdir(tmp_path)  # the chain's points are cached under ./out/passage_points
    cfg = load_config(CONFIGS / "complexity_21_three_stage_chain.toml", "large", kinds=KINDS)
    cfg = dict(cfg, scale="tiny", r2=[0.5], d=[16, 32, 64], check_r2=[0.5], check_d=32, n_boot=20, flow_d=[16, 64])
    cfg["target"] = dict(cfg["target"], seeds=8)
    out = claim("three_stage").run(cfg, tmp_path, _Bar())
    row = out["rows"][0]
    assert all(0.5 < p["n_star"] / p["n_flow"] < 1.5 for p in row["points"])
    assert [c["d"] for c in out["checks"]] == [32] and out["checks"][0]["base_n_star"] == row["points"][1]["n_star"]
    text = (tmp_path / "results.md").read_text()
    assert "samples from the exact chain" in text and "16->32: " in text


@pytest.mark.slow
def test_precond_online_r1_target_uses_its_own_r1():
    """A complexity_10 target with r1 = 0.25: its first passage is that of the r1 = 0.25 problem."""
    cfg = load_config(CONFIGS / "complexity_10_precond_online.toml", "small", kinds=KINDS)
    target = next(t for t in cfg["targets"] if t["name"] == "prec_cos_r025")
    target = dict(target, seeds=2)
    pt = passage_point(cfg, target, 16)
    assert target["r1"] == 0.25
    assert pt["n"][0] == _post_hoc_n(cfg, target, pt, 0, 0.9)
    p0 = dict(target, r1=0.0)
    assert _post_hoc_n(cfg, p0, pt, 0, 0.9) != pt["n"][0]  # the r1 = 0 problem passes elsewhere


@pytest.mark.slow
def test_nongaussian_kind_reports_every_law(tmp_path):
    cfg = _cfg("complexity_14_nongaussian_failure", d=8, n_over_d=512, seeds=3, kappa=[10.0], horizon=10,
               laws=[{"inputs": "gaussian"}, {"inputs": "rademacher"}], check=[["gaussian", 0, 10.0]])
    out = claim("nongaussian_failure").run(cfg, tmp_path, _Bar())
    gauss, rad = out["rows"]
    c_star = theory.spherical_fixed_point(10.0)[0]
    # n = 512 d Gaussian samples: the spherical GD settles near the population fixed point ...
    assert gauss["spherical"]["cos_u_med"] == pytest.approx(c_star, abs=0.1)
    # ... and the normalized neuron goes past it
    assert gauss["normalized"]["cos_u_med"] > gauss["spherical"]["cos_u_med"] + 0.1
    assert rad["law"] == "rademacher" and len(rad["spherical"]["cos_u"]) == 3
    assert len(out["checks"]) == 2
