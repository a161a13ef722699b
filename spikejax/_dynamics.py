"""The first-layer dynamics, side by side.

A dynamic is a vector field and a constraint. `direction(w, grad, sim)` is the flow's
velocity, `dw/dt = -direction`; `retract(w_new, w_old, sim)` maps a step back onto the
constraint the flow keeps; `init(w0, sim)` places the starting point on it. A solver
(`Euler`, `Optax`, `Dopri5`) turns the field into steps, so one dynamic runs both as the
gradient-descent algorithm and as the gradient flow solved to a tolerance.

- `Spherical`:      `dw/dt = -(I - w w^T) grad R(w)`, plain neuron; `w <- w / ||w||`.
- `Normalized`:     `dw/dt = -grad R_N(w)`, Sigma neuron; `R_N` is scale invariant, so the
                    flow keeps `||w||`: renormalise to the old `||w||`.
- `Preconditioned`: `dw/dt = -P^{-1} grad R_N(w)` with `P = SigmaHat` (or `Sigma`); keeps
                    `||w||_P`: renormalise in that norm. Starts at unit `||w||_P`.
- `Vanilla`:        `dw/dt = -grad R(w)`, plain neuron, unconstrained.

A subclass written anywhere (see docs/extending.md) runs in `simulate`, `sweep` and
`search_n`. `reduced_exact` says whether the dynamic commutes with rotations that fix the
target and spike directions: only then is the 3-coordinate population form exact for it,
and `reduced=True` is refused otherwise.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp

from ._covariance import dot


class AbstractDynamic(eqx.Module):
    """A first-layer dynamic: a vector field, a retraction, a starting point.

    Class attributes: `default_neuron` (`"plain"` or `"sigma"`: the normaliser it uses
    unless told otherwise) and `reduced_exact` (exact in the reduced coordinates).
    """

    default_neuron = "plain"
    reduced_exact = False

    def init(self, w0, sim):
        """The starting point from a unit vector `w0`."""
        return w0

    @abc.abstractmethod
    def direction(self, w, grad, sim):
        """The velocity: the flow is `dw/dt = -direction(w, grad R(w))`."""

    @abc.abstractmethod
    def retract(self, w_new, w_old, sim):
        """Map `w_new` back onto the set the flow keeps invariant."""

    def lift(self, w, sim):
        """The final iterate in the caller's coordinates: the source's (`AbstractSource.lift`)
        by default; a network's dynamic returns its `TwoLayer`."""
        return sim.source.lift(w, sim)


def _rescale(w_new, sq_length):
    """`w_new` rescaled to squared length `sq_length` (one square root a step)."""
    return w_new * jnp.sqrt(sq_length / dot(w_new, w_new))


class Spherical(AbstractDynamic):
    """Riemannian gradient flow on the unit sphere with the plain neuron."""

    default_neuron = "plain"
    reduced_exact = True

    def direction(self, w, grad, sim):
        return grad - w * (dot(w, grad) / dot(w, w))

    def retract(self, w_new, w_old, sim):
        return _rescale(w_new, 1.0)


class Normalized(AbstractDynamic):
    """Gradient flow of the scale-invariant risk `R_N` (covariance-normalised neuron)."""

    default_neuron = "sigma"
    reduced_exact = True

    def direction(self, w, grad, sim):
        return grad

    def retract(self, w_new, w_old, sim):
        return _rescale(w_new, dot(w_old, w_old))


class Preconditioned(AbstractDynamic):
    """`R_N` gradient flow preconditioned by `SigmaHat^{-1}` (or `Sigma^{-1}`)."""

    default_neuron = "sigma"
    reduced_exact = True

    def init(self, w0, sim):
        # Same direction, unit length in the preconditioner's norm: the flow's speed is
        # proportional to 1 / ||w||_P^2, so this keeps dt meaning the same at every kappa.
        return w0 / sim.precond.norm(w0)

    def direction(self, w, grad, sim):
        return sim.precond.inv(grad)

    def retract(self, w_new, w_old, sim):
        return w_new * (sim.precond.norm(w_old) / sim.precond.norm(w_new))


class Vanilla(AbstractDynamic):
    """Unconstrained gradient descent with the plain neuron (Braun, Ha Quang, Imaizumi 2025)."""

    default_neuron = "plain"
    reduced_exact = True

    def direction(self, w, grad, sim):
        return grad

    def retract(self, w_new, w_old, sim):
        return w_new
