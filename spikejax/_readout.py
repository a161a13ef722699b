"""Phase 2: the second layer by ridge regression, with the ridge strength chosen on held-out samples.

The trained first-layer weights `w_i` are frozen, fresh biases `b_i ~ Unif[-bias, bias]` are
drawn, and `a` minimises `mean((F a - y)^2) + ridge |a|^2` on `n2` fresh samples, where
`F_ij = phi(<w_j, x_i> / N(w_j) + b_j)`. One eigendecomposition of `F^T F` gives the
solution for every ridge strength of a grid at once (`ridge_path`); the strength with the
smallest validation error is kept and its test mean squared error on fresh samples is
reported beside the noise floor `tau^2`. Everything is a pure function of arrays and static sizes, so it runs under
`jit` and `vmap` inside a sweep.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._network import TwoLayer
from ._neuron import AbstractNeuron
from ._problem import check, check_int, check_real, concrete
from ._registry import as_neuron
from ._data import draw, prefix_mask

DEFAULT_RIDGES = tuple(float(r) for r in np.logspace(-8, 2, 11))


class Readout(eqx.Module):
    """A validated ridge fit and its test error.

    **Fields:**
    - `test_mse`: mean squared error on fresh test samples (noisy labels), at the chosen ridge.
    - `val_mse`: validation error for every ridge of the grid, shape (L,).
    - `ridge`: the chosen ridge strength.
    - `noise_floor`: `tau^2`, the smallest test error any predictor can reach
      (NaN for the kernel baselines, which do not see the problem).
    - `a`, `b`: second-layer weights and biases of the network (None for kernels).
    - `index`: which candidate first layer validation chose when several were given
      (e.g. phase-1 weights at several stopping times; 0 for one, None for kernels).
    """

    test_mse: Array
    val_mse: Array
    ridge: Array
    noise_floor: Array
    a: Array | None = None
    b: Array | None = None
    index: Array | None = None


def check_ridges(ridges, positive: bool = False):
    """A non-empty 1-D grid of finite ridge strengths, `>= 0` (or `> 0` for a Cholesky solve)."""
    if not concrete(ridges):
        return
    arr = np.asarray(ridges, dtype=float)
    check("ridges", ridges, arr.ndim == 1 and arr.size >= 1, "allowed: a non-empty 1-D sequence of ridge strengths")
    check_real("ridges", ridges, lo=0.0, lo_open=positive)


def check_sizes(**sizes):
    """Each sample size is an integer >= 1 (they fix array shapes, so they must be static)."""
    for name, value in sizes.items():
        check_int(name, value, 1)


def ridge_path(feats, y, ridges, mask=None):
    """Ridge coefficients for every strength at once, from one eigendecomposition.

    Minimises `mean((feats @ a - y)^2) + ridge * |a|^2`. With `G = feats^T feats = V diag(l) V^T`
    (or the n x n Gram `feats feats^T` when `n < m`, the dual form),
    `a(ridge) = V diag(1 / (l + n ridge)) V^T feats^T y`. A zero ridge gives the minimum-norm
    least-squares solution: eigenvalues below `max(n, m) * eps * l_max` count as zero.
    (An eigendecomposition of the small Gram rather than an SVD of `feats`: XLA's CPU SVD ran
    100x slower on ReLU features; the price is a resolution of `sqrt(eps) s_max` on the
    singular values, far below any ridge worth choosing in float64.)

    **Arguments:** `feats` (n, m); `y` (n,); `ridges` (L,); `mask` (n,) booleans: only the rows
    it keeps count, and `n` is their number (padded sample sizes vmap at one shape).

    **Returns:** coefficients of shape (L, m).
    """
    n, m = feats.shape
    dual = n < m  # on the padded shape: static
    if mask is not None:
        feats, y = feats * mask[:, None], y * mask
        n = jnp.sum(mask).astype(feats.dtype)
    gram = feats @ feats.T if dual else feats.T @ feats
    lam, vec = jnp.linalg.eigh(gram)
    rhs = y if dual else y @ feats
    ridges = jnp.asarray(ridges, lam.dtype)
    keep = lam > max(feats.shape) * jnp.finfo(lam.dtype).eps * lam[-1]
    inv = jnp.where(keep, 1.0 / (jnp.where(keep, lam, 1.0) + n * ridges[:, None]), 0.0)  # (L, r)
    coefs = (inv * (rhs @ vec)) @ vec.T  # (L, m), or (L, n) dual weights
    return coefs @ feats if dual else coefs


def select(pred_val, y_val, pred_test, y_test, ridges):
    """Keep the ridge with the smallest validation error (non-finite errors never win).

    **Arguments:** predictions of shape (L, n_val) and (L, n_test), one row per ridge.

    **Returns:** `(test_mse, val_mse (L,), ridge, best)`, `best` the index of the chosen ridge.
    """
    val_mse = jnp.mean((pred_val - y_val) ** 2, axis=-1)
    best = jnp.argmin(jnp.where(jnp.isfinite(val_mse), val_mse, jnp.inf))
    test_mse = jnp.mean((pred_test[best] - y_test) ** 2)
    return test_mse, val_mse, jnp.asarray(ridges, val_mse.dtype)[best], best


def draw_splits(problem, key, n_train: int, n_val: int, n_test: int):
    """Fresh labelled inputs `(x, y)` for training, validation and test (independent draws)."""
    out = []
    for k, n in zip(jax.random.split(key, 3), (n_train, n_val, n_test)):
        z, y = draw(problem, k, n)
        out.append((problem.covariance.sqrt(z), y))
    return tuple(out)


def readout(problem, w, b, train, val, test, ridges, cov=None, neuron: str | AbstractNeuron = "plain",
            mask=None) -> Readout:
    """Fit `a` by validated ridge on given samples; the core of `fit_readout`.

    **Arguments:** `w` (m, d) frozen first layer; `b` (m,) biases; `train`, `val`, `test`
    pairs `(x, y)`; `cov` the covariance of the `neuron` normaliser (None for plain);
    `mask` (n,) the training rows that count (None: all).
    """
    net = TwoLayer(w=w, a=jnp.zeros_like(b), b=b, activation=problem.activation, neuron=as_neuron(neuron))
    feats = lambda x: net.features(x, cov)
    coefs = ridge_path(feats(train[0]), train[1], ridges, mask)
    pred = lambda x: (feats(x) @ coefs.T).T
    test_mse, val_mse, ridge, best = select(pred(val[0]), val[1], pred(test[0]), test[1], ridges)
    return Readout(
        test_mse=test_mse,
        val_mse=val_mse,
        ridge=ridge,
        noise_floor=problem.noise**2,
        a=coefs[best],
        b=b,
    )


def fit_readout(
    key,
    problem,
    w,
    *,
    n2: int,
    n_val: int,
    n_test: int,
    ridges=DEFAULT_RIDGES,
    neuron: str | AbstractNeuron = "plain",
    sigma_hat=None,
    bias=2.0,
    n2_used=None,
) -> Readout:
    """Phase 2: fresh biases, frozen `w`, the second layer `a` by ridge, test error.

    **Arguments:**
    - `key`: PRNG key for the biases and the three sample sets.
    - `problem`: from `make_problem`.
    - `w`: trained first-layer weights, shape (m, d) (e.g. `Trajectory.w` of a vmap over neurons),
      or (S, m, d): S candidate first layers (phase-1 weights at S stopping times, say), each
      fitted with the same biases and samples; the candidate and ridge with the smallest
      validation error are kept (`Readout.index`, and `val_mse` has shape (S, L)).
    - `n2`, `n_val`, `n_test`: training, validation and test sample sizes (static integers >= 1).
    - `ridges`: grid of ridge strengths `>= 0` for `mean((F a - y)^2) + ridge |a|^2`;
      validation picks one.
    - `neuron`: normaliser of the pre-activation, `"plain"`, `"sigma"` or `"sigma_hat"` (or an
      `AbstractNeuron`); the last needs `sigma_hat`, a `DenseCovariance`, e.g.
      `Simulation.sigma_hat`.
    - `bias`: biases are `Unif[-bias, bias]` (SPEC default 2).
    - `n2_used`: train on the first `n2_used <= n2` samples only (an array is fine: vmap over
      sample sizes at one padded shape; smaller training sets are nested in larger ones).

    **Returns:** a `Readout`. Pure: works under `jax.jit` and `jax.vmap` (over `key`, the
    problem's arrays, `w`, `ridges`, `bias`).

    **Raises:** `ValueError` for a size < 1, a negative or empty ridge grid, a `w` of the
    wrong shape, an unknown `neuron`, or a negative `bias`, before anything is compiled.
    """
    check_sizes(n2=n2, n_val=n_val, n_test=n_test)
    check_ridges(ridges)
    neuron = as_neuron(neuron)
    check_real("bias", bias, lo=0.0)
    if n2_used is not None:
        check_real("n2_used", n2_used, lo=1, hi=n2)
    shape = getattr(w, "shape", None)
    check(
        "w",
        f"array of shape {shape}",
        shape is not None and len(shape) in (2, 3) and shape[-1] == problem.d,
        f"allowed: first-layer weights of shape (m, d={problem.d}) or candidates (S, m, d={problem.d})",
    )
    check("sigma_hat", sigma_hat, not neuron.needs_sigma_hat or sigma_hat is not None,
          f"neuron={neuron.name!r} needs a SigmaHat")
    single = len(shape) == 2
    fit = phase2(key, problem, w[None] if single else w, n2, n_val, n_test, ridges, neuron, sigma_hat, bias, n2_used)[0]
    return eqx.tree_at(lambda r: r.val_mse, fit, fit.val_mse[0]) if single else fit


def phase2(key, problem, ws, n2, n_val, n_test, ridges, neuron, sigma_hat, bias, n2_used=None):
    """`fit_readout` for candidates `ws` (S, m, d), without the argument checks; also returns
    the samples `(train, val, test)` and the training mask."""
    cov = neuron.covariance(problem.covariance, sigma_hat)
    k_bias, k_data = jax.random.split(key)
    b = jax.random.uniform(k_bias, (ws.shape[1],), ws.dtype, -bias, bias)
    splits = draw_splits(problem, k_data, n2, n_val, n_test)
    mask = None if n2_used is None else prefix_mask(n2, n2_used)
    fits = jax.vmap(lambda w: readout(problem, w, b, *splits, ridges, cov, neuron, mask))(ws)
    best_val = jnp.min(jnp.where(jnp.isfinite(fits.val_mse), fits.val_mse, jnp.inf), axis=-1)
    i = jnp.argmin(best_val)
    fit = Readout(
        test_mse=fits.test_mse[i],
        val_mse=fits.val_mse,
        ridge=fits.ridge[i],
        noise_floor=problem.noise**2,
        a=fits.a[i],
        b=b,
        index=i,
    )
    return fit, splits, mask
