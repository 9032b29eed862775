"""Array aliases used across gandyn (jaxtyping)."""

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

Scalar = Float[Array, ""]
ScalarLike = float | Float[Array, ""]
Particles = Float[Array, "n p"]
Weights = Float[Array, " n"]
Points = Float[Array, "m d"]
Vector = Float[Array, " d"]

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Float",
    "Int",
    "PRNGKeyArray",
    "PyTree",
    "Particles",
    "Points",
    "Scalar",
    "ScalarLike",
    "Vector",
    "Weights",
]
