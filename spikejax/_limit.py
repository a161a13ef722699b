"""The d -> infinity limit of one-pass spherical SGD (isotropic, plain neuron).

Per-sample step `c d^{-s/2}`, `s >= 2` the link's information exponent, `m = sqrt(d) <w,u>`,
`tau = n / d^{s-1}`. As `d -> infinity` the exact chain's `m` tends to the d-free diffusion

    dm = c (a m^{s-1} - c V m / 2) dtau + c sqrt(V') dW,   m(0) ~ N(0, 1),

with `a = s alpha_s beta_s` (normalised Hermite coefficients of link and activation), the
loss derivative `g = d loss / d p` (squared: `(phi(p) - y) phi'(p)`, correlation:
`-y phi'(p)`) and, at `rho = 0` (pre-activation `p` independent of the link argument `xi`):
`V = E[g^2]` (the retraction's pull: `|grad_perp|^2 ~ d sum_i g_i^2`) and
`V' = E[g^2 xi^2]` (the noise: the gradient's component along `u` is `sum_i g_i xi_i`).
For `s >= 3` the drift is superlinear and `m` explodes at a finite random time `tau*`;
`n* / d^{s-1} -> tau*` in law for any fixed threshold on `rho`, with a deterministic
correction `D d^{1-s/2}` (`passage_shift`): the macroscopic climb from `rho = O(1)` to the
threshold (derived; at s = 3, c = 0.5, d = 2^8..2^12 the chain's law is consistent with `tau*`
and the shift is below the seed noise; at c = 2 the retraction at macroscopic rho keeps the
chain far from the limit at those d: docs/chain_limit.md). At `s = 2` the diffusion is linear, `m ~ e^{lam tau} M`, and
`n* = d (A log d + B)`, `A = 1 / (2 lam)` (`s2_constants`). docs/chain_limit.md derives it.

`limit_passage` integrates the diffusion in a random clock `sigma`, `dtau = h(m) dsigma`,
`h = (1 + m^2)^{-(s-2)/2}`, in which the explosion becomes exponential growth (Milstein
steps of fixed `dsigma`), stops at `|m| = m_stop` and adds the remaining deterministic time
`m_stop^{2-s} / (a c (s-2))`. Every path is run at `dtau` and at `dtau / 2` on the same
Brownian path: the difference is the step's error, reported beside the answer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._chain import float64_on
from ._hermite import enable_x64, gauss_hermite
from ._loss import AbstractLoss, Correlation
from ._problem import as_function, check, check_int, check_real
from ._registry import as_loss

_NODES = 120
_MEDIAN_ABS_NORMAL = 0.6744897501960817  # median of |N(0, 1)|


class LimitSDE(NamedTuple):
    """The limit diffusion `dm = c (a m^{s-1} - c V m / 2) dtau + c sqrt(Vp) dW`.

    **Fields:** `s` the information exponent; `c` the step constant; `a = s |alpha_s beta_s|`
    (oriented: `m` counts along the escaping sign); `V = E[g^2]`, `Vp = E[g^2 xi^2]` at
    `rho = 0`; `sign = sign(alpha_s beta_s)` (the escaping sign of `rho` for odd `s`).
    """

    s: int
    c: float
    a: float
    V: float
    Vp: float
    sign: float

    def drift(self, m):
        return self.c * (self.a * m ** (self.s - 1) - self.c * self.V * m / 2)

    @property
    def diffusion(self) -> float:
        return self.c * math.sqrt(self.Vp)


class LimitPassage(NamedTuple):
    """First explosions of the limit diffusion. **Fields:** `tau` (paths,) `tau*` at the
    step `dtau / 2` (NaN: not exploded by `max_tau`); `tau_coarse` the same Brownian paths
    at `dtau`; `m0` (paths,) the starts; `step_error` the largest difference of the
    quantiles 0.1, 0.25, 0.5, 0.75, 0.9 between the two steps; `sde` the `LimitSDE`."""

    tau: np.ndarray
    tau_coarse: np.ndarray
    m0: np.ndarray
    step_error: float
    sde: LimitSDE


class S2Constants(NamedTuple):
    """`n* = d (A log d + B)` at `s = 2`, `B = log(threshold / |M|) / lam + K` random,
    `M ~ N(0, M_var)`. **Fields:** `threshold`; `lam` the growth rate `c (2 alpha_2 beta_2 - c V / 2)`;
    `A = 1 / (2 lam)`; `K` the macroscopic climb's finite part; `M_var`; `B_median`."""

    lam: float
    A: float
    K: float
    M_var: float
    B_median: float
    threshold: float

    def B_sample(self, key, n: int) -> np.ndarray:
        """`n` draws of `B` (the law of `n*/d - A log d` as `d -> infinity`)."""
        M = math.sqrt(self.M_var) * np.abs(np.asarray(jax.random.normal(key, (n,), jnp.float64)))
        return np.log(self.threshold / M) / self.lam + self.K


