"""Sweep configurations: TOML or a dict, checked and resolved into axes and fixed values.

A configuration is data: it is parsed by `tomllib`, never evaluated. Any numeric key may
be a list (a swept axis); `dynamic`, `link` and `activation` may be lists too. `seeds` is
a list of integers or an integer N meaning 0..N-1. `kappa` and `r2` are two spellings of
the spike strength (`kappa = d**r2`): give one. `network = true` trains `width` neurons as
one network (`sj.Network`: `scaling`, `second_layer`, `lr_ratio`, `biases`, `bias_init`,
`a_init`); without it `width` neurons train independently (a `neuron` axis).

A multi-index target (`target = "staircase"`, `"sum_h2"`, `"parity"`, `"parity3"`,
`"product_h2"` with `k`, or `"custom"` with `terms`) replaces `link`, and its spikes are
`spikes` (a list of tables `{align, r1, r2 or kappa}`, as `sj.multi_index_problem` takes
them) instead of `kappa`/`r2`/`r1`; `threshold` is the level of the first passages such a
sweep records. `target`, `k`, `terms` and `spikes` are single values (the dataset has a
`direction` axis of length k), validated by building the problem (`multi_index_problem`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import tomllib
import warnings
from pathlib import Path

import jax

from ._covariance import NORMALISATIONS
from ._hermite import FUNCTIONS
from ._multi_index import BUILTIN_TARGETS
from ._problem import check
from ._simulate import START_RULES
from ._registry import DYNAMICS, INPUTS, LOSSES, SOLVERS, SOURCES, TARGETS as REGISTERED_TARGETS, build
from ._source_base import AbstractSource
from ._train import A_INITS, BIASES, SCALINGS, SECOND_LAYER

SINGLE = "single_index"  # the paper's target, `link(<u, x> / ||u||_Sigma)`


class Names:
    """Live choices: fixed names and a registry's, so a name registered after import is accepted."""

    def __init__(self, fixed: tuple, table: dict):
        self.fixed, self.table = fixed, table

    def __contains__(self, name) -> bool:
        return name in self.fixed or name in self.table

    def __iter__(self):
        yield from self.fixed
        yield from self.table


TARGETS = Names((SINGLE, *BUILTIN_TARGETS, "parity3", "custom"), REGISTERED_TARGETS)

# key -> (kind, default, may be a list). kinds: int, real, choice tuple.
SCHEMA = {
    "seeds": ("seeds", 1, True),
    "d": ("int", 64, True),
    "kappa": ("real", None, True),
    "r2": ("real", None, True),
    "r1": ("real", 0.0, True),
    "n": ("int", None, True),
    "n_unlabelled": ("int", 0, True),
    "batch": ("int", None, True),
    "reuse": ("int", 1, False),
    "displacement": ("real", None, True),  # source = "extragradient": rho d (Arnaboldi et al.'s rho_prefactor)
    "noise": ("real", 0.0, True),
    "dt": ("real", 0.05, True),
    "steps": ("int", 1000, False),
    "record": ("int", 32, False),
    "link": (FUNCTIONS, "h2", True),
    "activation": (FUNCTIONS, "relu", True),
    "loss": (LOSSES, "squared", True),
    "dynamic": (DYNAMICS, "normalized", True),  # the live registry: a class a user adds is accepted
    "source": (SOURCES, "population", True),  # live registries, as for `dynamic`
    "normalisation": (NORMALISATIONS, "unit_top", True),
    "input_dist": (INPUTS, "gaussian", True),
    "nu": ("real", 5.0, False),
    "reduced": ("bool", False, False),
    "w0": (START_RULES, "random", True),  # the rule for w(0): "orthogonal" starts at rho(0) = 0
    "solver": (Names(("auto",), SOLVERS), "auto", False),
    "rtol": ("real", 1e-6, False),
    "max_steps": ("int", 1_000_000, False),
    "max_norm": ("real", 1e6, False),
    "precision": (("float32", "float64"), "float32", False),
    "width": ("int", 1, True),  # a list only with network = true (no neuron axis then)
    "network": ("bool", False, False),
    "scaling": (SCALINGS, "mean_field", True),
    "second_layer": (SECOND_LAYER, "frozen", True),
    "lr_ratio": ("real", 1.0, True),
    "biases": (BIASES, "frozen", True),
    "bias_init": ("real", 0.0, True),
    "a_init": (A_INITS, "constant", True),
    "n2": ("int", None, False),
    "n_val": ("int", 1000, False),
    "n_test": ("int", 2000, False),
    "target": (TARGETS, SINGLE, False),
    "k": ("int", None, False),
    "terms": ("table list", None, False),
    "spikes": ("table list", None, False),
    "threshold": ("real", 0.9, False),
}

