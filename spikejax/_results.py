"""Sweep results: host arrays for the whole grid, batches scattered into them, and the
labelled, self-describing `xarray.Dataset` (one dimension per swept key, plus `step`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._grid import Group
from ._io import environment
from ._saveat import METRIC_DOCS, STATUS, STATUS_MESSAGES
from ._spec import DIRECTION_METRICS, SweepSpec
from ._train import NETWORK_METRIC_DOCS


def empty_results(spec: SweepSpec) -> dict:
    """Full-grid host arrays; per-neuron arrays carry the `neuron` axis, `test_mse` not.
    Floats in the spec's dtype (float32 unless the sweep runs in float64)."""
    shape = spec.grid_shape
    per_neuron = shape + ((spec.width,) if spec.independent else ())
    r, f, k = len(spec.schedule), spec.float_dtype, spec.k
    out = {
        "records": np.full(per_neuron + (r, len(spec.names)), np.nan, f),
        "status": np.zeros(per_neuron, np.int32),
        "fail_step": np.full(per_neuron, -1, np.int32),
        "test_mse": np.full(shape, np.nan, f),
        "dt_limit": np.full(shape, np.nan, f),
    }
    if k is not None:
        out["directions"] = np.full(per_neuron + (r, len(DIRECTION_METRICS), k), np.nan, f)
        out["overlap"] = np.full(per_neuron + (r, k, spec.units), np.nan, f)
        out["passages"] = np.full(per_neuron + (2 * k + 1,), np.nan, f)
    return out


def scatter(results, group: Group, sl: slice, batch: dict):
    """Copy a batch's (seeds, C', ...) outputs into the full grid arrays."""
    flat = group.flat[:, sl]
    grid = results["test_mse"].size
    for name, values in batch.items():
        target = results[name].reshape((grid,) + results[name].shape[results["test_mse"].ndim:])
        target[flat] = values


# What each variable means: (long_name, description); `variables_table` writes the table
# docs/sweeps.md shows (a test keeps the two equal).
VARIABLES = {
    **METRIC_DOCS,
    "status": ("run status", "; ".join(f"{name}: {why}" for name, why in STATUS_MESSAGES.items())),
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
    "overlap": ("signed overlap of each unit with each direction",
                "<u_i, w_j>_Sigma / (||u_i||_Sigma ||w_j||_Sigma), signed (M_ij of sj.subspace_metrics): over "
                "(direction, unit) for a network, per neuron for independent neurons"),
    "t_cover": ("first passage of each direction's coverage",
                "the first time t = k dt at which coverage reaches the config's threshold; NaN if never"),
    "t_best": ("first passage of each direction's best overlap",
               "the first time t = k dt at which best reaches the config's threshold; NaN if never"),
    "t_subspace": ("first passage of the subspace",
                   "the first time t = k dt at which the smallest principal cosine reaches the config's "
                   "threshold; NaN if never"),
    "direction": ("target direction", "i of u_i, 1..k"),
    "unit": ("hidden unit", "j of a network's row w_j, 0..width-1"),
    "done": ("computed by this process", "true where this part of a multi-process sweep holds results"),
    "step": ("training step", "the step at which the metrics were recorded (log-spaced, with 0 and the last)"),
    "seed": ("seed", "the configuration's seed: its directions, w(0) and samples depend on it alone"),
}


def to_dataset(results, spec: SweepSpec, done=None) -> xr.Dataset:
    """The labelled dataset: one dimension per swept key, plus `step`. Attributes keep their
    types (`fixed_reduced` is a bool); `_io` writes them as netCDF can hold them."""
    config, dims, k = spec.config, spec.axes, spec.k
    coords = {a: spec.values(a) for a in spec.config_axes}
    if spec.independent:
        coords["neuron"] = np.arange(spec.width)
    coords["step"] = np.asarray(spec.schedule)
    data = {m: (dims + ("step",), results["records"][..., i]) for i, m in enumerate(spec.names)}
    if k is not None:
        coords["direction"] = np.arange(1, k + 1)
        for i, m in enumerate(DIRECTION_METRICS):
            data[m] = (dims + ("step", "direction"), results["directions"][..., i, :])
        if spec.network:
            coords["unit"] = np.arange(spec.units)
            data["overlap"] = (dims + ("step", "direction", "unit"), results["overlap"])
        else:
            data["overlap"] = (dims + ("step", "direction"), results["overlap"][..., 0])
        passages = results["passages"]
        data["t_cover"] = (dims + ("direction",), passages[..., :k])
        data["t_best"] = (dims + ("direction",), passages[..., k:2 * k])
        data["t_subspace"] = (dims, passages[..., 2 * k])
    data["status"] = (dims, np.asarray(STATUS, dtype=object)[results["status"]])
    data["fail_step"] = (dims, results["fail_step"])
    if spec.fixed("n2") is not None:
        data["test_mse"] = (spec.config_axes, results["test_mse"])
    if np.isfinite(results["dt_limit"]).any():
        data["dt_limit"] = (spec.config_axes, results["dt_limit"])
    if done is not None:
        data["done"] = (spec.config_axes, done)
    fixed = {key: v[0] for key, v in config.items() if ("seed" if key == "seeds" else key) not in dims}
    attrs = {"config": spec.json(), **{f"fixed_{key}": v for key, v in fixed.items()}}
    attrs.update(environment())
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for name in list(ds.data_vars) + list(ds.coords):
        long_name, description = VARIABLES.get(name, (name, SCHEMA_MEANING.get(name, name)))
        if spec.network and name in NETWORK_METRIC_DOCS:
            long_name, description = name, NETWORK_METRIC_DOCS[name]
        ds[name].attrs.update(long_name=long_name, description=description)
    return ds


def variables_table() -> str:
    """The markdown table of the single-index metrics (docs/sweeps.md shows it); the formulas'
    `|`, `<` and `_` are escaped so that they read as text, not as cells, tags or emphasis."""
    cell = lambda text: text.replace("|", "\\|").replace("<", "&lt;").replace("_", "\\_")
    rows = [f"| `{name}` | {cell(VARIABLES[name][0])}: {cell(VARIABLES[name][1])} |" for name in METRIC_DOCS]
    return "\n".join(["| variable | definition |", "|---|---|", *rows])


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


def failed_batch(seeds: int, width: int, results) -> dict:
    """A batch whose group raised: NaN records, status `error`."""
    grid = results["test_mse"].ndim  # per-neuron arrays have extra trailing axes
    lead = (seeds, width)
    fill = {"status": STATUS.index("error"), "fail_step": 0}
    return {name: np.full(lead + a.shape[grid:], fill.get(name, np.nan), a.dtype) for name, a in results.items()}
