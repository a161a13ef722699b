"""Sweep results: host arrays for the whole grid, batches scattered into them, and the
labelled, self-describing `xarray.Dataset` (one dimension per swept key, plus `step`).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ._io import environment
from ._saveat import METRICS, STATUS, record_schedule
from ._plan import Group, _float_dtype, grid_shape
from ._train import NETWORK_METRIC_DOCS, NETWORK_METRICS

SWEEP_STATUS = STATUS + ("error",)
# A multi-index target (`target` other than "single_index") records these instead of `METRICS`:
# scalars over (axes..., step), per-direction ones over (axes..., step, direction), and the
# first passages (time t = k dt) of each direction's coverage (`t_cover`) and best overlap
# (`t_best`) and of the smallest principal cosine (`t_subspace`) at the config's `threshold`.
MULTI_METRICS = ("risk", "train_risk")
DIRECTION_METRICS = ("coverage", "principal_cos", "best")


def passage_names(k: int, threshold: float) -> dict:
    """The `SaveAt(passages=...)` of a k-index sweep, in the order its `passages` array keeps."""
    names = [f"cover{i + 1}" for i in range(k)] + [f"u{i + 1}" for i in range(k)] + ["subspace"]
    return {name: (threshold,) for name in names}


def _multi_k(config: dict):
    """k of a resolved multi-index config, or None for a single-index one."""
    from ._config import SINGLE, multi_target

    if config["target"][0] == SINGLE:
        return None
    return multi_target({key: config[key][0] for key in ("target", "k", "terms")})[1]


def record_names(config: dict) -> tuple:
    """The recorded observables: `MULTI_METRICS` for a multi-index target, else for a network
    (`network = true`) the network's summaries `NETWORK_METRICS` (per-neuron overlaps as max,
    mean and fraction, excess risk, ||a||), else `METRICS`."""
    if _multi_k(config) is not None:
        return MULTI_METRICS
    return NETWORK_METRICS if config.get("network", [False])[0] else METRICS


def empty_results(config: dict, axes: list[str]):
    """Full-grid host arrays; per-neuron arrays carry the `neuron` axis, `test_mse` not.
    Floats in JAX's default dtype (float32 unless `jax_enable_x64`)."""
    shape = grid_shape(config, axes)
    per_neuron = shape + ((config["width"][0],) if "neuron" in axes else ())
    r = len(record_schedule(config["steps"][0], config["record"][0]))
    f = _float_dtype()
    k = _multi_k(config)
    out = {
        "records": np.full(per_neuron + (r, len(record_names(config))), np.nan, f),
        "status": np.zeros(per_neuron, np.int32),
        "fail_step": np.full(per_neuron, -1, np.int32),
        "test_mse": np.full(shape, np.nan, f),
        "dt_limit": np.full(shape, np.nan, f),
    }
    if k is not None:
        out["directions"] = np.full(per_neuron + (r, len(DIRECTION_METRICS), k), np.nan, f)
        out["passages"] = np.full(per_neuron + (2 * k + 1,), np.nan, f)
    return out


def scatter(results, group: Group, sl: slice, batch: dict):
    """Copy a batch's (seeds, C', ...) outputs into the full grid arrays."""
    flat = group.flat[:, sl]
    grid = results["test_mse"].size
    for name, values in batch.items():
        target = results[name].reshape((grid,) + results[name].shape[results["test_mse"].ndim:])
        target[flat] = values


# What each variable means: (long_name, description). docs/sweeps.md says the same.
VARIABLES = {
    "cos_u": ("cosine to the target direction",
              "<w, u> / (||w|| ||u||): the Euclidean angle between the neuron and the target direction u"),
    "rho": ("overlap with the target in the Sigma geometry",
            "<w, u>_Sigma / (||w||_Sigma ||u||_Sigma): the correlation of the neuron's pre-activation "
            "<w, x> with the target's index <u, x>; it decides prediction"),
    "cos_theta": ("cosine to the spike direction",
                  "<w, theta> / (||w|| ||theta||): the Euclidean angle between the neuron and the spike theta"),
    "norm": ("weight norm", "||w||, the Euclidean norm of the first-layer weights"),
    "risk": ("population risk",
             "the expected loss of the neuron (a = 1, b = 0) on fresh data, in closed form"),
    "train_risk": ("training risk",
                   "the mean loss on the n training samples (source='empirical'); NaN for other sources"),
    "status": ("run status",
               "ok; nonfinite (a NaN or inf appeared); diverged (||w|| passed max_norm); oscillating (the last "
               "steps of a fixed-step run alternate: a period-2 orbit of the map, not the flow); max_steps (the "
               "adaptive solver ran out of attempts before the horizon); error (the configuration's group could "
               "not run, see the errors attribute)"),
    "fail_step": ("step of failure", "the first step at which the run was nonfinite or diverged; -1 when ok"),
    "test_mse": ("phase-2 test error",
                 "test mean squared error of the ridge readout trained on n2 fresh samples over the "
                 "frozen first layer (noise floor: noise**2)"),
    "dt_limit": ("Euler step limit",
                 "2 / |lambda_max| of the field's Jacobian at w(0) or at u, whichever is smaller (power "
                 "iteration): a fixed step above it can oscillate; only for fixed-step runs on a deterministic source"),
    "coverage": ("coverage of each target direction",
                 "the Sigma norm of the projection of the unit u_i onto the span of the neurons (Sigma geometry): "
                 "1 once the neurons together carry u_i (sj.coverage)"),
    "principal_cos": ("principal cosines",
                      "cosines of the principal angles between span U and the neurons' span, Sigma geometry, "
                      "sorted down, zeros where no neuron reaches (sj.principal_cosines)"),
    "best": ("best overlap of each target direction",
             "max_j |<u_i, w_j>_Sigma| / (||u_i||_Sigma ||w_j||_Sigma): one neuron along u_i"),
    "t_cover": ("first passage of each direction's coverage",
                "the first time t = k dt at which coverage reaches the config's threshold; NaN if never"),
    "t_best": ("first passage of each direction's best overlap",
               "the first time t = k dt at which best reaches the config's threshold; NaN if never"),
    "t_subspace": ("first passage of the subspace",
                   "the first time t = k dt at which the smallest principal cosine reaches the config's "
                   "threshold; NaN if never"),
    "direction": ("target direction", "i of u_i, 1..k"),
    "done": ("computed by this process", "true where this part of a multi-process sweep holds results"),
    "step": ("training step", "the step at which the metrics were recorded (log-spaced, with 0 and the last)"),
    "seed": ("seed", "the configuration's seed: its directions, w(0) and samples depend on it alone"),
}


