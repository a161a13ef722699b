"""Private pieces of spikejax that its tests, benchmarks and experiments reach into.

No stability promise: for tests and benchmarks. These names may change or go at any
release; code that uses spikejax takes the top-level names (`import spikejax as sj`).
Collecting them here keeps every underscore module private to the package.
"""

# The module itself: benchmarks/networks.py swaps its `_pair_sums` to time the rest of a step.
from . import _committee as committee

# The modules whose settings a test or benchmark swaps: the one-pass chain's pre-drawn blocks
# (`chain_module.PREDRAW_MAX_BATCH`, `simulate_module.PREDRAW_SAMPLES`, read when a call is
# traced) and `passage_n`'s cache of compiled calls (`complexity_module._passage_compiled`).
from . import _chain as chain_module, _complexity as complexity_module, _simulate as simulate_module

# The exact chain of one neuron (_chain.py) and of a width-m network (_chain_network.py).
from ._chain import (
    ChainDraw as ChainDraw,
    bartlett as bartlett,
    batch_risk as batch_risk,
    canonical as canonical,
    draw_batch as draw_batch,
    pad as pad,
    spike_cosine as spike_cosine,
)
from ._chain_network import (
    NetworkChain as NetworkChain,
    NetworkDraw as NetworkDraw,
    chain_risk as chain_risk,
    frame_rows as frame_rows,
    frame_start_rows as frame_start_rows,
    size as size,
)

# A width-m network's closed forms; this `arccos_kernel` takes a correlation, `sj.arccos_kernel`
# two sample matrices.
from ._committee import arccos_kernel as arccos_kernel, committee_grad as committee_grad
from ._complexity import bracket_window as bracket_window
from ._hermite import quadrature_coeffs as quadrature_coeffs
from ._source_base import pointwise_losses as pointwise_losses
from ._train import samples as samples

# The sweep layer's pieces: a group's compiled functions (benchmarks time them alone), its
# inputs, and the table of the datasets' variable descriptions (docs/sweeps.md shows it).
from ._budget import default_chunk as default_chunk
from ._results import variables_table as variables_table
from ._runner import Runner as Runner, params_array as params_array, seed_keys as seed_keys
from ._io import Store as Store
from ._profile import PHASES as PROFILE_PHASES, Profile as Profile
from ._registry import KINDS as REGISTRY_KINDS, TARGETS as REGISTERED_TARGETS
from ._saveat import overlaps as passage_overlaps
