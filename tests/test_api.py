import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikejax as sj

KEY = jax.random.key(0)


def _final_risk(kappa, dt, dynamic=sj.Normalized(), reduced=True, solver=sj.Euler()):
    p = sj.make_problem(32, key=KEY, kappa=kappa, r1=0.2, link="h2", noise=0.1)
    tr = sj.simulate(p, dynamic, key=jax.random.key(1), solver=solver, dt=dt, steps=200, reduced=reduced)
    return tr.risk[-1]


def test_vmap_over_kappa_matches_loop():
    kappas = jnp.array([1.0, 10.0, 100.0])
    batched = jax.jit(jax.vmap(lambda k: _final_risk(k, 0.1)))(kappas)
    looped = jnp.stack([_final_risk(k, 0.1) for k in kappas])
    np.testing.assert_allclose(batched, looped, rtol=1e-10)
    assert len(set(np.round(np.asarray(batched), 6))) == 3


@pytest.mark.parametrize("dynamic", [sj.Spherical(), pytest.param(sj.Normalized(), marks=pytest.mark.slow),
                                     pytest.param(sj.Preconditioned(), marks=pytest.mark.slow)])
def test_grad_wrt_dt_and_kappa_matches_finite_differences(dynamic):
    f = jax.jit(lambda k, dt: _final_risk(k, dt, dynamic, reduced=False))
    dt = 0.02  # mid-flight after 200 steps, so the final risk still depends on dt
    gk, gdt = jax.grad(f, argnums=(0, 1))(10.0, dt)
    h = 1e-6
    fd_k = (f(10.0 + h, dt) - f(10.0 - h, dt)) / (2 * h)
    fd_dt = (f(10.0, dt + h) - f(10.0, dt - h)) / (2 * h)
    assert float(gk) == pytest.approx(float(fd_k), rel=1e-5, abs=1e-9)
    assert float(gdt) == pytest.approx(float(fd_dt), rel=1e-5, abs=1e-9)
    assert abs(float(gdt)) > 1e-6  # a real dependence, not a zero gradient


def test_same_key_same_result_and_keys_matter():
    p = sj.make_problem(32, key=KEY, kappa=5.0, noise=0.2)
    run = lambda k: sj.simulate(p, sj.Normalized(), sj.Empirical(128), key=k, steps=50)
    a, b, c = run(jax.random.key(3)), run(jax.random.key(3)), run(jax.random.key(4))
    np.testing.assert_array_equal(a.w, b.w)
    assert not np.allclose(a.w, c.w)


def test_jit_equals_eager():
    p = sj.make_problem(16, key=KEY, kappa=5.0)
    run = lambda p: sj.simulate(p, sj.Spherical(), key=jax.random.key(1), steps=100)
    np.testing.assert_allclose(jax.jit(run)(p).cos_u, run(p).cos_u, rtol=1e-12)


def test_chunked_advance_equals_one_scan():
    p = sj.make_problem(16, key=KEY, kappa=5.0, noise=0.1)
    sim, w0 = sj.prepare(p, sj.Normalized(), sj.Empirical(64), key=jax.random.key(1), steps=100,
                         saveat=sj.SaveAt(steps=10))
    whole = sj.result(sim, sj.advance(sim, sj.init(sim, w0), 100))
    state = sj.init(sim, w0)
    for _ in range(4):  # 4 chunks of 30 steps: the last 20 steps past the end are no-ops
        state = sj.advance(sim, state, 30)
    chunked = sj.result(sim, state)
    np.testing.assert_allclose(chunked.rho, whole.rho, rtol=1e-12)
    np.testing.assert_allclose(chunked.train_risk, whole.train_risk, rtol=1e-12)
    assert int(state.k) == 100


def test_record_schedule_is_log_spaced_with_ends():
    s = sj.record_schedule(10_000, 20)
    assert s[0] == 0 and s[-1] == 10_000 and len(s) <= 20 and np.all(np.diff(s) > 0)
    ratios = s[2:] / s[1:-1]
    assert ratios.max() < 3  # roughly geometric
    np.testing.assert_array_equal(sj.record_schedule(5, 32), np.arange(6))
    np.testing.assert_array_equal(sj.record_schedule(700, 2), [0, 700])


def test_builtin_functions_are_one_object_so_jit_caches():
    """`fn` is static: two problems with the same link must hit the same compiled code."""
    a = sj.make_problem(8, key=KEY, kappa=1.0, link="h3", activation="h3")
    b = sj.make_problem(8, key=KEY, kappa=2.0, link="h3", activation="h3")
    assert a.link.fn is b.link.fn and a.activation.fn is b.activation.fn
    traces = []
    f = jax.jit(lambda p: (traces.append(1), p.covariance.kappa * 2)[1])
    f(a), f(b)
    assert len(traces) == 1


