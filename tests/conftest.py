import atexit
import os
import shutil
import tempfile

# The suite is dominated by XLA's compiles (hundreds of small programs, each run a few steps):
# XLA:CPU's backend at optimisation level 0 compiles them about twice as fast (test_sweep's two
# heaviest tests: 84 -> 47 CPU s) and computes the same IEEE arithmetic (no fast math at any
# level), so results move at rounding level only; the tolerances are above that. XLA's older
# (non-MLIR) fusion emitters compile them faster again: two tiny sweeps took 7.0-7.2 CPU s against
# 11.1-13.0 with the default emitters, import included. The few tests whose run dominates compile
# their big program optimised (tests/optimized.py).
# SPIKEJAX_TEST_OPTIMIZED=1 runs the suite with XLA's default optimisation (docs/decisions.md).
# Set here, before jax is imported; subprocesses (the CLI tests) inherit it.
if os.environ.get("SPIKEJAX_TEST_OPTIMIZED") != "1":
    _fast = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
             " --xla_cpu_use_fusion_emitters=false")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _fast).strip()

# The CLI's persistent compilation cache ($XDG_CACHE_HOME/spikejax/jax) goes to a directory of this
# run's own, never the user's: in-process CLI tests turn it on for the rest of their worker.
_CACHE = tempfile.mkdtemp(prefix="spikejax-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import jax  # noqa: E402

# Exactness checks run in float64; the engine itself follows JAX's default dtype.
jax.config.update("jax_enable_x64", True)
