"""Tests run in float64: closed forms and finite differences are checked to tight tolerances."""

import jax

jax.config.update("jax_enable_x64", True)
