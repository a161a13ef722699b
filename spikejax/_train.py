"""The width-`m` network as the training state: `simulate(..., network=Network(...))`.

`f(x) = sum_j a_j phi(<w_j, x> / N(w_j) + b_j)` is trained as a whole on the squared loss
`E[(f(x) - y)^2] / 2` (or the correlation loss `-E[y f(x)]`): the neurons interact
through the residual. What moves:

- the first layer, row by row, by any `AbstractDynamic` (`Spherical`, `Normalized`, ...:
  each row is a `w` of today's single-neuron engine);
- the second layer `a`: `"frozen"` or `"joint"`, with a learning-rate ratio `lr_ratio`
  (its own time scale);
- the biases `b`: `"frozen"` or `"trained"`.

**Scalings.** `a_j(0) = abar_j / m^gamma` with `gamma = 1` (`"mean_field"`) or `1/2`
(`"standard"`), `abar_j = 1` (`a_init="constant"`) or random signs (`"sign"`). The
learning rates are those under which every neuron `(w_j, abar_j, b_j)` moves at a speed
independent of `m` (mean-field time; Mei, Montanari, Nguyen 2018): rows and biases take
`dt * m^gamma`, the second layer `dt * lr_ratio / m^gamma`. With `m = 1` both scalings
are today's single neuron.

**State.** The driver (`_simulate`) and the solvers act on one flat array; the network's
state is the flat concatenation of its *trained* parts, `[W.ravel(), a?, b?]`; frozen
parts live in the `Layout`, not in the state. So `m = 1` with frozen `a = 1`, `b = 0`
has the single neuron's state `w` (d,) itself, with the same error norm for `Dopri5`.
`Trajectory.w` is the final `TwoLayer`; `SaveAt(fn=...)` functions of a network run
receive the `TwoLayer` (in the run's coordinates) instead of `w`.

**Reduced form.** Population dynamics keep every row in `span{u, theta, W(0)}`: with
`reduced=True` the rows live in those `m + 2` coordinates (the basis is built from all
rows at once), a step costs `O(m^2 (m + 2))` whatever `d`, and the result is lifted back.
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._chain_network import NetworkChain
from ._committee import committee_grad, committee_moments, network_risk, overlaps as _overlaps
from ._dynamics import AbstractDynamic
from ._network import TwoLayer
from ._neuron import neuron_norm
from ._problem import check, check_choice, concrete
from ._saveat import metrics as _default_metrics, overlaps as _default_overlaps
from ._source_base import AbstractSource
from ._sources import Population
from ._target import SingleIndex, project

SCALINGS = ("mean_field", "standard")
SECOND_LAYER = ("frozen", "joint")
BIASES = ("frozen", "trained")
A_INITS = ("constant", "sign")
THRESHOLD = 0.9  # the per-neuron overlap counted by `rho_frac` / `cos_u_frac`

NETWORK_METRICS = ("cos_u", "rho", "cos_theta", "norm", "risk", "train_risk", "rho_mean", "rho_frac",
                   "cos_u_mean", "cos_u_frac", "excess_risk", "a_norm")
NETWORK_METRIC_DOCS = {
    "rho": "max_j |rho_j|: the best neuron's prediction overlap",
    "rho_mean": "mean_j |rho_j|",
    "rho_frac": f"fraction of neurons with |rho_j| >= {THRESHOLD}",
    "cos_u": "max_j |<w_j, u>| / ||w_j||: the best neuron's direction overlap",
    "cos_u_mean": "mean_j |cos_u_j|",
    "cos_u_frac": f"fraction of neurons with |cos_u_j| >= {THRESHOLD}",
    "cos_theta": "max_j |<w_j, theta>| / ||w_j||",
    "norm": "mean_j ||w_j||",
    "risk": "population risk of the whole network (closed form; Gaussian inputs)",
    "excess_risk": "population risk minus the loss's noise floor (tau^2 / 2 squared, 0 correlation)",
    "train_risk": "the whole network's risk on the training samples (empirical; NaN otherwise)",
    "a_norm": "||a||: Euclidean norm of the second layer",
}


class Network(eqx.Module):
    """What `simulate(..., network=...)` trains, and how.

    **Fields:**
    - `width`: `m >= 1` neurons.
    - `scaling`: `"mean_field"` (`a ~ 1/m`, default) or `"standard"` (`a ~ 1/sqrt(m)`).
    - `second_layer`: `"frozen"` (default) or `"joint"`.
    - `lr_ratio`: the second layer's learning rate relative to its scaling's (> 0; an
      array may be swept). Only read with `second_layer="joint"`.
    - `biases`: `"frozen"` (default) or `"trained"`.
    - `a_init`: `"constant"` (`abar_j = 1`, default) or `"sign"` (random signs).
    - `bias_init`: half-width `B >= 0`: `b_j(0) ~ Unif[-B, B]` (default 0).
    """

    width: int = eqx.field(static=True, default=1)
    scaling: str = eqx.field(static=True, default="mean_field")
    second_layer: str = eqx.field(static=True, default="frozen")
    lr_ratio: float | Array = 1.0
    biases: str = eqx.field(static=True, default="frozen")
    a_init: str = eqx.field(static=True, default="constant")
    bias_init: float | Array = 0.0

    def __check_init__(self):
        ok = isinstance(self.width, (int, np.integer)) and not isinstance(self.width, bool) and self.width >= 1
        check("width", self.width, ok, "allowed: an integer >= 1 (the number of neurons)")
        check_choice("scaling", self.scaling, SCALINGS)
        check_choice("second_layer", self.second_layer, SECOND_LAYER)
        check_choice("biases", self.biases, BIASES)
        check_choice("a_init", self.a_init, A_INITS)
        for name, v, lo_ok in (("lr_ratio", self.lr_ratio, lambda x: x > 0), ("bias_init", self.bias_init,
                                                                             lambda x: x >= 0)):
            if concrete(v):
                arr = np.asarray(v, dtype=float)
                allowed = "allowed: a finite real number " + ("> 0" if name == "lr_ratio" else ">= 0")
                check(name, v, bool(np.all(np.isfinite(arr)) and np.all(lo_ok(arr))), allowed)

    @property
    def gamma(self) -> float:
        return 1.0 if self.scaling == "mean_field" else 0.5


class Layout(eqx.Module):
    """The flat state's layout: `[W.ravel(), a (if trained), b (if trained)]`; frozen
    parts, learning-rate multipliers and the reduced basis."""

    m: int = eqx.field(static=True)
    r: int = eqx.field(static=True)  # coordinates per row: d, or m + 2 when reduced
    train_a: bool = eqx.field(static=True)
    train_b: bool = eqx.field(static=True)
    zero_b: bool = eqx.field(static=True)  # frozen at exactly 0 (`bias_init` 0, known when built)
    a0: Array
    b0: Array
    lr_w: Array
    lr_a: Array
    basis: Array | None

    def unflatten(self, flat):
        m, r = self.m, self.r
        w = flat[: m * r].reshape(m, r)
        i = m * r
        a = flat[i: i + m] if self.train_a else self.a0
        i += m if self.train_a else 0
        b = flat[i: i + m] if self.train_b else self.b0
        return w, a, b

    def biases(self, b):
        """`b`, or None when the biases are frozen at zero (the exact zero-bias expectations)."""
        return None if self.zero_b else b

    def flatten(self, w, a, b):
        parts = [w.reshape(-1)] + ([a] if self.train_a else []) + ([b] if self.train_b else [])
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def _layout(sim) -> Layout:
    return sim.dynamic.layout


def network_of(w, sim) -> TwoLayer:
    """The `TwoLayer` of a flat network state `w`, in the run's coordinates."""
    lay = _layout(sim)
    W, a, b = lay.unflatten(w)
    return TwoLayer(w=W, a=a, b=b, activation=sim.problem.activation, neuron=sim.neuron)


