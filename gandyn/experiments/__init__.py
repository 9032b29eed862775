"""The registry of named experiments; importing this module registers them all."""

from . import algorithm as algorithm, grids as grids, js as js, toy as toy
from .registry import (
    REGISTRY as REGISTRY,
    ConfigError as ConfigError,
    Experiment as Experiment,
    Param as Param,
    Result as Result,
    RunOptions as RunOptions,
    get_experiment as get_experiment,
    load_config_file as load_config_file,
    register as register,
    resolve_config as resolve_config,
    run_experiment as run_experiment,
)