BAD_PROBLEMS = [
    (dict(d=1), "d"),
    (dict(kappa=-1.0), "kappa"),
    (dict(kappa=float("nan")), "kappa"),
    (dict(kappa=float("inf")), "kappa"),
    (dict(r1=0.7), "r1"),
    (dict(r1=-0.1), "r1"),
    (dict(noise=-0.5), "noise"),
    (dict(link="sin"), "link"),
    (dict(activation="gelu"), "activation"),
    (dict(loss="hinge"), "loss"),
    (dict(normalisation="none"), "normalisation"),
    (dict(inputs="laplace"), "inputs"),
    (dict(input_dist="student_t"), "input_dist"),  # renamed: the message names inputs=sj.StudentT(nu)
    (dict(kappa=1.0, r2=0.5), "kappa/r2"),
]


@pytest.mark.parametrize("kwargs,name", BAD_PROBLEMS)
def test_bad_problem_arguments_raise_naming_parameter(kwargs, name):
    args = dict(d=8, kappa=1.0)
    args.update(kwargs)
    if "r2" in kwargs and "kappa" not in kwargs:
        args.pop("kappa")
    with pytest.raises(ValueError, match=rf"^{name}=.*(allowed|choose|give|renamed)"):
        sj.make_problem(key=KEY, **args)


BAD_RUNS = [
    (dict(dt=0.0), "dt"),
    (dict(dt=float("nan")), "dt"),
    (dict(dynamic="normalized"), "dynamic"),  # names are for TOML and the CLI
    (dict(record=8), "record"),  # renamed arguments name their new form
    (dict(n=64), "n"),
    (dict(optimizer=None), "optimizer"),
    (dict(dynamic=sj.Empirical(4)), "dynamic"),
    (dict(source="empirical"), "source"),
    (dict(source=sj.Online(8), solver=sj.Dopri5()), "solver"),
    (dict(source=sj.Population(), saveat=sj.SaveAt(steps=(0, 5))), "saveat.steps"),
    (dict(source=sj.Population(), solver="euler"), "solver"),
    (dict(steps=0), "steps"),
    (dict(n_unlabelled=4), "n_unlabelled"),
    (dict(neuron="batchnorm"), "neuron"),
    (dict(neuron="sigma_hat"), "neuron"),
    (dict(reduced=True, source=sj.Empirical(10)), "reduced"),
    (dict(reduced=True, dynamic=sj.Normalized(), n_unlabelled=8), "reduced"),
]


@pytest.mark.parametrize("kwargs,name", BAD_RUNS)
def test_bad_run_arguments_raise_naming_parameter(kwargs, name):
    p = sj.make_problem(8, key=KEY, kappa=1.0)
    kw = dict(dynamic=sj.Normalized(), source=sj.Population())
    kw.update(kwargs)
    dyn, src = kw.pop("dynamic"), kw.pop("source")
    with pytest.raises(ValueError, match=rf"^{name}="):
        sj.simulate(p, dyn, src, key=KEY, **kw)


def test_blind_activation_is_refused_by_the_population_only():
    """ReLU cannot see the He3 link (beta_3 = 0): the population gradient has no signal along u,
    so `Population` (and its reduced flow) refuses the pair when the run is prepared; a sampled
    source can still learn it by reusing samples (the generative-exponent route), so it warns
    and runs. The problem itself is not refused."""
    p = sj.make_problem(8, key=KEY, kappa=1.0, link="h3", activation="relu")
    for reduced in (False, True):
        with pytest.raises(ValueError, match=r"^activation='relu' is not allowed; .*s=3 .*beta_3 = 0"):
            sj.simulate(p, sj.Normalized(), key=KEY, steps=4, reduced=reduced)
    for source in (sj.Empirical(16), sj.Online(4), sj.Reused(4, 2)):
        with pytest.warns(UserWarning, match=r"^activation='relu': .*generative-exponent route"):
            tr = sj.simulate(p, sj.Normalized(), source, key=KEY, steps=4)
        assert np.all(np.isfinite(tr.rho))