@functools.cache
def _validators() -> dict:
    """key -> a check of one value: the objects' own constructors and the API's own checks,
    so a config and a Python call refuse the same values with the same message."""
    from ._inputs import StudentT
    from ._problem import check_int, check_real
    from ._readout import check_sizes
    from ._saveat import SaveAt
    from ._simulate import check_run
    from ._solvers import Dopri5
    from ._extragradient import ExtraGradient
    from ._sources import Empirical, Online, Reused
    from ._train import Network

    return {
        "d": lambda v: check_int("d", v, 2),
        "kappa": lambda v: check_real("kappa", v, lo=0.0),
        "r1": lambda v: check_real("r1", v, 0.0, 0.5),
        "noise": lambda v: check_real("noise", v, lo=0.0),
        "n": lambda v: Empirical(v),
        "batch": lambda v: Online(v),
        "reuse": lambda v: Reused(1, v),
        "displacement": lambda v: ExtraGradient(1, v),
        "nu": lambda v: StudentT(v),
        "rtol": lambda v: Dopri5(rtol=v, atol=v * 1e-3),
        "max_steps": lambda v: Dopri5(max_steps=v),
        "record": lambda v: SaveAt(steps=v),
        "dt": lambda v: check_run(dt=v),
        "steps": lambda v: check_run(steps=v),
        "n_unlabelled": lambda v: check_run(n_unlabelled=v),
        "max_norm": lambda v: check_run(max_norm=v),
        "width": lambda v: Network(width=v),
        "scaling": lambda v: Network(scaling=v),
        "second_layer": lambda v: Network(second_layer=v),
        "lr_ratio": lambda v: Network(lr_ratio=v),
        "biases": lambda v: Network(biases=v),
        "bias_init": lambda v: Network(bias_init=v),
        "a_init": lambda v: Network(a_init=v),
        "n2": lambda v: check_sizes(n2=v),
        "n_val": lambda v: check_sizes(n_val=v),
        "n_test": lambda v: check_sizes(n_test=v),
        "k": lambda v: check_int("k", v, 1),
        "threshold": lambda v: check_real("threshold", v, 0.0, 1.0, lo_open=True),
    }


def _validate(key: str, value):
    """Run `key`'s validator; an object's message names its own parameter, so one that does
    not start with the key is re-labelled with it (`saveat.steps=` -> `record=`)."""
    validator = _validators().get(key)
    if validator is None:
        return
    try:
        validator(value)
    except ValueError as err:
        msg = str(err)
        if not msg.startswith(f"{key}="):
            msg = f"{key}={value!r} is not allowed; {msg.split('; ', 1)[-1]}"
        raise ValueError(msg) from None


