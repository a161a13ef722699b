"""A problem: a covariance, a target, an input law, an activation, a loss, label noise.

`make_problem` is the boundary: it checks every argument (naming the parameter, its
value and what is allowed) before anything is compiled. Values that arrive as JAX
tracers (a user's `vmap` or `grad` over `kappa`, say) cannot be checked and pass through.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._covariance import NORMALISATIONS, AbstractCovariance, SpikedCovariance
from ._inputs import AbstractInputs, Gaussian
from ._loss import AbstractLoss, Squared
from ._registry import as_loss
from ._target import AbstractTarget, SingleIndex
from ._hermite import FUNCTIONS, HermiteFunction, hermite_function


def concrete(x) -> bool:
    """Whether `x` is a value rather than a JAX tracer (only values can be checked)."""
    return not isinstance(x, jax.core.Tracer)


def check(name: str, value, ok: bool, allowed: str):
    """Raise `ValueError` naming `name`, its `value` and what is `allowed` unless `ok`."""
    if not ok:
        raise ValueError(f"{name}={value!r} is not allowed; {allowed}")


def check_choice(name: str, value, choices):
    check(name, value, value in choices, f"choose one of {', '.join(map(repr, choices))}")


def check_real(name: str, value, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    """Check a real scalar (or array of them) lies in a range; tracers pass unchecked."""
    if not concrete(value):
        return
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        check(name, value, False, "expected a real number")
    lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
    allowed = f"allowed: a finite real number in {lo_s}{lo}, {hi}{hi_s}"
    check(name, value, bool(np.all(np.isfinite(arr))), allowed)
    ok_lo = np.all(arr > lo) if lo_open else np.all(arr >= lo)
    ok_hi = np.all(arr < hi) if hi_open else np.all(arr <= hi)
    check(name, value, bool(ok_lo & ok_hi), allowed)


def check_int(name: str, value, lo: int):
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo
    check(name, value, ok, f"allowed: an integer >= {lo}")


class Problem(eqx.Module):
    """Everything that defines the data and the target.

    **Fields:** `covariance` (an `AbstractCovariance`); `target` (an `AbstractTarget`);
    `activation` `phi`; `noise` `tau`; `inputs` (the law of `z`, default `Gaussian()`);
    `loss` (static: an `AbstractLoss`, `Squared()` by default; the names `"squared"` and
    `"correlation"` are accepted); `dim`: None, or the ambient dimension when the problem is
    held in the reduced chain's frame coordinates (`make_problem(..., reduced=True)`): then
    only `reduced=True` runs accept it.

    Whether the activation can see the target depends on the source that estimates the
    gradient, so the source checks it (`check_activation`), not the problem.
    """

    covariance: AbstractCovariance
    target: AbstractTarget
    activation: HermiteFunction
    noise: Array
    inputs: AbstractInputs = Gaussian()
    loss: AbstractLoss = eqx.field(static=True, default=Squared(), converter=as_loss)
    dim: Array | None = None

    def __check_init__(self):
        check_real("noise", self.noise, lo=0.0)
        self.target.check(self.covariance)  # e.g. a k-index target's rows Sigma-orthogonal

    def check_activation(self, sampled: bool = False):
        """Refuse an activation blind to the target where the refusal is exact: for the
        population source and its reduced flows (`sampled=False`), whose gradient has no
        signal along a blind direction. A sampled source only warns (`sampled=True`): by
        reusing samples it can still learn such a target (the generative-exponent route;
        Dandi et al. 2024, Arnaboldi et al. 2024). See the target's `check_activation`."""
        if concrete(self.activation.coeffs):
            self.target.check_activation(self.activation.coeffs, self.activation.name, sampled)

    @property
    def d(self) -> int:
        """The number of coordinates the problem is held in."""
        return self.target.directions().shape[-1]

    @property
    def ambient_d(self):
        """The dimension of the inputs: `d`, or `dim` for a problem in frame coordinates."""
        return self.d if self.dim is None else self.dim

    @property
    def u(self):
        """The target direction of a single-index target."""
        return self.target.u

    @property
    def link(self) -> HermiteFunction:
        """The link of a single-index target."""
        return self.target.link

    def labels(self, z, eps):
        """`y = f_*(<u, x> / ||u||_Sigma) + tau eps` for base draws `z` (x = Sigma^{1/2} z)."""
        return self.target(z, self.covariance) + self.noise * eps


