"""Training machinery shared by every method: config, loop, the toolkit (optimiser, schedule, step), checkpoints,
logs, distributed, precision.

Import the submodules directly (``from selfpose.training.loop import train``);
this package imports nothing heavy itself.
"""
