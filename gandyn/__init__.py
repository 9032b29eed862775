"""gandyn: mean-field dynamics of GAN training — simulate, measure, differentiate."""

__version__ = "0.1.0"

from . import diagnostics as diagnostics, experiments as experiments
from .constraints import (
    AbstractConstraint as AbstractConstraint,
    HardClip as HardClip,
    NoConstraint as NoConstraint,
    PenaltyClip as PenaltyClip,
    SmoothClip as SmoothClip,
)
from .distributions import (
    Empirical as Empirical,
    GaussianMixture as GaussianMixture,
    Normal as Normal,
    Quadrature as Quadrature,
    Uniform as Uniform,
)
from .experiments import (
    REGISTRY as REGISTRY,
    ConfigError as ConfigError,
    Result as Result,
    run_experiment as run_experiment,
)
from .games import (
    MeanFieldGame as MeanFieldGame,
    critic_velocity as critic_velocity,
    first_variation_gradient as first_variation_gradient,
    generator_velocity as generator_velocity,
)
from .measure import ParticleMeasure as ParticleMeasure, sample_measure as sample_measure
from .solvers import (
    MeanFieldProblem as MeanFieldProblem,
    MeanFieldState as MeanFieldState,
    ProjectedSolver as ProjectedSolver,
    Trajectory as Trajectory,
    simulate as simulate,
    solver_by_name as solver_by_name,
)
from .units import (
    AffineUnit as AffineUnit,
    LinearCritic as LinearCritic,
    NeuronCritic as NeuronCritic,
    NeuronUnit as NeuronUnit,
    ShiftUnit as ShiftUnit,
)