class RowWise(AbstractDynamic):
    """A first-layer dynamic applied to every row of the network, the second layer and the
    biases moved by plain gradient flow, each with its learning-rate multiplier."""

    row: AbstractDynamic
    layout: Layout

    @property
    def default_neuron(self):
        return self.row.default_neuron

    def init(self, w0, sim):
        W, a, b = self.layout.unflatten(w0)
        return self.layout.flatten(jax.vmap(lambda w: self.row.init(w, sim))(W), a, b)

    def direction(self, w, grad, sim):
        lay = self.layout
        W, _, _ = lay.unflatten(w)
        gW, ga, gb = lay.unflatten(grad)
        dW = jax.vmap(lambda x, g: self.row.direction(x, g, sim))(W, lay.lr_w * gW)
        return lay.flatten(dW, lay.lr_a * ga, lay.lr_w * gb)

    def retract(self, w_new, w_old, sim):
        lay = self.layout
        Wn, an, bn = lay.unflatten(w_new)
        Wo, _, _ = lay.unflatten(w_old)
        return lay.flatten(jax.vmap(lambda x, y: self.row.retract(x, y, sim))(Wn, Wo), an, bn)

    def lift(self, w, sim) -> TwoLayer:
        """The final `TwoLayer` in `R^d` (reduced coordinates mapped back)."""
        net = network_of(w, sim)
        if self.layout.basis is not None:
            net = eqx.tree_at(lambda n: n.w, net, net.w @ self.layout.basis)
        if isinstance(sim.source, NetworkChain):  # the exact chain: (W u, W v, R^T), W_perp W_perp^T = R^T R
            net = eqx.tree_at(lambda n: n.w, net, sim.source.lift_rows(net.w))
        return net