def make_problem(
    d: int,
    *,
    key,
    kappa=None,
    r2=None,
    r1=0.0,
    link="h2",
    activation="relu",
    loss: str | AbstractLoss = "squared",
    noise=0.0,
    normalisation: str = "unit_top",
    inputs: AbstractInputs | None = None,
    reduced: bool = False,
    **renamed,
) -> Problem:
    """The paper's problem in one call: a single-index target under one spike.

    **Arguments:**
    - `d`: dimension, an integer >= 2.
    - `key`: PRNG key for the directions `(u, v)`; `theta = c u + sqrt(1 - c^2) v`.
    - `kappa` or `r2` (give one; `kappa = d**r2`): spike strength, `kappa >= 0`.
    - `r1`: alignment, `c = <u, theta> = d**(-r1)`, in `[0, 1/2]` (`r1 = 0`: `theta = u`).
    - `link`, `activation`: a name (`"relu"`, `"tanh"`, `"h1"`..`"h8"`), a callable, a
      coefficient vector, or a `HermiteFunction`.
    - `loss`: `"squared"` or `"correlation"` (or an `AbstractLoss`: `sj.Squared()`, `sj.Correlation()`).
    - `noise`: label-noise standard deviation `tau >= 0`.
    - `normalisation`: `"unit_top"` or `"unnormalised"` (see `SpikedCovariance`).
    - `inputs`: the law of the base draws, `Gaussian()` (default), `StudentT(nu)`, `Rademacher()`.
    - `reduced`: build the problem directly in the exact chain's frame `(u, v, e3)` with
      `dim = d` (no d-dimensional vector is formed, so `d` may be 10^9; `key` is unused):
      for `simulate(..., reduced=True)` and `passage_n(..., reduced=True)` only.

    **Raises:** `ValueError` for any argument out of range. An activation blind to the link
    (`beta_s = 0` at its information exponent `s`) is refused later, by the sources for which
    that is exact (`Population` and its reduced flows); sampled sources warn.
    """
    for name in renamed:
        hint = "renamed: pass inputs=sj.StudentT(nu), sj.Rademacher() or sj.Gaussian()" if name in (
            "input_dist", "nu") else "unknown argument; see help(sj.make_problem)"
        check(name, renamed[name], False, hint)
    check_int("d", d, 2)
    check(
        "kappa/r2",
        (kappa, r2),
        (kappa is None) != (r2 is None),
        "give exactly one of kappa and r2 (kappa = d**r2)",
    )
    if kappa is None:
        check_real("r2", r2)
        kappa = jnp.asarray(d, float) ** r2
    else:
        check_real("kappa", kappa, lo=0.0)
    check_real("r1", r1, 0.0, 0.5)
    check_real("noise", noise, lo=0.0)
    loss = as_loss(loss)
    check_choice("normalisation", normalisation, NORMALISATIONS)
    inputs = Gaussian() if inputs is None else inputs
    check("inputs", inputs, isinstance(inputs, AbstractInputs),
          "give an input law object: sj.Gaussian(), sj.StudentT(nu) or sj.Rademacher()")
    check("reduced", reduced, isinstance(reduced, bool), "allowed: True or False")
    link_f = as_function("link", link)
    act_f = as_function("activation", activation)
    u, v = jnp.eye(3)[:2] if reduced else directions(key, d)
    c = jnp.asarray(d, float) ** (-jnp.asarray(r1, float))
    c = c.astype(u.dtype)
    theta = c * u + jnp.sqrt(jnp.maximum(1 - c**2, 0.0)) * v
    return Problem(
        covariance=SpikedCovariance.make(theta, kappa, normalisation),
        target=SingleIndex(u=u, link=link_f),
        activation=act_f,
        noise=jnp.asarray(noise, u.dtype),
        inputs=inputs,
        loss=loss,
        dim=jnp.asarray(d, u.dtype) if reduced else None,
    )


def directions(key, d: int):
    """A random orthonormal pair `(u, v)` in `R^d` (Gram-Schmidt of two Gaussians)."""
    g = jax.random.normal(key, (2, d))
    u = g[0] / jnp.linalg.norm(g[0])
    v = g[1] - (g[1] @ u) * u
    return u, v / jnp.linalg.norm(v)


def as_function(name: str, spec) -> HermiteFunction:
    """The `HermiteFunction` of a link or activation `spec` given as the argument `name`;
    a `ValueError` naming the argument and what it allows otherwise."""
    try:
        return hermite_function(spec)
    except ValueError as err:
        raise ValueError(
            f"{name}={spec!r} is not allowed; choose one of {', '.join(FUNCTIONS)}, "
            f"a callable, or a sequence of Hermite coefficients ({err})"
        ) from None
