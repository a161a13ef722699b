"""The theory the experiments compare with, in one place: the predictions (the paper's
hypothesis for claim 4, claim 1's fixed point, the gradient flow's escape times and exponents, the
known one-pass and reuse rates) and the verdicts of a measured exponent against a bound.

A verdict names its bound (`Bound`): who states it, for which algorithm (one-pass SGD, full-batch
GD, gradient flow) and observable, and whether it is proved or reconstructed (our reading or
extrapolation). A measured row is judged only against bounds for its own algorithm and observable
(`bounds_for`); "VIOLATES" only where its interval excludes such a bound; a row no bound covers
says "no bound applies" and shows the nearest bound for reference only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize_scalar

from spikejax import interval_text

BETA2_RELU = 1 / np.sqrt(4 * np.pi)  # ReLU's h2 coefficient


def hypothesis_eta(s, r1, r2):
    """Our reading of SPEC claim 4: `eta = 1 + 2 (s - 1) a(r1, r2)`, with `d^{-a}` the claim-3
    scale of `|rho(w(0))|`: `s` for `r2 <= r1`, falling, `1` at `r2 = 1`."""
    return 1 + 2 * (s - 1) * init_exponent(r1, r2)


def init_exponent(r1, r2):
    """`a` with `|rho(w(0))| ~ d^{-a}` (claim 3)."""
    if r2 <= r1:
        return 0.5
    if r2 <= 2 * r1:
        return r1 + 0.5 - r2
    return (1 - r2) / 2


def noise_constant(link: str, activation: str, loss: str, noise: float) -> tuple[float, float]:
    """`(alpha_s beta_s, V)` at the start (`rho = 0`, unit pre-activation scale): the signal
    coefficient of the population drift `d rho/dt = s alpha_s beta_s rho^{s-1}` and
    `V = E[g^2]`, the second moment of the loss's derivative in the pre-activation, so that
    the batch gradient's squared norm is about `V d / batch` (Gauss-Hermite, 120 nodes)."""
    from spikejax import hermite_function, gauss_hermite

    f, phi = hermite_function(link), hermite_function(activation)
    s = f.information_exponent()
    ab = float(np.asarray(f.coeffs)[s]) * float(np.asarray(phi.coeffs)[s])
    x, wq = gauss_hermite(120)
    a = np.asarray(phi(jnp.asarray(x)), float)
    da = np.asarray(jax.vmap(jax.grad(lambda t: phi(t)))(jnp.asarray(x)), float)
    y2 = float(np.sum(wq * np.asarray(f(jnp.asarray(x)), float) ** 2)) + noise**2  # E[y^2]; E[y] = 0 for s >= 1
    if loss == "correlation":
        v = y2 * np.sum(wq * da**2)
    else:  # g = (phi(p) - y) phi'(p), p independent of y at rho = 0
        v = np.sum(wq * a**2 * da**2) + y2 * np.sum(wq * da**2)
    return ab, float(v)


def escape_time(s: int, d: int, ab: float) -> float:
    """Gradient-flow time from `rho0 = 0.5 / sqrt(d)` to `rho = 0.9` (`d rho/dt = s ab rho^{s-1} (1 - rho^2)`,
    leading order): the horizon's scale."""
    r0 = 0.5 / np.sqrt(d)
    if s == 1:
        return 3.0 / ab
    if s == 2:
        return (np.log(0.9 / r0) + 1.0) / (2 * ab)
    return (r0 ** (2 - s) / (s * (s - 2)) + 1.0) / ab


def flow_time(s: int, ab: float, rho0, end: float = 0.9) -> np.ndarray:
    """Gradient-flow time from each start `|rho0|` to `end` (`d rho/dt = s ab rho^{s-1} (1 - rho^2)`),
    by quadrature: the reference a seed's own escape is compared with (no heavy-tailed start noise)."""
    from scipy.integrate import quad

    r0 = np.abs(np.asarray(rho0, float))
    return np.array([quad(lambda r: 1 / (s * ab * r ** (s - 1) * (1 - r * r)), r, end)[0] if r < end else 0.0
                     for r in r0.ravel()]).reshape(r0.shape)


