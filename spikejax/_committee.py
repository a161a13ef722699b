"""Closed-form population risk of a width-`m` network, from overlaps (a committee machine).

For Gaussian inputs `x = Sigma^{1/2} z`, the pre-activations `xi_j = <w_j, x> / N(w_j)` and
the target's index `z_* = <u, x> / ||u||_Sigma` are jointly Gaussian. Everything the risk
needs is the Sigma-Gram matrix of the rows and their Sigma-overlap with `u`:

- scales `s_j = ||w_j||_Sigma / N(w_j)` (1 for the `sigma` neuron),
- correlations `C_ij = <w_i, w_j>_Sigma / (||w_i||_Sigma ||w_j||_Sigma)`,
- overlaps `rho_j = <w_j, u>_Sigma / (||w_j||_Sigma ||u||_Sigma)`.

With `c_k(b, s) = E[phi(s Z + b) h_k(Z)]` the normalised Hermite coefficients of the
shifted and scaled activation, Mehler's formula gives

    Q_ij = E[phi(xi_i + b_i) phi(xi_j + b_j)] = sum_k c_k(b_i, s_i) c_k(b_j, s_j) C_ij^k   (i != j)
    v_j  = E[y phi(xi_j + b_j)]             = sum_k alpha_k c_k(b_j, s_j) rho_j^k

and the squared loss of the whole network is `R = a^T Q a / 2 - a^T v + E[y^2] / 2`
(correlation loss: `-a^T v`). The diagonal `Q_jj = E[phi(s_j Z + b_j)^2]` is computed
directly (closed form for ReLU, quadrature otherwise), not from the series.

**Truncation.** The off-diagonal series is cut at degree `degree` (default `MAX_DEGREE`,
32). Its tail is bounded by Cauchy-Schwarz: `|sum_{k > K} c_ik c_jk C^k| <= |C|^{K+1}
sqrt(T_i T_j)` with `T_j = Q_jj - sum_{k <= K} c_jk^2` (`truncation_bound`). The tail is
largest for nearly parallel rows (`|C| -> 1`) and for activations with slowly decaying
coefficients: ReLU's `c_k^2 ~ k^{-5/2}` leaves `T ~ 1e-3 s^2` at K = 32 (see
docs/decisions.md for measured errors). `v` is exact for polynomial links of degree <= K.

**Zero frozen biases, ReLU: exact.** With `b = None` (all biases zero and not trained) and
ReLU, the off-diagonal `Q_ij` is the arc-cosine kernel (Cho & Saul 2009), exact and with no
series: `Q_ij = s_i s_j k(C_ij)`, `k(C) = (sqrt(1 - C^2) + (pi - arccos C) C) / (2 pi)`,
`k'(C) = (pi - arccos C) / (2 pi)` (finite on [-1, 1]: given to autodiff as a custom JVP,
so `jax.grad` never meets the cancelling infinite slopes of `sqrt` and `arccos` at |C| = 1;
`C` is clipped to [-1, 1] against rounding). `v` needs the coefficients only to the link's
degree. `committee_grad` then costs `O(m^2)` a step, not `O(m^2 K)` (docs/decisions.md).

Coefficients: ReLU in closed form (`c_0 = s (t Phi(t) + phi(t))`, `c_1 = s Phi(t)`,
`c_k = s (-1)^k phi(t) h_{k-2}(t) / sqrt(k (k-1))` for `k >= 2`, `t = b / s`); any other
activation by Gauss-Hermite quadrature (96 nodes, or `2 K + 32` for a degree `K > 32`),
smooth in `(b, s)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.stats as jst
import numpy as np

from ._hermite import MAX_DEGREE, RUNTIME_NODES, gauss_hermite, hermite_basis, horner, is_relu, relu_coeffs
from ._neuron import Plain, neuron_norm


def _arccos_parts(corr):
    """`(sqrt(1 - C^2), pi - arccos C)`, `C` clipped to [-1, 1] (rounding). The angle as
    `pi / 2 + arctan(C / sqrt(1 - C^2))` (the same value, +-inf at |C| = 1 giving 0 and pi):
    one arctan costs a third of an arccos on XLA's CPU (3 vs 12 ns an element, measured)."""
    c = jnp.clip(corr, -1.0, 1.0)
    sq = jnp.sqrt(1.0 - c * c)
    return sq, jnp.pi / 2 + jnp.arctan(c / sq)


