"""The 3-coordinate population step in closed form, written for structure-of-arrays speed.

In the reduced coordinates of `reduce` (`u = e1`, `v = e2`, `theta = (c, s, 0)` with
`s = sqrt(1 - c^2)`), the population risk depends on `w` only through `sigma_w` and `rho`,
so its gradient is `A Sigma w + C Sigma u` with two scalars `A`, `C` (chain rule through
`a = ||w||_Sigma^2` and `b = <w, u>_Sigma`). Every quantity below is a scalar expression of
the three components `w[0], w[1], w[2]`: under `vmap` over configurations each is one
array of length B, XLA fuses the whole step into a few elementwise loops, and a step costs
O(1) per configuration. The generic step (`jax.grad` of `population_risk`, optax, a
retraction) builds (B, 3) vectors, contracts them with matrix-vector products and reduces
over the short axis, and runs 10x slower.

`update` is the same update as the generic `_simulate._step` with the default optimizer
(`optax.sgd(dt)`), for the four dynamics and the plain or sigma neuron; `metrics` is the
same as `Simulation.measure`. Both agree with the generic path to rounding (tests).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._population import overlap_risk


def applies(sim) -> bool:
    """Whether the closed-form step applies: the 3-coordinate form with the default optimizer."""
    return sim.basis is not None and sim.optimizer is None


class _Geometry:
    """Scalars of `w` in the reduced coordinates (each a scalar per configuration)."""

    def __init__(self, spike, w):
        self.c = spike.c
        self.s = jnp.sqrt(jnp.maximum(1 - spike.c**2, 0.0))
        self.kappa, self.scale = spike.kappa, spike.scale
        self.w = w
        self.sq = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]  # ||w||^2
        self.wt = w[0] * self.c + w[1] * self.s  # <w, theta>
        self.a = self.scale * (self.sq + self.kappa * self.wt * self.wt)  # ||w||_Sigma^2
        self.b = self.scale * (w[0] + self.kappa * self.wt * self.c)  # <w, u>_Sigma
        self.nu = jnp.sqrt(self.scale * (1 + self.kappa * self.c * self.c))  # ||u||_Sigma
        self.rho = self.b / (jnp.sqrt(self.a) * self.nu)

    def theta(self):
        return jnp.stack([self.c, self.s, jnp.zeros_like(self.c)])

    def sigma_w(self):
        """`Sigma w` as a 3-vector."""
        return self.scale * (self.w + self.kappa * self.wt * self.theta())

    def sigma_u(self):
        """`Sigma u` as a 3-vector."""
        e1 = jnp.zeros(3, self.w.dtype).at[0].set(1.0)
        return self.scale * (e1 + self.kappa * self.c * self.theta())

    def sigma_norm(self, v):
        """`||v||_Sigma` of another 3-vector."""
        vt = v[0] * self.c + v[1] * self.s
        return jnp.sqrt(self.scale * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + self.kappa * vt * vt))


def _sigma(geo, plain: bool):
    """`sigma_w = ||w||_Sigma / N(w)`: `||w||_Sigma` for the plain neuron, 1 for the sigma neuron."""
    return jnp.sqrt(geo.a) if plain else jnp.ones_like(geo.a)


def gradient(sim, geo):
    """`grad R(w) = A Sigma w + C Sigma u`, in the reduced coordinates."""
    plain = sim.neuron == "plain"
    risk = lambda sig, r: overlap_risk(sim.problem, sig, r)
    r_sigma, r_rho = jax.grad(risk, argnums=(0, 1))(_sigma(geo, plain), geo.rho)
    root = jnp.sqrt(geo.a)
    # d rho = Sigma u / (sqrt(a) nu) - rho Sigma w / a ;  d sqrt(a) = Sigma w / sqrt(a)
    coef_w = -r_rho * geo.rho / geo.a
    if plain:
        coef_w = coef_w + r_sigma / root
    coef_u = r_rho / (root * geo.nu)
    return coef_w, coef_u


def update(sim, w):
    """One step of `sim.dynamic` from the 3-coordinate `w`: `(w_new, nonfinite, diverged)`,
    the last two tested component by component (no reduction over the short axis)."""
    geo = _Geometry(sim.problem.spike, w)
    coef_w, coef_u = gradient(sim, geo)
    dt = sim.dt
    name = sim.dynamic.name
    if name == "preconditioned":  # Sigma^{-1} (A Sigma w + C Sigma u) = A w + C u
        e1 = jnp.zeros(3, w.dtype).at[0].set(1.0)
        v = w - dt * (coef_w * w + coef_u * e1)
    else:
        g = coef_w * geo.sigma_w() + coef_u * geo.sigma_u()
        if name == "spherical":  # tangent projection
            g = g - w * ((w[0] * g[0] + w[1] * g[1] + w[2] * g[2]) / geo.sq)
        v = w - dt * g
    sq_v = v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
    if name == "spherical":
        w_new = v / jnp.sqrt(sq_v)
    elif name == "normalized":
        w_new = v * jnp.sqrt(geo.sq / sq_v)
    elif name == "preconditioned":
        w_new = v * (jnp.sqrt(geo.a) / geo.sigma_norm(v))
    else:
        w_new = v
    sq_new = w_new[0] * w_new[0] + w_new[1] * w_new[1] + w_new[2] * w_new[2]
    nonfinite = ~(jnp.isfinite(w_new[0]) & jnp.isfinite(w_new[1]) & jnp.isfinite(w_new[2]))
    diverged = sq_new > sim.max_norm**2
    return w_new, nonfinite, diverged


def metrics(sim, w):
    """The recorded metrics (`METRICS` order) of a 3-coordinate `w`."""
    geo = _Geometry(sim.problem.spike, w)
    nw = jnp.sqrt(geo.sq)
    risk = overlap_risk(sim.problem, _sigma(geo, sim.neuron == "plain"), geo.rho)
    return jnp.stack([w[0] / nw, geo.rho, geo.wt / nw, nw, risk, jnp.full_like(nw, jnp.nan)])