def _values(fn, x):
    """`fn(x)` and `fn'(x)` at the nodes, in float64."""
    with jax.ensure_compile_time_eval(), enable_x64(True):
        xs = jnp.asarray(x, jnp.float64)
        val = jax.vmap(fn)(xs)
        der = jax.vmap(jax.grad(lambda t: fn(t)))(xs)
        return np.asarray(val, np.float64), np.asarray(der, np.float64)


def _setup(link, activation, c, loss, noise):
    f, phi = as_function("link", link), as_function("activation", activation)
    check_real("c", c, lo=0.0, lo_open=True)
    loss = as_loss(loss)
    check_real("noise", noise, lo=0.0)
    s = f.information_exponent()
    check("link", f.name, s is not None and s >= 2,
          f"allowed: a link with information exponent s >= 2 (this one has s = {s}); the limit's time is n / d^(s-1)")
    beta = np.asarray(phi.coeffs)
    ab = float(np.asarray(f.coeffs)[s]) * (float(beta[s]) if beta.size > s else 0.0)
    check("activation", phi.name, abs(ab) > 1e-12,
          f"allowed: an activation with beta_s != 0 at the link's s = {s} (it cannot see the target otherwise)")
    check("activation", phi.name, s % 2 == 1 or ab > 0,
          f"allowed at even s = {s}: alpha_s beta_s > 0 (here {ab:.3g}: the drift pulls m back to 0, no escape)")
    return f, phi, s, ab, loss


def _moments(f, phi, loss: AbstractLoss, noise, rho=0.0):
    """`E[g^2]` with `(p, xi)` standard Gaussian of correlation `rho`, and (at `rho = 0`)
    `E[g^2 xi^2]`; the label is `y = f(xi) + noise eps`, `g = (phi(p) - y) phi'(p)` for a
    `quadratic` loss (squared), `-y phi'(p)` otherwise (correlation)."""
    x, w = gauss_hermite(_NODES)
    fx, _ = _values(f.fn, x)
    if rho == 0.0:
        ph, dph = _values(phi.fn, x)
        E = lambda v: float(w @ v)
        d2 = E(dph**2)
        Ef2, Ef2x2 = E(fx**2), E(fx**2 * x**2)
        if not loss.quadratic:
            return d2 * (Ef2 + noise**2), d2 * (Ef2x2 + noise**2)
        p2d2, pd2 = E(ph**2 * dph**2), E(ph * dph**2)
        V = p2d2 - 2 * pd2 * E(fx) + d2 * (Ef2 + noise**2)
        Vp = p2d2 - 2 * pd2 * E(fx * x**2) + d2 * (Ef2x2 + noise**2)
        return V, Vp
    p = rho * x[:, None] + math.sqrt(1 - rho**2) * x[None, :]  # (xi, zeta) grid
    ph, dph = (v.reshape(p.shape) for v in _values(phi.fn, p.ravel()))
    W = w[:, None] * w[None, :]
    y = fx[:, None]
    g2 = ((ph - y) ** 2 if loss.quadratic else y**2) * dph**2
    return float(np.sum(W * g2) + noise**2 * np.sum(W * dph**2)), None


