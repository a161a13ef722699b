# Extending spikejax: a new link, a plain JAX function; its Hermite coefficients come by quadrature.
# --8<-- [start:link]
import math

import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj


def h2_plus_h3(x):
    """h2(x) + 0.5 h3(x), with h_j = He_j / sqrt(j!) (orthonormal under N(0, 1))."""
    return (x**2 - 1) / math.sqrt(2) + 0.5 * (x**3 - 3 * x) / math.sqrt(6)


link = sj.hermite_function(h2_plus_h3)  # coefficients E[f(Z) h_j(Z)] by Gauss-Hermite quadrature
print("coefficients:", np.round(link.coeffs[:5], 6), "information exponent:", link.information_exponent())
assert np.allclose(link.coeffs[:4], [0, 0, 1, 0.5], atol=1e-8) and np.allclose(link.coeffs[4:], 0, atol=1e-8)
assert link.information_exponent() == 2 and np.isclose(link.sq_norm, 1.25)  # E[f(Z)^2] = 1 + 0.25
# --8<-- [end:link]

# --8<-- [start:tanh]
# A tanh-based link: tanh(x)^2 - E[tanh(Z)^2] is even, so its first nonzero coefficient is j = 2.
c0 = float(sj.hermite_function(lambda x: jnp.tanh(x) ** 2).coeffs[0])
even = sj.hermite_function(lambda x: jnp.tanh(x) ** 2 - c0, name="tanh2")
assert even.information_exponent() == 2 and abs(even.coeffs[0]) < 1e-12
# An odd cubic, He3 itself: exponent 3, and ReLU (beta_3 = 0) cannot see it: the population gradient has
# no signal along u, so the population source refuses the run (a sampled source would warn and run).
cubic = sj.hermite_function(lambda x: x**3 - 3 * x, name="he3")
assert cubic.information_exponent() == 3
blind = sj.make_problem(32, key=jax.random.key(0), kappa=1.0, link=cubic, activation="relu")
try:
    sj.simulate(blind, sj.Normalized(), sj.Population(), key=jax.random.key(1))
except ValueError as err:
    refusal = str(err)
print("refused:", refusal)
# --8<-- [end:tanh]

# --8<-- [start:train]
# The user's link in a problem, through the closed-form population flow (its exact 3-coordinate form):
problem = sj.make_problem(64, key=jax.random.key(0), kappa=4.0, r1=0.25, link=link, activation="relu")
tr = sj.simulate(problem, sj.Normalized(), key=jax.random.key(1), dt=0.1, steps=1000, reduced=True)
print(f"final |rho| = {abs(float(tr.rho[-1])):.4f}")
assert abs(float(tr.rho[-1])) > 0.999
# The closed-form risk uses the coefficients; a Monte Carlo estimate uses the function itself.
z, y = sj.draw(problem, jax.random.key(2), 200_000)
mc_risk = sj.sample_risk(tr.w, z, y, problem, problem.covariance)  # the sigma neuron of Normalized
assert abs(float(mc_risk) - float(tr.risk[-1])) < 0.02, (float(mc_risk), float(tr.risk[-1]))
# --8<-- [end:train]
