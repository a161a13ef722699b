"""The research scripts of spikejax: the claims' experiments and their harness.

Layout:

- `run.py`: the one entry point, `python -m experiments.run [CONFIG|DIR ...] [--scale small|large]
  [--render] [--jobs N] [--only NAME ...]` (no CONFIG: `configs/claims/`, what `make reproduce` runs);
- `claims/`: one module per config kind (scaling, init_alignment, preconditioning,
  spherical_failure, passage, fullbatch, spherical_vs_normalized, three_stage,
  nongaussian_failure), each with `KIND`, `units(cfg)`, `run(cfg, docs, bar)`, `plot(out, docs)`
  and `table(out)` (see `claims/__init__.py`); no claim module imports another;
- `harness/`: what the claims share (configs, the JSON writer, tables, figures on
  `spikejax.plot.style`, seed keys, parallel runs, windows, grid searches, one-pass points, flows);
- `theory.py`: predictions and verdicts (every bound named with its algorithm, observable and
  whether it is proved or reconstructed); `summary.py`: the summary table of every exponent.

The other scripts keep their own `main` and take the same flags (a config path, `--render` to
redraw from docs/data): `networks.py`, `multi_index.py` and `network_vs_kernels.py` (their configs
have an `[experiment] kind`, so `python -m experiments.run CONFIG` hands them over), and the
post-processing of committed data, `chain_calibration.py` (local slopes of complexity_19),
`chain_limit.py` (the exact chain against its d -> infinity limit) and `step_share.py` (the law
n* = flow time x samples per unit time against the one-pass grid's points, complexity_15 and 10);
and runs of their own: on the exact chain, `step_scan.py` (complexity_20's 48 cells at steps
doubling from the common one: each dynamic's largest passing step and the law by runs),
`reuse_spherical.py` (claim 1's spherical stall under reused batches and extragradient) and
`reuse_spiked.py` (reuse and extragradient with a spike on the target, its off-spike layer and
whether a passage is held), `reuse_held.py` (that grid at a smaller step, with the passages that
hold); in d dimensions, `reuse_dandi_spiked.py` (Dandi et al.'s two-index
experiment with a spike on one direction) and `reuse_figures.py` (the published experiments'
figures). Each runs as `python -m experiments.<name> ...` from the repository root.
"""