def limit_sde(link, activation, *, c, loss: str | AbstractLoss = "squared", noise=0.0) -> LimitSDE:
    """The limit diffusion's coefficients (see the module docstring).

    **Arguments:** `link`, `activation`: as for `make_problem` (a name, a callable, a
    coefficient vector); `c`: the per-sample step is `c d^{-s/2}` (`dt = batch c d^{-s/2}`);
    `loss`: `"squared"` or `"correlation"` (or `sj.Squared()`, `sj.Correlation()`); `noise`:
    the label noise's standard deviation.
    """
    f, phi, s, ab, loss = _setup(link, activation, c, loss, noise)
    V, Vp = _moments(f, phi, loss, float(noise))
    return LimitSDE(s=s, c=float(c), a=s * abs(ab), V=V, Vp=Vp, sign=float(np.sign(ab)))


def _population_slope(f, phi, rho):
    """`-R'(rho) = sum_j j alpha_j beta_j rho^{j-1}` on the unit sphere."""
    al, be = np.asarray(f.coeffs), np.asarray(phi.coeffs)
    k = min(al.size, be.size)
    j = np.arange(k)
    return np.sum((j * al[:k] * be[:k])[None, :] * np.asarray(rho)[:, None] ** np.maximum(j - 1, 0)[None, :], axis=1)


