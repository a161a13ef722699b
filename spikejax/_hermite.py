"""Normalised Hermite machinery: `h_j = He_j / sqrt(j!)`, orthonormal under N(0, 1).

Links and activations are `HermiteFunction`s: a pointwise JAX function plus its
normalised Hermite coefficients. Coefficients are closed form for ReLU and `h_k`, and
Gauss-Hermite quadrature for anything else. The population dynamics need the
coefficients of `phi(sigma .)` and `E[phi(sigma Z)^2]` as differentiable functions of
`sigma`; `scaled_coeffs` and `second_moment` give them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

try:
    enable_x64 = jax.enable_x64
except AttributeError:  # older jax
    from jax.experimental import enable_x64

MAX_DEGREE = 32  # truncation of coefficient vectors of non-polynomial functions
_QUAD_NODES = 160  # nodes for coefficients at construction (float64 numpy)
RUNTIME_NODES = 96  # nodes for sigma-dependent quadrature inside compiled code
TOL = 1e-10  # a coefficient below this is zero


def hermite_basis(x, degree: int, xp=jnp):
    """`h_0(x), ..., h_degree(x)` stacked on a new last axis (stable recurrence)."""
    h = [xp.ones_like(x), x]
    for j in range(1, degree):
        h.append((x * h[j] - math.sqrt(j) * h[j - 1]) / math.sqrt(j + 1))
    return xp.stack(h[: degree + 1], axis=-1)


def horner(coeffs, x):
    """`sum_k coeffs[..., k] x^k` (coefficients on the last axis) as a `lax.scan`: Mehler's
    series in a correlation, with a graph whose size does not grow with the degree."""
    top = coeffs[..., -1]
    rest = jnp.moveaxis(coeffs[..., :-1], -1, 0)[::-1]
    out, _ = jax.lax.scan(lambda acc, ck: (acc * x + ck, None), top * jnp.ones_like(x), rest)
    return out


def gauss_hermite(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with `sum_q w_q f(x_q) ~= E[f(Z)]`, `Z ~ N(0, 1)`."""
    x, w = np.polynomial.hermite_e.hermegauss(num)
    return x, w / math.sqrt(2 * math.pi)


def _values64(fn: Callable, x: np.ndarray) -> np.ndarray:
    """`fn` at the nodes `x`, evaluated in float64 even when JAX runs in float32: float32
    values leave about 1e-8 of quadrature noise in every coefficient, above `TOL`, so a
    user callable such as `x**3 - 3*x` would read as information exponent 1. Evaluated
    eagerly even when a problem is built inside a trace (a sweep builds it under `jit`)."""
    with jax.ensure_compile_time_eval(), enable_x64(True):
        return np.asarray(fn(jnp.asarray(x, jnp.float64)), dtype=np.float64)


def quadrature_coeffs(fn: Callable, degree: int = MAX_DEGREE) -> np.ndarray:
    """Normalised Hermite coefficients `E[fn(Z) h_j(Z)]`, j = 0..degree, by quadrature."""
    x, w = gauss_hermite(_QUAD_NODES)
    return (w * _values64(fn, x)) @ hermite_basis(x, degree, xp=np)