def flow_exponent(s: int, ab: float, ds) -> tuple[float, np.ndarray]:
    """What the gradient flow itself predicts over these `d`: `n* = T(d) d^{s/2} / c` with
    `T(d)` the flow time `int_{rho0}^{0.9} d rho / (s ab rho^{s-1} (1 - rho^2))` from the median
    start `rho0 = 0.674 / sqrt(d)` (the median of `|N(0, 1)|`; `T` is monotone in `rho0`, so this
    is the median seed's time). Returns the least-squares slope over `ds` and the (D,) n* c.
    At small `d` the start is not small (`rho0 = 0.17` at `d = 16`) and the slope is below the
    asymptotic `max(1, s - 1)`; this is the reference that separates that from a disagreement."""
    from scipy.integrate import quad

    ds = np.asarray(ds, float)
    t = np.array([quad(lambda r: 1 / (s * ab * r ** (s - 1) * (1 - r * r)), 0.674 / np.sqrt(d), 0.9)[0] for d in ds])
    nc = t * ds ** (s / 2)
    return float(np.polyfit(np.log(ds), np.log(nc), 1)[0]), nc


def samples_per_time(batch, dt):
    """One-pass SGD's samples per unit of flow time at a step: `batch` samples every step of
    length `dt` (the passage kind's `dt = c batch d^{-s/2}` gives `d^{s/2} / c`)."""
    return np.asarray(batch, float) / np.asarray(dt, float)


def law_n(flow_time, batch, dt):
    """The step-share law (issue 24): one-pass SGD needs the population flow's time to the
    threshold times the samples it draws per unit time, `n* = T x batch / dt` (a prediction:
    the step's noise and discreteness are not in it)."""
    return np.asarray(flow_time, float) * samples_per_time(batch, dt)


def law_exponent(ds, flow_time, batch, dt) -> dict:
    """The law's exponent over `ds` and its two parts: least-squares slopes in log-log (as
    `sj.fit_exponent` fits the measured medians) of `n*_law`, of the flow time `T(d)` and of the
    samples per unit time; the first is the sum of the other two (exactly, the fit being linear)."""
    from spikejax import fit_exponent

    ds = np.asarray(ds, float)
    slope = lambda y: float(fit_exponent(ds, np.asarray(y, float))[0])
    return dict(eta=slope(law_n(flow_time, batch, dt)), flow=slope(flow_time),
                step=slope(samples_per_time(batch, dt) * np.ones(ds.shape)))


def known_rate(s):
    """Ben Arous, Gheissari, Jagannath (2021): one-pass SGD needs n ~ d^{max(1, s-1)} (d log d at s = 2)."""
    return {1: "d", 2: "d log d"}.get(s, f"d^{s - 1}")


def generative_rate(s: int) -> int:
    """With sample reuse the generative exponent `k*` governs (He_s: `k* = 1` for odd `s`, 2 for
    even `s`); the rate `d^{max(1, k* - 1)}` up to logs (Dandi et al. 2024, Arnaboldi et al. 2024,
    Lee, Oko, Suzuki, Wu 2024): linear in `d` for He3 and He4."""
    k = 1 if s % 2 else 2
    return max(1, k - 1)


def hypothesis_eta_cos(r2, s=2):
    """The bulk-time reading for `cos_u` (ours, not the paper's): one-pass SGD at a fixed `c` uses
    `n = t d / c` samples, and the normalized flow needs a time `t ~ (1 + kappa) log(...)` to move
    the bulk, so `n* ~ d^{1 + r2}` up to logs (for `s = 2`)."""
    return 1.0 + r2