@jax.custom_jvp
def arccos_kernel(corr):
    """`k(C) = E[relu(X) relu(Y)]` for standard Gaussians of correlation `C` (Cho & Saul 2009):
    `(sqrt(1 - C^2) + (pi - arccos C) C) / (2 pi)`."""
    sq, angle = _arccos_parts(corr)
    return (sq + angle * jnp.clip(corr, -1.0, 1.0)) / (2 * jnp.pi)


@arccos_kernel.defjvp
def _arccos_kernel_jvp(primals, tangents):
    """`k'(C) = (pi - arccos C) / (2 pi) = P(X > 0, Y > 0)`: finite on [-1, 1]."""
    (c,), (dc,) = primals, tangents
    return arccos_kernel(c), _arccos_parts(c)[1] / (2 * jnp.pi) * dc


def _relu_coeffs_at_zero(scale, degree: int):
    """`c_k(0, s) = s beta_k`, k = 0..degree, shape `scale.shape + (degree + 1,)`."""
    return scale[..., None] * jnp.asarray(relu_coeffs(degree), scale.dtype)


def _zero_bias_relu(problem, b) -> bool:
    """Whether the exact arc-cosine path applies: `b is None` (zero, frozen) and ReLU."""
    return b is None and is_relu(problem.activation)


def _hermite_scan(x, degree: int):
    """`h_0(x), ..., h_degree(x)` on a new last axis by the recurrence as a `lax.scan`
    (a graph whose size does not grow with the degree: compiles fast under `grad`)."""
    if degree == 0:
        return jnp.ones_like(x)[..., None]
    j = jnp.arange(1, degree, dtype=x.dtype)

    def body(carry, jj):
        h_prev, h = carry
        h_next = (x * h - jnp.sqrt(jj) * h_prev) / jnp.sqrt(jj + 1)
        return (h, h_next), h_next

    _, rest = jax.lax.scan(body, (jnp.ones_like(x), x), j)
    return jnp.concatenate([jnp.ones_like(x)[..., None], x[..., None], jnp.moveaxis(rest, 0, -1)], -1)


def shifted_coeffs(f, b, s, degree: int = MAX_DEGREE):
    """`c_k(b, s) = E[f(s Z + b) h_k(Z)]`, k = 0..degree, for arrays `b`, `s > 0` of one
    shape: shape `b.shape + (degree + 1,)`. Differentiable in `b` and `s`."""
    b, s = jnp.broadcast_arrays(jnp.asarray(b), jnp.asarray(s))
    if is_relu(f):
        t = b / s
        pdf, cdf = jst.norm.pdf(t), jst.norm.cdf(t)
        c = [t * cdf + pdf, cdf]
        if degree >= 2:
            k = np.arange(2, degree + 1)
            sign = np.where(k % 2 == 0, 1.0, -1.0) / np.sqrt(k * (k - 1.0))
            c.extend(jnp.moveaxis(pdf[..., None] * _hermite_scan(t, degree - 2) * sign, -1, 0))
        return s[..., None] * jnp.stack(c[: degree + 1], -1)
    x, w = gauss_hermite(max(RUNTIME_NODES, 2 * degree + 32))
    wb = jnp.asarray(w[:, None] * hermite_basis(x, degree, xp=np), b.dtype)
    return f.fn(s[..., None] * jnp.asarray(x, b.dtype) + b[..., None]) @ wb