def relu_coeffs(degree: int = MAX_DEGREE) -> np.ndarray:
    """Closed form: `beta_0 = 1/sqrt(2 pi)`, `beta_1 = 1/2`, odd j >= 3 vanish and
    even j >= 2 give `(-1)^(j/2 - 1) (j-3)!! / sqrt(2 pi j!)`."""
    c = np.zeros(degree + 1)
    c[0] = 1 / math.sqrt(2 * math.pi)
    c[1] = 0.5
    for j in range(2, degree + 1, 2):
        double_fact = math.prod(range(j - 3, 0, -2)) if j > 2 else 1
        c[j] = (-1) ** (j // 2 - 1) * double_fact / math.sqrt(2 * math.pi * math.factorial(j))
    return c


def _trim(c: np.ndarray) -> np.ndarray:
    nz = np.nonzero(np.abs(c) > TOL)[0]
    return c[: (nz[-1] + 1 if len(nz) else 1)]


class HermiteFunction(eqx.Module):
    """A link or activation: pointwise `fn` plus normalised Hermite coefficients.

    **Fields:**
    - `name`: a label (`"relu"`, `"h2"`, `"tanh"`, ...).
    - `fn`: the pointwise function, JAX-traceable.
    - `coeffs`: `E[fn(Z) h_j(Z)]` for j = 0..len-1 (trailing zeros trimmed).
    - `sq_norm`: `E[fn(Z)^2]`, computed directly (not from the truncated series).
    - `homogeneous`: `fn(s x) = s fn(x)` for `s > 0` (ReLU), so scaling is closed form.
    """

    name: str = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    coeffs: np.ndarray
    sq_norm: np.ndarray
    homogeneous: bool = eqx.field(static=True, default=False)

    @property
    def degree(self) -> int:
        return self.coeffs.shape[-1] - 1

    def information_exponent(self) -> int | None:
        """`min{j >= 1 : coeff_j != 0}`, or None for a constant function."""
        return information_exponent(self.coeffs)

    def __call__(self, x):
        return self.fn(x)


def information_exponent(coeffs) -> int | None:
    """`min{j >= 1 : |coeffs_j| > 1e-10}` for concrete coefficients, or None."""
    c = np.asarray(coeffs)
    nz = [j for j in range(1, len(c)) if abs(c[j]) > TOL]
    return nz[0] if nz else None


@functools.cache
def _h_k(k: int) -> Callable:
    """One function object per k: `fn` is a static field, and a fresh lambda per call
    would make every `make_problem` recompile the code that uses it."""
    return lambda x: hermite_basis(x, k)[..., k]


def _relu(x):
    return jnp.maximum(x, 0.0)


def is_relu(f: HermiteFunction) -> bool:
    """Whether `f` is the built-in ReLU (its shifted coefficients and kernel are closed form)."""
    return f.fn is _relu


@functools.cache
def _series(coeffs: tuple) -> Callable:
    c = np.asarray(coeffs, dtype=np.float64)
    return lambda x: hermite_basis(x, len(c) - 1) @ jnp.asarray(c, dtype=x.dtype)


BUILTIN_FUNCTIONS = ("relu", "tanh") + tuple(f"h{k}" for k in range(1, 9))
# every function a name reaches (links, activations): the built-ins, and what `sj.register`
# adds (name -> a callable, coefficients or a HermiteFunction)
FUNCTIONS: dict = {name: name for name in BUILTIN_FUNCTIONS}


def hermite_function(spec, name: str | None = None) -> HermiteFunction:
    """Build a `HermiteFunction` from a name, a callable, or a coefficient vector.

    **Arguments:**
    - `spec`: `"relu"`, `"tanh"`, `"h1"`..`"h8"`; a JAX-traceable callable (coefficients
      by quadrature up to degree `MAX_DEGREE`); or a sequence of normalised Hermite
      coefficients `[c_0, c_1, ...]`.
    - `name`: label stored with it; defaults to the name or `"custom"`.
    """
    if isinstance(spec, HermiteFunction):
        return spec
    x, w = gauss_hermite(_QUAD_NODES)
    homogeneous = False
    if isinstance(spec, str):
        key = spec.lower()
        if key == "relu":
            fn, coeffs, homogeneous = _relu, relu_coeffs(), True
            sq = 0.5
        elif key == "tanh":
            fn = jnp.tanh
            coeffs = quadrature_coeffs(fn)
            sq = float(w @ np.tanh(x) ** 2)
        elif key.startswith("h") and key[1:].isdigit() and 1 <= int(key[1:]) <= 8:
            k = int(key[1:])
            fn, coeffs, sq = _h_k(k), np.eye(k + 1)[k], 1.0
        elif spec in FUNCTIONS:  # a registered function
            return hermite_function(FUNCTIONS[spec], name=name or spec)
        else:
            raise ValueError(
                f"function {spec!r} is unknown; allowed: {', '.join(FUNCTIONS)}, "
                "a callable, or a sequence of Hermite coefficients"
            )
        name = name or key
    elif callable(spec):
        fn = spec
        coeffs = quadrature_coeffs(fn)
        sq = float(w @ _values64(fn, x) ** 2)
        name = name or getattr(spec, "__name__", "custom")
    else:
        coeffs = np.asarray(spec, dtype=np.float64)
        if coeffs.ndim != 1 or coeffs.size == 0 or not np.all(np.isfinite(coeffs)):
            raise ValueError(
                f"coefficients {spec!r} are not allowed; give a non-empty 1-D sequence of finite numbers"
            )
        fn, sq = _series(tuple(coeffs.tolist())), float(coeffs @ coeffs)
        name = name or "custom"
    return HermiteFunction(
        name=name,
        fn=fn,
        coeffs=_trim(coeffs),
        sq_norm=np.float64(sq),
        homogeneous=homogeneous,
    )


def scaled_coeffs(f: HermiteFunction, sigma, degree: int):
    """Coefficients `E[f(sigma Z) h_j(Z)]`, j = 0..degree, differentiable in `sigma > 0`."""
    if f.homogeneous:
        c = jnp.asarray(f.coeffs[: degree + 1], dtype=jnp.result_type(sigma))
        return sigma * jnp.pad(c, (0, degree + 1 - c.shape[0]))
    x, w = gauss_hermite(RUNTIME_NODES)
    basis = hermite_basis(x, degree, xp=np)
    return (jnp.asarray(w) * f.fn(sigma * jnp.asarray(x))) @ jnp.asarray(basis)


def second_moment(f: HermiteFunction, sigma):
    """`E[f(sigma Z)^2]`, differentiable in `sigma > 0`."""
    if f.homogeneous:
        return sigma**2 * f.sq_norm
    x, w = gauss_hermite(RUNTIME_NODES)
    return jnp.asarray(w) @ f.fn(sigma * jnp.asarray(x)) ** 2
