"""spikejax: gradient-based feature learning of single-index models under spiked covariance."""

from ._complexity import (
    SEARCH_METRICS as SEARCH_METRICS,
    ExponentFit as ExponentFit,
    HorizonCheck as HorizonCheck,
    Passage as Passage,
    Search as Search,
    bootstrap_exponent as bootstrap_exponent,
    bootstrap_passage as bootstrap_passage,
    critical_n as critical_n,
    fit_exponent as fit_exponent,
    horizon_check as horizon_check,
    initial_rho as initial_rho,
    median_n as median_n,
    passage_n as passage_n,
    right_sign as right_sign,
    search_n as search_n,
    success_fraction as success_fraction,
)
from ._covariance import (
    AbstractCovariance as AbstractCovariance,
    DenseCovariance as DenseCovariance,
    MultiSpikeCovariance as MultiSpikeCovariance,
    SpikedCovariance as SpikedCovariance,
)
from ._data import (
    ConfigKeys as ConfigKeys,
    config_keys as config_keys,
    draw as draw,
    estimate_covariance as estimate_covariance,
    sample_x as sample_x,
)
from ._dynamics import (
    AbstractDynamic as AbstractDynamic,
    Normalized as Normalized,
    Preconditioned as Preconditioned,
    Spherical as Spherical,
    Vanilla as Vanilla,
)
from ._estimators import (
    CELL_STATUSES as CELL_STATUSES,
    Slope as Slope,
    TailFit as TailFit,
    cell_status as cell_status,
    censored_median as censored_median,
    censored_quantile as censored_quantile,
    interval_text as interval_text,
    local_slopes as local_slopes,
    tail_fit as tail_fit,
)
from ._hermite import (
    HermiteFunction as HermiteFunction,
    gauss_hermite as gauss_hermite,
    hermite_basis as hermite_basis,
    hermite_function as hermite_function,
    information_exponent as information_exponent,
    relu_coeffs as relu_coeffs,
    scaled_coeffs as scaled_coeffs,
    second_moment as second_moment,
)
from ._inputs import AbstractInputs as AbstractInputs, Gaussian as Gaussian, Rademacher as Rademacher, StudentT as StudentT
from ._loss import AbstractLoss as AbstractLoss, Correlation as Correlation, Squared as Squared
from ._network import TwoLayer as TwoLayer
from ._neuron import (
    AbstractNeuron as AbstractNeuron,
    Plain as Plain,
    SigmaHatNorm as SigmaHatNorm,
    SigmaNorm as SigmaNorm,
    neuron_norm as neuron_norm,
)
from ._population import correlation as correlation, population_risk as population_risk, reduce as reduce, rho as rho
from ._problem import Problem as Problem, make_problem as make_problem
from ._registry import (
    DYNAMICS as DYNAMICS,
    INPUTS as INPUTS,
    LOSSES as LOSSES,
    NEURONS as NEURONS,
    SOLVERS as SOLVERS,
    SOURCES as SOURCES,
    register as register,
)
from ._source_base import SourceCost as SourceCost
from ._saveat import (
    METRICS as METRICS,
    STATUS as STATUS,
    STATUS_MESSAGES as STATUS_MESSAGES,
    SaveAt as SaveAt,
    metrics as metrics,
    record_schedule as record_schedule,
)
from ._simulate import (
    Simulation as Simulation,
    State as State,
    Trajectory as Trajectory,
    advance as advance,
    check_dt as check_dt,
    init as init,
    prepare as prepare,
    result as result,
    running as running,
    simulate as simulate,
    stability_limit as stability_limit,
    step_limit as step_limit,
    state_axes as state_axes,
)
from ._extragradient import ExtraGradient as ExtraGradient, ExtraGradientChain as ExtraGradientChain
from ._solvers import AbstractSolver as AbstractSolver, Dopri5 as Dopri5, Euler as Euler, Optax as Optax
from ._sources import (
    AbstractSource as AbstractSource,
    Chain as Chain,
    Empirical as Empirical,
    Online as Online,
    Population as Population,
    Reused as Reused,
    projected_risk as projected_risk,
    sample_risk as sample_risk,
)
from ._committee import (
    committee_moments as committee_moments,
    network_risk as network_risk,
    overlaps as overlaps,
    shifted_coeffs as shifted_coeffs,
    truncation_bound as truncation_bound,
)
from ._train import (
    NETWORK_METRICS as NETWORK_METRICS,
    Network as Network,
    network_metrics as network_metrics,
    network_of as network_of,
    overlap_matrix as overlap_matrix,
)
from ._target import AbstractTarget as AbstractTarget, SingleIndex as SingleIndex
from ._multi_index import (
    BUILTIN_TARGETS as BUILTIN_TARGETS,
    MultiIndex as MultiIndex,
    TargetFunction as TargetFunction,
    multi_hermite as multi_hermite,
    parity as parity,
    product_h2 as product_h2,
    quadrature_expansion as quadrature_expansion,
    sigma_orthonormalise as sigma_orthonormalise,
    staircase as staircase,
    sum_h2 as sum_h2,
)
from ._multi_problem import multi_index_problem as multi_index_problem, spike_alignment as spike_alignment
from ._leap import information_exponents as information_exponents, leap_exponent as leap_exponent, leap_order as leap_order
from ._subspace import (
    coverage as coverage,
    direction_overlaps as direction_overlaps,
    overlap_matrix_sigma as overlap_matrix_sigma,
    principal_cosines as principal_cosines,
    subspace_metrics as subspace_metrics,
)
from ._limit import (
    LimitPassage as LimitPassage,
    LimitSDE as LimitSDE,
    S2Constants as S2Constants,
    limit_passage as limit_passage,
    limit_sde as limit_sde,
    passage_shift as passage_shift,
    s2_constants as s2_constants,
)
from ._kernels import (
    KERNELS as KERNELS,
    arccos_kernel as arccos_kernel,
    kernel_ridge as kernel_ridge,
    rbf_kernel as rbf_kernel,
    rf_ridge as rf_ridge,
)
from ._pipeline import Learned as Learned, learn as learn, learn_samples as learn_samples, train_first_layer as train_first_layer
from ._readout import (
    DEFAULT_RIDGES as DEFAULT_RIDGES,
    Readout as Readout,
    draw_splits as draw_splits,
    fit_readout as fit_readout,
    readout as readout,
    ridge_path as ridge_path,
)

from ._version import __version__ as __version__
from ._config import load_config as load_config, read_toml as read_toml
from ._io import atomic_write as atomic_write, load_results as load_results, merge_parts as merge_parts
from ._grid import plan as plan
from ._plan import SweepPlan as SweepPlan, preflight as preflight
from ._spec import SweepSpec as SweepSpec
from ._sweep import run as run, sweep as sweep
