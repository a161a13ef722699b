"""Names to objects: the one place where a name becomes an object.

The Python API takes objects (`sj.Normalized()`, `sj.Empirical(n=4096)`); a config file
says `dynamic = "normalized"`. A loss and a neuron normaliser keep their names in the
Python API as well (`make_problem(..., loss="correlation")`, `simulate(..., neuron="sigma")`):
`as_loss` and `as_neuron` resolve them once, at the boundary. `register(key, name, obj)`
makes a user's own class (or link function, or multi-index target) reachable by name from a
config, the command line and the Python API alike; `build` fills a class's fields from a
config's keys of the same name.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ._dynamics import AbstractDynamic, Normalized, Preconditioned, Spherical, Vanilla
from ._extragradient import ExtraGradient
from ._hermite import FUNCTIONS
from ._inputs import AbstractInputs, Gaussian, Rademacher, StudentT
from ._loss import AbstractLoss, Correlation, Squared
from ._multi_index import REGISTERED_TARGETS, TargetFunction
from ._neuron import AbstractNeuron, Plain, SigmaHatNorm, SigmaNorm
from ._solvers import AbstractSolver, Dopri5, Euler
from ._source_base import AbstractSource
from ._sources import Empirical, Online, Population, Reused

DYNAMICS = {"spherical": Spherical, "normalized": Normalized, "preconditioned": Preconditioned, "vanilla": Vanilla}
SOURCES = {"population": Population, "empirical": Empirical, "online": Online, "reused": Reused,
           "extragradient": ExtraGradient}
SOLVERS = {"euler": Euler, "dopri5": Dopri5}
INPUTS = {"gaussian": Gaussian, "student_t": StudentT, "rademacher": Rademacher}
LOSSES = {"squared": Squared, "correlation": Correlation}
NEURONS = {"plain": Plain, "sigma": SigmaNorm, "sigma_hat": SigmaHatNorm}
# multi-index targets registered by name: name -> `{alpha: coeff}` (as `multi_index_problem`'s `g`)
TARGETS = REGISTERED_TARGETS

# config key -> (its table, what a registered object must be); links and activations share
# `FUNCTIONS` (name -> a callable, a coefficient list or a `HermiteFunction`)
KINDS = {
    "dynamic": (DYNAMICS, AbstractDynamic),
    "source": (SOURCES, AbstractSource),
    "solver": (SOLVERS, AbstractSolver),
    "input_dist": (INPUTS, AbstractInputs),
    "loss": (LOSSES, AbstractLoss),
    "neuron": (NEURONS, AbstractNeuron),
    "link": (FUNCTIONS, None),
    "activation": (FUNCTIONS, None),
    "target": (TARGETS, dict),
}


def he3(x):
    """`He_3(x) = x^3 - 3x`, the probabilists' Hermite polynomial unnormalised (`sqrt(6) h3`): the
    target of Arnaboldi et al.'s reuse experiments, by name `link = "he3"` (docs/reuse.md)."""
    return x**3 - 3 * x


def tanh_z1_he3_z2(z1, z2):
    """`tanh(z_1 + He_3(z_2))`, `He_3(x) = x^3 - 3x` unnormalised: the two-index target of Dandi et
    al. 2024 (IdePHICS/benefit-reusing-batch), by name `target = "tanh_z1_he3_z2"` (k = 2;
    docs/reuse.md)."""
    return jnp.tanh(z1 + he3(z2))


def register(key: str, name: str, obj):
    """Make `obj` reachable as `name` wherever a config, the command line or the Python API
    names a `key` (`"dynamic"`, `"source"`, `"solver"`, `"input_dist"`, `"loss"`, `"neuron"`:
    a subclass of the kind's abstract class; `"link"` or `"activation"`: a callable, Hermite
    coefficients or a `HermiteFunction`; `"target"`: a multi-index target `{alpha: coeff}`).
    A built-in name cannot be replaced. Returns `obj`, so it works as a class decorator:
    `@functools.partial(sj.register, "source", "thinned")`."""
    table, base = lookup("key", KINDS, key)
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"name={name!r} is not allowed; a name is an identifier (letters, digits, _)")
    if name in table and table[name] is not obj:
        raise ValueError(f"name={name!r} is not allowed; {key} {name!r} is already registered")
    if base is dict:  # a TargetFunction's series is computed on first use, not here
        ok = isinstance(obj, TargetFunction) or isinstance(obj, dict) and len(obj) > 0
        what = "a mapping {alpha: coeff} of Hermite degrees per direction to coefficients (or a TargetFunction)"
    elif base is not None:
        ok = isinstance(obj, type) and issubclass(obj, base)
        what = f"a subclass of sj.{base.__name__}"
    else:
        ok = obj is not None
        what = "a callable, Hermite coefficients or an sj.HermiteFunction"
    if not ok:
        raise ValueError(f"obj={obj!r} is not allowed; a {key} is registered as {what}")
    table[name] = obj
    return obj


def build(cls, values: dict):
    """An instance of a registered class, its constructor fields filled from `values` (a
    config's keys) of the same name: `Online.batch` from `batch`, `StudentT.nu` from `nu`."""
    return cls(**{f: values[f] for f in constructor_fields(cls) if f in values})


def constructor_fields(cls) -> tuple:
    """The names a class's constructor takes (an Equinox module's fields)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def lookup(kind: str, table: dict, name: str):
    """`table[name]`, or a `ValueError` naming `kind`, the value and the choices."""
    if name not in table:
        raise ValueError(f"{kind}={name!r} is not allowed; choose one of {', '.join(map(repr, table))}")
    return table[name]


def name_of(obj, table: dict) -> str:
    """The registered name of an object's class (its class name when unregistered)."""
    for name, cls in table.items():
        if type(obj) is cls:
            return name
    return type(obj).__name__


def _resolve(kind: str, table: dict, base: type, spec):
    """`spec` itself when it is a `base`, else a new object of the class named `spec`."""
    if isinstance(spec, base):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"{kind}={spec!r} is not allowed; choose one of {', '.join(map(repr, table))} "
                         f"or give an sj.{base.__name__}")
    return lookup(kind, table, spec)()


def as_loss(spec) -> AbstractLoss:
    """A loss from its name (`"squared"`, `"correlation"`) or an `AbstractLoss`."""
    return _resolve("loss", LOSSES, AbstractLoss, spec)


def as_neuron(spec) -> AbstractNeuron:
    """A neuron normaliser from its name (`"plain"`, `"sigma"`, `"sigma_hat"`) or an `AbstractNeuron`."""
    return _resolve("neuron", NEURONS, AbstractNeuron, spec)


register("link", "he3", he3)  # one function object: a static field, so no recompile per problem
# a function, not a finite series: labels from the function, the closed forms from its series to
# degree 6 (exact for ReLU without bias, whose odd Hermite coefficients above 1 vanish: g is odd)
register("target", "tanh_z1_he3_z2", TargetFunction(tanh_z1_he3_z2, k=2))