def shifted_second_moment(f, b, s):
    """`E[f(s Z + b)^2]`, computed directly (not from the truncated series)."""
    b, s = jnp.broadcast_arrays(jnp.asarray(b), jnp.asarray(s))
    if is_relu(f):
        t = b / s
        return s**2 * ((1 + t**2) * jst.norm.cdf(t) + t * jst.norm.pdf(t))
    x, w = gauss_hermite(RUNTIME_NODES)
    return f.fn(s[..., None] * jnp.asarray(x, b.dtype) + b[..., None]) ** 2 @ jnp.asarray(w, b.dtype)


def overlaps(w, problem, cov=None):
    """`(gram, cross, scale)` of rows `w` (m, d): the Sigma-Gram matrix `<w_i, w_j>_Sigma`
    (m, m), `<w_j, u>_Sigma / ||u||_Sigma` (m,), and `s_j = ||w_j||_Sigma / N(w_j)` (m,)."""
    sig = problem.covariance
    sw = sig.apply(w)
    gram = w @ sw.T
    cross = problem.target.sigma_cross(sw, sig)  # (m,) for one direction, (m, k) for k
    scale = jnp.sqrt(jnp.diagonal(gram)) / neuron_norm(w, cov)
    return gram, cross, scale


def _mehler(c, corr):
    """`sum_k c_ik c_jk corr_ij^k` by Horner's rule in `k`."""
    return horner(c[:, None, :] * c[None, :, :], corr)


def committee_moments(problem, gram, cross, scale, b, degree: int = MAX_DEGREE):
    """`(Q, v)`: `Q_ij = E[phi(xi_i + b_i) phi(xi_j + b_j)]` (m, m) and `v_j = E[y phi(xi_j + b_j)]`
    (m,) from the overlaps (see `overlaps`), the biases `b` (m,) and `problem.activation`.
    `b = None`: all biases zero (for ReLU the exact arc-cosine kernel, no series)."""
    act = problem.activation
    sq = jnp.sqrt(jnp.diagonal(gram))
    if _zero_bias_relu(problem, b):
        m = gram.shape[0]
        eye = jnp.eye(m, dtype=bool)
        corr = jnp.where(eye, 0.0, gram / (sq[:, None] * sq[None, :]))
        q = jnp.where(eye, 0.5 * scale**2 * jnp.eye(m, dtype=gram.dtype),
                      scale[:, None] * scale[None, :] * arccos_kernel(corr))
        return q, target_term(problem, _relu_coeffs_at_zero(scale, problem.target.degree), cross, sq)
    if b is None:
        b = jnp.zeros_like(scale)
    deg = max(degree, problem.target.degree)
    c = shifted_coeffs(act, b, scale, deg)
    corr = gram / (sq[:, None] * sq[None, :])
    off = _mehler(c[:, : degree + 1], corr)
    diag = shifted_second_moment(act, b, scale)
    m = gram.shape[0]
    q = jnp.where(jnp.eye(m, dtype=bool), diag[:, None] * jnp.eye(m, dtype=diag.dtype), off)
    return q, target_term(problem, c, cross, sq)


def target_term(problem, c, cross, sq):
    """`v_j = E[y phi(xi_j + b_j)]` (m,): the target's `cross_moment` at the correlations
    `rho_j = cross_j / ||w_j||_Sigma` (one per direction) and the coefficients `c` (m, K + 1).
    A single-index target gives Mehler's `sum_k alpha_k c_jk rho_j^k`, a multi-index one
    its multivariate series (`MultiIndex.cross_moment`)."""
    rho = cross / sq.reshape(sq.shape + (1,) * (cross.ndim - sq.ndim))
    return problem.target.cross_moment(rho, c)


def target_moment(problem):
    """`E[y^2] = E[f_*^2] + tau^2`."""
    return problem.target.second_moment() + problem.noise**2


