"""Games (objectives of the players), their velocity fields, and the mean-field problem
and state that the particle solvers integrate."""

from .losses import (
    AbstractLoss as AbstractLoss,
    Minimax as Minimax,
    NonSaturating as NonSaturating,
    Wasserstein as Wasserstein,
)
from .problem import (
    WALL_CONTACT as WALL_CONTACT,
    Diagnostic as Diagnostic,
    MeanFieldProblem as MeanFieldProblem,
    MeanFieldState as MeanFieldState,
    Signal as Signal,
    with_first_times as with_first_times,
)
from .velocity import (
    critic_velocity as critic_velocity,
    first_variation_gradient as first_variation_gradient,
    generator_velocity as generator_velocity,
)
from .wgan import MeanFieldGame as MeanFieldGame
