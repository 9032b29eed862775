"""Games (objectives of the players) and their velocity fields."""

from .velocity import (
    critic_velocity as critic_velocity,
    first_variation_gradient as first_variation_gradient,
    generator_velocity as generator_velocity,
)
from .wgan import LOSSES as LOSSES, MeanFieldGame as MeanFieldGame
