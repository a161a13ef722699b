import jax

# Exactness checks run in float64; the engine itself follows JAX's default dtype.
jax.config.update("jax_enable_x64", True)
