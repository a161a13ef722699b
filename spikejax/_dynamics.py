"""The four first-layer dynamics, side by side.

A dynamic is a small final module: an optax gradient transformation applied to the
gradient before the step (`transform`), the default neuron normaliser, and a retraction
applied after it (`retract`). The step itself is `w <- retract(w + optimizer(transform(g)))`
with the optimizer `optax.sgd(dt)` unless the user passes another (Adam, say).

- `spherical`:      `w <- normalise(w - dt (I - w w^T) grad R(w))`, plain neuron.
- `normalized`:     `w <- w - dt grad R_N(w)`, Sigma neuron; renormalise to the old `||w||`.
- `preconditioned`: `w <- w - dt SigmaHat^{-1} grad R_N(w)`; renormalise in the SigmaHat norm.
- `vanilla`:        `w <- w - dt grad R(w)`, plain neuron, unconstrained.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import optax


def tangent_projection() -> optax.GradientTransformation:
    """Project updates on the sphere's tangent space at the params: `g - w <w, g> / ||w||^2`."""

    def update(updates, state, params):
        w = params
        return updates - w * (jnp.sum(w * updates) / jnp.sum(w * w)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def preconditioner(cov) -> optax.GradientTransformation:
    """Multiply updates by `cov^{-1}` (`Sigma^{-1}` or `SigmaHat^{-1}`)."""

    def update(updates, state, params=None):
        return cov.inv(updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _rescale(w_new, w_old, norm):
    return w_new * (norm(w_old) / norm(w_new))


def _euclid(w):
    return jnp.linalg.norm(w)


class Spherical(eqx.Module):
    """Riemannian gradient flow on the unit sphere with the plain neuron."""

    name = "spherical"
    default_neuron = "plain"

    def transform(self, precond_cov):
        return tangent_projection()

    def retract(self, w_new, w_old, precond_cov):
        return w_new / jnp.linalg.norm(w_new)


class Normalized(eqx.Module):
    """Gradient flow of the scale-invariant risk `R_N` (covariance-normalised neuron)."""

    name = "normalized"
    default_neuron = "sigma"

    def transform(self, precond_cov):
        return optax.identity()

    def retract(self, w_new, w_old, precond_cov):
        return _rescale(w_new, w_old, _euclid)


class Preconditioned(eqx.Module):
    """`R_N` gradient flow preconditioned by `SigmaHat^{-1}` (or `Sigma^{-1}`)."""

    name = "preconditioned"
    default_neuron = "sigma"

    def transform(self, precond_cov):
        return preconditioner(precond_cov)

    def retract(self, w_new, w_old, precond_cov):
        return _rescale(w_new, w_old, precond_cov.norm)


class Vanilla(eqx.Module):
    """Unconstrained gradient descent with the plain neuron (Braun, Ha Quang, Imaizumi 2025)."""

    name = "vanilla"
    default_neuron = "plain"

    def transform(self, precond_cov):
        return optax.identity()

    def retract(self, w_new, w_old, precond_cov):
        return w_new


DYNAMICS = {cls.name: cls for cls in (Spherical, Normalized, Preconditioned, Vanilla)}
