"""selfpose: self-supervised 3D human pose from video.

Importing the package does nothing but define names; submodules are imported
on use so that ``selfpose --help`` stays fast and no torch work happens at
import time.
"""

__version__ = "0.1.0"
