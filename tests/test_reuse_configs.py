"""The reuse configs (configs/reuse_*.toml) parse and plan without running, and the registered
target of the Dandi et al. reproduction, `tanh_z1_he3_z2`, equals a numpy evaluation
(docs/reuse.md)."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj
from spikejax import TargetFunction, load_config
from spikejax.internal import REGISTERED_TARGETS as TARGETS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("reuse_*.toml"))


def test_reuse_configs_found():
    names = {p.name for p in CONFIGS}
    assert {"reuse_arnaboldi_he3.toml", "reuse_dandi_tanh_he3.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_reuse_config_plans(path):
    """The config checker and the planner accept it (nothing compiled, nothing run)."""
    config = load_config(path)
    plan = sj.preflight(str(path), trace=False, max_memory=64 * 2**30)  # the plan, not this host's memory
    assert plan.spec.size > 0
    assert config["w0"] == ["orthogonal"]


def test_dandi_config_is_their_experiment():
    c = load_config(ROOT / "configs/reuse_dandi_tanh_he3.toml")
    assert c["target"] == ["tanh_z1_he3_z2"] and c["network"] == [True] and c["width"] == [2]
    assert c["source"] == ["empirical", "online"] and c["n"] == c["batch"] == [3 * c["d"][0]]
    assert c["dt"][0] * np.sqrt(2) == pytest.approx(0.2 * 3)  # their lr 0.2 x alpha 3, over sqrt(m)
    assert c["seeds"] == list(range(32))


def _numpy_target(z1, z2):
    return np.tanh(z1 + z2**3 - 3 * z2)


def test_tanh_z1_he3_z2_labels_against_numpy():
    """The labels of a problem built by name are tanh(z1 + He3(z2)) of the sample's two
    projections, computed here in numpy from the problem's directions."""
    p = sj.multi_index_problem(64, key=jax.random.key(0), g="tanh_z1_he3_z2", k=2, activation="relu")
    z = jax.random.normal(jax.random.key(1), (512, 64))
    y = np.asarray(p.target(z, p.covariance), np.float64)
    U = np.asarray(p.target.U, np.float64)
    proj = np.asarray(z, np.float64) @ U.T / np.linalg.norm(U, axis=1)  # isotropic: Sigma = I
    np.testing.assert_allclose(y, _numpy_target(proj[:, 0], proj[:, 1]), rtol=2e-5, atol=2e-5)


def test_tanh_z1_he3_z2_series_against_numpy():
    """Its Hermite series (what the closed forms read) and E[g^2] against numpy Gauss-Hermite
    quadrature: g is odd, so only odd total degrees; the He1 coefficients give the first-order
    direction (0.768, -0.641) that one-pass SGD learns."""
    g = TARGETS["tanh_z1_he3_z2"]
    assert isinstance(g, TargetFunction) and g.k == 2
    x, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / w.sum()
    Z1, Z2 = np.meshgrid(x, x, indexing="ij")
    W, G = np.outer(w, w), _numpy_target(Z1, Z2)
    assert g.norm2 == pytest.approx((W * G**2).sum(), rel=1e-6)
    he = {0: lambda t: 1.0, 1: lambda t: t, 2: lambda t: (t**2 - 1) / np.sqrt(2), 3: lambda t: (t**3 - 3 * t) / np.sqrt(6)}
    for alpha in [(1, 0), (0, 1), (2, 1), (0, 3), (1, 2), (3, 0), (1, 1), (2, 0)]:
        ref = (W * G * he[alpha[0]](Z1) * he[alpha[1]](Z2)).sum()
        assert g.get(alpha, 0.0) == pytest.approx(ref, abs=1e-8), alpha
    assert all(sum(a) % 2 == 1 for a in g)
    c = np.array([g[(1, 0)], g[(0, 1)]])
    np.testing.assert_allclose(c / np.linalg.norm(c), [0.7678, -0.6406], atol=1e-4)
    assert g[(1, 0)] == pytest.approx(0.35767, abs=1e-4)


def test_target_function_refusals():
    with pytest.raises(ValueError, match="k=0 is not allowed"):
        TargetFunction(jnp.tanh, 0)
    with pytest.raises(ValueError, match="fn=3 is not allowed"):
        TargetFunction(3, 1)
    with pytest.raises(ValueError, match="k=2 directions"):
        sj.MultiIndex(jnp.eye(3)[:1], TARGETS["tanh_z1_he3_z2"])