def samples(source, data, k, sim):
    """`(z, y, weights)` of the step-`k` batch of a sampled source (`AbstractSource.samples`)."""
    out = source.samples(data, k, sim)
    if out is None:
        raise ValueError(
            f"source={type(source).__name__} is not allowed with network=...; give it a "
            "`samples(data, k, sim) -> (z, y, weights)` method"
        )
    return out


def network_sample_risk(w, a, b, z, y, problem, cov, weights=None):
    """The whole network's risk on base draws `z` (n, d) with labels `y` (n,).

    Pre-activations are one product `S @ z^T` (m, n) with `S = Sigma^{1/2} W / N`, and the
    gradient `R @ z` (m, d): under `vmap` over configurations sharing `z` both are GEMMs."""
    s = problem.covariance.sqrt(w) / neuron_norm(w, cov)[:, None]
    feats = problem.activation(project(z, s) + b[:, None])
    out = a @ feats
    losses = problem.loss.pointwise(out, y)
    return jnp.mean(losses) if weights is None else weights @ losses


class NetworkSource(AbstractSource):
    """A source's expectations for the whole network: closed form for `Population`, the
    same samples as the single-neuron source otherwise."""

    inner: AbstractSource

    @property
    def deterministic(self):
        return self.inner.deterministic

    def check(self, problem):
        self.inner.check(problem)

    def init(self, key, problem):
        return self.inner.init(key, problem)

    def risk(self, w, data, k, sim):
        W, a, b = _layout(sim).unflatten(w)
        if isinstance(self.inner, Population):
            return network_risk(W, a, _layout(sim).biases(b), sim.problem, sim.neuron_cov)
        z, y, weights = samples(self.inner, data, k, sim)
        return network_sample_risk(W, a, b, z, y, sim.problem, sim.neuron_cov, weights)

    def grad(self, w, data, k, sim):
        """The population gradient by hand (`committee_grad`) for a neuron with
        `closed_form` (plain, sigma) and a single-index target (biases frozen at zero: the
        exact zero-bias path); autodiff of the risk otherwise (multi-index, SigmaHat)."""
        if (isinstance(self.inner, Population) and sim.neuron.closed_form
                and isinstance(sim.problem.target, SingleIndex)):
            lay = _layout(sim)
            W, a, b = lay.unflatten(w)
            return lay.flatten(*committee_grad(W, a, lay.biases(b), sim.problem, sim.neuron))
        return super().grad(w, data, k, sim)

    def train_risk(self, w, data, sim):
        fixed = type(self.inner).samples is not AbstractSource.samples  # it has samples (Empirical)
        if self.inner.deterministic and fixed:
            return self.risk(w, data, 0, sim)
        return jnp.full((), jnp.nan, w.dtype)


def _abs_rho(net, p):
    cov = p.covariance
    return jnp.abs(cov.inner(net.w, p.u) / (cov.norm(net.w) * cov.norm(p.u)))


def _abs_cos(net, v):
    return jnp.abs(net.w @ v) / jnp.linalg.norm(net.w, axis=-1)


