# Tutorial 3: spikejax inside your own JAX code: jit/vmap over your grid, jax.grad through a run,
# your own optax optimiser and your own observable.
# Run: python docs/tutorials/inside_jax.py   (TINY=1 runs it at a seconds-long size)
# --8<-- [start:setup]
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # finite-difference checks of gradients need float64

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import spikejax as sj

TINY = os.environ.get("TINY") == "1"  # the test suite runs every tutorial with TINY=1
OUT = Path(os.environ.get("SPIKEJAX_OUT", "out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
D = 32 if TINY else 128
KEY = jax.random.key(0)
# --8<-- [end:setup]

# --8<-- [start:grid]
def final_overlaps(kappa, r1):
    """The spherical flow's final |cos_u| and |rho|; kappa and r1 arrive as traced arrays."""
    problem = sj.make_problem(D, key=KEY, kappa=kappa, r1=r1, link="h2", activation="relu")
    tr = sj.simulate(problem, sj.Spherical(), key=jax.random.key(1), dt=0.5, steps=4000, reduced=True)
    return jnp.abs(tr.cos_u[-1]), jnp.abs(tr.rho[-1])


kappas = jnp.geomspace(1.0, 1000.0, 4 if TINY else 16)
r1s = jnp.linspace(0.0, 0.5, 3 if TINY else 11)
# Your grid, your vmaps: the outer one over kappa, the inner one over r1, one compiled call.
cos_grid, rho_grid = jax.jit(jax.vmap(jax.vmap(final_overlaps, (None, 0)), (0, None)))(kappas, r1s)
one_point = final_overlaps(kappas[-1], r1s[0])  # the same run alone, outside the vmap
print("final |cos_u| of the spherical flow (rows: kappa, columns: r1):")
print(np.round(np.asarray(cos_grid), 3))
# --8<-- [end:grid]

# --8<-- [start:grad]
def final_risk(log_kappa, dt, solver=sj.Euler(), steps=100):
    """The population risk after `steps` steps of gradient descent (Euler) with step dt."""
    problem = sj.make_problem(D, key=KEY, kappa=jnp.exp(log_kappa), r1=0.25, link="h2", noise=0.1)
    tr = sj.simulate(problem, sj.Normalized(), key=jax.random.key(1), solver=solver, dt=dt, steps=steps)
    return tr.risk[-1]


risk = jax.jit(final_risk, static_argnames=("solver", "steps"))  # solvers are hashable: static
point = (jnp.log(10.0), 0.05)
g_log_kappa, g_dt = jax.jit(jax.grad(final_risk, argnums=(0, 1)))(*point)
h = 1e-5
fd_log_kappa = (risk(point[0] + h, point[1]) - risk(point[0] - h, point[1])) / (2 * h)
fd_dt = (risk(point[0], point[1] + h) - risk(point[0], point[1] - h)) / (2 * h)
print(f"d risk / d log kappa: {g_log_kappa:.6f} (finite differences {fd_log_kappa:.6f})")
print(f"d risk / d dt:        {g_dt:.6f} (finite differences {fd_dt:.6f})")
# --8<-- [end:grad]

# --8<-- [start:flow_grad]
# The flow itself, solved to a tolerance: reverse mode needs a bounded number of attempts.
bounded, unbounded = sj.Dopri5(max_steps=64), sj.Dopri5()
g_flow = jax.jit(jax.grad(lambda lk: final_risk(lk, 0.05, solver=bounded)))(point[0])
# The unbounded solver (a while loop) runs the same flow; check the gradient against it:
fd_flow = (risk(point[0] + h, 0.05, solver=unbounded) - risk(point[0] - h, 0.05, solver=unbounded)) / (2 * h)
try:
    jax.jit(jax.grad(lambda lk: final_risk(lk, 0.05, solver=unbounded)))(point[0])
except ValueError as err:  # JAX: reverse-mode differentiation does not work for lax.while_loop
    unbounded_refusal = str(err).splitlines()[0]
print(f"flow (T = 5): d risk / d log kappa = {g_flow:.6f} (finite differences {fd_flow:.6f})")
print("reverse mode through sj.Dopri5() without max_steps:", unbounded_refusal)
# --8<-- [end:flow_grad]

# --8<-- [start:optax]
problem = sj.make_problem(D, key=KEY, kappa=10.0, r1=0.25, link="h2", noise=0.1)
source = sj.Empirical(n=8 * D)
runs = {
    "gradient descent (Euler)": sj.simulate(problem, sj.Normalized(), source, key=jax.random.key(2), dt=0.05,
                                            steps=400),
    "Adam (optax)": sj.simulate(problem, sj.Normalized(), source, key=jax.random.key(2),
                                solver=sj.Optax(optax.adam(0.01)), dt=0.05, steps=400),
}
for name, tr in runs.items():
    print(f"{name:26s} final |rho| {abs(float(tr.rho[-1])):.3f}, train risk {float(tr.train_risk[-1]):.4f}")
# --8<-- [end:optax]

# --8<-- [start:observable]
def speed_and_bulk(w, sim):
    """Record how fast the flow moves, ||dw/dt||, and the part of w outside span{u, theta}."""
    u, theta = sim.problem.u, sim.problem.covariance.theta
    e2 = theta - (theta @ u) * u
    e2 = e2 / jnp.linalg.norm(e2)
    inside = (w @ u) ** 2 + (w @ e2) ** 2
    bulk = jnp.sqrt(jnp.maximum(1 - inside / (w @ w), 0.0))  # max: rounding can make 1 - 1 negative
    return {"speed": jnp.linalg.norm(sim.field(w, 0)), "bulk": bulk}


tr = sj.simulate(problem, sj.Normalized(), key=jax.random.key(3), dt=0.1, steps=2000,
                 saveat=sj.SaveAt(steps=24, fn=speed_and_bulk))
print("speed:", np.round(np.asarray(tr.ys["speed"][::4]), 4))
print("bulk: ", np.round(np.asarray(tr.ys["bulk"][::4]), 4))
# --8<-- [end:observable]

# --8<-- [start:plot]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
colours = plt.cm.viridis(np.linspace(0, 0.9, len(r1s)))
for j, r1 in enumerate(np.asarray(r1s)):
    axes[0].semilogx(np.asarray(kappas), np.asarray(cos_grid[:, j]), ".-", color=colours[j], label=f"r1 = {r1:.2g}")
axes[0].set(xlabel="kappa", ylabel="final |cos_u|", title="spherical flow")
axes[0].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
axes[1].loglog(np.asarray(tr.ts[1:]), np.asarray(tr.ys["speed"][1:]), label="||dw/dt||")
axes[1].loglog(np.asarray(tr.ts[1:]), np.asarray(tr.ys["bulk"][1:]), label="bulk part of w")
axes[1].set(xlabel="time t", title="normalized flow, your observable")
axes[1].legend(frameon=False)
fig.savefig(OUT / "inside_jax.png", dpi=120)
# --8<-- [end:plot]
