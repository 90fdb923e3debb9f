"""Strict JSON for results: NaN and inf become ``null``, numpy values plain Python.

Python's ``json`` writes ``NaN``/``Infinity`` by default, which is not JSON
(``jq``, browsers and most parsers reject it). A metric that does not apply
(box IoU on data without boxes) is NaN in Python and ``null`` in a file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` with dict keys as strings, arrays as lists, numpy scalars as Python, NaN/inf as None, paths as str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def dumps(x: Any, indent: int | None = 1) -> str:
    """Strict JSON text of ``x`` (see :func:`jsonable`); other objects are written as ``str(obj)``."""
    return json.dumps(jsonable(x), indent=indent, allow_nan=False, default=str)
