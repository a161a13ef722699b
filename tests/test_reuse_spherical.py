"""experiments/reuse_spherical.py: the spherical stall of claim 1 under reused batches, on the
exact chain, against the 1-D fixed point c*(kappa) computed independently (`theory`)."""

import jax
import numpy as np
import pytest

from experiments import reuse_spherical as rsph
from experiments import theory


@pytest.mark.slow
def test_reused_spherical_neuron_stalls_at_the_fixed_point_and_the_normalized_one_does_not():
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        cfg = dict(rsph.SETTINGS, d=64, seeds=8, horizon=8)
        sph = rsph.finals(cfg, "reused2", "spherical", 10.0)
        nor = rsph.finals(cfg, "reused2", "normalized", 10.0)
    finally:
        jax.config.update("jax_enable_x64", before)
    c_star = theory.spherical_fixed_point(10.0)[0]  # 0.694
    assert sph["median"] == pytest.approx(c_star, abs=0.03)
    assert nor["median"] > 0.9 and np.min(nor["cos_u"]) > np.max(sph["cos_u"])
    assert sph["batch"] == 16 and sph["eta"] == pytest.approx(0.05 * 16 / 64)