def _check_value(key: str, kind, value):
    if kind in ("int", "seeds"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        check(key, value, ok, "expected an integer" + (" or a list of integers" if SCHEMA[key][2] else ""))
    elif kind == "real":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        check(key, value, ok, "expected a finite real number" + (" or a list of them" if SCHEMA[key][2] else ""))
    elif kind == "bool":
        check(key, value, isinstance(value, bool), "expected true or false")
    else:
        check(key, value, value in kind, f"choose one of {', '.join(map(repr, kind))}")
    _validate(key, value)


def resolve(config: dict) -> dict:
    """Check a raw configuration and fill defaults; every value becomes a list (an axis of
    length 1 when fixed). Raises `ValueError` naming the offending key."""
    if not isinstance(config, dict):
        raise ValueError(f"config={config!r} is not allowed; expected a table of keys")
    _check_known_keys(config)
    out = {}
    for key, (kind, default, listable) in SCHEMA.items():
        value = config.get(key, default)
        if key == "seeds" and isinstance(value, int) and not isinstance(value, bool):
            check("seeds", value, value >= 1, "an integer N >= 1 (seeds 0..N-1) or a list of integers")
            value = list(range(value))
        if kind == "table list":
            if value is not None:
                check(key, value, isinstance(value, list) and all(isinstance(t, dict) for t in value),
                      "expected a list of tables, e.g. [{...}, {...}]")
            out[key] = [value]
            continue
        if isinstance(value, list):
            check(key, value, listable, "must be a single value, not a list")
            check(key, value, len(value) > 0, "a list must not be empty")
            check(key, value, len(set(map(repr, value))) == len(value), "list values must be distinct")
        values = value if isinstance(value, list) else [value]
        if value is not None:
            for v in values:
                _check_value(key, kind, v)
        out[key] = values
    _check_objects(config, out)
    _check_target(config, out)
    if out["target"][0] == SINGLE:
        check("kappa/r2", (config.get("kappa"), config.get("r2")),
              (config.get("kappa") is None) != (config.get("r2") is None),
              "give exactly one of kappa and r2 (kappa = d**r2)")
    else:
        out["r1"] = [None]  # the spikes carry their own r1, r2
    _check_keys_apply(config, out)
    if not out["network"][0]:
        check("width", out["width"], len(out["width"]) == 1,
              "a list of widths needs network = true (independent neurons add a neuron axis of one length)")
    elif out["n2"][0] is not None:
        check("n2", out["n2"][0], False, "phase 2 fits a second layer on independent neurons; a network "
              "(network = true) trains its own: remove n2")
    if out["reduced"][0]:
        _check_reduced(config, out)
    for nu_ in out["n_unlabelled"]:
        for d in out["d"]:
            check("n_unlabelled", nu_, nu_ == 0 or nu_ >= d,
                  f"SigmaHat must be invertible: 0 or at least d={d}")
    return out


def _check_reduced(config: dict, out: dict):
    """`reduced = true`: each source's own reduced form (the population's 3 coordinates, the
    exact chain of online and reused sources, `sj.Chain`); the chain runs in float64
    (`precision` follows unless set to float32). What the engine refuses (Student-t inputs,
    an adaptive solver on the chain, ...) it refuses when the pre-flight traces the groups."""
    check("reduced", True, out["n_unlabelled"] == [0], "the reduced forms need the true Sigma: n_unlabelled=0")
    for src in out["source"]:
        check("reduced", True, SOURCES[src].reduced is not AbstractSource.reduced,
              f"not with source={src!r}: it has no exact reduced form")
    if not any(SOURCES[src].reduces_in_frame for src in out["source"]):
        return
    for key, ok, why in (
        ("target", out["target"] == [SINGLE], "the chain covers single-index targets"),
        ("network", out["network"] == [False], "the chain runs one neuron"),
        ("precision", config.get("precision", "float64") == "float64", "the chain keeps its state in float64"),
    ):
        check("reduced", True, ok, f"not with {key}={out[key][0]!r}: {why}")
    out["precision"] = ["float64"]


def multi_target(static: dict) -> tuple:
    """`(g, k)` of a multi-index configuration (one value per key), as `sj.multi_index_problem`
    takes them: a built-in name and k, or the mapping `{alpha: coeff}` of `terms`."""
    name, k = static["target"], static["k"]
    if name == "custom":
        terms = static["terms"]
        return {tuple(t["alpha"]): t["coeff"] for t in terms}, len(terms[0]["alpha"])
    if name == "parity3":
        return "parity", 3
    if name in REGISTERED_TARGETS:  # `sj.register("target", name, {alpha: coeff})`
        g = REGISTERED_TARGETS[name]
        return g, len(next(iter(g)))
    return name, k


def _check_target(config: dict, out: dict):
    """The multi-index keys: `k` matching `target`, well-formed `terms`, and the problem
    itself built once per `d` and `activation` (`multi_index_problem`: the spikes' `align`,
    `r1`, `r2`, `d >= k + p`, an activation blind to the target), before anything compiles."""
    name = out["target"][0]
    multi_keys = ("k", "terms", "spikes", "threshold")
    if name == SINGLE:
        for key in multi_keys:
            if key in config:
                check(key, config[key], False, f"{key} applies only with a multi-index target "
                      f"(target = one of {', '.join(map(repr, list(TARGETS)[1:]))}); remove it")
        return
    for key in ("link", "kappa", "r2", "r1"):
        if key in config:
            check(key, config[key], False, f"{key} applies only with target = {SINGLE!r}; a multi-index target "
                  "takes its spikes from spikes = [{align = i, r1 = ..., r2 = ...}, ...]; remove it")
    k, terms = out["k"][0], out["terms"][0]
    if name == "custom":
        check("terms", terms, bool(terms), "target = 'custom' needs terms = [{alpha = [degrees], coeff = c}, ...]")
        for i, t in enumerate(terms):
            check(f"terms[{i}]", t, set(t) == {"alpha", "coeff"},
                  "a table {alpha = [one Hermite degree per direction], coeff = a real number}")
            alpha, coeff = t["alpha"], t["coeff"]
            check(f"terms[{i}].alpha", alpha, isinstance(alpha, list) and len(alpha) > 0 and all(
                isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in alpha),
                "a non-empty list of integers >= 0 (one Hermite degree per direction)")
            check(f"terms[{i}].alpha", alpha, len(alpha) == len(terms[0]["alpha"]),
                  f"every term has the same number of directions ({len(terms[0]['alpha'])}, as terms[0])")
            check(f"terms[{i}].coeff", coeff, isinstance(coeff, (int, float)) and not isinstance(coeff, bool)
                  and math.isfinite(coeff), "a finite real number")
        check("k", k, k is None or k == len(terms[0]["alpha"]),
              f"the terms have {len(terms[0]['alpha'])} directions: give k = {len(terms[0]['alpha'])} or none")
    else:
        if terms is not None:
            check("terms", terms, False, f"terms applies only with target = 'custom' (here target = {name!r})")
        if name == "parity3":
            check("k", k, k in (None, 3), "target = 'parity3' has k = 3 (target = 'parity' takes any k)")
        elif name in REGISTERED_TARGETS:
            k_own = multi_target({"target": name, "k": k, "terms": None})[1]
            check("k", k, k in (None, k_own), f"target = {name!r} has k = {k_own} directions: give k = {k_own} or none")
        else:
            check("k", k, k is not None, f"target = {name!r} needs k, its number of directions (an integer >= 1)")
    from ._multi_problem import multi_index_problem

    g, k = multi_target({"target": name, "k": k, "terms": terms})
    sources = [build(SOURCES[src], {key: v[0] for key, v in out.items()}) for src in out["source"]]
    for d in out["d"]:
        for act in out["activation"]:
            try:
                problem = multi_index_problem(d, key=jax.random.key(0), g=g, k=k, spikes=out["spikes"][0] or (),
                                              activation=act, normalisation=out["normalisation"][0])
                with warnings.catch_warnings():  # a sampled source's warning comes once, when the run is built
                    warnings.simplefilter("ignore")
                    for source in sources:
                        source.check(problem)  # the population refuses an activation blind to the target
            except ValueError as err:
                msg = str(err)
                if msg.startswith("g"):  # the target's own message names its g: here the config's key
                    key, value = ("terms", terms) if name == "custom" else ("target", name)
                    msg = f"{key}={value!r} is not allowed; {msg}"
                raise ValueError(msg) from None


def _check_known_keys(config: dict):
    """Refuse an unknown key, suggesting the nearest known one (a typo's likely intent)."""
    unknown = sorted(set(config) - set(SCHEMA))
    if not unknown:
        return
    key = unknown[0]
    near = difflib.get_close_matches(str(key), list(SCHEMA), n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    check(key, config[key], False, f"unknown key; {hint}allowed keys: {', '.join(SCHEMA)}")


# the keys that name registered classes; a class's constructor fields that are config keys
# (`Empirical.n`, `Online.batch`, `Reused.reuse`, `StudentT.nu`) are filled from the config
OBJECT_KEYS = {"source": SOURCES, "input_dist": INPUTS}


def config_fields(cls) -> dict:
    """A class's constructor fields that are config keys -> whether the field is required."""
    return {f.name: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            for f in dataclasses.fields(cls) if f.init and f.name in SCHEMA}


def _check_objects(config: dict, out: dict):
    """Each named class's required fields given, and a deterministic source under an adaptive
    solver: read from the registered classes, so a user's own class is checked the same way."""
    for kind, table in OBJECT_KEYS.items():
        for name in out[kind]:
            for key, required in config_fields(table[name]).items():
                check(key, config.get(key), not required or config.get(key) is not None,
                      f"{kind}={name!r} needs {key}")
    if out["solver"][0] != "auto" and SOLVERS[out["solver"][0]].adaptive:
        for src in out["source"]:
            check("solver", out["solver"][0], SOURCES[src].deterministic,
                  f"an adaptive solver needs a deterministic field: source={src!r} draws fresh samples")


# key -> (what it applies to, a test on the resolved config); a registered class's field
# applies where a class using it is chosen
_APPLIES = {
    "n_val": ("phase 2 (n2)", lambda out: out["n2"] != [None]),
    "n_test": ("phase 2 (n2)", lambda out: out["n2"] != [None]),
    **{k: ("network = true", lambda out: out["network"][0])
       for k in ("scaling", "second_layer", "biases", "bias_init", "a_init")},
    "lr_ratio": ("network = true and second_layer = 'joint'",
                 lambda out: out["network"][0] and "joint" in out["second_layer"]),
}


def _check_keys_apply(config: dict, out: dict):
    """Refuse a key given in a configuration it does not apply to (it would be ignored,
    or add an axis of identical results), naming what it applies to."""
    for key, (applies_to, applies) in _APPLIES.items():
        if key in config and not applies(out):
            check(key, config[key], False, f"{key} applies only with {applies_to}; remove it")
    for kind, table in OBJECT_KEYS.items():
        for key in set(config) & {f for cls in table.values() for f in config_fields(cls)}:
            users = [name for name, cls in table.items() if key in config_fields(cls)]
            if not set(users) & set(out[kind]):
                now = config.get(kind, SCHEMA[kind][1])
                check(key, config[key], False, f"{key} applies only with {kind}="
                      + " or ".join(map(repr, users)) + f" (here {kind}={now!r}); remove it")


def read_toml(path) -> dict:
    """The one TOML reader of sweeps and experiments: data only (`tomllib`), never evaluated."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config={str(path)!r} is not allowed; no such file")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config={str(path)!r} is not valid TOML: {err}") from None


def load_config(source) -> dict:
    """Read a sweep's TOML file (path) or take a dict, and `resolve` it."""
    if isinstance(source, (str, Path)):
        return resolve(read_toml(source))
    return resolve(dict(source))


def swept_axes(config: dict) -> list[str]:
    """Keys with more than one value (the dataset's dimensions besides `step`), in schema
    order; `seeds` appears as `seed`. A seed axis is always kept, and a `neuron` axis comes
    last when `width > 1` neurons train independently (not for a `network`)."""
    axes = []
    for key in SCHEMA:
        if key == "seeds" or (config[key] is not None and config[key][0] is not None and len(config[key]) > 1):
            axes.append("seed" if key == "seeds" else key)
    independent = config["width"][0] > 1 and not config["network"][0]
    return axes + (["neuron"] if independent else [])