def spherical_fixed_point(kappa: float) -> tuple[float, float]:
    """`(c*, rho*)`: the minimiser of the 1-D reduced spherical risk at `theta = u`, ReLU, `h2`
    link, unit_top (`c = <w, u>`, `sigma_w^2 = (1 + kappa c^2) / (1 + kappa)`, `rho = c / sigma_w`,
    `R(c) = sigma_w^2 / 4 - beta_2 c^2 / sigma_w + const`). As `kappa -> inf`, `c* -> 2 beta_2 = 1/sqrt(pi)`."""

    def parts(c):
        sw = np.sqrt((1 + kappa * c * c) / (1 + kappa))
        return sw, sw * sw / 4 - BETA2_RELU * c * c / sw

    c = float(minimize_scalar(lambda c: parts(c)[1], bounds=(0, 1), method="bounded", options=dict(xatol=1e-12)).x)
    return c, c / parts(c)[0]


ONE_PASS, FULL_BATCH, FLOW = "one-pass SGD", "full-batch GD", "gradient flow"
WEAK = "weak recovery |rho| >= threshold"


class Bound(NamedTuple):
    """A rate a measured exponent can be judged against.

    `sufficient`: an upper bound only (n up to `d^exponent` suffices); otherwise a rate (necessary and
    sufficient up to logs). `status`: "proved", "reconstructed" (our reading or extrapolation) or
    "derived here (heuristic)" (docs/onepass_spiked.md). `lower`: a rate that holds at the best step
    while the rows ran at another one, so only its lower side binds them (no step does better)."""

    source: str
    algorithm: str
    observable: str
    status: str
    exponent: float
    rate: str
    sufficient: bool
    lower: bool = False  # a rate at the best step, judged as a lower bound (`vs_lower`): the rows' step may do worse

    def label(self) -> str:
        return f"{self.source} ({self.algorithm}, {self.observable}, {self.status}: {self.rate})"


def one_pass_bound(s) -> Bound:
    """Ben Arous, Gheissari, Jagannath 2021: one-pass SGD on isotropic Gaussian data at the step
    `c d^{-s/2}` per sample weakly recovers with `n ~ d^{max(1, s-1)}` (d log d at s = 2), proved."""
    return Bound("Ben Arous-Gheissari-Jagannath 2021", ONE_PASS, WEAK, "proved", max(1, s - 1),
                 f"n ~ {known_rate(s)}", sufficient=False)


def paper_bound(s, r1, r2) -> Bound:
    """SPEC claim 4 in our reading `1 + 2 (s - 1) a` (`d^{-a}` the claim-3 start): a sufficient
    sample size for full-batch GD, reconstructed."""
    hyp = hypothesis_eta(s, r1, r2 or 0.0)
    return Bound("the paper's claim 4", FULL_BATCH, WEAK, "reconstructed", hyp, f"n <= d^{hyp:g}", sufficient=True)


def reuse_bound(s) -> Bound:
    """The generative-exponent rate with sample reuse (`generative_rate`): shown for multi-pass
    SGD (Dandi et al. 2024; Lee, Oko, Suzuki, Wu 2024), carried over to full-batch GD by us, so a
    reference for full-batch rows, never a verdict."""
    k = generative_rate(s)
    return Bound("the reuse rate (generative exponent)", FULL_BATCH, WEAK, "reconstructed", k,
                 f"n ~ d^{k} up to logs", sufficient=False)


NORMALIZED, PRECONDITIONED = "normalized", "preconditioned"


def _isotropic_like(r1, r2) -> bool:
    """Normalized, `r2 <= 2 r1 / 3`: the spike changes neither the overlap's drift nor its noise."""
    return r2 <= 2 * r1 / 3 + 1e-12


