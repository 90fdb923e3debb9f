"""Training machinery shared by every method: config, loop, checkpoints, logs, distributed, precision.

Import the submodules directly (``from selfpose.training.loop import train``);
this package imports nothing heavy itself.
"""
