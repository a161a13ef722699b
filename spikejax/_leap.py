"""Leap exponent and per-direction exponents of a multi-index target's Hermite series.

With the support `S = {alpha != 0 : g_alpha != 0}` of `g = sum_alpha g_alpha h_alpha`, the
**leap exponent** (Abbe, Boix-Adsera, Misiakiewicz 2023, their Gaussian definition) is

    Leap(g) = min over orderings alpha^(1), ..., alpha^(|S|) of S of
              max_l || alpha^(l) restricted to the coordinates not in supp(alpha^(1..l-1)) ||_1,

the largest total *degree* a term carries on directions no earlier term has touched. So
`h_2(z_1)` has leap 2 (one new coordinate, degree 2: the information exponent of the
single-index case), the staircase `z_1 + z_1 z_2 + z_1 z_2 z_3` leap 1, the parity
`z_1 z_2 z_3` leap 3, `sum_i h_2(z_i)` leap 2 and `prod_i h_2(z_i)` leap 2k. (The Boolean
definition counts new coordinates instead; it would give `sum_i h_2(z_i)` leap 1.)

Adding a term only grows the set of touched coordinates, so a greedy closure is exact: for
a bound `L`, keep adding any term whose new part has degree `<= L`; the leap is the least
`L` whose closure touches every coordinate of `S`. `leap_order` returns that closure's
order: for each direction, the stage at which it is learned and the leap that brought it.

The **information exponent of direction i** (`information_exponents`) is that of the
marginal link `E[g(z) | z_i] = sum_j g_{j e_i} h_j(z_i)`: `min{j >= 1 : g_{j e_i} != 0}`,
what a neuron correlated with `u_i` alone sees at initialisation; None (infinite) when the
marginal is constant (`z_2` of the staircase: it is only learned after `z_1`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_TOL = 1e-10


def _support(target) -> list[tuple]:
    """The nonzero, non-constant multi-indices of a `MultiIndex` or a mapping `{alpha: g_alpha}`."""
    items = target.items() if isinstance(target, Mapping) else target.expansion().items()
    return [tuple(a) for a, c in items if abs(float(c)) > _TOL and any(a)]


def _closure(support, bound: int):
    """Greedy closure under `bound`: `(touched, stages)`, `stages` a list of (coordinates, leap)."""
    touched: set = set()
    stages = []
    left = list(support)
    while True:
        best = None
        for alpha in left:
            new = [i for i, a in enumerate(alpha) if a > 0 and i not in touched]
            cost = sum(alpha[i] for i in new)
            if cost <= bound and (best is None or cost < best[0]):
                best = (cost, alpha, new)
        if best is None:
            return touched, stages
        cost, alpha, new = best
        left.remove(alpha)
        if new:
            stages.append((tuple(new), cost))
            touched.update(new)


def leap_exponent(target) -> int | None:
    """The leap exponent of a `MultiIndex` target (or a mapping `{alpha: g_alpha}`); None for
    a constant target."""
    support = _support(target)
    if not support:
        return None
    needed = {i for alpha in support for i, a in enumerate(alpha) if a > 0}
    for bound in range(1, max(sum(a) for a in support) + 1):
        if _closure(support, bound)[0] == needed:
            return bound
    raise AssertionError("unreachable: the largest degree always closes")


def leap_order(target) -> list[tuple[int, int] | None]:
    """For each direction `i`: `(stage, leap)`, the step (1-based) of the minimal-leap greedy
    closure at which `u_i` is first touched, and the degree that step carries on new
    directions (a conditional exponent: the staircase gives `[(1, 1), (2, 1), (3, 1)]`,
    `sum_h2` `[(1, 2), (2, 2)]`); None for a direction the target does not depend on."""
    support = _support(target)
    k = len(support[0]) if support else len(next(iter(_as_alphas(target))))
    out: list = [None] * k
    leap = leap_exponent(target)
    if leap is None:
        return out
    for stage, (coords, cost) in enumerate(_closure(support, leap)[1], start=1):
        for i in coords:
            out[i] = (stage, cost)
    return out


def _as_alphas(target):
    return target.keys() if isinstance(target, Mapping) else target.alphas


def information_exponents(target) -> tuple:
    """Each direction's information exponent: `min{j >= 1 : g_{j e_i} != 0}` (the marginal
    link's), or None when `g`'s marginal on `z_i` is constant."""
    support = _support(target)
    k = len(next(iter(_as_alphas(target))))
    out = []
    for i in range(k):
        pure = [alpha[i] for alpha in support if alpha[i] > 0 and sum(alpha) == alpha[i]]
        out.append(int(np.min(pure)) if pure else None)
    return tuple(out)