def risk_from_moments(problem, a, q, v):
    """The network's population risk from `(Q, v)`: the loss's `population` of `E[f^2] =
    a^T Q a`, `E[y f] = a^T v` and `E[y^2]`."""
    return problem.loss.population(a @ q @ a, a @ v, target_moment(problem))


def network_risk(w, a, b, problem, cov=None, degree: int = MAX_DEGREE):
    """Exact population risk (to the Hermite truncation) of `f(x) = sum_j a_j phi(<w_j, x> /
    N(w_j) + b_j)` with rows `w` (m, d), under Gaussian inputs and a single-index target.
    `cov` is the neuron normaliser's covariance (None: plain neuron); `b = None`: zero
    biases (ReLU: exact, no truncation)."""
    gram, cross, scale = overlaps(w, problem, cov)
    q, v = committee_moments(problem, gram, cross, scale, b, degree)
    return risk_from_moments(problem, a, q, v)


def truncation_bound(problem, w, b, cov=None, degree: int = MAX_DEGREE):
    """Elementwise bound (m, m) on the truncation error of the off-diagonal `Q_ij`:
    `|C_ij|^{K+1} sqrt(T_i T_j)`, `T_j = Q_jj - sum_{k <= K} c_jk^2` (zero on the diagonal)."""
    gram, _, scale = overlaps(w, problem, cov)
    act = problem.activation
    c = shifted_coeffs(act, b, scale, degree)
    tail = jnp.maximum(shifted_second_moment(act, b, scale) - jnp.sum(c**2, -1), 0.0)
    sq = jnp.sqrt(jnp.diagonal(gram))
    corr = jnp.abs(gram / (sq[:, None] * sq[None, :]))
    out = corr ** (degree + 1) * jnp.sqrt(tail[:, None] * tail[None, :])
    return jnp.where(jnp.eye(gram.shape[0], dtype=bool), 0.0, out)


def _powers(x, n: int):
    """`x^0, ..., x^n` on a new last axis (unrolled products: exact signs, fused)."""
    p = [jnp.ones_like(x)]
    for _ in range(n):
        p.append(p[-1] * x)
    return jnp.stack(p, -1)


def _pair_sums(ci, cj, corr):
    """`H_rij = sum_k ci[r, k, i] cj[r, k, j] corr_ij^k` (coefficients `(rows, K + 1, m)`) for
    stacked rows `r`: Horner's rule unrolled over `k`, so the whole `(rows, m, m)` block is one
    fused loop. (An optimisation barrier on the inputs, once here, changed nothing: XLA's CPU
    pipeline drops barriers; measured with and without, docs/decisions.md.)"""
    h = jnp.zeros(ci.shape[:1] + corr.shape, corr.dtype)
    for k in range(ci.shape[1] - 1, -1, -1):
        h = h * corr + ci[:, k, :, None] * cj[:, k, None, :]
    return h


def _coeffs_by_degree(f, b, s, degree: int):
    """`shifted_coeffs` with the degree on the leading axis, `(degree + 1, m)`, for the
    fast path (forward only): slices contiguous in `m`."""
    if not is_relu(f):
        x, w = gauss_hermite(max(RUNTIME_NODES, 2 * degree + 32))
        wb = jnp.asarray(w[:, None] * hermite_basis(x, degree, xp=np), b.dtype)
        return wb.T @ f.fn(jnp.asarray(x, b.dtype)[:, None] * s + b)
    t = b / s
    pdf, cdf = jst.norm.pdf(t), jst.norm.cdf(t)
    low = jnp.stack([s * (t * cdf + pdf), s * cdf])[: degree + 1]
    if degree < 2:
        return low
    # c_k = s (-1)^k pdf(t) h_{k-2}(t) / sqrt(k (k - 1)), the h_j by a scan: unrolled, XLA fused
    # every c_k with the whole recurrence before it (O(K^2) work, as much as the pair sums)
    k = np.arange(2, degree + 1)
    sign = (np.where(k % 2 == 0, 1.0, -1.0) / np.sqrt(k * (k - 1.0)))[:, None]
    return jnp.concatenate([low, s * pdf * jnp.moveaxis(_hermite_scan(t, degree - 2), -1, 0) * sign])


