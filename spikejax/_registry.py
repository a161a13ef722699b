"""Names to objects, for text input only (TOML configs and the command line).

The Python API takes objects (`sj.Normalized()`, `sj.Empirical(n=4096)`); a config file
says `dynamic = "normalized"`. This is the one place where such a name becomes an object.
A user's own class can be registered here to be reachable from a config.
"""

from __future__ import annotations

from ._dynamics import Normalized, Preconditioned, Spherical, Vanilla
from ._inputs import Gaussian, Rademacher, StudentT
from ._solvers import Dopri5, Euler
from ._sources import Empirical, Online, Population, Reused

DYNAMICS = {"spherical": Spherical, "normalized": Normalized, "preconditioned": Preconditioned, "vanilla": Vanilla}
SOURCES = {"population": Population, "empirical": Empirical, "online": Online, "reused": Reused}
SOLVERS = {"euler": Euler, "dopri5": Dopri5}
INPUTS = {"gaussian": Gaussian, "student_t": StudentT, "rademacher": Rademacher}


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
