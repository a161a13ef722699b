"""Seed keys: every experiment at dimension `d` draws its seeds from `key(10_000 + d)`, so runs of
different configs at the same `d` share seeds (and a committed number reruns exactly)."""

from __future__ import annotations

import jax

import spikejax as sj


def seed_keys(problem, dynamic, d: int, seeds: int, right_sign_only: bool, **run):
    """The seed keys of an experiment at `d`: the first `seeds` of `4 seeds` keys split from
    `key(10_000 + d)`, or with `right_sign_only` (odd `s >= 3`) the first `seeds` of those whose
    `rho(w(0))` has the escaping sign, so no run is spent on seeds the sign rule would not count.
    `run`: `prepare`'s keywords (`reduced=True` for the exact chain)."""
    keys = jax.random.split(jax.random.key(10_000 + d), 4 * seeds)
    if right_sign_only:
        keys = keys[sj.right_sign(problem, sj.initial_rho(problem, dynamic, keys, **run))]
    return keys[:seeds]


def plain_keys(d: int, seeds: int):
    """`seeds` keys split from `key(10_000 + d)` (the committed full-batch scaling runs' draw)."""
    return jax.random.split(jax.random.key(10_000 + d), seeds)
