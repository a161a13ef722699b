"""Rotationally invariant kernel baselines: kernel ridge regression and ReLU random features.

Both kernels depend on the inputs only through `<x, x'>`, `|x|` and `|x'|`, so they cannot
prefer the spike or the target direction: the baselines of SPEC claim 6. Inputs are first
divided by `scale = sqrt(mean_i |x_i|^2)` over the training inputs (a rotation-invariant
statistic), so one bandwidth and one bias mean the same thing at every `d` and `kappa`.

- `"arccos"`: the ReLU arc-cosine kernel (Cho and Saul 2009, degree 1) of the inputs with a
  constant coordinate `bias` appended, `k(x, x') = E_{w ~ N(0, I)}[relu(<w, x~>) relu(<w, x~'>)]`
  with `x~ = (x / scale, bias)`: the kernel of an infinitely wide ReLU layer with Gaussian
  weights and biases. Closed form in `arccos_kernel`.
- `"rbf"`: `exp(-|x - x'|^2 / (2 bandwidth^2 scale^2))`.
- `rf_ridge`: ridge on `D` ReLU random features of the same `x~`, an unbiased Monte Carlo
  approximation of the arc-cosine kernel, for sample sizes too large for an exact solve.

Kernel ridge solves `(K + n ridge I) alpha = y` (the minimiser of
`mean((f(x_i) - y_i)^2) + ridge |f|_H^2`, the same objective and ridge units as `ridge_path`)
by a float64 Cholesky factorisation for each ridge of the grid, one after another.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._problem import check, check_choice, check_int, check_real
from ._readout import DEFAULT_RIDGES, Readout, check_ridges, ridge_path, select

KERNELS = ("arccos", "rbf")


def arccos_kernel(x1, x2):
    """`E_{w ~ N(0, I)}[relu(<w, x>) relu(<w, x'>)] = |x||x'| (sin t + (pi - t) cos t) / (2 pi)`,
    `t` the angle between `x` and `x'`. Shapes (n1, d), (n2, d) -> (n1, n2)."""
    r1 = jnp.linalg.norm(x1, axis=-1)
    r2 = jnp.linalg.norm(x2, axis=-1)
    rr = r1[:, None] * r2[None, :]
    cos = jnp.clip((x1 @ x2.T) / jnp.where(rr > 0, rr, 1.0), -1.0, 1.0)
    sin = jnp.sqrt(1.0 - cos**2)
    return rr * (sin + (math.pi - jnp.arccos(cos)) * cos) / (2 * math.pi)


def rbf_kernel(x1, x2, bandwidth=1.0):
    """`exp(-|x - x'|^2 / (2 bandwidth^2))`. Shapes (n1, d), (n2, d) -> (n1, n2)."""
    sq = jnp.sum(x1**2, -1)[:, None] + jnp.sum(x2**2, -1)[None, :] - 2 * (x1 @ x2.T)
    return jnp.exp(-jnp.maximum(sq, 0.0) / (2 * bandwidth**2))


def _augment(x, scale, bias):
    """`(x / scale, bias)`: the inputs of the arc-cosine kernel and of the random features."""
    return jnp.concatenate([x / scale, jnp.full(x.shape[:-1] + (1,), bias, x.dtype)], -1)


def _scale(x, mask):
    sq = jnp.sum(x**2, -1)
    return jnp.sqrt(jnp.mean(sq) if mask is None else (sq @ mask.astype(sq.dtype)) / jnp.sum(mask))


def _check_common(train, val, test, ridges, bias, positive):
    check_ridges(ridges, positive=positive)
    check_real("bias", bias, lo=0.0)
    d = train[0].shape[-1]
    for name, (x, y) in zip(("train", "val", "test"), (train, val, test)):
        ok = x.ndim == 2 and x.shape[1] == d and y.shape == (x.shape[0],) and x.shape[0] >= 1
        check(name, f"(x {x.shape}, y {y.shape})", ok, f"allowed: a pair (x of shape (n, d={d}), y of shape (n,)), n >= 1")


def kernel_ridge(
    train, val, test, *, kernel: str = "arccos", ridges=DEFAULT_RIDGES, bandwidth=2.0, bias=1.0, mask=None
) -> Readout:
    """Kernel ridge regression, ridge chosen on `val`, test error on `test`, in float64.

    **Arguments:**
    - `train`, `val`, `test`: pairs `(x (n, d), y (n,))`.
    - `kernel`: `"arccos"` (ReLU arc-cosine with a bias coordinate) or `"rbf"`.
    - `ridges`: grid of ridge strengths, all `> 0` (a Cholesky factorisation needs them).
    - `bandwidth`: RBF bandwidth in units of `scale = sqrt(mean |x|^2)` (default 2: wide, so
      smooth low-degree targets are cheap; 1 fitted a linear target in d = 8 twice as badly).
    - `bias`: the arc-cosine kernel's constant coordinate.
    - `mask`: (n,) booleans, the training samples that count (None: all); the others get
      zero weight, so padded sample sizes vmap at one shape.

    **Returns:** a `Readout` (its `noise_floor` is NaN: the kernel never sees the problem;
    `a`, `b` are None). Cost `O(n^3)` per ridge and `O(n^2)` memory: for large `n` use
    `rf_ridge`. A ridge whose factorisation fails gives a NaN validation error and is not chosen.

    **Raises:** `ValueError` for bad arguments, or when float64 is off
    (`jax.config.update("jax_enable_x64", True)` turns it on).
    """
    check_choice("kernel", kernel, KERNELS)
    check_real("bandwidth", bandwidth, lo=0.0, lo_open=True)
    _check_common(train, val, test, ridges, bias, positive=True)
    check(
        "jax_enable_x64",
        jnp.result_type(float).name,
        jnp.result_type(float) == jnp.float64,
        'kernel ridge is solved in float64: call jax.config.update("jax_enable_x64", True) first',
    )
    f64 = lambda a: jnp.asarray(a, jnp.float64)
    (x, y), (xv, yv), (xt, yt) = [(f64(a), f64(b)) for a, b in (train, val, test)]
    scale = _scale(x, mask)
    if kernel == "arccos":
        gram = lambda a, b: arccos_kernel(_augment(a, scale, bias), _augment(b, scale, bias))
    else:
        gram = lambda a, b: rbf_kernel(a / scale, b / scale, bandwidth)
    n = x.shape[0]
    k_train = gram(x, x)
    if mask is not None:  # masked samples: zero rows and labels, so their weights alpha_i are 0
        w = mask.astype(x.dtype)
        k_train, y, n = k_train * w[:, None] * w[None, :], y * w, jnp.sum(w)
    eye = jnp.eye(x.shape[0], dtype=k_train.dtype)

    def solve(ridge):
        chol = jnp.linalg.cholesky(k_train + n * ridge * eye)
        return jax.scipy.linalg.cho_solve((chol, True), y)

    alphas = jax.lax.map(solve, f64(ridges))  # (L, n), one n x n factor in memory at a time
    pred = lambda xs: alphas @ gram(x, xs)
    test_mse, val_mse, ridge, _ = select(pred(xv), yv, pred(xt), yt, ridges)
    return Readout(test_mse=test_mse, val_mse=val_mse, ridge=ridge, noise_floor=jnp.full((), jnp.nan, x.dtype))


def rf_ridge(key, train, val, test, *, features: int, ridges=DEFAULT_RIDGES, bias=1.0, mask=None) -> Readout:
    """Ridge on `features` ReLU random features `relu(<g_j, (x / scale, bias)>) / sqrt(D)`,
    `g_j ~ N(0, I)`: the random-features version of the arc-cosine kernel ridge, in the
    inputs' dtype, with the ridge chosen on `val`. Cost `O(n D^2)`. `mask` as for `kernel_ridge`.

    **Returns:** a `Readout` as `kernel_ridge`'s.
    """
    check_int("features", features, 1)
    _check_common(train, val, test, ridges, bias, positive=False)
    (x, y), (xv, yv), (xt, yt) = train, val, test
    scale = _scale(x, mask)
    g = jax.random.normal(key, (features, x.shape[1] + 1), x.dtype)
    feats = lambda xs: jax.nn.relu(_augment(xs, scale, bias) @ g.T) / math.sqrt(features)
    coefs = ridge_path(feats(x), y, ridges, mask)
    pred = lambda xs: (feats(xs) @ coefs.T).T
    test_mse, val_mse, ridge, _ = select(pred(xv), yv, pred(xt), yt, ridges)
    return Readout(test_mse=test_mse, val_mse=val_mse, ridge=ridge, noise_floor=jnp.full((), jnp.nan, x.dtype))
