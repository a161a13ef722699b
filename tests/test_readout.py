import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj

KEY = jax.random.key(0)
RIDGES = np.array([0.0, 1e-4, 1e-2, 1.0, 100.0])


def _planted(d, m, kappa=10.0, r1=0.0, link="h2", activation="relu", noise=0.5):
    """A problem and `m` neurons planted at `+u` and `-u` alternately (the two tails of an
    even link need both signs of ReLU neuron, as phase 1 produces them)."""
    p = sj.make_problem(d, key=KEY, kappa=kappa, r1=r1, link=link, activation=activation, noise=noise)
    signs = jnp.where(jnp.arange(m) % 2 == 0, 1.0, -1.0)
    return p, signs[:, None] * p.u


@pytest.mark.parametrize("n, m", [(40, 6), (5, 12)])  # primal (n >= m) and dual (n < m) forms
def test_ridge_path_matches_closed_form(n, m):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, m)) @ np.diag(np.logspace(0, -3, m))
    y = rng.normal(size=n)
    got = np.asarray(sj.ridge_path(jnp.asarray(feats), jnp.asarray(y), RIDGES))
    for lam, a in zip(RIDGES, got):
        if lam == 0:
            want = np.linalg.pinv(feats) @ y  # minimum-norm least squares
        else:
            want = np.linalg.solve(feats.T @ feats / n + lam * np.eye(m), feats.T @ y / n)
        np.testing.assert_allclose(a, want, rtol=1e-7, atol=1e-9)
    assert np.linalg.norm(got[0] - got[-1]) > 0.1  # the ridges really differ


def test_masked_rows_are_the_same_as_dropped_rows():
    rng = np.random.default_rng(2)
    feats, y = jnp.asarray(rng.normal(size=(30, 4))), jnp.asarray(rng.normal(size=30))
    mask = jnp.arange(30) < 17
    np.testing.assert_allclose(
        sj.ridge_path(feats, y, RIDGES, mask), sj.ridge_path(feats[:17], y[:17], RIDGES), rtol=1e-9, atol=1e-12
    )
    x = jnp.asarray(rng.normal(size=(30, 3)))
    val = (x[:10] + 0.2, y[:10])
    for kernel in sj.KERNELS:
        masked = sj.kernel_ridge((x, y), val, val, kernel=kernel, ridges=RIDGES[1:], mask=mask)
        dropped = sj.kernel_ridge((x[:17], y[:17]), val, val, kernel=kernel, ridges=RIDGES[1:])
        np.testing.assert_allclose(masked.val_mse, dropped.val_mse, rtol=1e-8)


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_readout_chooses_the_ridge_a_direct_solve_would():
    p, w = _planted(8, 10)
    w = w + 0.3 * jax.random.normal(KEY, w.shape)  # not planted exactly: the ridge matters
    key = jax.random.key(1)
    fit = jax.jit(lambda key: sj.fit_readout(key, p, w, n2=60, n_val=200, n_test=300, ridges=RIDGES[1:], neuron="sigma"))
    r = fit(key)
    # Rebuild the same biases and samples, and solve each ridge directly in numpy.
    k_bias, k_data = jax.random.split(key)
    b = np.asarray(jax.random.uniform(k_bias, (10,), w.dtype, -2.0, 2.0))
    (x, y), (xv, yv), (xt, yt) = [tuple(map(np.asarray, s)) for s in sj.draw_splits(p, k_data, 60, 200, 300)]
    wn = np.asarray(w / p.covariance.norm(w)[:, None])
    feat = lambda x: np.maximum(x @ wn.T + b, 0.0)
    val, test = [], []
    for lam in RIDGES[1:]:
        a = np.linalg.solve(feat(x).T @ feat(x) / 60 + lam * np.eye(10), feat(x).T @ y / 60)
        val.append(np.mean((feat(xv) @ a - yv) ** 2))
        test.append(np.mean((feat(xt) @ a - yt) ** 2))
    best = int(np.argmin(val))
    np.testing.assert_allclose(r.val_mse, val, rtol=1e-8)
    assert float(r.ridge) == RIDGES[1:][best]
    assert float(r.test_mse) == pytest.approx(test[best], rel=1e-8)
    np.testing.assert_allclose(r.b, b, rtol=1e-12)