def test_loss_and_neuron_by_name_or_object():
    """A loss and a neuron normaliser are objects; their names are accepted at the boundary and
    resolve to equal objects, so a run by name and a run by object share one compiled program."""
    by_name = sj.make_problem(8, key=KEY, kappa=1.0, loss="correlation")
    by_object = sj.make_problem(8, key=KEY, kappa=1.0, loss=sj.Correlation())
    assert by_name.loss == by_object.loss == sj.LOSSES["correlation"]() and by_name.loss.name == "correlation"
    assert jax.tree_util.tree_structure(by_name) == jax.tree_util.tree_structure(by_object)
    a = sj.simulate(by_name, sj.Normalized(), key=KEY, steps=20, neuron="plain")
    b = sj.simulate(by_object, sj.Normalized(), key=KEY, steps=20, neuron=sj.Plain())
    np.testing.assert_array_equal(a.rho, b.rho)
    with pytest.raises(ValueError, match="^loss=3 is not allowed; choose one of 'squared', 'correlation' or give"):
        sj.make_problem(8, key=KEY, kappa=1.0, loss=3)
    with pytest.raises(ValueError, match="^neuron='sigma2' is not allowed; choose one of 'plain', 'sigma'"):
        sj.simulate(by_name, sj.Normalized(), key=KEY, steps=4, neuron="sigma2")


BAD_OBJECTS = [
    (lambda: sj.Empirical(0), "n"),
    (lambda: sj.Empirical(16, n_used=20), "n_used"),
    (lambda: sj.Online(0), "batch"),
    (lambda: sj.Reused(8, 0), "reuse"),
    (lambda: sj.StudentT(2.0), "nu"),
    (lambda: sj.Dopri5(rtol=-1.0), "rtol"),
    (lambda: sj.Dopri5(max_steps=0), "max_steps"),
    (lambda: sj.SaveAt(steps=1), "saveat.steps"),
    (lambda: sj.SpikedCovariance.make(jnp.ones(3) / jnp.sqrt(3.0), -1.0), "kappa"),
    (lambda: sj.SpikedCovariance.make(jnp.ones(3) / jnp.sqrt(3.0), 1.0, "none"), "normalisation"),
    (lambda: sj.MultiSpikeCovariance(thetas=jnp.ones((2, 3)), kappas=jnp.ones(2), scale=jnp.ones(())), "thetas"),
]


@pytest.mark.parametrize("make,name", BAD_OBJECTS)
def test_objects_refuse_bad_values_at_construction(make, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        make()


def test_population_refuses_non_gaussian_inputs():
    """The closed forms are Gaussian: a Rademacher problem must not get a Gaussian answer."""
    p = sj.make_problem(16, key=KEY, kappa=4.0, inputs=sj.Rademacher())
    with pytest.raises(ValueError, match=r"^inputs=.*Gaussian"):
        sj.simulate(p, sj.Normalized(), key=KEY, steps=10)
    tr = sj.simulate(p, sj.Normalized(), sj.Empirical(256), key=KEY, steps=10)
    assert np.all(np.isnan(np.asarray(tr.risk))) and np.all(np.isfinite(np.asarray(tr.train_risk)))


def test_user_functions_and_coefficients_as_links():
    p = sj.make_problem(16, key=KEY, kappa=2.0, link=[0.0, 0.0, 0.6, 0.8], activation=lambda x: jnp.tanh(x) + 0.3 * x**2)
    assert p.link.information_exponent() == 2
    tr = sj.simulate(p, sj.Normalized(), key=jax.random.key(1), steps=50)
    assert np.all(np.isfinite(np.asarray(tr.rho)))


@pytest.mark.slow  # 9.5 s; masked sample sizes stay checked by test_sweep.py's grid tests
def test_masked_sample_size_equals_smaller_data_set():
    """n_used = 100 of 256 padded samples is exactly the run on those first 100 samples."""
    p = sj.make_problem(16, key=KEY, kappa=5.0, noise=0.2)
    key = jax.random.key(3)
    padded = sj.simulate(p, sj.Normalized(), sj.Empirical(256, n_used=100), key=key, steps=60)
    sim, w0 = sj.prepare(p, sj.Normalized(), sj.Empirical(256), key=key, steps=60)
    z, y, _ = sim.data
    sim_small = eqx.tree_at(lambda s: s.data, sim, (z[:100], y[:100], None), is_leaf=lambda x: x is None)
    small = sj.result(sim_small, sj.advance(sim_small, sj.init(sim_small, w0), 60))
    np.testing.assert_allclose(padded.w, small.w, rtol=1e-10)
    sizes = jnp.array([32.0, 64.0, 256.0])
    runs = jax.vmap(lambda m: sj.simulate(p, sj.Normalized(), sj.Empirical(256, n_used=m), key=key, steps=60).rho[-1])(sizes)
    full = sj.simulate(p, sj.Normalized(), sj.Empirical(256), key=key, steps=60).rho[-1]
    assert float(runs[-1]) == pytest.approx(float(full), rel=1e-10)
    assert len(set(np.round(np.asarray(runs), 8))) == 3
