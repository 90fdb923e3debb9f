"""Pool the estimated backgrounds of a dataset's takes that share a static camera.

In a lab (Human3.6M, our synthetic ``lab`` scenario) every camera films many
takes from the same place. A take's own temporal median keeps anybody who
stands still for most of it; the decoder then learns that the person *is*
background there, and the foreground targets lose them. Pooling the takes of
one camera (:func:`selfpose.data.backgrounds.pool_backgrounds`) fixes that
without labels. Sequences are grouped by view and frame size; a sequence
whose own background disagrees with its group's pooled one (another camera
placement or scene under the same view name) keeps its own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfpose.data.backgrounds import POOL_MIN_AGREE, POOL_TOLERANCE, BackgroundError, pool_backgrounds

logger = logging.getLogger(__name__)


@dataclass
class PoolReport:
    """What :func:`pool_dataset_backgrounds` did: sequence counts."""

    pooled: int = 0        # took their group's pooled background
    kept: int = 0          # disagreed with it, kept their own
    skipped: int = 0       # no static background, or a group of fewer than 3

    def __str__(self) -> str:
        return (f"{self.pooled} sequence(s) took their camera's pooled background, {self.kept} kept their own "
                f"(they disagree with it), {self.skipped} skipped (no static background or < 3 per camera)")


def pool_dataset_backgrounds(root: str | os.PathLike, tolerance: int = POOL_TOLERANCE,
                             min_agree: float = POOL_MIN_AGREE) -> PoolReport:
    """Replace each static sequence's ``background`` by its camera's pooled one, in place.

    Groups: same ``view`` and frame size, at least 3 sequences with a static
    ``background`` array. Moving-camera sequences (``backgrounds``) are left
    alone. The file is replaced atomically (write, then rename), so an
    interrupted run leaves every background whole. Running it again changes
    nothing more than the first run did (the median of pooled backgrounds
    is the pooled background).
    """
    from selfpose.data.store import Dataset

    if not 0 < min_agree <= 1:
        raise BackgroundError(f"min_agree must be in (0, 1], got {min_agree}")
    ds = Dataset.open(root)
    groups: dict[tuple, list] = {}
    report = PoolReport()
    for s in ds.sequences:
        if not s.has("background"):
            report.skipped += 1
            continue
        groups.setdefault((s.meta.view, s.meta.height, s.meta.width), []).append(s)
    for (view, _, _), seqs in groups.items():
        if len(seqs) < 3:
            report.skipped += len(seqs)
            continue
        own = np.stack([np.asarray(s["background"]) for s in seqs])
        pooled, agree = pool_backgrounds(own, tolerance)
        for s, a in zip(seqs, agree):
            if a < min_agree:
                report.kept += 1
                logger.info("%s keeps its own background (%.0f%% of pixels agree with view %r's pooled one)",
                            s.meta.id, 100 * a, view)
                continue
            path = Path(s.path("background"))
            tmp = path.with_name(path.stem + ".pooling.npy")
            np.save(tmp, pooled)
            os.replace(tmp, path)      # a new inode: memory maps of the old file stay valid
            report.pooled += 1
    logger.info("backgrounds of %s: %s", root, report)
    return report


__all__ = ("PoolReport", "pool_dataset_backgrounds")