def test_arccos_kernel_matches_monte_carlo():
    rng = np.random.default_rng(1)
    d = 5
    x = rng.normal(size=(4, d))
    xp = np.stack([x[0], -x[1], x[2] + 0.1 * rng.normal(size=d), rng.normal(size=d)])  # angles 0, pi, small, random
    w = rng.normal(size=(2_000_000, d))
    prod = np.maximum(w @ x.T, 0) * np.maximum(w @ xp.T, 0)  # (S, 4): pairs (x_i, xp_i)
    mc, se = prod.mean(0), prod.std(0) / np.sqrt(len(w))
    got = np.diag(np.asarray(sj.arccos_kernel(jnp.asarray(x), jnp.asarray(xp))))
    assert np.all(np.abs(got - mc) < 4 * se + 1e-12)
    assert got[1] == pytest.approx(0.0, abs=1e-12)  # opposite vectors: relu(t) relu(-t) = 0
    assert got[0] == pytest.approx(np.sum(x[0] ** 2) / 2, rel=1e-12)  # E relu(g)^2 = |x|^2 / 2


def test_relu_random_features_approach_the_arccos_kernel():
    x = jax.random.normal(KEY, (6, 4))
    g = jax.random.normal(jax.random.key(2), (400_000, 4))
    feats = jax.nn.relu(x @ g.T)
    approx = feats @ feats.T / g.shape[0]
    np.testing.assert_allclose(approx, sj.arccos_kernel(x, x), rtol=0.02, atol=0.01)


@pytest.mark.parametrize("neuron, r1, kappa", [("plain", 0.0, 10.0), ("sigma", 0.0, 10.0), ("sigma", 0.4, 30.0)])
def test_planted_network_reaches_the_noise_floor(neuron, r1, kappa):
    p, w = _planted(16, 64, kappa=kappa, r1=r1)
    fit = jax.jit(lambda w: sj.fit_readout(jax.random.key(1), p, w, n2=4000, n_val=1000, n_test=20000, neuron=neuron))
    r = fit(w)
    floor = float(r.noise_floor)
    assert floor == pytest.approx(0.25)
    se = floor * np.sqrt(2 / 20000)  # sampling error of the test MSE at the floor
    assert floor - 4 * se < float(r.test_mse) < floor + 0.02
    # Random first-layer directions stay far from the floor: the planted w is what helps.
    r_rand = fit(jax.random.normal(KEY, w.shape))
    assert float(r_rand.test_mse) > floor + 0.05


def test_degree3_planted_network_is_exact():
    p, w = _planted(16, 16, link="h3", activation="h3", noise=0.3)  # h3(t + b) spans cubics in t
    r = jax.jit(lambda w: sj.fit_readout(jax.random.key(1), p, w, n2=2000, n_val=500, n_test=20000))(w)
    assert float(r.test_mse) == pytest.approx(0.09, abs=4 * 0.09 * np.sqrt(2 / 20000) + 1e-3)


@pytest.mark.parametrize("method", ["arccos", "rbf", "rf"])
def test_kernels_reach_the_noise_floor_on_a_planted_linear_target(method):
    p = sj.make_problem(8, key=KEY, kappa=4.0, link="h1", activation="relu", noise=0.5)
    train, val, test = sj.draw_splits(p, jax.random.key(3), 1000, 300, 10000)
    if method == "rf":
        fit = lambda *s: sj.rf_ridge(jax.random.key(4), *s, features=1000)
    else:
        fit = lambda *s: sj.kernel_ridge(*s, kernel=method)
    r = jax.jit(fit)(train, val, test)
    assert np.isnan(float(r.noise_floor))
    assert 0.25 - 4 * 0.25 * np.sqrt(2 / 10000) < float(r.test_mse) < 0.25 + 0.03
    # A zero predictor would sit at the floor plus the signal variance, 1.25.


