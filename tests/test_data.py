import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj


def _dense(spike):
    th = np.asarray(spike.theta)
    d = th.shape[0]
    return float(spike.scale) * (np.eye(d) + float(spike.kappa) * np.outer(th, th))


@pytest.mark.parametrize("normalisation", ["unit_top", "unnormalised"])
@pytest.mark.parametrize("r1", [0.0, 0.2, 0.5])
def test_operators_against_dense(normalisation, r1):
    d = 12
    p = sj.make_problem(d, key=jax.random.key(0), kappa=7.5, r1=r1, normalisation=normalisation)
    sp = p.covariance
    sigma = _dense(sp)
    evals, evecs = np.linalg.eigh(sigma)
    sqrt = evecs @ np.diag(np.sqrt(evals)) @ evecs.T
    a, b = np.random.default_rng(0).normal(size=(2, d))
    np.testing.assert_allclose(sp.sqrt(a), sqrt @ a, atol=1e-12)
    np.testing.assert_allclose(sp.inv(a), np.linalg.solve(sigma, a), atol=1e-12)
    np.testing.assert_allclose(sp.apply(a), sigma @ a, atol=1e-12)
    assert float(sp.inner(a, b)) == pytest.approx(a @ sigma @ b, abs=1e-12)
    # batched rows act row by row
    rows = np.stack([a, b])
    np.testing.assert_allclose(sp.sqrt(rows), rows @ sqrt, atol=1e-12)
    # geometry of (u, theta)
    assert float(p.u @ sp.theta) == pytest.approx(d ** (-r1), abs=1e-12)
    assert float(jnp.linalg.norm(sp.theta)) == pytest.approx(1.0, abs=1e-12)
    top = evals.max()
    assert top == pytest.approx(1.0 if normalisation == "unit_top" else 8.5, abs=1e-12)


def test_kappa_from_r2():
    p = sj.make_problem(64, key=jax.random.key(0), r2=0.5)
    assert float(p.covariance.kappa) == pytest.approx(8.0)


@pytest.mark.parametrize("inputs", [sj.Gaussian(), sj.StudentT(8.0), sj.Rademacher()])
def test_sample_covariance_within_sampling_error(inputs):
    d, n = 6, 100_000
    p = sj.make_problem(d, key=jax.random.key(1), kappa=4.0, r1=0.3, inputs=inputs)
    x = np.asarray(sj.sample_x(p, jax.random.key(2), n))
    emp = x.T @ x / n
    sigma = _dense(p.covariance)
    # standard error of each entry: sqrt(E[x_i^2 x_j^2] - Sigma_ij^2) / sqrt(n), estimated
    se = np.sqrt(((x[:, :, None] * x[:, None, :]) ** 2).mean(0) - sigma**2) / np.sqrt(n)
    assert np.all(np.abs(emp - sigma) < 5 * se)


def test_estimated_covariance_is_sample_covariance_and_inverse():
    p = sj.make_problem(8, key=jax.random.key(1), kappa=3.0)
    cov = sj.estimate_covariance(p, jax.random.key(3), 400)
    x = np.asarray(sj.sample_x(p, jax.random.key(3), 400))
    np.testing.assert_allclose(cov.mat, x.T @ x / 400, atol=1e-12)
    np.testing.assert_allclose(np.asarray(cov.mat) @ np.asarray(cov.mat_inv), np.eye(8), atol=1e-9)
    np.testing.assert_allclose(np.asarray(cov.mat_sqrt) @ np.asarray(cov.mat_sqrt), cov.mat, atol=1e-9)


def test_multi_spike_covariance_against_dense():
    """Two orthonormal spikes: every operator against the dense matrix and its eigendecomposition."""
    d = 10
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(d, 2)))
    thetas, kappas = q.T, np.array([9.0, 2.5])
    cov = sj.MultiSpikeCovariance(thetas=jnp.asarray(thetas), kappas=jnp.asarray(kappas), scale=jnp.asarray(0.1))
    sigma = 0.1 * (np.eye(d) + thetas.T @ np.diag(kappas) @ thetas)
    evals, evecs = np.linalg.eigh(sigma)
    a, b = np.random.default_rng(4).normal(size=(2, d))
    np.testing.assert_allclose(cov.sqrt(a), evecs @ np.diag(np.sqrt(evals)) @ evecs.T @ a, atol=1e-12)
    np.testing.assert_allclose(cov.inv(a), np.linalg.solve(sigma, a), atol=1e-10)
    assert float(cov.inner(a, b)) == pytest.approx(a @ sigma @ b, abs=1e-12)
    dense = sj.DenseCovariance.make(sigma)
    np.testing.assert_allclose(dense.sqrt(a), cov.sqrt(a), atol=1e-10)
    np.testing.assert_allclose(dense.inv(a), cov.inv(a), atol=1e-9)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(kappa=st.floats(0.0, 1e4), r1=st.floats(0.0, 0.5), seed=st.integers(0, 2**16),
       normalisation=st.sampled_from(["unit_top", "unnormalised"]))
def test_operator_identities_hold_for_any_spike(kappa, r1, seed, normalisation):
    """Sigma^{1/2} Sigma^{1/2} = Sigma, Sigma^{-1} Sigma = I, <a, b>_Sigma = <a, Sigma b>."""
    p = sj.make_problem(9, key=jax.random.key(seed), kappa=kappa, r1=r1, normalisation=normalisation)
    sp = p.covariance
    a, b = np.random.default_rng(seed).normal(size=(2, 9))
    scale = 1.0 + kappa
    np.testing.assert_allclose(sp.sqrt(sp.sqrt(a)), sp.apply(a), rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(sp.inv(sp.apply(a)), a, rtol=1e-9, atol=1e-9)
    assert float(sp.inner(a, b)) == pytest.approx(float(a @ sp.apply(b)), rel=1e-9, abs=1e-12 * scale)
