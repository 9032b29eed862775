"""Solvers: the particle ODE on diffrax and its projected wrapper, the literal WGAN
algorithm; grid and study-J solvers live in their own modules; the run vocabulary they
share (result type, status, packing, time grid) in :mod:`.outcome`."""

from .algorithm import (
    FullBatch as FullBatch,
    Minibatch as Minibatch,
    WGANAlgorithm as WGANAlgorithm,
    train_wgan as train_wgan,
)
from .outcome import (
    MAX_SAVES as MAX_SAVES,
    RESULTS as RESULTS,
    AbstractTrajectory as AbstractTrajectory,
    Trajectory as Trajectory,
    as_arrays as as_arrays,
    from_arrays as from_arrays,
    save_grid as save_grid,
    staged as staged,
)
from .particles import (
    SOLVERS as SOLVERS,
    simulate as simulate,
    simulate_checkpointed as simulate_checkpointed,
    solver_by_name as solver_by_name,
    stability_bound as stability_bound,
)
from .projected import ProjectedSolver as ProjectedSolver
