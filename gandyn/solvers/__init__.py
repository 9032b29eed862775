"""Solvers: particle ODE on diffrax and its projected wrapper."""

from .particles import (
    SOLVERS as SOLVERS,
)
from .particles import (
    MeanFieldProblem as MeanFieldProblem,
)
from .particles import (
    MeanFieldState as MeanFieldState,
)
from .particles import (
    Trajectory as Trajectory,
)
from .particles import (
    save_grid as save_grid,
)
from .particles import (
    simulate as simulate,
)
from .particles import (
    solver_by_name as solver_by_name,
)
from .projected import ProjectedSolver as ProjectedSolver
