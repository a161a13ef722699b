import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import spikejax as sj
from spikejax.internal import quadrature_coeffs


def _quad_coeff(fn, j):
    """E[fn(Z) h_j(Z)] by adaptive quadrature, split at 0 for the ReLU kink."""
    h = lambda x: sj.hermite_basis(np.asarray(x), j, xp=np)[..., j]
    g = lambda x: fn(x) * h(x) * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    left = integrate.quad(g, -np.inf, 0, epsabs=1e-13, epsrel=1e-13)[0]
    right = integrate.quad(g, 0, np.inf, epsabs=1e-13, epsrel=1e-13)[0]
    return left + right


def test_orthonormality_by_quadrature():
    x, w = sj.gauss_hermite(60)
    h = sj.hermite_basis(x, 20, xp=np)
    gram = (h * w[:, None]).T @ h
    np.testing.assert_allclose(gram, np.eye(21), atol=1e-10)


@pytest.mark.parametrize("j", range(0, 12))
def test_relu_coefficients_match_quadrature(j):
    closed = sj.relu_coeffs(12)[j]
    assert closed == pytest.approx(_quad_coeff(lambda x: max(x, 0.0), j), abs=1e-10)


def test_relu_known_values():
    c = sj.relu_coeffs(5)
    np.testing.assert_allclose(c[:3], [1 / math.sqrt(2 * math.pi), 0.5, 1 / math.sqrt(4 * math.pi)])
    assert c[3] == 0 and c[5] == 0


@pytest.mark.parametrize("k", range(1, 9))
def test_hk_coefficients_are_unit_vectors(k):
    f = sj.hermite_function(f"h{k}")
    quad = quadrature_coeffs(f.fn, 10)
    expected = np.eye(11)[k]
    np.testing.assert_allclose(quad, expected, atol=1e-10)
    np.testing.assert_allclose(np.asarray(f.coeffs), np.eye(k + 1)[k])


def test_tanh_coefficients_match_adaptive_quadrature():
    f = sj.hermite_function("tanh")
    for j in (1, 3, 5, 9):
        assert float(f.coeffs[j]) == pytest.approx(_quad_coeff(math.tanh, j), abs=1e-10)
    assert float(f.coeffs[2]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "spec,s",
    [("h1", 1), ("h2", 2), ("h3", 3), ("h8", 8), ("relu", 1), ("tanh", 1), ([0.3, 0, 0, 0.5, 0.1], 3),
     (lambda x: x**2 - 1, 2), (lambda x: x**4, 2)],
)
def test_information_exponent(spec, s):
    assert sj.hermite_function(spec).information_exponent() == s


def test_scaled_coefficients_and_second_moment():
    """phi(sigma .) for h3: h3(sigma x) expanded by hand; E[tanh(sigma Z)^2] by adaptive quadrature."""
    f = sj.hermite_function("h3")
    sigma = 0.7
    c = np.asarray(sj.scaled_coeffs(f, jnp.asarray(sigma), 4))
    # He3(sigma x) = sigma^3 x^3 - 3 sigma x ; x^3 = He3 + 3 He1
    expected_he1 = (3 * sigma**3 - 3 * sigma) / math.sqrt(6)
    expected_he3 = sigma**3  # He3 / sqrt(6) -> h3 coefficient sigma^3 sqrt(6)/sqrt(6)
    np.testing.assert_allclose(c, [0, expected_he1, 0, expected_he3, 0], atol=1e-12)
    t = sj.hermite_function("tanh")
    m2 = integrate.quad(lambda x: math.tanh(1.7 * x) ** 2 * math.exp(-x * x / 2) / math.sqrt(2 * math.pi), -30, 30)[0]
    # 96-node runtime quadrature of a smooth non-polynomial: about 1e-6 accurate.
    assert float(sj.second_moment(t, jnp.asarray(1.7))) == pytest.approx(m2, abs=1e-5)


def test_quadrature_functions_can_be_built_under_jit():
    """A sweep builds its problem inside `jit`: tanh's and a callable's coefficients come out
    the same there as eagerly (they used to raise TracerArrayConversionError)."""
    import jax

    eager = [sj.hermite_function(s).coeffs for s in ("tanh", lambda x: x**3)]

    @jax.jit
    def beta3(x):
        fs = [sj.hermite_function(s) for s in ("tanh", lambda x: x**3)]
        assert all(not isinstance(f.coeffs, jax.core.Tracer) for f in fs)
        return x * jnp.asarray([f.coeffs[3] for f in fs])

    np.testing.assert_allclose(beta3(1.0), [c[3] for c in eager], rtol=1e-6)
    assert eager[1][3] == pytest.approx(math.sqrt(6), rel=1e-12)  # x^3 = sqrt(6) h3 + 3 h1
