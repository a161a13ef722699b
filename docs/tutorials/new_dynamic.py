# Tutorial 4: add a dynamic of your own (sign gradient descent on the sphere), in one file.
# Run: python docs/tutorials/new_dynamic.py   (TINY=1 runs it at a seconds-long size)
# --8<-- [start:setup]
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import spikejax as sj

TINY = os.environ.get("TINY") == "1"  # the test suite runs every tutorial with TINY=1
OUT = Path(os.environ.get("SPIKEJAX_OUT", "out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
# --8<-- [end:setup]


# --8<-- [start:dynamic]
class SignSpherical(sj.AbstractDynamic):
    """Sign gradient descent on the unit sphere:
    `w <- normalise(w - dt * sign((I - w w^T) grad R(w)))`."""

    default_neuron = "plain"  # the neuron <w, x>, as for sj.Spherical
    reduced_exact = False  # sign() acts coordinate by coordinate: it does not commute with rotations

    def direction(self, w, grad, sim):
        tangent = grad - w * (w @ grad) / (w @ w)
        return jnp.sign(tangent)  # the update is w - dt * direction

    def retract(self, w_new, w_old, sim):
        return w_new / jnp.linalg.norm(w_new)  # back onto the sphere
# --8<-- [end:dynamic]


# --8<-- [start:simulate]
D = 32 if TINY else 128
problem = sj.make_problem(D, key=jax.random.key(0), kappa=10.0, r1=0.25, link="h2", activation="relu")
dt = 0.2 / np.sqrt(D)  # a sign step moves w by dt * sqrt(d), so dt shrinks like 1/sqrt(d)


def run(dynamic, steps=400):
    # solver=sj.Euler(): sign descent is an algorithm with a step, not a flow to solve to a tolerance
    return sj.simulate(problem, dynamic, key=jax.random.key(1), solver=sj.Euler(), dt=dt, steps=steps,
                       init_key=jax.random.key(2))


sign, spherical = run(SignSpherical()), run(sj.Spherical())
print(f"final |rho|: sign descent {abs(float(sign.rho[-1])):.3f}, spherical {abs(float(spherical.rho[-1])):.3f}")
print(f"status of the sign run: {sj.STATUS[int(sign.status)]}")  # 'oscillating': see below
# --8<-- [end:simulate]

# --8<-- [start:check]
# The same 50 steps written out by hand: w(0) from init_key, the population gradient by jax.grad.
grad_risk = jax.grad(lambda w: sj.population_risk(w, problem, None))  # None: the plain neuron


@jax.jit
def sign_step(w):
    g = grad_risk(w)
    w = w - dt * jnp.sign(g - w * (w @ g))
    return w / jnp.linalg.norm(w)


w = jax.random.normal(jax.random.key(2), (D,), problem.u.dtype)
w = w / jnp.linalg.norm(w)
for _ in range(50):
    w = sign_step(w)
by_hand_gap = float(jnp.max(jnp.abs(run(SignSpherical(), steps=50).w - w)))
assert by_hand_gap < 1e-4, by_hand_gap
# --8<-- [end:check]

# --8<-- [start:reduced]
try:
    sj.simulate(problem, SignSpherical(), key=jax.random.key(1), solver=sj.Euler(), dt=dt, steps=10, reduced=True)
except ValueError as err:
    refusal = str(err)
print("reduced=True:", refusal)

# Why: a rotation Q that fixes u and theta maps the flow of a rotation-equivariant dynamic onto
# itself, which is what makes the 3-coordinate form exact. sign() is not equivariant:
g = jax.random.normal(jax.random.key(4), (D,))
Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(5), (D, D)))
equivariance_gap = float(jnp.max(jnp.abs(jnp.sign(Q @ g) - Q @ jnp.sign(g))))
print(f"max |sign(Qg) - Q sign(g)| = {equivariance_gap:.2f}")
# --8<-- [end:reduced]

# --8<-- [start:sweep]
sj.DYNAMICS["sign_spherical"] = SignSpherical  # the name a TOML file or a sweep dict may use
config = {
    "d": D,
    "r2": [0.0, 0.5] if TINY else [0.0, 0.25, 0.5, 0.75],  # kappa = d**r2
    "r1": 0.25,
    "dynamic": ["spherical", "sign_spherical"],
    "solver": "euler",
    "dt": float(dt),
    "steps": 400,
    "record": 16,
    "seeds": 2 if TINY else 8,
}
ds = sj.sweep(config, progress=not TINY)
final = abs(ds.rho.isel(step=-1)).median("seed")
print(final.to_pandas())
print("status:", dict(zip(*np.unique(ds.status.values, return_counts=True))))
# --8<-- [end:sweep]

# --8<-- [start:search]
keys = jax.random.split(jax.random.key(3), 4 if TINY else 16)
search = sj.search_n(problem, SignSpherical(), n_grid=[32, 64, 128, 256, 512, 1024], keys=keys,
                     dt=float(dt), steps=300)
n_star = search.n_star()  # the smallest n where half the seeds reach |rho| >= 0.9 (interpolated)
print(f"sign descent on {D}-dimensional data: n* = {n_star:.0f} samples")
# --8<-- [end:search]

# --8<-- [start:plot]
fig, axes = plt.subplots(1, ds.sizes["r2"], figsize=(3.2 * ds.sizes["r2"], 2.8), sharey=True, squeeze=False)
for ax, r2 in zip(axes[0], ds.r2.values):
    for dyn in ds.dynamic.values:
        curve = abs(ds.rho.sel(r2=r2, dynamic=dyn)).median("seed")
        ax.plot(ds.step.values[1:] * dt, curve.values[1:], label=dyn)
    ax.set(xscale="log", xlabel="time t = k dt", title=f"r2 = {r2:g}")
axes[0, 0].set_ylabel("|rho| (median over seeds)")
axes[0, -1].legend(frameon=False)
fig.tight_layout()
fig.savefig(OUT / "new_dynamic.png", dpi=120)
# --8<-- [end:plot]
