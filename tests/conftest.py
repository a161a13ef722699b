import os

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

# One persistent compilation cache for the whole run, shared by the xdist workers and the CLI
# subprocesses (the same small programs recur across tests: test_networks + test_population
# went from 111 to 93 s wall with it). The controller makes the directory before the workers
# start, they inherit the variable, and the controller removes it at the end: a run never reads
# a cache it did not write, so a fresh clone measures what CI measures.
if "SPIKEJAX_TEST_CACHE" not in os.environ:
    import tempfile

    os.environ["SPIKEJAX_TEST_CACHE"] = tempfile.mkdtemp(prefix="spikejax-test-cache-")
    _OWN_CACHE = True
else:
    _OWN_CACHE = False
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["SPIKEJAX_TEST_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402

# Exactness checks run in float64; the engine itself follows JAX's default dtype.
jax.config.update("jax_enable_x64", True)


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        import shutil

        shutil.rmtree(os.environ["SPIKEJAX_TEST_CACHE"], ignore_errors=True)
