# Extending spikejax: a new observable, recorded through SaveAt(fn=...).
# --8<-- [start:observable]
import jax
import jax.numpy as jnp
import numpy as np

import spikejax as sj


def bulk(w, sim):
    """The part of w outside span{u, theta}, relative to ||w||, recorded next to rho."""
    u, theta = sim.problem.u, sim.problem.covariance.theta
    e2 = theta - (theta @ u) * u  # u and e2: an orthonormal basis of span{u, theta}
    e2 = e2 / jnp.linalg.norm(e2)
    inside = (w @ u) ** 2 + (w @ e2) ** 2
    return {"rho": sj.rho(w, sim.problem), "bulk": jnp.sqrt(jnp.maximum(1 - inside / (w @ w), 0.0))}


problem = sj.make_problem(64, key=jax.random.key(0), kappa=30.0, r1=0.25)
saveat = sj.SaveAt(steps=8, fn=bulk)  # 8 log-spaced records, step 0 and the last included
run = dict(key=jax.random.key(1), dt=0.1, steps=400, saveat=saveat)
full = sj.simulate(problem, sj.Normalized(), **run)
print("step:", full.steps)
print("bulk:", np.round(np.asarray(full.ys["bulk"]), 3))
# --8<-- [end:observable]

# --8<-- [start:checks]
# The records are the observable of w(0) and of the final weights (prepare gives the run's sim and w(0)):
sim, w0 = sj.prepare(problem, sj.Normalized(), **run)
assert np.allclose(full.ys["bulk"][0], bulk(w0, sim)["bulk"], atol=1e-6)
assert np.allclose(full.ys["bulk"][-1], bulk(full.w, sim)["bulk"], atol=1e-6)
# The same function runs on the exact 3-coordinate form (its sim.problem is the reduced problem):
reduced = sj.simulate(problem, sj.Normalized(), reduced=True, **run)
gap = max(float(jnp.max(jnp.abs(full.ys[k] - reduced.ys[k]))) for k in ("rho", "bulk"))
assert gap < 1e-4, gap
# The normalized flow learns u: the bulk part starts near 1 (a random w in 64 dimensions) and vanishes.
assert full.ys["bulk"][0] > 0.9 and full.ys["bulk"][-1] < 0.1
# --8<-- [end:checks]
