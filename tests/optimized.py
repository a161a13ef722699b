"""XLA options that undo the suite's fast-compile flags (conftest.py) for one program: for the
few tests whose run, not their compile, dominates (long scans that draw many normals), which
level 0 runs about 4x slower."""

import jax

OPTIMIZED = {"xla_backend_optimization_level": 2, "xla_llvm_disable_expensive_passes": False,
             "xla_cpu_use_fusion_emitters": True}


def compiled(f, *args):
    """`jax.jit(f)` lowered for `args` and compiled optimised: call it with arguments of the same
    shapes and structure."""
    return jax.jit(f).lower(*args).compile(compiler_options=OPTIMIZED)
