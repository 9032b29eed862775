"""Solvers: particle ODE on diffrax and its projected wrapper."""

from .particles import (
    SOLVERS as SOLVERS,
    MeanFieldProblem as MeanFieldProblem,
    MeanFieldState as MeanFieldState,
    Trajectory as Trajectory,
    save_grid as save_grid,
    simulate as simulate,
    solver_by_name as solver_by_name,
)
from .projected import ProjectedSolver as ProjectedSolver
