"""A pose folder's own copy of the encoder it was fitted on.

A pose head is only meaningful with the exact weights whose features it was
fitted on. ``fit-pose`` therefore keeps, inside the pose folder::

    POSE/encoder/model.safetensors   the checkpoint's weights (a hard link; a copy where linking fails)
    POSE/encoder/config.yaml         a copy of the run's config at that time (a link would follow an
                                     edit of the run's file made in place)

and records in ``pose.json`` under ``encoder`` the run, the checkpoint step
and the sha256 of the weights and of the config. ``evaluate``, ``predict`` and ``analyze``
load exactly these weights and refuse (one-line :class:`EncoderMismatch`)
when the file is missing or its hash differs — never another step of the run.

Why a link and not pins in the run (a list of checkpoints that
``train.keep_checkpoints`` pruning must skip): the pose folder then stands on
its own. Pruning, ``pretrain --resume`` (which may save the same step again
or prune the old one), moving or deleting the run can never strand it, and
nothing has to coordinate a run being trained with pose folders written by
other processes. On one filesystem the link costs no space (pruning removes
the run's name for the file, the pose folder's name keeps it); across
filesystems the copy costs the weights' size (a few MB at the CPU profile).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from selfpose.errors import SelfposeError

ENCODER_DIR = "encoder"
WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"


class EncoderMismatch(SelfposeError, RuntimeError):
    """A pose folder's encoder weights are missing or differ from those it was fitted on."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _link_or_copy(src: Path, dst: Path) -> str:
    """Hard-link ``src`` to ``dst`` (``"link"``), or copy it where linking fails (``"copy"``)."""
    try:
        os.link(src, dst)
        return "link"
    except OSError:
        shutil.copy2(src, dst)
        return "copy"


def keep_config(run, dest: Path) -> None:
    """The run's config file copied to ``dest`` — or, for a run read with overrides (``run.read``), the config it
    is read with, written out (the pose folder then loads the method as it was read)."""
    if getattr(run, "read", ()):
        from selfpose.training.config import save_config

        save_config(run.config, dest)
    else:
        shutil.copyfile(Path(run.path) / CONFIG, dest)


def pin_encoder(run, pose_dir: str | os.PathLike) -> dict:
    """Keep the weights and config of ``run`` (a loaded :class:`~selfpose.pretrain.Run`) in ``pose_dir/encoder``.

    Returns the ``encoder`` record for ``pose.json``: ``run`` (path), ``step``,
    ``sha256`` and ``bytes`` of the weights, and how they were kept
    (``link``/``copy``). Raises :class:`EncoderMismatch` when the run's file
    changed since it was loaded (e.g. a resume re-saved that step meanwhile).
    """
    from selfpose.errors import disk_full

    if run.weights_file is None or run.weights_sha256 is None:
        raise EncoderMismatch("the encoder was not loaded from a checkpoint file, so the pose folder cannot record it")
    d = Path(pose_dir) / ENCODER_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
        how = _link_or_copy(Path(run.weights_file), d / WEIGHTS)
        keep_config(run, d / CONFIG)
    except FileNotFoundError:
        raise EncoderMismatch(f"checkpoint step {run.step} of {run.path} was removed while the pose head was "
                              "fitted (the run was resumed meanwhile?); fit the pose head again") from None
    except OSError as e:
        raise disk_full(e, d) or e
    got = sha256_file(d / WEIGHTS)
    if got != run.weights_sha256:
        raise EncoderMismatch(f"the weights of {run.weights_file} changed while the pose head was fitted (another "
                              "process resumed the run?); fit the pose head again")
    return {"run": str(Path(run.path).resolve()), "step": run.step, "sha256": got,
            "bytes": (d / WEIGHTS).stat().st_size, "kept_as": how, "config_sha256": sha256_file(d / CONFIG)}


def load_pinned(pose_dir: str | os.PathLike, record: dict | None):
    """The :class:`~selfpose.pretrain.Run` a pose folder was fitted on, from its own copy, hash-checked.

    Raises:
        EncoderMismatch: no record (a pose folder of an older selfpose), the
            file is missing, or its sha256 differs from the record.
    """
    from selfpose.pretrain import Run, build_trained_method, load_config
    from selfpose.training.checkpoint import _load_safetensors

    pose_dir = Path(pose_dir)
    if not record:
        raise EncoderMismatch(f"{pose_dir} does not record which encoder it was fitted on (made by an older "
                              "selfpose); fit it again with `selfpose fit-pose`")
    d = pose_dir / ENCODER_DIR
    w = d / WEIGHTS
    step = record.get("step")
    if not w.is_file() or not (d / CONFIG).is_file():
        raise EncoderMismatch(f"{pose_dir}: the encoder it was fitted on (step {step} of {record.get('run')}) "
                              f"is missing from {d}; fit the pose head again")
    got = sha256_file(w)
    if got != record.get("sha256"):
        raise EncoderMismatch(f"{pose_dir}: {w} is not the encoder it was fitted on (step {step} of "
                              f"{record.get('run')}: sha256 {str(record.get('sha256'))[:12]}…, found {got[:12]}…); "
                              "it was changed — fit the pose head again")
    want = record.get("config_sha256")   # absent in pose folders fitted before it was recorded
    if want is not None and sha256_file(d / CONFIG) != want:
        raise EncoderMismatch(f"{pose_dir}: {d / CONFIG} is not the run config it was fitted with (it was "
                              "changed); fit the pose head again")
    cfg = load_config(d)
    method = build_trained_method(cfg, _load_safetensors(w), d)
    return Run(Path(record.get("run", d)), cfg, method, None, step, w, got)
