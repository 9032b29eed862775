"""The named experiments: :data:`REGISTRY` maps each name to its :class:`Experiment`."""

from typing import Any

from ..errors import ConfigError as ConfigError
from .algorithm import MEAN_FIELD_VS_SGD
from .fokker_planck import FP_JS_1D, FP_JS_2D
from .gan_as_ode import GAN_AS_ODE
from .grid_blowup import GRID_BLOWUP
from .js_flow import JS_FLOW_PARTICLES
from .mse_divergence import MSE_DIVERGENCE
from .registry import (
    Experiment as Experiment,
    Param as Param,
    Result as Result,
    RunOptions as RunOptions,
    load_config_file as load_config_file,
    resolve_config as resolve_config,
)
from .toy import NEURON_BIMODAL_1D, TOY_SHIFT_LINEAR

EXPERIMENTS = (
    TOY_SHIFT_LINEAR,
    NEURON_BIMODAL_1D,
    MEAN_FIELD_VS_SGD,
    GRID_BLOWUP,
    FP_JS_1D,
    FP_JS_2D,
    JS_FLOW_PARTICLES,
    GAN_AS_ODE,
    MSE_DIVERGENCE,
)
"""Every named experiment."""

REGISTRY: dict[str, Experiment] = {experiment.name: experiment for experiment in EXPERIMENTS}
"""Name → experiment."""


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``, or :class:`ConfigError` naming the known ones."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def run_experiment(name: str, *, progress: bool = False, **overrides: Any) -> Result:
    """Run the named experiment with ``overrides`` of its defaults; see ``gandyn list``."""
    experiment = get_experiment(name)
    config = resolve_config(experiment, overrides)
    return experiment.run(config, RunOptions(progress=progress)).finite()
