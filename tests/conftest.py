"""Tests run in float64: closed forms and finite differences are checked to tight tolerances.

Hypothesis runs derandomized (examples drawn from a seed fixed by each test), so a failure
reproduces on any machine; its failing example is printed.

Rank promotion raises: an implicit broadcast of ``(d,)`` against ``(n, d)`` is an error, so
every broadcast in the library (and in the tests) is written out (``x[None, :]``,
``jnp.broadcast_to``). ``tests/test_suite_settings.py`` checks these settings are on.
"""

import jax
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("gandyn", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("gandyn")
