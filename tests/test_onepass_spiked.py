"""The spiked one-pass rate (docs/onepass_spiked.md, `experiments.theory.spiked_one_pass_bound`):
its regime table against a hand computation, and its one tested prediction on the exact chain.

The chain prediction: the normalized dynamic with the target along the spike (r1 = 0, r2 = 1/4,
kappa = d^{1/4}), s = 3 (h3 link and neuron, correlation loss), run at the best step's scaling
delta(d) = c kappa m*^{s-2} / (d + kappa^2), m* = kappa / sqrt(d + kappa^2), needs
n ~ (d / kappa^2)^{s-1} = d^{1.0} samples to |rho| >= 1/2. The alternatives it must be told
apart from: d^{1.5} (the noise kept below the start d^{-3/8}, i.e. the effective dimension d/kappa
without the spike's own noise), d^{1.625} (the project's step c d^{-3/2}), d^{1.75} (the
preconditioned rate in the same cell) and d^{2} (isotropic, Ben Arous-Gheissari-Jagannath).
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj

from optimized import compiled


def _theory():
    return importlib.import_module("experiments.theory")


# ------------------------------------------------------------------ the regime table by hand


@pytest.mark.parametrize("s, r1, r2, dynamic, expected", [
    # preconditioned: 1 + 2 (s - 2) a for s >= 3 (a from claim 3), 1 for s <= 2
    (3, 0.0, 0.5, "preconditioned", 1.5),      # a = (1 - 0.5) / 2 = 1/4
    (4, 0.25, 0.4, "preconditioned", 2.4),     # r1 <= r2 <= 2 r1: a = 0.25 + 0.5 - 0.4 = 0.35; 1 + 4 * 0.35
    (4, 0.5, 0.25, "preconditioned", 3.0),     # r2 <= r1: a = 1/2, isotropic d^{s-1}
    (5, 0.0, 1.0, "preconditioned", 1.0),      # a = 0: n ~ d
    (2, 0.25, 0.75, "preconditioned", 1.0),    # d log d
    (1, 0.0, 0.5, "preconditioned", 1.0),
    # normalized, r2 <= 2 r1 / 3: Ben Arous-Gheissari-Jagannath's max(1, s - 1)
    (3, 0.5, 0.25, "normalized", 2.0),
    (4, 0.3, 0.2, "normalized", 3.0),
    (2, 0.0, 0.0, "normalized", 1.0),
    # normalized, r2 > 2 r1: max(1, s - 1) max(0, 1 - 2 r2), the rate in dimension d / kappa^2
    (3, 0.0, 0.25, "normalized", 1.0),
    (4, 0.1, 0.3, "normalized", 1.2),          # 3 * 0.4
    (2, 0.0, 0.25, "normalized", 0.5),
    (4, 0.25, 0.75, "normalized", 0.0),        # r2 >= 1/2: bounded in d up to logs
])
def test_spiked_one_pass_regime_table(s, r1, r2, dynamic, expected):
    th = _theory()
    b = th.spiked_one_pass_bound(s, r1, r2, dynamic)
    assert b.exponent == pytest.approx(expected, abs=1e-12)
    assert b.algorithm == th.ONE_PASS and b.observable == th.WEAK and not b.sufficient
    assert b.status == "derived here (heuristic)" and "best step" in b.rate


@pytest.mark.parametrize("s, r1, r2, dynamic", [
    (3, 0.25, 0.3, "normalized"),   # 2 r1 / 3 < r2 <= 2 r1: not derived
    (3, 0.25, 0.5, "normalized"),   # r2 = 2 r1: the boundary, excluded
    (3, 0.0, 0.5, "spherical"),
    (3, 0.0, 0.5, "vanilla"),
])
def test_spiked_one_pass_refuses_where_not_derived(s, r1, r2, dynamic):
    th = _theory()
    assert th.spiked_one_pass_scope(s, r1, r2, dynamic)
    with pytest.raises(ValueError, match="not"):
        th.spiked_one_pass_bound(s, r1, r2, dynamic)


def test_spiked_one_pass_verdicts():
    """Spiked Gaussian one-pass rows with a dynamic are judged against the spiked rate: as a rate
    where the project's step c d^{-s/2} is a best step (preconditioned s = 2), as a lower bound
    elsewhere; isotropic rows and rows without a dynamic keep their old verdicts."""
    th = _theory()
    d = [64, 128, 256, 512]
    iso = th.verdict(1.9, 2.1, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=3, isotropic=True, dynamic="normalized")
    assert iso.startswith("consistent (agrees) vs Ben Arous-Gheissari-Jagannath 2021")
    old = th.verdict(1.3, 1.4, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=4, r2=1.0)
    assert old.startswith("no bound applies") and "spiked" not in old
    prec = th.verdict(0.95, 1.3, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=2, r2=0.5, dynamic="preconditioned")
    assert prec.startswith("consistent (agrees) vs spiked one-pass rate, preconditioned (one-pass SGD")
    assert "derived here (heuristic): n ~ d log d at the best step" in prec
    assert th.verdict(1.6, 1.8, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=2, r2=0.5,
                      dynamic="preconditioned").startswith("VIOLATES")
    above = th.verdict(0.6, 0.8, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=2, r2=0.5, dynamic="normalized")
    assert above.startswith("consistent (above the best step's rate")  # best step: d^0 polylog; lower bound
    below = th.verdict(1.2, 1.4, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=3, r2=0.5, dynamic="preconditioned")
    assert below.startswith("below the best step's rate: investigate")  # 1.5 at the best step
    wedge = th.verdict(1.0, 1.2, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=3, r1=0.25, r2=0.3,
                       dynamic="normalized")
    assert wedge.startswith("no bound applies (") and "not derived for 2 r1 / 3 < r2 <= 2 r1" in wedge
    t = th.verdict(1.0, 1.2, d, algorithm=th.ONE_PASS, observable=th.WEAK, s=2, r2=0.5, dynamic="normalized",
                   gaussian=False)
    assert "assumes Gaussian inputs" in t


# ------------------------------------------------------------------ the chain at the best step

def _best_step_slope(ds, seeds, steps, batch=8):
    """Median n* to |rho| >= 1/2 of normalized one-pass SGD at the best step's scaling, on the
    exact chain (one compiled call for every d: the problem and the step are traced), and the
    least-squares slope of log median n* against log d."""
    th = _theory()
    s = 3
    ab, v = th.noise_constant("h3", "h3", "correlation", 0.0)
    c = 0.1 * 2 * s * abs(ab) / v  # the project's drift/signal ratio 0.1 (experiments.harness.onepass.step_constant)
    sa = sj.SaveAt(steps=2, passages={"rho": (0.5,)})

    def run(p, dt, keys):
        return jax.vmap(lambda k: sj.simulate(p, sj.Normalized(), sj.Online(batch), key=k, dt=dt, steps=steps,
                                              reduced=True, saveat=sa).passages["rho"][0])(keys)

    med, ns, fast = [], [], None
    for d in ds:
        kappa = float(d) ** 0.25
        big = d + kappa**2
        delta = c * kappa * (kappa / np.sqrt(big)) / big  # per sample: kappa m* / (d + kappa^2)
        p = sj.make_problem(d, key=None, kappa=kappa, r1=0.0, link="h3", activation="h3", loss="correlation",
                            noise=0.0, reduced=True)
        args = (p, jnp.float64(batch * delta), jax.random.split(jax.random.key(d), seeds))
        fast = fast or compiled(run, *args)  # the problem and the step are traced: one compile for every d
        t = np.asarray(fast(*args))
        n = np.where(np.isnan(t), np.inf, t / delta)  # samples = batch * (t / dt) = t / delta
        assert np.mean(np.isfinite(n)) > 0.6, (d, np.mean(np.isfinite(n)))  # the median is a passed seed
        med.append(np.median(n))
        ns.append(n)
    return float(np.polyfit(np.log(ds), np.log(med), 1)[0]), med, ns


@pytest.fixture
def x64():
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)  # the chain keeps its state in float64
    yield
    jax.config.update("jax_enable_x64", before)


# The band [0.75, 1.3] around the predicted 1.0: the rate has no log factor at s = 3; over these d
# the effective dimension is 1 + d^{1/2} (not d^{1/2}), whose square has slope 0.97 over 2^8..2^12
# and 0.98 over 2^8..2^14; a seed's log n* has a spread of 0.7-1.0, so the median of 32 seeds is
# good to about 0.2 in log and the slope over 3 d (a factor 16) to about 0.1 (0.04 by bootstrap for
# 64 seeds over 4 d). Measured: 1.12 (this default test) and 1.05, 90% bootstrap [0.98, 1.11] (the
# slow one). Every alternative lies above the band: 1.5, 1.625, 1.75, 2 (module docstring).
BAND = (0.75, 1.3)


@pytest.mark.slow  # CI time; the derivation's tables stay in the default run
def test_normalized_best_step_rate_on_the_chain(x64):
    """d = 2^8, 2^10, 2^12, 32 seeds (about 15 s: one compile, 3 x 2M samples)."""
    slope, med, _ = _best_step_slope([2**8, 2**10, 2**12], seeds=32, steps=2**13)
    assert BAND[0] <= slope <= BAND[1], (slope, med)


@pytest.mark.slow
def test_normalized_best_step_rate_on_the_chain_wide(x64):
    """d = 2^8..2^14, 64 seeds (about a minute)."""
    slope, med, _ = _best_step_slope([2**8, 2**10, 2**12, 2**14], seeds=64, steps=2**15)
    assert BAND[0] <= slope <= BAND[1], (slope, med)