def spiked_one_pass_scope(s, r1, r2, dynamic) -> str:
    """Why no spiked one-pass rate is derived for `(s, r1, r2, dynamic)` (docs/onepass_spiked.md);
    "" where `spiked_one_pass_bound` gives one. Gaussian inputs and the true Sigma are assumed."""
    if dynamic not in (NORMALIZED, PRECONDITIONED):
        return f"the spiked one-pass rate is derived for the normalized and preconditioned dynamics, not {dynamic}"
    if not (0 <= r1 <= 0.5 and 0 <= r2 <= 1):
        return f"the spiked one-pass rate is derived for 0 <= r1 <= 1/2, 0 <= r2 <= 1 (here r1 = {r1:g}, r2 = {r2:g})"
    if dynamic == NORMALIZED and not (_isotropic_like(r1, r2) or r2 > 2 * r1 + 1e-12):
        return (f"the normalized spiked one-pass rate is not derived for 2 r1 / 3 < r2 <= 2 r1 (here r1 = {r1:g}, "
                f"r2 = {r2:g}): the spike's noise and drift both matter there")
    return ""


def spiked_one_pass_exponent(s, r1, r2, dynamic) -> float:
    """The exponent of one-pass SGD's sample complexity at the best (d-dependent, constant in time)
    step, spiked Gaussian inputs, weak recovery on |rho| (docs/onepass_spiked.md; heuristic):

    - preconditioned: isotropic spherical SGD in whitened coordinates from `|rho(0)| ~ d^{-a}`:
      `1 + 2 (s - 2) a` for `s >= 3`, 1 for `s <= 2` (d log d at `s = 2`);
    - normalized, `r2 <= 2 r1 / 3`: the spike is invisible to the overlap, Ben Arous-Gheissari-
      Jagannath's `max(1, s - 1)`;
    - normalized, `r2 > 2 r1`: that rate in the effective dimension `1 + d^{1 - 2 r2}`:
      `max(1, s - 1) max(0, 1 - 2 r2)`.

    Raises `ValueError` where it is not derived (`spiked_one_pass_scope`)."""
    why = spiked_one_pass_scope(s, r1, r2, dynamic)
    if why:
        raise ValueError(why)
    if dynamic == PRECONDITIONED:
        return 1.0 + 2 * (s - 2) * init_exponent(r1, r2) if s >= 3 else 1.0
    if _isotropic_like(r1, r2):
        return float(max(1, s - 1))
    return max(1, s - 1) * max(0.0, 1 - 2 * r2)


def spiked_fixed_step_exponent(s, r1, r2, dynamic) -> float | None:
    """The exponent at the project's step `c d^{-s/2}` per sample (`s >= 2`): the population flow's
    time to the threshold times `d^{s/2}` samples per unit time, `s/2 + (s - 2) a - g`, with `d^g`
    the spike's speed-up of the overlap's drift (`g = r2` normalized with `r2 > 2 r1`, else 0), plus
    a log at `s = 2`. None where it is not derived (`s = 1`, normalized `r2 > 1/2`, and wherever
    `spiked_one_pass_scope` excludes the cell)."""
    if s < 2 or spiked_one_pass_scope(s, r1, r2, dynamic) or (dynamic == NORMALIZED and r2 > 0.5):
        return None
    g = r2 if dynamic == NORMALIZED and not _isotropic_like(r1, r2) else 0.0
    return s / 2 + (s - 2) * init_exponent(r1, r2) - g


def _spiked_rate(s, e, dynamic, r2) -> str:
    if e == 0:
        return "n = O(1) in d up to logs"
    base = "d" if e == 1 else f"d^{e:g}"
    return f"n ~ {base}" + (" log d" if s == 2 and not (dynamic == PRECONDITIONED and r2 == 1) else "")


