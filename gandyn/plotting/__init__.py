"""Plots (matplotlib, Agg). Only the CLI and notebooks import this package; core modules never do."""