def committee_grad(w, a, b, problem, neuron=Plain(), degree: int = MAX_DEGREE):
    """`(dR/dw, dR/da, dR/db)` of `network_risk` by hand, for a `neuron` with `closed_form`:
    `Plain()` (`N = 1`) or `SigmaNorm()` (`N = ||w||_Sigma`): the fast path of population training.

    The series' derivatives are series of the same kind (Stein's identity for the
    coefficients: `dc_k/db = sqrt(k+1) c_{k+1} / s`, `dc_k/ds = (sqrt((k+1)(k+2)) c_{k+2}
    + k c_k) / s`), so the gradient is four Mehler sums over the `(m, m)` pairs, evaluated
    together by an unrolled Horner rule, and no autodiff through the recurrences. For a
    homogeneous activation (ReLU) `dc_k/ds = c_k / s - (b / s) dc_k/db`, so the fourth sum is
    a combination of the other two and only three are evaluated (12 -> 9 m^2 (K+1) flops;
    BENCHMARKS.md). Equal to
    `jax.grad(network_risk)` (exactly so for ReLU's closed-form coefficients; to the
    quadrature's accuracy otherwise).

    `b = None` means all biases zero and not trained (the third output is then None). With
    ReLU that is exact and series-free: `Q_ij = s_i s_j k(C_ij)` (the arc-cosine kernel,
    module docstring), `dQ_ij/dC_ij = s_i s_j k'(C_ij)`, and by homogeneity (`Q` and `v`
    are linear in each `s_j`) `dR/ds_j = a_j dR/da_j / s_j`: `O(m^2)` a step, no degree."""
    sig, act, alpha = problem.covariance, problem.activation, jnp.asarray(problem.link.coeffs)
    dtype = w.dtype
    sw = sig.apply(w)
    gram = w @ sw.T
    su = sig.apply(problem.u) / sig.norm(problem.u)
    x = sw @ problem.u / sig.norm(problem.u)
    n = jnp.sqrt(jnp.diagonal(gram))
    corr = gram / (n[:, None] * n[None, :])
    r = x / n
    s = jnp.ones_like(n) if neuron.unit_scale else n
    m, la = w.shape[0], alpha.shape[-1]
    if _zero_bias_relu(problem, b):
        ga, gs, gr, gamma = _zero_bias_relu_grads(problem, a, corr, r, s, alpha.astype(dtype))
        return _to_rows(gamma, gs, gr, corr, r, n, sw, su, neuron), ga, None
    if b is None:
        b = jnp.zeros_like(s)
    deg = max(degree, la - 1)
    c = _coeffs_by_degree(act, b, s, deg + 2)  # (deg + 3, m)
    k = np.arange(deg + 1, dtype=float)[:, None]
    e = np.sqrt(k + 1) * c[1: deg + 2] / s  # dc_k / db
    f = (np.sqrt((k + 1) * (k + 2)) * c[2:] + k * c[: deg + 1]) / s  # dc_k / ds
    c = c[: deg + 1]
    diag, diag_vjp = jax.vjp(lambda b, s: shifted_second_moment(act, b, s), b, s)
    # v = sum_k alpha_k c_k r^k and its derivatives (to the link's degree)
    rk = _powers(r, la - 1).T  # (la, m)
    al = alpha.astype(dtype)[:, None]
    v = jnp.sum(al * c[:la] * rk, 0)
    dv_dr = jnp.sum(al[1:] * k[1:la] * c[1:la] * rk[: la - 1], 0)
    dv_db = jnp.sum(al * e[:la] * rk, 0)
    dv_ds = jnp.sum(al * f[:la] * rk, 0)
    if not problem.loss.quadratic:  # the correlation loss: -a^T v, no Q
        ga, gb, gs, gr, gamma = -v, -a * dv_db, -a * dv_ds, -a * dv_dr, jnp.zeros_like(gram)
    else:
        kk = degree + 1
        e_top = e[:kk].at[-1].set(0.0)  # sum_{k < K} (k+1) c_{k+1}^i c_{k+1}^j C^k = dQ/dC
        # A homogeneous activation (ReLU: c_k(b, s) = s c_k(b / s, 1)) has dc_k/ds = c_k / s - (b / s)
        # dc_k/db, so its fourth sum is a combination of the first and third: three sums, not four.
        left, right = [c[:kk], e_top, e[:kk]], [c[:kk], e_top * s, c[:kk]]
        if not act.homogeneous:
            left, right = left + [f[:kk]], right + [c[:kk]]
        h = _pair_sums(jnp.stack(left), jnp.stack(right), corr)
        off = ~jnp.eye(m, dtype=bool)
        aa = jnp.where(off, a[:, None] * a[None, :], 0.0)
        q = jnp.where(off, h[0], jnp.diag(diag))
        gd_b, gd_s = diag_vjp(0.5 * a**2)
        ga = q @ a - v
        gb_off = jnp.sum(aa * h[2], -1)
        gs_off = (jnp.sum(aa * h[0], -1) - b * gb_off) / s if act.homogeneous else jnp.sum(aa * h[3], -1)
        gb = gb_off + gd_b - a * dv_db
        gs = gs_off + gd_s - a * dv_ds
        gr = -a * dv_dr
        gamma = 0.5 * aa * s[:, None] * h[1]  # dR/dC_ij, each ordered pair
    return _to_rows(gamma, gs, gr, corr, r, n, sw, su, neuron), ga, gb