def network_metrics(net: TwoLayer, sim) -> dict:
    """The default observables of a network run (`NETWORK_METRICS`): per-neuron `|rho_j|`
    and `|cos_u_j|` summarised as max, mean and fraction `>= THRESHOLD`, the population
    risk and its excess over the noise, the training risk and `||a||`."""
    p = sim.problem
    r, c = _abs_rho(net, p), _abs_cos(net, p.u)
    theta = p.covariance.spike()
    nan = jnp.full((), jnp.nan, r.dtype)
    if p.inputs.is_gaussian:
        risk = network_risk(net.w, net.a, _layout(sim).biases(net.b), p, sim.neuron_cov)
        excess = risk - p.loss.noise_floor(p.noise)
    else:
        risk = excess = nan
    flat = _layout(sim).flatten(net.w, net.a, net.b)
    return {
        "cos_u": jnp.max(c),
        "rho": jnp.max(r),
        "cos_theta": jnp.max(_abs_cos(net, theta)) if theta is not None else nan,
        "norm": jnp.mean(jnp.linalg.norm(net.w, axis=-1)),
        "risk": risk,
        "train_risk": sim.source.train_risk(flat, sim.data, sim),
        "rho_mean": jnp.mean(r),
        "rho_frac": jnp.mean(r >= THRESHOLD),
        "cos_u_mean": jnp.mean(c),
        "cos_u_frac": jnp.mean(c >= THRESHOLD),
        "excess_risk": excess,
        "a_norm": jnp.linalg.norm(net.a),
    }


def overlap_matrix(net: TwoLayer, sim) -> dict:
    """For `SaveAt(fn=overlap_matrix)`: the Sigma-Gram matrix of `{w_1..w_m, u, theta}`
    (`(m+2, m+2)`, `"gram"`), the network's `(Q, v)` moments (`"q"`, `"v"`) and `a`, `b`."""
    p = sim.problem
    rows = jnp.concatenate([net.w, p.u[None], p.covariance.theta[None]])
    gram = rows @ p.covariance.apply(rows).T
    q, v = committee_moments(p, *_overlaps(net.w, p, sim.neuron_cov), _layout(sim).biases(net.b))
    return {"gram": gram, "q": q, "v": v, "a": net.a, "b": net.b}


def network_overlaps(net: TwoLayer, sim) -> dict:
    """First passages of a network run: the best neuron's `|rho|` and `|cos_u|`."""
    return {"rho": jnp.max(_abs_rho(net, sim.problem)), "cos_u": jnp.max(_abs_cos(net, sim.problem.u))}


@functools.cache
def on_network(fn):
    """`fn(net, sim)` as a `SaveAt` function of the flat state (one object per `fn`, so a
    compiled run is reused)."""
    return lambda w, sim: fn(network_of(w, sim), sim)


def attach(network: Network, sim, w0, key, basis=None):
    """Turn a single-neuron `Simulation` into a network run: `(sim, flat state)`.

    `w0` (m, r) are the unit rows (in the reduced coordinates when `basis` is given)."""
    check("network", network, isinstance(network, Network), "give a sj.Network(width=...)")
    m, r = w0.shape
    dtype = w0.dtype
    k_a, k_b = jax.random.split(key)
    gamma = network.gamma
    abar = jnp.ones(m, dtype) if network.a_init == "constant" else jax.random.rademacher(k_a, (m,), dtype)
    a0 = abar / float(m) ** gamma
    b0 = jnp.asarray(network.bias_init, dtype) * jax.random.uniform(k_b, (m,), dtype, -1.0, 1.0)
    train_a = network.second_layer == "joint"
    train_b = network.biases == "trained"
    zero_b = not train_b and concrete(network.bias_init) and not np.any(np.asarray(network.bias_init))
    lay = Layout(
        m=m, r=r, train_a=train_a, train_b=train_b, zero_b=zero_b, a0=a0, b0=b0,
        lr_w=jnp.asarray(float(m) ** gamma, dtype),
        lr_a=jnp.asarray(network.lr_ratio, dtype) / float(m) ** gamma,
        basis=basis,
    )
    saveat = sim.saveat
    single = isinstance(sim.problem.target, SingleIndex)  # k-index: the subspace observables
    fn = network_metrics if saveat.fn is _default_metrics and single else saveat.fn
    pfn = network_overlaps if saveat.passage_fn is _default_overlaps and single else saveat.passage_fn
    saveat = dataclasses.replace(saveat, fn=on_network(fn), passage_fn=on_network(pfn))
    dyn = RowWise(row=sim.dynamic, layout=lay)
    source = sim.source if isinstance(sim.source, NetworkChain) else NetworkSource(sim.source)  # the chain is whole
    sim = dataclasses.replace(sim, dynamic=dyn, source=source, saveat=saveat)
    return sim, dyn.init(lay.flatten(w0, a0, b0), sim)
