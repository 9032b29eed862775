"""Solvers: the particle ODE on diffrax and its projected wrapper, the literal WGAN
algorithm; grid and study-J solvers live in their own modules."""

from .algorithm import (
    FullBatch as FullBatch,
    Minibatch as Minibatch,
    WGANAlgorithm as WGANAlgorithm,
    train_wgan as train_wgan,
)
from .particles import (
    SOLVERS as SOLVERS,
    Trajectory as Trajectory,
    save_grid as save_grid,
    simulate as simulate,
    simulate_checkpointed as simulate_checkpointed,
    solver_by_name as solver_by_name,
    stability_bound as stability_bound,
)
from .projected import ProjectedSolver as ProjectedSolver