def _zero_bias_relu_grads(problem, a, corr, r, s, alpha):
    """`(dR/da, dR/ds, dR/dr, dR/dC)` for ReLU with zero frozen biases, in closed form."""
    la = alpha.shape[-1]
    c = _relu_coeffs_at_zero(jnp.ones((), s.dtype), la - 1)  # beta_k: c_k(0, s) = s beta_k
    rk = _powers(r, la - 1)  # (m, la)
    v = s * (rk @ (alpha * c))
    dv_dr = s * (rk[:, : la - 1] @ (alpha[1:] * c[1:] * np.arange(1, la)))
    gr = -a * dv_dr
    if not problem.loss.quadratic:
        ga = -v
        return ga, a * ga / s, gr, jnp.zeros_like(corr)
    m = corr.shape[0]
    eye = jnp.eye(m, dtype=bool)
    cc = jnp.where(eye, 0.0, corr)
    ss = s[:, None] * s[None, :]
    sq, angle = _arccos_parts(cc)  # once for k(C) and k'(C)
    q = jnp.where(eye, 0.5 * ss, ss * (sq + angle * cc) / (2 * jnp.pi))
    ga = q @ a - v
    gamma = jnp.where(eye, 0.0, (a[:, None] * a[None, :]) * ss * angle / (4 * jnp.pi))
    return ga, a * ga / s, gr, gamma


def _to_rows(gamma, gs, gr, corr, r, n, sw, su, neuron):
    """dR/dw from dR/dC (each ordered pair), dR/ds and dR/dr, by the chain rule through
    `C = G / (n n^T)`, `r = x / n`, `s = n` (plain) or 1 (sigma: `unit_scale`)."""
    gn = -2.0 * jnp.sum(gamma * corr, -1) / n - gr * r / n + (0.0 if neuron.unit_scale else gs)
    ggram = gamma / (n[:, None] * n[None, :]) + jnp.diag(gn / (2 * n))
    return 2.0 * ggram @ sw + (gr / n)[:, None] * su[None, :]
