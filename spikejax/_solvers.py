"""Solvers: how a dynamic's vector field becomes steps. The algorithm or the flow.

`dw/dt = -F(w)` with `F = dynamic.direction(w, grad R(w))`, and a retraction after every
accepted step (a projection method: the constraint is kept to rounding, not to the
solver's tolerance).

- `Euler()`: `w <- retract(w - dt F(w))`, `steps` steps of size `dt`. This is gradient
  descent with step `dt`, an algorithm whose discreteness is part of what is studied.
  Above the map's stability limit it can settle on period-2 orbits that look like a
  stalled flow; the driver flags those `oscillating`.
- `Optax(optimizer)`: any optax optimiser fed `F(w)` as its gradient (Adam, momentum, ...).
- `Dopri5(rtol, atol)`: the gradient flow, solved to a tolerance to `T = dt * steps` by the
  Dormand-Prince 5(4) pair with an I-controller; `dt` is only the first step's guess.
  The error is measured in the Euclidean norm of `w`, not per coordinate, so the reduced
  3-coordinate form and the d-dimensional form take the same steps.

Population sources default to `Dopri5()` (the paper's objects are flows), sampled sources
to `Euler()` (the algorithm).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._covariance import dot, short_dot


class AbstractSolver(eqx.Module):
    """A time stepper. `adaptive` solvers pick their steps; the others take `steps` of `dt`."""

    adaptive = False

    def init(self, w):
        """The solver's state (optimiser moments, ...) for a start at `w`."""
        return None

    @abc.abstractmethod
    def step(self, field, w, h, state):
        """One step of size `h` from `w`: `(w_new before retraction, error ratio, state)`.
        `field(w)` is `F(w)`; an error ratio <= 1 accepts the step (fixed-step solvers: 0)."""


class Euler(AbstractSolver):
    """Forward Euler: gradient descent with step `dt`."""

    def step(self, field, w, h, state):
        return w - h * field(w), jnp.zeros((), w.dtype), state


class Optax(AbstractSolver):
    """An optax optimiser driven by the field (its own learning rate replaces `dt`'s role
    as a step; time is still counted as `t = k dt`)."""

    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def init(self, w):
        return self.optimizer.init(w)

    def step(self, field, w, h, state):
        updates, state = self.optimizer.update(field(w), state, w)
        return w + updates, jnp.zeros((), w.dtype), state


_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1])
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B5 = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_B4 = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


class Dopri5(AbstractSolver):
    """The flow to a tolerance: Dormand-Prince 5(4) with error control.

    **Fields:** `rtol`, `atol` (error per step, relative to `||w||` and absolute);
    `max_steps`: `None` runs until `T` in a `lax.while_loop` (fast; forward-mode
    differentiable only); an integer runs a `lax.scan` of that many attempts, so reverse-mode
    `jax.grad` works, and flags `max_steps` if `T` was not reached.
    """

    rtol: float = eqx.field(static=True, default=1e-6)
    atol: float = eqx.field(static=True, default=1e-9)
    max_steps: int | None = eqx.field(static=True, default=None)

    adaptive = True
    order = 5

    def __check_init__(self):
        for name, v in (("rtol", self.rtol), ("atol", self.atol)):
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{name}={v!r} is not allowed; allowed: a real number in [0, 1)")
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol=0 is not allowed with atol=0; give a positive tolerance")
        if self.max_steps is not None and not (isinstance(self.max_steps, int) and self.max_steps >= 1):
            raise ValueError(f"max_steps={self.max_steps!r} is not allowed; allowed: None or an integer >= 1")

    def step(self, field, w, h, state):
        with short_dot("matvec"):
            return self._step(field, w, h, state)

    def _step(self, field, w, h, state):
        ks = []
        for i in range(7):
            wi = w
            for j, a in enumerate(_A[i]):
                if a:
                    wi = wi - (h * a) * ks[j]
            ks.append(field(wi))
        w5 = w - h * sum(b * k for b, k in zip(_B5, ks) if b)
        err = h * sum((b5 - b4) * k for b5, b4, k in zip(_B5, _B4, ks) if b5 != b4)
        scale = self.atol + self.rtol * jnp.maximum(jnp.sqrt(dot(w, w)), jnp.sqrt(dot(w5, w5)))
        ratio = jnp.sqrt(dot(err, err)) / scale
        return w5, jnp.where(jnp.isfinite(ratio), ratio, jnp.inf), state

    def factor(self, ratio, dtype):
        """The next step's size relative to this one (safety 0.9, within [0.2, 10])."""
        ratio = jax.lax.stop_gradient(ratio)  # differentiate the discrete solve, not the controller
        raw = 0.9 * jnp.where(ratio > 0, ratio, 1e-10) ** (-1.0 / self.order)
        return jnp.clip(raw, 0.2, 10.0).astype(dtype)