def spiked_one_pass_bound(s, r1, r2, dynamic) -> Bound:
    """One-pass SGD on spiked Gaussian data (`kappa = d^{r2}`, `<u, theta> = d^{-r1}`, true Sigma)
    at the best step: `spiked_one_pass_exponent`, a rate (necessary and sufficient up to logs,
    heuristic: docs/onepass_spiked.md). Raises `ValueError` where it is not derived."""
    e = spiked_one_pass_exponent(s, r1, r2, dynamic)
    return Bound(f"spiked one-pass rate, {dynamic}", ONE_PASS, WEAK, "derived here (heuristic)", e,
                 _spiked_rate(s, e, dynamic, r2) + " at the best step", sufficient=False)


def bounds_for(algorithm, observable, s, r1, r2, isotropic: bool, gaussian: bool = True,
               dynamic: str | None = None) -> tuple[list, str]:
    """The bounds that apply to a measured row, and why none does when the list is empty. The reuse
    rate (`reuse_bound`) is shown for reference only: it is proved for other algorithms. A spiked
    Gaussian one-pass row of a `dynamic` (normalized, preconditioned) is judged against
    `spiked_one_pass_bound` where it is derived: as a rate where the rows' step `c d^{-s/2}` is a
    best step (the fixed-step exponent equals it), else as a lower bound (`Bound.lower`)."""
    if observable != WEAK:
        return [], f"no bound is for {observable}"
    if algorithm == ONE_PASS:
        if isotropic and gaussian:
            return [one_pass_bound(s)], ""
        if isotropic:
            return [], "Ben Arous-Gheissari-Jagannath 2021 assumes Gaussian inputs"
        why = ("Ben Arous-Gheissari-Jagannath 2021 is isotropic (here kappa > 0); the paper's claim 4 is for "
               "full-batch GD")
        if dynamic is None or r2 is None:
            return [], why
        if not gaussian:
            return [], why + "; the spiked one-pass rate assumes Gaussian inputs"
        scope = spiked_one_pass_scope(s, r1, r2, dynamic)
        if scope:
            return [], why + "; " + scope
        b = spiked_one_pass_bound(s, r1, r2, dynamic)
        fixed = spiked_fixed_step_exponent(s, r1, r2, dynamic)
        if fixed is None or abs(fixed - b.exponent) > 1e-9:
            b = b._replace(lower=True)
        return [b], ""
    if algorithm == FULL_BATCH:
        return [paper_bound(s, r1, r2)], ""
    return [], f"no bound is for {algorithm}"


def log_slope(d) -> float:
    """What one `log d` factor adds to a slope fitted over `d0..d1`: `ln(ln d1 / ln d0) / ln(d1 / d0)`."""
    d0, d1 = float(min(d)), float(max(d))
    return float(np.log(np.log(d1) / np.log(d0)) / np.log(d1 / d0))


def vs_paper(lo, hi, hyp, d) -> str:
    """The verdict of an interval `[lo, hi]` against a sufficient `d^hyp`, which holds up to a
    polylog factor (`log_slope`)."""
    if hi < hyp:
        return "consistent, tighter"
    if lo <= hyp:
        return "consistent"
    if lo <= hyp + log_slope(d):
        return f"consistent up to the bound's log factor (one log d adds {log_slope(d):.2f} to the slope here)"
    return "VIOLATES"


