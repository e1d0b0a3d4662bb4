"""Sweeps: grids of ordinary runs (presets × methods × seeds × grid axes), their executors and report.

Torch-free: the CLI and the UI import this package.
"""
