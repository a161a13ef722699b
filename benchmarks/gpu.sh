#!/usr/bin/env bash
# NOT RUN. No GPU was available when these benchmarks were written (2026-11-29); nothing in
# BENCHMARKS.md comes from this script. It runs the same tables at 10x the sizes on one GPU
# and reports the fraction of the GPU's fp32 matrix peak (a 8192^2 GEMM timed in the same
# run, at true fp32: JAX_DEFAULT_MATMUL_PRECISION=highest, so no TF32).
#
#   bash benchmarks/gpu.sh            # from the repository root, with a CUDA jax installed:
#                                     #   .venv/bin/pip install -U "jax[cuda12]"
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-.}
export XLA_PYTHON_CLIENT_PREALLOCATE=false     # measure memory as used, not preallocated
export JAX_DEFAULT_MATMUL_PRECISION=highest     # fp32 GEMMs (the peak below is the fp32 one)
export SPIKEJAX_PEAK_SIZE=8192                  # e2e.py's square-GEMM peak
"$PY" -c "import jax; print(jax.devices()); assert jax.default_backend() == 'gpu', 'no GPU backend'"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv | tee "$OUT/gpu.txt"

# benchmarks 1-4: 10x the configurations (B = 640 and 5120; population 10^5 and 10^6)
"$PY" benchmarks/run.py --scale 10 --peak-size 8192 --json "$OUT/bench.json" | tee "$OUT/bench.txt"
# end to end, the CLI: S x B = 1 x 5120, 8 x 640, 64 x 80 (10x the CPU grids), and the seed grouping
# (the runner's seed_loop: "vmap", the accelerator default, against "map", the CPU one)
"$PY" benchmarks/e2e.py --grids 1x5120,8x640,64x80 --rounds 3 --grouping --total 5120 --json "$OUT/e2e.json" | tee "$OUT/e2e.txt"
# online and reused sources: 10x the configurations sharing each fresh batch (5120, d = 1024, batch 64)
"$PY" benchmarks/online.py --configs 5120 --json "$OUT/online.json" | tee "$OUT/online.txt"
# the scaling table (d up to 8192 and n up to 16384 as on CPU; the widths are the script's)
"$PY" benchmarks/scaling.py --json "$OUT/scaling.json" | tee "$OUT/scaling.txt"