def vs_rate(lo, hi, rate, d, flow=None, tail=None) -> str:
    """An interval against a rate (necessary and sufficient up to logs, as d -> infinity). Above by
    more than a log factor violates; below is pre-asymptotic where the flow's own slope over these
    `d` (`flow`) lies in the interval, or where the fit over the large-d end (`tail`:
    `(d_lo, d_hi, eta, lo, hi)`) contains the rate; otherwise it asks to investigate."""
    if lo <= rate <= hi:
        return "consistent (agrees)"
    if lo > rate:
        if flow is not None and lo <= flow <= hi:
            return f"consistent (agrees with the flow's {flow:.2f} over these d)"
        if lo <= rate + log_slope(d):
            return f"consistent up to the rate's log factor (one log d adds {log_slope(d):.2f} to the slope here)"
        return "VIOLATES" + (f" (flow over these d: {flow:.2f})" if flow is not None else "")
    if flow is not None and lo <= flow <= hi:
        return f"consistent (below the asymptotic rate, as the flow's {flow:.2f} over these d: pre-asymptotic)"
    if tail is not None:
        d_lo, d_hi, eta, tlo, thi = tail
        end = f"the fit over d = {d_lo:g}..{d_hi:g} is {eta:.2f} " + interval_text(tlo, thi)
        if tlo <= rate <= thi and np.isfinite(tlo) and np.isfinite(thi):  # an open interval settles nothing
            return f"consistent (below over the whole range from its small-d octaves: {end}, which contains {rate:g})"
        return f"below: investigate ({end}" + (f"; flow over these d: {flow:.2f})" if flow is not None else ")")
    return "below: investigate" + (f" (flow over these d: {flow:.2f})" if flow is not None else "")


def vs_lower(lo, hi, rate, d) -> str:
    """An interval against a rate at the best step, the rows having run at another step: at or above
    it is consistent (no step does better; this one may do worse); below asks to investigate (the
    rate is heuristic, and a pre-asymptotic slope can lie below it)."""
    if lo <= rate <= hi:
        return "consistent (agrees with the best step's rate)"
    if lo > rate:
        return "consistent (above the best step's rate: the runs' step is not the best step)"
    return "below the best step's rate: investigate"


def judge(lo, hi, d, bound: Bound, flow=None, tail=None) -> str:
    """`<judgement> vs <bound>`: the interval against one bound that applies."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"no interval (vs {bound.label()})"
    if bound.sufficient:
        word = vs_paper(lo, hi, bound.exponent, d)
    elif bound.lower:
        word = vs_lower(lo, hi, bound.exponent, d)
    else:
        word = vs_rate(lo, hi, bound.exponent, d, flow, tail)
    return f"{word} vs {bound.label()}"


def reference(lo, hi, bound: Bound) -> str:
    """A bound that does not apply, shown beside a row: where the interval lies, no verdict."""
    ref = f"for reference ({bound.source}: {bound.rate}, {bound.algorithm}, {bound.status})"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ref
    return ref + ": " + ("below" if hi < bound.exponent else ("above" if lo > bound.exponent else "contains it"))


def verdict(lo, hi, d, *, algorithm, observable, s, r1=0.0, r2=None, isotropic=False, gaussian=True,
            flow=None, tail=None, dynamic=None) -> str:
    """Every verdict of a measured row: one `judge` per bound that applies (`bounds_for`; isotropic
    full-batch rows add the reuse rate for reference), or "no bound applies (why)" with the nearest
    bound for reference. `flow` and `tail` (the isotropic flow's slope, the large-d fit) go only to
    the isotropic one-pass rate and to a spiked one judged as a rate from the isotropic start
    (`|rho(0)| ~ d^{-1/2}`, where the overlap's flow is the isotropic one up to constants);
    `dynamic` selects the spiked one-pass rate."""
    bounds, why = bounds_for(algorithm, observable, s, r1, r2, isotropic, gaussian, dynamic)
    if bounds:
        iso = lambda b: b.algorithm == ONE_PASS and (b.source.startswith("Ben Arous") or (
            b.source.startswith("spiked") and not b.lower and init_exponent(r1, r2) == 0.5
            and flow is not None and np.isfinite(flow)))
        text = "; ".join(judge(lo, hi, d, b, flow if iso(b) else None, tail if iso(b) else None) for b in bounds)
        if algorithm == FULL_BATCH and isotropic and gaussian:
            text += "; " + reference(lo, hi, reuse_bound(s))
        return text
    near = one_pass_bound(s) if algorithm != FULL_BATCH and isotropic else paper_bound(s, r1, r2)
    return f"no bound applies ({why}); {reference(lo, hi, near)}"
