"""Multi-index targets: `y = g(z_1, ..., z_k)`, `z_i = <u_i, x>`, `g` a multivariate Hermite series.

**The convention.** `U` (k, d) holds the directions as rows. The target reads
`z_i = <u_i, x> / ||u_i||_Sigma` (each row divided by its Sigma norm, as `SingleIndex`
divides `u`), and the rows must be *Sigma-orthogonal*: `<u_i, u_j>_Sigma = 0` for `i != j`.
Then `(z_1, ..., z_k)` are iid N(0, 1) under Gaussian inputs `x ~ N(0, Sigma)`. The canonical
form, what `MultiIndex.make(U, g, cov=cov)` returns, has `U Sigma U^T = I_k` exactly (rows
Sigma-orthonormalised by Gram-Schmidt in the given order, so `u_1` keeps its direction, `u_2`
its part Sigma-orthogonal to `u_1`, ...); there the division is by 1. With `k = 1` the target
is `SingleIndex(u, link)` term for term.

`g = sum_alpha g_alpha h_alpha(z)`, `h_alpha(z) = prod_i h_{alpha_i}(z_i)` with `h_j = He_j /
sqrt(j!)`: the `h_alpha` are orthonormal under N(0, I_k), so `E[y^2] = sum_alpha g_alpha^2`.
`g` is given as a mapping `{alpha: g_alpha}` (alpha a length-k tuple of integers >= 0), as
a built-in name (`"sum_h2"`, `"staircase"`, `"parity"`, `"product_h2"`, any k), or as a
callable of k arguments (its coefficients up to total degree `degree` by tensor-product
Gauss-Hermite quadrature in float64; its labels use the callable itself, the closed forms
the truncated series).

Why a series: the population quantities of a neuron are closed form in it (`cross_moment`):
with `rho_i = <w, u_i>_Sigma / (||w||_Sigma ||u_i||_Sigma)`,
`E[g(z) phi(s zeta + b)] = sum_alpha g_alpha c_{|alpha|}(b, s) sqrt(|alpha|! / alpha!) rho^alpha`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._hermite import TOL, enable_x64, gauss_hermite, hermite_basis
from ._target import GENERATIVE_ROUTE, AbstractTarget, project, warn_user

RANK_TOL = 1e-6  # smallest singular value of the row-normalised U: below it, not of full rank
ORTHO_TOL = 1e-5  # largest |Sigma-correlation| between two rows: above it, not Sigma-orthogonal
BUILTIN_TARGETS = ("sum_h2", "staircase", "parity", "product_h2")
# targets registered by name (`sj.register("target", name, {alpha: coeff})`): name -> mapping
REGISTERED_TARGETS: dict = {}
_MAX_NODES = 2_000_000  # tensor-product quadrature grid points, at most (160 nodes a coordinate at most)


def _concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def sum_h2(k: int) -> dict:
    """`sum_i h_2(z_i)`: k directions, each with information exponent 2; leap 2."""
    return {tuple(2 * (j == i) for j in range(k)): 1.0 for i in range(k)}


def staircase(k: int) -> dict:
    """`z_1 + z_1 z_2 + ... + z_1 ... z_k`: leap 1, learned one direction after another."""
    return {tuple(int(j <= i) for j in range(k)): 1.0 for i in range(k)}


def parity(k: int) -> dict:
    """`z_1 z_2 ... z_k` (parity3 at k = 3): leap k."""
    return {(1,) * k: 1.0}


def product_h2(k: int) -> dict:
    """`prod_i h_2(z_i)`: leap 2k."""
    return {(2,) * k: 1.0}


_BUILTINS = {"sum_h2": sum_h2, "staircase": staircase, "parity": parity, "product_h2": product_h2}


def multi_hermite(z, alphas, coeffs):
    """`sum_a coeffs[a] prod_i h_{alphas[a, i]}(z[i])` for arguments `z` (k, ...)."""
    alphas = np.asarray(alphas, int)
    deg = int(alphas.max()) if alphas.size else 0
    h = hermite_basis(z, deg)  # (k, ..., deg + 1)
    k = z.shape[0]
    terms = jnp.prod(jnp.moveaxis(h[np.arange(k)[None, :], ..., alphas], -1, 0), axis=-1)  # (..., A)
    return terms @ jnp.asarray(coeffs, z.dtype)


def _check_alpha(alpha, k: int) -> tuple:
    ok = isinstance(alpha, tuple) and len(alpha) == k and all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 0 for a in alpha)
    if not ok:
        raise ValueError(
            f"g has the multi-index {alpha!r}, which is not allowed; allowed: a tuple of k={k} "
            "integers >= 0 (one Hermite degree per direction)"
        )
    return tuple(int(a) for a in alpha)


def _from_mapping(g: Mapping, k: int):
    alphas, coeffs = [], []
    for alpha, c in g.items():
        alpha = _check_alpha(alpha, k)
        c = float(c)
        if not math.isfinite(c):
            raise ValueError(f"g[{alpha!r}]={c!r} is not allowed; allowed: a finite real number")
        if abs(c) > TOL:
            alphas.append(alpha)
            coeffs.append(c)
    if not alphas:
        alphas, coeffs = [(0,) * k], [0.0]
    order = sorted(range(len(alphas)), key=lambda i: (sum(alphas[i]), alphas[i]))
    alphas = tuple(alphas[i] for i in order)
    coeffs = np.array([coeffs[i] for i in order], np.float64)
    return alphas, coeffs, float(coeffs @ coeffs)


def quadrature_expansion(fn: Callable, k: int, degree: int):
    """`{alpha: E[fn(Z) h_alpha(Z)]}` for `|alpha| <= degree`, and `E[fn(Z)^2]`, by
    tensor-product Gauss-Hermite quadrature (float64), `Z ~ N(0, I_k)`."""
    q = max(degree + 1, min(160, int(_MAX_NODES ** (1 / k))))
    x, w = gauss_hermite(q)
    mesh = np.meshgrid(*([x] * k), indexing="ij")
    with enable_x64(True):
        vals = np.asarray(fn(*[jnp.asarray(m, jnp.float64) for m in mesh]), np.float64)
    if vals.shape != mesh[0].shape or not np.all(np.isfinite(vals)):
        raise ValueError(f"g={fn!r} is not allowed; a callable g must map k={k} arrays to finite values of their shape")
    wh = w[:, None] * hermite_basis(x, degree, xp=np)  # (q, degree + 1)
    c = vals
    for _ in range(k):  # contract one axis at a time: c[a_1, ..., a_k]
        c = np.tensordot(c, wh, axes=([0], [0]))
    weights = w
    for _ in range(k - 1):
        weights = np.multiply.outer(weights, w)
    coeffs = {a: float(c[a]) for a in itertools.product(range(degree + 1), repeat=k) if sum(a) <= degree}
    return coeffs, float(np.sum(weights * vals**2))


class TargetFunction(Mapping):
    """A k-index target known by its function `fn(z_1, ..., z_k)`, registered by name like a
    mapping (`register("target", name, TargetFunction(fn, k))`; the built-in
    `"tanh_z1_he3_z2"` is one). As a mapping it is `fn`'s Hermite series `{alpha: g_alpha}` up to
    total degree `degree`, by quadrature on first use (not at import), which the closed forms
    (population risk, cross moments) read; `MultiIndex` labels samples with `fn` itself and takes
    `E[fn(Z)^2]` (`norm2`) from the quadrature, as for a callable `g`."""

    def __init__(self, fn: Callable, k: int, degree: int = 6):
        if not callable(fn):
            raise ValueError(f"fn={fn!r} is not allowed; allowed: a callable of k arguments")
        for key, v in (("k", k), ("degree", degree)):
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{key}={v!r} is not allowed; allowed: an integer >= 1")
        self.fn, self.k, self.degree, self._series, self._norm2 = fn, k, degree, None, None

    def _filled(self) -> dict:
        """The series `{alpha: g_alpha}`, computed (with `norm2`) on first use."""
        if self._series is None:
            with jax.ensure_compile_time_eval():  # concrete even when first used inside a trace
                coeffs, self._norm2 = quadrature_expansion(self.fn, self.k, self.degree)
            alphas, c, _ = _from_mapping(coeffs, self.k)
            self._series = dict(zip(alphas, c.tolist()))
        return self._series

    @property
    def norm2(self) -> float:
        """`E[fn(Z)^2]`, `Z ~ N(0, I_k)` (quadrature)."""
        self._filled()
        return self._norm2

    def __getitem__(self, alpha):
        return self._filled()[alpha]

    def __iter__(self):
        return iter(self._filled())

    def __len__(self):
        return len(self._filled())

    def __repr__(self):
        return f"TargetFunction({getattr(self.fn, '__name__', self.fn)!s}, k={self.k}, degree={self.degree})"


def _sigma_gram(U, cov):
    with jax.ensure_compile_time_eval():  # concrete inputs stay concrete inside a user's jit
        return np.asarray(U @ (cov.apply(U) if cov is not None else U).T, np.float64)


def sigma_orthonormalise(U, cov=None):
    """Gram-Schmidt of the rows of `U` in the Sigma inner product, in order (`cov=None`:
    Euclidean): `u_1` keeps its direction, `u_2` loses its part along `u_1`, ... Returns
    rows with `U Sigma U^T = I_k`; raises `ValueError` if `U` is not of full rank."""
    U = jnp.atleast_2d(jnp.asarray(U))
    _check_rank(U)
    out = []
    for x in U:
        for e in out:
            x = x - (cov.inner(x, e) if cov is not None else x @ e) * e
        out.append(x / (cov.norm(x) if cov is not None else jnp.linalg.norm(x)))
    return jnp.stack(out)


def _check_rank(U):
    if not _concrete(U):
        return
    u = np.asarray(U, np.float64)
    if u.ndim != 2 or u.shape[0] < 1 or u.shape[0] > u.shape[1] or not np.all(np.isfinite(u)):
        raise ValueError(f"U of shape {u.shape} is not allowed; allowed: a finite (k, d) array with 1 <= k <= d")
    norms = np.linalg.norm(u, axis=1)
    smin = float(np.linalg.svd(u / np.where(norms > 0, norms, 1.0)[:, None], compute_uv=False)[-1]) if np.all(
        norms > 0) else 0.0
    if smin <= RANK_TOL:
        raise ValueError(
            f"U is not of full rank (smallest singular value of its normalised rows {smin:.3g} <= "
            f"{RANK_TOL:g}); allowed: k linearly independent directions"
        )


class MultiIndex(AbstractTarget):
    """`y = g(<u_1, x> / ||u_1||_Sigma, ..., <u_k, x> / ||u_k||_Sigma)`, rows Sigma-orthogonal.

    **Arguments:**
    - `U`: (k, d) directions as rows, Sigma-orthogonal (see the module docstring; use
      `MultiIndex.make(U, g, cov=cov)` to Sigma-orthonormalise given rows).
    - `g`: a mapping `{alpha: g_alpha}` of normalised multivariate Hermite coefficients, a
      built-in name (`"sum_h2"`, `"staircase"`, `"parity"`, `"product_h2"`), or a callable
      `g(z_1, ..., z_k)` (coefficients by quadrature up to total degree `degree`).
    - `degree`: the quadrature's total degree for a callable `g` (default 6).
    - `name`: a label.

    **Fields:** `U`; `alphas` (static tuple of multi-indices, the support); `coeffs` (their
    `g_alpha`); `norm2` `E[g(Z)^2]` (the series' sum of squares, or by quadrature for a
    callable); `fn` (the callable, or None: labels from the series).
    """

    U: Array
    alphas: tuple = eqx.field(static=True)
    coeffs: np.ndarray
    norm2: np.ndarray
    fn: Callable | None = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, U, g, *, degree: int = 6, name: str | None = None):
        U = jnp.asarray(U)
        if U.ndim == 1:
            U = U[None]
        _check_rank(U)
        k = U.shape[0]
        fn = None
        if isinstance(g, str):
            if g not in _BUILTINS and g not in REGISTERED_TARGETS:
                names = (*BUILTIN_TARGETS, *REGISTERED_TARGETS)
                raise ValueError(f"g={g!r} is not allowed; choose one of {', '.join(map(repr, names))}, "
                                 "a mapping {alpha: coefficient} or a callable of k arguments")
            name = name or g
            g = REGISTERED_TARGETS[g] if g in REGISTERED_TARGETS else _BUILTINS[g](k)
        if isinstance(g, TargetFunction):  # a registered function: its series, its labels
            if g.k != k:
                raise ValueError(f"g={g!r} has k={g.k} directions and U has k={k} rows; allowed: one row per "
                                 "direction of g")
            alphas, coeffs, _ = _from_mapping(g, k)
            norm2, fn, name = g.norm2, g.fn, name or getattr(g.fn, "__name__", "custom")
        elif isinstance(g, Mapping):
            lengths = {len(a) for a in g if isinstance(a, tuple)}
            if lengths and lengths != {k}:
                raise ValueError(
                    f"g has multi-indices of length {sorted(lengths)} and U has k={k} rows; allowed: "
                    "one Hermite degree per row of U"
                )
            alphas, coeffs, norm2 = _from_mapping(g, k)
        elif callable(g):
            if not (isinstance(degree, int) and not isinstance(degree, bool) and degree >= 1):
                raise ValueError(f"degree={degree!r} is not allowed; allowed: an integer >= 1")
            expansion, norm2 = quadrature_expansion(g, k, degree)
            alphas, coeffs, _ = _from_mapping(expansion, k)
            fn, name = g, name or getattr(g, "__name__", "custom")
        else:
            raise ValueError(f"g={g!r} is not allowed; give a mapping {{alpha: coefficient}}, a built-in name "
                             f"({', '.join(BUILTIN_TARGETS)}) or a callable of k={k} arguments")
        self.U = U
        self.alphas = alphas
        self.coeffs = coeffs
        self.norm2 = np.float64(norm2)
        self.fn = fn
        self.name = name or "custom"

    @classmethod
    def make(cls, U, g, *, cov=None, orthonormalise: bool = True, **kwargs) -> "MultiIndex":
        """The canonical target: rows Sigma-orthonormalised in order (`orthonormalise=True`)
        or checked to be Sigma-orthogonal (`False`; see `check`). `cov=None`: isotropic."""
        U = sigma_orthonormalise(U, cov) if orthonormalise else jnp.asarray(U)
        target = cls(U, g, **kwargs)
        target.check(cov)
        return target

    @property
    def k(self) -> int:
        return self.U.shape[0]

    @property
    def degree(self) -> int:
        return max(sum(a) for a in self.alphas)

    @property
    def u(self):
        raise AttributeError(
            f"a MultiIndex target has k={self.k} directions and no single u: use target.U (or directions()), "
            "(the default SaveAt records sj.subspace_metrics for it)"
        )

    def expansion(self) -> dict:
        """`{alpha: g_alpha}`: the series (nonzero terms)."""
        return dict(zip(self.alphas, np.asarray(self.coeffs).tolist()))

    def check(self, cov=None, tol: float = ORTHO_TOL):
        """Raise `ValueError` unless the rows are Sigma-orthogonal: every
        `|<u_i, u_j>_Sigma| / (||u_i||_Sigma ||u_j||_Sigma) <= tol` (default 1e-5), `i != j`."""
        if not _concrete(self.U) or cov is None and self.k == 1:
            return
        if cov is not None and not _concrete(*jax.tree_util.tree_leaves(cov)):
            return
        gram = _sigma_gram(self.U, cov)
        sq = np.sqrt(np.diag(gram))
        worst = float(np.max(np.abs(gram / np.outer(sq, sq) - np.eye(self.k))))
        if worst > tol:
            raise ValueError(
                f"U is not allowed; its rows must be Sigma-orthogonal (largest |Sigma-correlation| between "
                f"two rows {worst:.3g} > {tol:g}): build it with sj.MultiIndex.make(U, g, cov=covariance)"
            )

    def check_activation(self, beta, name: str = "activation", sampled: bool = False):
        """The multi-index analogue of the single-index blind check (the source calls it,
        through `Problem.check_activation`).

        A term `h_alpha` reaches a neuron `phi(<w, x> + b)` through the coefficient of degree
        `|alpha|` of `phi(s . + b)`: at `b = 0` that is `beta_{|alpha|}`; with a bias it is
        nonzero for some `b` iff some `beta_i != 0` with `i >= |alpha|`. A direction is
        reachable when some term touching it is. When a direction is unreachable even with
        biases (a polynomial activation of too low a degree) the population gradient never
        sees it: refused for the population (`sampled=False`), as the single-index engine
        refuses `beta_s = 0`, and a warning for a sampled source, which can still learn it by
        reusing samples (the generative-exponent route). When it is unreachable only without
        bias (ReLU, whose odd `beta_j`, `j >= 3`, vanish, against the staircase's `z1 z2 z3` or
        the parity) it warns: a neuron without bias cannot learn it from the population
        gradient, a network with biases (`bias_init > 0`) can."""
        beta = np.abs(np.asarray(beta, np.float64)) > 1e-8
        tail = np.logical_or.accumulate(beta[::-1])[::-1]  # tail[j]: some beta_i != 0, i >= j
        at_zero = lambda j: j < beta.size and beta[j]  # noqa: E731
        with_bias = lambda j: j < beta.size and tail[j]  # noqa: E731 (beyond the vector: 0, as single-index)
        support = [a for a in self.alphas if any(a)]
        touched = sorted({i for a in support for i, ai in enumerate(a) if ai})
        route = f"; {GENERATIVE_ROUTE}" if sampled else ""

        def unreachable(seen):
            reached = {i for a in support if seen(sum(a)) for i, ai in enumerate(a) if ai}
            return [i for i in touched if i not in reached]

        def describe(dirs):
            degrees = sorted({sum(a) for a in support if any(a[i] for i in dirs)})
            return (", ".join(f"u{i + 1}" for i in dirs) + f" of g={self.name!r} appear{'s' * (len(dirs) == 1)} "
                    f"only in terms of total degree {', '.join(map(str, degrees))}")

        never = unreachable(with_bias)
        if never:
            why = (f"{describe(never)}, and the activation's beta_j = 0 for every j at or above those degrees, so a "
                   "neuron is blind to them even with a bias")
            if not sampled:
                raise ValueError(f"activation={name!r} is not allowed; {why}; choose an activation with a nonzero "
                                 f"Hermite coefficient at those degrees ({GENERATIVE_ROUTE})")
            warn_user(f"activation={name!r}: {why}{route}")
            return
        biased = unreachable(at_zero)
        if biased:
            warn_user(
                f"activation={name!r}: {describe(biased)}, where its beta_j = 0: a neuron without bias cannot learn "
                f"{'it' if len(biased) == 1 else 'them'} from the population gradient (a network with biases, "
                f"sj.Network(bias_init > 0) or trained biases, can){route}")

    def arguments(self, z, cov):
        """`(z_1, ..., z_k)` of base draws `z` (n, d): an array (k, n)."""
        s = cov.sqrt(self.U) / cov.norm(self.U)[:, None]
        return project(z, s)

    def __call__(self, z, cov):
        zs = self.arguments(z, cov)
        if self.fn is not None:
            return self.fn(*zs)
        return multi_hermite(zs, self.alphas, self.coeffs)

    def directions(self):
        return self.U

    def restrict(self, basis):
        return eqx.tree_at(lambda t: t.U, self, self.U @ basis.T)

    def second_moment(self):
        return self.norm2

    def sigma_cross(self, sw, cov):
        """`<w_j, u_i>_Sigma / ||u_i||_Sigma` (m, k) from the rows `sw = Sigma w` (m, d)."""
        return sw @ self.U.T / cov.norm(self.U)

    def cross_moment(self, rho, c):
        """`E[g(z) phi_j]` (m,) from the Sigma-correlations `rho` (m, k) of the neurons with
        the directions and the activation's coefficients `c` (m, K + 1), `K >= degree`:
        `sum_alpha g_alpha c_{|alpha|} sqrt(|alpha|! / alpha!) prod_i rho_i^alpha_i`."""
        alphas = np.asarray(self.alphas, int)  # (A, k)
        deg = int(alphas.max())
        powers = [jnp.ones_like(rho)]
        for _ in range(deg):
            powers.append(powers[-1] * rho)
        p = jnp.stack(powers, -1)  # (m, k, deg + 1): rho_i^j, safe to differentiate at 0
        mono = jnp.prod(p[:, np.arange(self.k)[None, :], alphas], axis=-1)  # (m, A)
        total = alphas.sum(1)
        multinom = np.array([math.sqrt(math.factorial(t) / math.prod(math.factorial(a) for a in al))
                             for t, al in zip(total, alphas)])
        weight = jnp.asarray(self.coeffs, rho.dtype) * jnp.asarray(multinom, rho.dtype)  # coeffs may be traced (a sweep)
        return jnp.sum(mono * c[:, total] * weight, axis=-1)