def test_kernel_ridge_against_a_direct_solve():
    x = jax.random.normal(KEY, (50, 3))
    y = jnp.sin(x[:, 0])
    val = (x[:20] + 0.1, y[:20])
    ridges = np.array([1e-3, 1e-1])
    r = sj.kernel_ridge((x, y), val, val, kernel="rbf", ridges=ridges, bandwidth=0.7)
    xs, vs = np.asarray(x), np.asarray(val[0])
    scale = np.sqrt(np.mean(np.sum(xs**2, 1)))
    gram = lambda a, b: np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * (0.7 * scale) ** 2))
    want = []
    for lam in ridges:
        alpha = np.linalg.solve(gram(xs, xs) + 50 * lam * np.eye(50), np.asarray(y))
        want.append(np.mean((gram(vs, xs) @ alpha - np.asarray(val[1])) ** 2))
    np.testing.assert_allclose(r.val_mse, want, rtol=1e-8)


@pytest.mark.slow  # CI time: a cheaper sibling keeps the path covered by default
def test_candidate_first_layers_are_chosen_by_validation():
    p, w = _planted(8, 6, noise=0.3)
    bad = jax.random.normal(KEY, w.shape)
    cands = jnp.stack([bad, w, 0.5 * (bad + w)])
    fit = jax.jit(lambda w: sj.fit_readout(jax.random.key(1), p, w, n2=400, n_val=200, n_test=500))
    many = fit(cands)
    singles = [fit(c) for c in cands]
    assert int(many.index) == 1 and many.val_mse.shape == (3, len(sj.DEFAULT_RIDGES))
    for i, single in enumerate(singles):  # same biases and samples for every candidate
        np.testing.assert_allclose(many.val_mse[i], single.val_mse, rtol=1e-10)
    assert float(many.test_mse) == pytest.approx(float(singles[1].test_mse), rel=1e-10)


def test_fit_readout_vmaps_and_jits():
    p, w = _planted(8, 6)
    keys = jax.random.split(KEY, 3)
    fit = lambda k: sj.fit_readout(k, p, w, n2=50, n_val=20, n_test=30)
    batched = jax.jit(jax.vmap(fit))(keys)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(batched.test_mse[i], jax.jit(fit)(k).test_mse, rtol=1e-10)
    assert batched.a.shape == (3, 6) and batched.val_mse.shape == (3, len(sj.DEFAULT_RIDGES))


@pytest.mark.slow  # 7 s; fit_readout stays checked by the other readout tests
def test_learn_end_to_end_shares_samples_and_reaches_the_floor():
    p = sj.make_problem(16, key=KEY, kappa=16.0, link="h2", activation="relu", noise=0.3)
    run = jax.jit(
        lambda key: sj.learn(
            p, sj.Normalized(), key=key, m=16, n=1024, n2=1024, n_val=256, n_test=4000,
            kernels=("arccos", "rf"), rf_features=256, dt=0.5, steps=300, saveat=sj.SaveAt(steps=4),
        )
    )
    out = run(jax.random.key(5))
    assert (out.n, out.n2, out.n_total, out.stops) == (1024, 1024, 2048, (300,))
    assert out.trajectory.w.shape == (16, 16)
    assert float(np.median(np.abs(out.trajectory.rho[:, -1]))) > 0.9
    assert float(out.network.test_mse) < float(out.noise_floor) + 0.1
    assert set(out.kernels) == {"arccos", "rf"}
    assert all(np.isfinite(float(k.test_mse)) for k in out.kernels.values())


@pytest.mark.slow
def test_learn_stops_keep_the_weights_of_those_steps():
    p = sj.make_problem(8, key=KEY, kappa=4.0, link="h2", noise=0.3)
    kw = dict(m=3, n=64, dt=0.2, saveat=sj.SaveAt(steps=3))
    _, whole, ws = sj.train_first_layer(p, sj.Normalized(), key=KEY, steps=20, stops=(0, 5, 20), **kw)
    _, early, _ = sj.train_first_layer(p, sj.Normalized(), key=KEY, steps=5, **kw)
    np.testing.assert_allclose(ws[1], early.w, rtol=1e-12)
    np.testing.assert_allclose(ws[2], whole.w, rtol=1e-12)
    assert not np.allclose(ws[0], ws[1])
    out = sj.learn(p, sj.Normalized(), key=KEY, **kw, n2=64, n_val=64, n_test=64, steps=20, stops=(0, 5, 20))
    assert int(out.stop) in (0, 5, 20) and out.network.val_mse.shape == (3, len(sj.DEFAULT_RIDGES))


