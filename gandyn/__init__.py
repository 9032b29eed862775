"""gandyn: mean-field dynamics of GAN training — simulate, measure, differentiate."""

from . import diagnostics as diagnostics, experiments as experiments
from ._version import __version__ as __version__
from .checkpoint import CheckpointSpec as CheckpointSpec, StaleCheckpoint as StaleCheckpoint
from .constraints import (
    AbstractConstraint as AbstractConstraint,
    HardClip as HardClip,
    NoConstraint as NoConstraint,
    PenaltyClip as PenaltyClip,
    SmoothClip as SmoothClip,
    SplitPenaltyClip as SplitPenaltyClip,
)
from .distributions import (
    Empirical as Empirical,
    GaussianLaw as GaussianLaw,
    GaussianMixture as GaussianMixture,
    Normal as Normal,
    Quadrature as Quadrature,
    Uniform as Uniform,
    ring_mixture as ring_mixture,
)
from .experiments import (
    REGISTRY as REGISTRY,
    ConfigError as ConfigError,
    Result as Result,
    run_experiment as run_experiment,
)
from .games import (
    AbstractLoss as AbstractLoss,
    MeanFieldGame as MeanFieldGame,
    MeanFieldProblem as MeanFieldProblem,
    MeanFieldState as MeanFieldState,
    Minimax as Minimax,
    NonSaturating as NonSaturating,
    Wasserstein as Wasserstein,
    critic_velocity as critic_velocity,
    first_variation_gradient as first_variation_gradient,
    generator_velocity as generator_velocity,
)
from .games.js import (
    AbstractDriftEstimator as AbstractDriftEstimator,
    AbstractDriftModel as AbstractDriftModel,
    ExactDiscriminator as ExactDiscriminator,
    ExactDrift as ExactDrift,
    GridDensity as GridDensity,
    KDEDrift as KDEDrift,
    KernelDiscriminator as KernelDiscriminator,
    NeuralDrift as NeuralDrift,
    TrainedDiscriminator as TrainedDiscriminator,
    discriminator_objective as discriminator_objective,
    fit_discriminator as fit_discriminator,
    js_estimate as js_estimate,
)
from .io import available_memory as available_memory
from .measure import ParticleMeasure as ParticleMeasure, sample_measure as sample_measure
from .networks import (
    AffineGenerator as AffineGenerator,
    Discriminator as Discriminator,
    MLPGenerator as MLPGenerator,
)
from .sharding import (
    PARTICLES as PARTICLES,
    particle_mesh as particle_mesh,
    replicate as replicate,
    shard_particles as shard_particles,
    shard_problem as shard_problem,
)
from .solvers import (
    RESULTS as RESULTS,
    AbstractTrajectory as AbstractTrajectory,
    ProjectedSolver as ProjectedSolver,
    Trajectory as Trajectory,
    simulate as simulate,
    simulate_checkpointed as simulate_checkpointed,
    solver_by_name as solver_by_name,
    stability_bound as stability_bound,
)
from .solvers.affine_gan import (
    affine_gan_eigenvalues as affine_gan_eigenvalues,
    affine_gan_threshold as affine_gan_threshold,
)
from .solvers.algorithm import (
    AbstractBatches as AbstractBatches,
    AbstractClipOrder as AbstractClipOrder,
    AbstractUpdateOrder as AbstractUpdateOrder,
    Alternating as Alternating,
    ClipAfter as ClipAfter,
    ClipBefore as ClipBefore,
    FullBatch as FullBatch,
    Minibatch as Minibatch,
    Simultaneous as Simultaneous,
    WGANAlgorithm as WGANAlgorithm,
    train_wgan as train_wgan,
)
from .solvers.fokker_planck import (
    FokkerPlanckTrajectory as FokkerPlanckTrajectory,
    solve_fokker_planck as solve_fokker_planck,
)
from .solvers.gan_as_ode import (
    GANAsODE as GANAsODE,
    GANState as GANState,
    GANTrajectory as GANTrajectory,
    run_gan_as_ode as run_gan_as_ode,
)
from .solvers.grid import (
    ContinuityProblem as ContinuityProblem,
    Grid as Grid,
    GridState as GridState,
    solve_continuity as solve_continuity,
)
from .solvers.js_flow import (
    JSFlowProblem as JSFlowProblem,
    JSFlowState as JSFlowState,
    simulate_js_flow as simulate_js_flow,
)
from .solvers.schemes import (
    MUSCL as MUSCL,
    AbstractScheme as AbstractScheme,
    Upwind as Upwind,
)
from .sweep import (
    grad_outcome as grad_outcome,
    sweep as sweep,
    value_and_grad_outcome as value_and_grad_outcome,
    write_sweep as write_sweep,
)
from .units import (
    AbstractCriticUnit as AbstractCriticUnit,
    AbstractGeneratorUnit as AbstractGeneratorUnit,
    AffineUnit as AffineUnit,
    LinearCritic as LinearCritic,
    NeuronCritic as NeuronCritic,
    NeuronUnit as NeuronUnit,
    ShiftUnit as ShiftUnit,
    TanhProductCritic as TanhProductCritic,
    TanhShiftUnit as TanhShiftUnit,
)
