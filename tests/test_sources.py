"""Sources by sample use, and first passages recorded inside the scan."""

import jax
import numpy as np
import pytest

import spikejax as sj

KEY = jax.random.key(0)


def _problem():
    return sj.make_problem(24, key=KEY, kappa=4.0, r1=0.25, link="h2", activation="relu", noise=0.2)


def test_reused_spans_online_and_full_batch():
    """R = 1 is online SGD; one batch for every step is full-batch GD on those samples."""
    p, kw = _problem(), dict(key=jax.random.key(3), dt=0.1, steps=40)
    online = sj.simulate(p, sj.Normalized(), sj.Online(64), **kw)
    r1 = sj.simulate(p, sj.Normalized(), sj.Reused(64, 1), **kw)
    np.testing.assert_allclose(r1.w, online.w, rtol=0, atol=1e-10)
    full = sj.simulate(p, sj.Normalized(), sj.Empirical(64), **kw)
    rall = sj.simulate(p, sj.Normalized(), sj.Reused(64, 40), **kw)
    np.testing.assert_allclose(rall.w, full.w, rtol=0, atol=1e-10)
    r4 = sj.simulate(p, sj.Normalized(), sj.Reused(64, 4), **kw)
    assert not np.allclose(r4.w, online.w) and not np.allclose(r4.w, full.w)


def test_reuse_changes_batches_every_r_steps():
    """Steps 0..R-1 see one batch: the gradient at a fixed w is the same within a block."""
    p = _problem()
    sim, w0 = sj.prepare(p, sj.Normalized(), sj.Reused(32, 3), key=jax.random.key(1))
    g = [np.asarray(sim.source.grad(w0, sim.data, k, sim)) for k in range(6)]
    np.testing.assert_array_equal(g[0], g[2])
    np.testing.assert_array_equal(g[3], g[5])
    assert not np.allclose(g[2], g[3])


@pytest.mark.parametrize("source", [sj.Online(32), sj.Empirical(256)])
def test_first_passages_agree_with_a_post_hoc_scan(source):
    p, steps, dt = _problem(), 600, 0.05
    th = (0.3, 0.6, 0.9)
    tr = sj.simulate(p, sj.Spherical(), source, key=jax.random.key(2), dt=dt, steps=steps,
                     saveat=sj.SaveAt(steps=steps + 1, passages={"rho": th, "cos_u": th}))
    assert np.array_equal(np.asarray(tr.steps), np.arange(steps + 1))  # every step recorded
    for name in ("rho", "cos_u"):
        values = np.abs(np.asarray(tr.ys[name]))
        for t, got in zip(th, np.asarray(tr.passages[name])):
            hits = np.nonzero(values >= t)[0]
            want = hits[0] * dt if hits.size else np.nan
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isfinite(np.asarray(tr.passages["rho"])).any()


def test_held_passages_agree_with_a_post_hoc_scan():
    """`SaveAt(held=True)`: the start of the last stay above each threshold, NaN if below at the
    end; a noisy run (a large step on a reused batch) whose first passages are excursions."""
    p, steps, dt = _problem(), 400, 0.6
    th = (0.3, 0.5, 0.7, 0.9)
    tr = sj.simulate(p, sj.Normalized(), sj.Reused(8, 4), key=jax.random.key(5), dt=dt, steps=steps,
                     saveat=sj.SaveAt(steps=steps + 1, passages={"rho": th}, held=True))
    values = np.abs(np.asarray(tr.ys["rho"]))
    later = 0
    for t, first, got in zip(th, np.asarray(tr.passages["rho"]), np.asarray(tr.passages["rho_held"])):
        below = np.nonzero(values < t)[0]
        want = np.nan if values[-1] < t else (below[-1] + 1 if below.size else 0) * dt
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
        later += bool(np.isfinite(got) and got > first) or bool(np.isfinite(first) and np.isnan(got))
        above = np.asarray(tr.passages["rho_above"])[th.index(t)]
        assert above == (np.sum(values[int(round(first / dt)):] >= t) if np.isfinite(first) else 0)
    assert later >= 1  # some first passage was an excursion: the two differ
    with pytest.raises(ValueError, match="^saveat.held="):
        sj.SaveAt(held=1)


@pytest.mark.parametrize("passages", [{"rho": (0.0,)}, {"rho": (1.5,)}, {"rho": ()}])
def test_bad_thresholds_are_refused(passages):
    with pytest.raises(ValueError, match="^saveat.passages="):
        sj.SaveAt(passages=passages)