@pytest.mark.slow
def test_learn_samples_are_the_samples_learn_uses():
    p = sj.make_problem(8, key=KEY, kappa=4.0, link="h2", noise=0.3)
    sizes = dict(n=64, n2=48, n_val=32, n_test=40)
    run = lambda n_used, n2_used: sj.learn(
        p, sj.Spherical(), key=jax.random.key(6), m=3, **sizes, kernels=("rbf",), steps=5, n_used=n_used, n2_used=n2_used
    )
    (x1, y1), (x2, y2), val, test = sj.learn_samples(p, key=jax.random.key(6), **sizes)
    assert x1.shape == (64, 8) and x2.shape == (48, 8) and test[0].shape == (40, 8)
    for n_used, n2_used in ((None, None), (20, 30)):
        k1, k2 = n_used or 64, n2_used or 48
        union = (jnp.concatenate([x1[:k1], x2[:k2]]), jnp.concatenate([y1[:k1], y2[:k2]]))
        want = sj.kernel_ridge(union, val, test, kernel="rbf")
        got = jax.jit(run)(n_used, n2_used).kernels["rbf"]
        np.testing.assert_allclose(got.val_mse, want.val_mse, rtol=1e-8)
        assert float(got.test_mse) == pytest.approx(float(want.test_mse), rel=1e-8)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n2=0), "n2"),
        (dict(n_val=2.5), "n_val"),
        (dict(ridges=[-1.0, 1.0]), "ridges"),
        (dict(ridges=[]), "ridges"),
        (dict(neuron="batch"), "neuron"),
        (dict(bias=-1.0), "bias"),
        (dict(neuron="sigma_hat"), "sigma_hat"),
        (dict(n2_used=11), "n2_used"),
    ],
)
def test_fit_readout_rejects_bad_arguments(kwargs, name):
    p, w = _planted(8, 4)
    args = dict(n2=10, n_val=10, n_test=10) | kwargs
    with pytest.raises(ValueError, match=rf"^{name}=.*(allowed|choose|needs)"):
        sj.fit_readout(KEY, p, w, **args)
    with pytest.raises(ValueError, match=r"^w=.*\(m, d=8\)"):
        sj.fit_readout(KEY, p, w[0], n2=10, n_val=10, n_test=10)


def test_kernels_reject_bad_arguments():
    x = jnp.ones((4, 3))
    data = (x, jnp.ones(4))
    with pytest.raises(ValueError, match=r"^kernel='laplace'.*choose one of"):
        sj.kernel_ridge(data, data, data, kernel="laplace")
    with pytest.raises(ValueError, match=r"^ridges=.*\(0.0"):  # a Cholesky solve needs ridge > 0
        sj.kernel_ridge(data, data, data, ridges=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"^bandwidth=0.0"):
        sj.kernel_ridge(data, data, data, kernel="rbf", bandwidth=0.0)
    with pytest.raises(ValueError, match=r"^val=.*d=3"):
        sj.kernel_ridge(data, (jnp.ones((4, 2)), jnp.ones(4)), data)
    with pytest.raises(ValueError, match=r"^features=0"):
        sj.rf_ridge(KEY, data, data, data, features=0)
    p = sj.make_problem(8, key=KEY, kappa=1.0)
    with pytest.raises(ValueError, match=r"^kernels=.*allowed"):
        sj.learn(p, sj.Normalized(), key=KEY, m=2, n=8, n2=8, n_val=8, n_test=8, kernels=("ntk",))
    with pytest.raises(ValueError, match=r"^m=0"):
        sj.learn(p, sj.Normalized(), key=KEY, m=0, n=8, n2=8, n_val=8, n_test=8)
    with pytest.raises(ValueError, match=r"^stops=\(5, 3\).*increasing"):
        sj.learn(p, sj.Normalized(), key=KEY, m=1, n=8, n2=8, n_val=8, n_test=8, steps=10, stops=(5, 3))
