"""Plots (matplotlib, Agg backend).

Only the CLI, experiments' plot functions and notebooks import this package; core modules
never do.
"""
