"""The loss of the network's output `f` against the label `y`: `Squared()` or `Correlation()`.

A loss carries what each part of the engine asks of it: `pointwise(out, y)`, which the
sampled sources average; `population(second, cross, target)`, the population risk from
the moments `E[f^2]`, `E[y f]` and `E[y^2]`, which the closed forms give; `noise_floor`,
what label noise alone adds to that risk; and `quadratic`, whether the risk reads the
output's second moment `E[f^2]` (the hand-written gradients and the limit diffusion
branch on it). Both losses are `q (f^2 + y^2) / 2 - y f` with `q = 1` (squared) or `0`
(correlation). A loss is stateless, so it is a static field of `Problem`.
"""

import abc

import equinox as eqx
from equinox import AbstractClassVar


class AbstractLoss(eqx.Module):
    """A loss `l(f, y)`. Class attributes: `name` (its name in configs and messages) and
    `quadratic` (the population risk has the term `E[f^2] / 2`)."""

    name: AbstractClassVar[str]
    quadratic: AbstractClassVar[bool]

    @abc.abstractmethod
    def pointwise(self, out, y):
        """The loss of each sample from the outputs `out` and labels `y`."""

    @abc.abstractmethod
    def population(self, second, cross, target):
        """The population risk from `E[f^2]` (`second`), `E[y f]` (`cross`) and `E[y^2]` (`target`)."""

    @abc.abstractmethod
    def noise_floor(self, noise):
        """The part of the population risk that label noise of standard deviation `noise` adds."""


class Squared(AbstractLoss):
    """`(f - y)^2 / 2`: population risk `E[f^2] / 2 - E[y f] + E[y^2] / 2`."""

    name = "squared"
    quadratic = True

    def pointwise(self, out, y):
        return 0.5 * (out - y) ** 2

    def population(self, second, cross, target):
        return 0.5 * second - cross + 0.5 * target

    def noise_floor(self, noise):
        return 0.5 * noise**2


class Correlation(AbstractLoss):
    """`-y f`: population risk `-E[y f]` (no second moment, no target term, no noise floor)."""

    name = "correlation"
    quadratic = False

    def pointwise(self, out, y):
        return -y * out

    def population(self, second, cross, target):
        return -cross

    def noise_floor(self, noise):
        return 0.0
