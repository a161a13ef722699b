# Extending spikejax: a covariance with two spikes, in a Problem, trained on fixed samples.
# --8<-- [start:problem]
import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj

d = 32
q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (d, 3)))  # three orthonormal columns
u, a, b = q.T
theta1 = 0.5 * u + jnp.sqrt(0.75) * a  # spike 1: <u, theta1> = 0.5
theta2 = b  # spike 2: orthogonal to u and to theta1
kappas = jnp.array([20.0, 5.0])
covariance = sj.MultiSpikeCovariance(
    thetas=jnp.stack([theta1, theta2]), kappas=kappas, scale=1 / (1 + kappas.max())  # top eigenvalue 1
)
problem = sj.Problem(
    covariance=covariance,
    target=sj.SingleIndex(u=u, link=sj.hermite_function("h2")),
    activation=sj.hermite_function("relu"),
    noise=jnp.asarray(0.1),
)
# --8<-- [end:problem]

# --8<-- [start:samples]
# The inputs the sources draw have this covariance: compare the sample covariance with the matrix.
n = 20_000
x = sj.sample_x(problem, jax.random.key(1), n)
sample_cov = x.T @ x / n
sigma = covariance.apply(jnp.eye(d))  # the d x d matrix, formed here only to check
expected = covariance.scale * (jnp.eye(d) + 20.0 * jnp.outer(theta1, theta1) + 5.0 * jnp.outer(theta2, theta2))
assert jnp.allclose(sigma, expected, atol=1e-6)
cov_gap = float(jnp.max(jnp.abs(sample_cov - sigma)))
assert cov_gap < 6 / np.sqrt(n), cov_gap  # entries have standard deviation at most 1.4 / sqrt(n)
print(f"max |sample covariance - Sigma| = {cov_gap:.4f} (n = {n})")
# --8<-- [end:samples]

# --8<-- [start:train]
# Full-batch gradient descent on n fixed samples learns u; more samples, a better estimate.
# Empirical(2048, n_used=m) trains on the first m of 2048 samples: both sizes in one vmapped call.
train = jax.vmap(lambda m: sj.simulate(problem, sj.Normalized(), sj.Empirical(2048, n_used=m),
                                       key=jax.random.key(2), dt=0.05, steps=600))
runs = train(jnp.array([128, 2048]))
rho, cos_u = np.abs(runs.rho[:, -1]), np.abs(runs.cos_u[:, -1])
print(f"n = 128: |rho| = {rho[0]:.3f}, |cos_u| = {cos_u[0]:.3f};  n = 2048: |rho| = {rho[1]:.3f}, |cos_u| = {cos_u[1]:.3f}")
assert rho[1] > 0.95 and cos_u[1] > cos_u[0] + 0.2 and sj.STATUS[int(runs.status[1])] == "ok"
# The population flow (exact expectations; autodiff of the closed form) reaches u itself:
flow = sj.simulate(problem, sj.Normalized(), key=jax.random.key(2), dt=0.05, steps=2000)
assert abs(float(flow.cos_u[-1])) > 0.999
# --8<-- [end:train]