def to_dataset(results, config: dict, axes: list[str], done=None) -> xr.Dataset:
    """The labelled dataset: one dimension per swept key, plus `step`. Attributes keep their
    types (`fixed_reduced` is a bool); `_io` writes them as netCDF can hold them."""
    coords = {a: config["seeds" if a == "seed" else a] for a in axes if a != "neuron"}
    if "neuron" in axes:
        coords["neuron"] = np.arange(config["width"][0])
    coords["step"] = record_schedule(config["steps"][0], config["record"][0])
    dims = tuple(axes)
    config_dims = tuple(a for a in axes if a != "neuron")
    k = _multi_k(config)
    data = {m: (dims + ("step",), results["records"][..., i]) for i, m in enumerate(record_names(config))}
    if k is not None:
        coords["direction"] = np.arange(1, k + 1)
        for i, m in enumerate(DIRECTION_METRICS):
            data[m] = (dims + ("step", "direction"), results["directions"][..., i, :])
        passages = results["passages"]
        data["t_cover"] = (dims + ("direction",), passages[..., :k])
        data["t_best"] = (dims + ("direction",), passages[..., k:2 * k])
        data["t_subspace"] = (dims, passages[..., 2 * k])
    data["status"] = (dims, np.asarray(SWEEP_STATUS, dtype=object)[results["status"]])
    data["fail_step"] = (dims, results["fail_step"])
    if config["n2"][0] is not None:
        data["test_mse"] = (config_dims, results["test_mse"])
    if np.isfinite(results["dt_limit"]).any():
        data["dt_limit"] = (config_dims, results["dt_limit"])
    if done is not None:
        data["done"] = (config_dims, done)
    fixed = {k: v[0] for k, v in config.items() if ("seed" if k == "seeds" else k) not in axes}
    attrs = {"config": json.dumps(config, sort_keys=True), **{f"fixed_{k}": v for k, v in fixed.items()}}
    attrs.update(environment())
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    network = bool(config.get("network", [False])[0])
    for name in list(ds.data_vars) + list(ds.coords):
        long_name, description = VARIABLES.get(name, (name, SCHEMA_MEANING.get(name, name)))
        if network and name in NETWORK_METRIC_DOCS:
            long_name, description = name, NETWORK_METRIC_DOCS[name]
        ds[name].attrs.update(long_name=long_name, description=description)
    return ds


SCHEMA_MEANING = {
    "d": "dimension", "kappa": "spike strength (Sigma's condition number is 1 + kappa)",
    "r2": "spike exponent, kappa = d**r2", "r1": "alignment exponent, <u, theta> = d**(-r1)",
    "n": "labelled samples (source='empirical')", "n_unlabelled": "samples for SigmaHat (0: the true Sigma)",
    "batch": "samples a step (source='online')", "noise": "label-noise standard deviation tau",
    "dt": "step size", "link": "target link f_*", "activation": "neuron activation phi", "loss": "loss",
    "dynamic": "training dynamic", "source": "where the gradient's expectations come from",
    "normalisation": "covariance normalisation", "input_dist": "input distribution",
    "neuron": "first-layer neuron (width > 1)",
}


def _failed_batch(seeds: int, width: int, results):
    """A batch whose group raised: NaN records, status `error`."""
    grid = results["test_mse"].ndim  # per-neuron arrays have extra trailing axes
    lead = (seeds, width)
    fill = {"status": SWEEP_STATUS.index("error"), "fail_step": 0}
    return {name: np.full(lead + a.shape[grid:], fill.get(name, np.nan), a.dtype) for name, a in results.items()}
