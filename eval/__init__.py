"""Measuring the service: golden sets, metrics (pure functions), reports and the baseline gate.

Nothing heavy is imported here so that ``import eval.metrics`` stays cheap in tests and the CLI.
"""