def _threshold(threshold):
    check_real("threshold", threshold, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return float(threshold)


def passage_shift(link, activation, *, c, threshold=0.5) -> float:
    """`D` in `n*/d^{s-1} = tau* + D d^{1-s/2} + ...` (`s >= 3`): the time of the macroscopic
    climb `d rho = c (1 - rho^2)(-R'(rho)) d(n d^{-s/2})` from `rho -> 0` to `threshold`,
    less the explosion tail `1 / (a c (s-2) rho^{s-2})` already inside `tau*`:
    `D = int_0^th [1/G - 1/(a c rho^{s-1})] d rho - th^{2-s} / (a c (s-2))`. Finite when
    `alpha_j beta_j = 0` for `s < j <= 2s - 2` (else the correction carries a `log d`).
    Derived, not checked against the chain: it leaves out the retraction at macroscopic `rho`,
    formally of higher order but large at `c = O(1)` and moderate `d` (docs/chain_limit.md)."""
    f, phi, s, ab, _ = _setup(link, activation, c, Correlation(), 0.0)
    th = _threshold(threshold)
    check("link", f.name, s >= 3, f"allowed: s >= 3 (this link has s = {s}; at s = 2 use s2_constants)")
    al, be = np.asarray(f.coeffs), np.asarray(phi.coeffs)
    bad = [j for j in range(s + 1, 2 * s - 1) if j < min(al.size, be.size) and abs(al[j] * be[j]) > 1e-12]
    check("link", f.name, not bad, f"allowed: alpha_j beta_j = 0 for j = {bad} (s < j <= 2s-2); otherwise the "
          "d^{1-s/2} correction carries a log d and is not a constant shift")
    a, sg = s * abs(ab), np.sign(ab)
    x, wq = np.polynomial.legendre.leggauss(200)
    rho = th * (x + 1) / 2
    G = c * (1 - rho**2) * sg * _population_slope(f, phi, rho)
    check("threshold", th, bool(np.all(G > 0)), "allowed: a threshold the population flow reaches (G > 0 below it)")
    integral = th / 2 * float(wq @ (1 / G - 1 / (a * c * rho ** (s - 1))))
    return integral - th ** (2 - s) / (a * c * (s - 2))


def s2_constants(link, activation, *, c, loss: str | AbstractLoss = "squared", noise=0.0,
                 threshold=0.5) -> S2Constants:
    """`n* = d (A log d + B)` at `s = 2` (one-pass spherical SGD, per-sample step `c / d`).

    Early on `m` is the linear diffusion `dm = lam m dtau + c sqrt(V') dW`, `lam = c(2 alpha_2
    beta_2 - c V / 2) > 0`, so `m(tau) ~ e^{lam tau} M`, `M = m0 + c sqrt(V') int e^{-lam t} dW
    ~ N(0, 1 + c^2 V' / (2 lam))`. Then `rho` follows the ODE `d rho / dtau = F(rho) = c (1 -
    rho^2)(-R'(rho)) - c^2 rho E_rho[g^2] / 2` (noise vanishes), from `rho ~ e^{lam tau}|M|/sqrt(d)`
    to `threshold`: `tau* = log(d) / (2 lam) + log(threshold / |M|) / lam + K`,
    `K = int_0^th [1/F - 1/(lam rho)] d rho`. Raises `ValueError` when `lam <= 0` or `F`
    vanishes below the threshold (a stalled flow: no finite `n*`).
    """
    f, phi, s, ab, loss = _setup(link, activation, c, loss, noise)
    th = _threshold(threshold)
    check("link", f.name, s == 2, f"allowed: a link with s = 2 (this one has s = {s})")
    V, Vp = _moments(f, phi, loss, float(noise))
    lam = c * (2 * ab - c * V / 2)
    check("c", c, lam > 0, f"allowed: c < 4 alpha_2 beta_2 / V = {4 * ab / V:.4g} (else lam = {lam:.3g} <= 0: "
          "the retraction beats the signal and m does not grow)")
    x, wq = np.polynomial.legendre.leggauss(64)
    rho = th * (x + 1) / 2
    F = np.array([c * (1 - r**2) * _population_slope(f, phi, np.array([r]))[0]
                  - c**2 * r * _moments(f, phi, loss, float(noise), rho=float(r))[0] / 2 for r in rho])
    check("threshold", th, bool(np.all(F > 0)), "allowed: a threshold below the flow's fixed point (F > 0 on (0, threshold])")
    K = th / 2 * float(wq @ (1 / F - 1 / (lam * rho)))
    M_var = 1 + c**2 * Vp / (2 * lam)
    B_median = math.log(th / (_MEDIAN_ABS_NORMAL * math.sqrt(M_var))) / lam + K
    return S2Constants(lam=lam, A=1 / (2 * lam), K=K, M_var=M_var, B_median=B_median, threshold=th)


def _run(sde: LimitSDE, key, paths: int, m_stop: float, dtau: float, max_tau: float, all_signs: bool, chunk: int):
    s, c, a, V = sde.s, sde.c, sde.a, sde.V
    sig0 = sde.diffusion
    dtype = jnp.float64
    k0, kw = jax.random.split(key)
    m0 = jax.random.normal(k0, (paths,), dtype)
    if not all_signs and s % 2 == 1:
        m0 = jnp.abs(m0)

    def h(m):
        return (1 + m * m) ** (-(s - 2) / 2)

    def step(state, dB, ds):
        m, tau, hit = state
        hm = h(m)
        dh = -(s - 2) * m * (1 + m * m) ** (-s / 2)
        mu = c * (a * m ** (s - 1) - c * V * m / 2)
        new = m + mu * hm * ds + sig0 * jnp.sqrt(hm) * dB + 0.25 * sig0**2 * dh * (dB * dB - ds)  # Milstein
        ntau = tau + hm * ds
        far = (new if s % 2 == 1 else jnp.abs(new)) >= m_stop
        tail = jnp.abs(new) ** (2 - s) / (a * c * (s - 2))
        live = jnp.isnan(hit)
        hit = jnp.where(live & far, ntau + tail, hit)
        keep = live & ~far
        return (jnp.where(keep, new, m), jnp.where(keep, ntau, tau), hit)

    def chunk_body(carry):
        i, coarse, fine = carry
        dB = jax.random.normal(jax.random.fold_in(kw, i), (chunk, 2, paths), dtype) * jnp.sqrt(dtau / 2)

        def body(st, db):
            co, fi = st
            fi = step(fi, db[0], dtau / 2)
            fi = step(fi, db[1], dtau / 2)
            co = step(co, db[0] + db[1], dtau)
            return (co, fi), None

        (coarse, fine), _ = jax.lax.scan(body, (coarse, fine), dB)
        return i + 1, coarse, fine

    def going(carry):
        _, coarse, fine = carry
        live = lambda st: jnp.isnan(st[2]) & (st[1] < max_tau)
        return jnp.any(live(coarse)) | jnp.any(live(fine))

    nan = jnp.full((paths,), jnp.nan, dtype)
    zero = jnp.zeros((paths,), dtype)
    _, coarse, fine = jax.lax.while_loop(going, chunk_body, (0, (m0, zero, nan), (m0, zero, nan)))
    return fine[2], coarse[2], m0


_run_jit = jax.jit(_run, static_argnums=(0, 2, 3, 4, 5, 6, 7))


def limit_passage(link, activation, *, c, loss: str | AbstractLoss = "squared", noise=0.0, paths: int, key,
                  m_stop: float = 1e4, dtau: float = 2e-3, max_tau: float = 100.0,
                  all_signs: bool = False, chunk: int = 256) -> LimitPassage:
    """First explosion times `tau*` of the limit diffusion, `paths` of them in one compiled call.

    **Arguments:**
    - `link`, `activation`, `c`, `loss`, `noise`: as for `limit_sde`; `s >= 3`.
    - `paths`: how many; `key`: a PRNG key (the starts and the Brownian paths).
    - `m_stop`: `m` counts as exploded at `m_stop` (at `|m|` for even `s`); the deterministic
      rest `m_stop^{2-s} / (a c (s-2))` is added.
    - `dtau`: the step in the random clock (`= dtau` in `tau` while `|m| <= 1`, smaller
      beyond); the answer is at `dtau / 2`, checked against `dtau` on the same paths.
    - `max_tau`: paths not exploded by then give NaN.
    - `all_signs`: for odd `s`, start from `m0 ~ N(0, 1)` (default: `|N(0, 1)|` along the
      escaping sign, the seeds `passage_n` counts with `sign="right_sign"`).
    - `chunk`: steps per loop iteration (the granularity of the early stop).

    **Returns:** a `LimitPassage`. Needs float64 (`jax_enable_x64`).
    """
    sde = limit_sde(link, activation, c=c, loss=loss, noise=noise)
    check("link", link, sde.s >= 3, f"allowed: s >= 3 (this link has s = {sde.s}: the limit does not "
          "explode; use s2_constants)")
    check_int("paths", paths, 1)
    check_int("chunk", chunk, 1)
    check_real("m_stop", m_stop, lo=10.0)
    check_real("dtau", dtau, lo=0.0, hi=0.1, lo_open=True)
    check_real("max_tau", max_tau, lo=0.0, lo_open=True)
    check("jax_enable_x64", False, float64_on(),
          "allowed: True; call jax.config.update(\"jax_enable_x64\", True) first (the limit runs in float64)")
    tau, coarse, m0 = _run_jit(sde, key, paths, float(m_stop), float(dtau), float(max_tau), bool(all_signs), chunk)
    tau, coarse = np.asarray(tau, float), np.asarray(coarse, float)
    q = [0.1, 0.25, 0.5, 0.75, 0.9]
    fin = lambda t: np.where(np.isnan(t), np.inf, t)
    err = float(np.max(np.abs(np.quantile(fin(tau), q) - np.quantile(fin(coarse), q))))
    return LimitPassage(tau=tau, tau_coarse=coarse, m0=np.asarray(m0, float) * sde.sign ** (sde.s % 2),
                        step_error=err, sde=sde)
