"""experiments/reuse_dandi_spiked.py: its configs are valid sweeps with the spike where asked, and its
table reads the last step (no sweep run: the default suite stays fast)."""

import jax
import jax.numpy as jnp

import spikejax as sj
from experiments import reuse_dandi_spiked as rd


def test_configs_put_the_spike_on_the_asked_direction_at_n_3d():
    for label, spikes in (rd.VARIANTS[0], rd.VARIANTS[2]):
        cfg = sj.load_config(rd.config(64, spikes))
        assert cfg["n"] == [192] and cfg["batch"] == [192] and cfg["d"] == [64]
        assert cfg["spikes"] == [spikes]
    p = sj.multi_index_problem(64, key=jax.random.key(0), g="tanh_z1_he3_z2", k=2, spikes=rd.VARIANTS[2][1])
    # kappa = d, the spike along u2 (r1 = 0) and not along u1
    cos = lambda a, b: float(abs(a @ b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))  # noqa: E731
    theta = p.covariance.thetas[0]
    assert float(p.covariance.kappas[0]) == 64.0
    assert cos(theta, p.target.U[1]) > 1 - 1e-9 and cos(theta, p.target.U[0]) < 1e-6


def test_table_reads_the_last_step():
    def series(v):
        return dict(mean=[0.0, v], q25=[0.0, v - 0.1], q75=[0.0, v + 0.1])

    src = lambda a, b, c: dict(best_u1=series(a), best_u2=series(b), smallest_cos=series(c))  # noqa: E731
    data = dict(points={"x|64": dict(label="u2, r2 = 1", d=64, empirical=src(0.5, 0.9, 0.02), online=src(0.4, 0.8, 0.01))})
    row = rd.table(data).splitlines()[-1]
    assert row.startswith("| u2, r2 = 1 | 64 | 0.500 [0.400, 0.600] / 0.400 [0.300, 0.500] | 0.900")
