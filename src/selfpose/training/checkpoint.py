"""Checkpoints that load without executing code: safetensors + JSON.

Layout of a run folder's checkpoints::

    checkpoints/
      ckpt-0000500/
        model.safetensors       the method's state dict (float32 weights, buffers)
        optimizer.safetensors   the optimiser's state tensors, flattened ("state.<param>.<name>")
        state.json              step, config hash, RNG states, sampler position, the optimiser's
                                non-tensor state (param groups), and the size + sha256 of both files
      ckpt-0001000/ ...
      latest                    name of the newest checkpoint (for people and scripts)

A checkpoint is written into a hidden temporary folder and renamed into place
only when complete (``state.json`` last), so a crash or SIGKILL during a save
leaves either the old or the new checkpoint, never a half one. Loading reads
safetensors and JSON only — never pickle — and checks every file's size and
hash first: a corrupt, truncated or missing file is a :class:`CheckpointError`
whose one-line message says what to do. When resuming, the newest *valid*
checkpoint is used, with a warning for each newer one that is broken; the
``latest`` file is only a convenience, the folders themselves are the truth.
Reading a run's weights (the pose stage, inference) needs ``model.safetensors`` and ``state.json`` only
(``weights_only``): a checkpoint kept or copied without its optimiser state still transfers; it cannot resume.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
FORMAT = 1
CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
LATEST = "latest"
_NAME = re.compile(r"^ckpt-(\d{7,})$")


class CheckpointError(SelfposeError, RuntimeError):
    """A checkpoint is missing, corrupt or incompatible; the message says what to do."""


@dataclass
class Checkpoint:
    """A validated checkpoint folder: ``path``, ``step`` and its ``state.json`` content."""

    path: Path
    step: int
    state: dict[str, Any]


def checkpoint_name(step: int) -> str:
    return f"ckpt-{int(step):07d}"


def checkpoints_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINTS


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every checkpoint folder of a run (unvalidated), oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


# --- RNG states as JSON -------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The global RNG states of python ``random``, numpy and torch (CPU, and each GPU once CUDA is in use),
    as JSON-able data."""
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": _b64(torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():   # dropout masks drawn on a GPU
        state["cuda"] = [_b64(t) for t in torch.cuda.get_rng_state_all()]
    return state


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    try:
        v, keys, gauss = state["python"]
        random.setstate((v, tuple(keys), gauss))
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(_unb64(state["torch"]))
        # A run saved on GPUs and resumed where there are as many: their streams continue; elsewhere
        # (resumed on the CPU) there is nothing to restore.
        if state.get("cuda") and torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
            torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"bad RNG state in checkpoint ({e}); resume from another checkpoint") from e


# --- optimiser state <-> safetensors + JSON --------------------------------------

def _to_json(v: Any) -> Any:
    if isinstance(v, tuple):
        return {"__tuple__": [_to_json(x) for x in v]}
    if isinstance(v, list):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_json(x) for k, x in v.items()}
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise CheckpointError("a non-scalar tensor in optimiser metadata cannot be stored as JSON")
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise CheckpointError(f"cannot store a {type(v).__name__} in a checkpoint's JSON ({v!r})")


def _from_json(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(_from_json(x) for x in v["__tuple__"])
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def flatten_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser ``state_dict()`` → (tensors for safetensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    state_meta: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        names, values = [], {}
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                key = f"state.{pid}.{name}"
                tensors[key] = v.detach().cpu().contiguous()
                names.append([name, key])
            else:
                values[name] = _to_json(v)
        state_meta[str(pid)] = {"tensors": names, "values": values}
    return tensors, {"state": state_meta, "param_groups": _to_json(sd["param_groups"])}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for pid, entry in meta["state"].items():
        st = {name: _from_json(v) for name, v in entry["values"].items()}
        for name, key in entry["tensors"]:
            if key not in tensors:
                raise CheckpointError(f"optimizer tensor {key!r} missing from {OPTIMIZER_FILE}")
            st[name] = tensors[key]
        state[int(pid)] = st
    return {"state": state, "param_groups": _from_json(meta["param_groups"])}


def _safetensors_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; tensors sharing storage (tied weights) are cloned,
    because safetensors refuses aliased tensors."""
    out, seen = {}, set()
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor; "
                                  "keep non-tensor state out of the module's state_dict")
        t = v.detach().cpu()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        out[k] = t.contiguous()
    return out


# --- files ---------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    _fsync_file(tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: str | os.PathLike, step: int, model_state: dict[str, torch.Tensor],
                    optimizer_state: dict[str, Any] | None, state: dict[str, Any], keep: int = 0) -> Path:
    """Write ``checkpoints/ckpt-{step:07d}`` atomically, point ``latest`` at it, prune old ones.

    Args:
        run_dir: the run folder.
        step: completed optimiser steps.
        model_state: the method's ``state_dict()`` (tensors only).
        optimizer_state: the optimiser's ``state_dict()`` (or None).
        state: JSON-able extras (config hash, RNG states, sampler position...).
        keep: keep the newest ``keep`` checkpoints (0: all).

    Returns:
        The checkpoint folder.
    """
    from safetensors.torch import save_file

    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-ckpt-*"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    try:
        save_file(_safetensors_dict(model_state), str(tmp / MODEL_FILE), metadata={"format": "pt"})
        opt_tensors, opt_meta = flatten_optimizer_state(optimizer_state or {"state": {}, "param_groups": []})
        save_file(opt_tensors, str(tmp / OPTIMIZER_FILE), metadata={"format": "pt"})
        files = {}
        for name in (MODEL_FILE, OPTIMIZER_FILE):
            p = tmp / name
            _fsync_file(p)
            files[name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        doc = {"format": FORMAT, "step": int(step), "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "files": files, "optimizer": opt_meta, **state}
        (tmp / STATE_FILE).write_text(json.dumps(doc, indent=1))
        _fsync_file(tmp / STATE_FILE)
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. interrupted right after a checkpoint)
            old = root / f".tmp-old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_text_atomic(root / LATEST, final.name + "\n")
    if keep > 0:
        for _, p in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    return final


def validate_checkpoint(path: str | os.PathLike, check_hashes: bool = True, weights_only: bool = False) -> Checkpoint:
    """Check a checkpoint folder's files (presence, sizes, sha256) and return it.

    ``weights_only``: check the model's file only (for reading the weights; an optimiser file that is there
    is still checked).

    Raises:
        CheckpointError: with a one-line message saying what to do.
    """
    path = Path(path)
    fix = f"delete it or resume from an earlier one: rm -r {path}"
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path (or the run's checkpoints/ folder)")
    sf = path / STATE_FILE
    if not sf.is_file():
        raise CheckpointError(f"checkpoint {path} has no {STATE_FILE} (incomplete save?); {fix}")
    try:
        state = json.loads(sf.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path}: {STATE_FILE} is unreadable ({e}); {fix}") from None
    if not isinstance(state, dict) or "files" not in state or "step" not in state:
        raise CheckpointError(f"checkpoint {path}: {STATE_FILE} lacks 'step'/'files'; {fix}")
    if state.get("format") != FORMAT:  # JSON document read from disk, not a config
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')!r}, this selfpose reads "
                              f"format {FORMAT}; use the selfpose version that wrote it")
    for name in (MODEL_FILE, OPTIMIZER_FILE):
        p = path / name
        expect = state["files"].get(name)
        if name == OPTIMIZER_FILE and weights_only and not p.exists():
            continue
        if expect is None or not p.is_file():
            raise CheckpointError(f"checkpoint {path}: {name} is missing; {fix}")
        size = p.stat().st_size
        if size != expect["bytes"]:
            raise CheckpointError(f"checkpoint {path}: {name} has {size} bytes, expected {expect['bytes']} "
                                  f"(truncated?); {fix}")
        if check_hashes and _sha256(p) != expect["sha256"]:
            raise CheckpointError(f"checkpoint {path}: {name} is corrupt (sha256 mismatch); {fix}")
    return Checkpoint(path, int(state["step"]), state)


def latest_checkpoint(run_dir: str | os.PathLike, weights_only: bool = False) -> Checkpoint | None:
    """The newest valid checkpoint of a run, or None when it has none.

    A newer checkpoint that is broken is skipped with a warning (falling back
    to the previous one). Raises :class:`CheckpointError` when checkpoints
    exist but none is valid. ``weights_only``: valid for reading the weights
    (see :func:`validate_checkpoint`), not necessarily for resuming.
    """
    found = list_checkpoints(run_dir)
    problems = []
    for _, p in reversed(found):
        try:
            ck = validate_checkpoint(p, weights_only=weights_only)
        except CheckpointError as e:
            problems.append(str(e))
            logger.warning("%s — falling back to an earlier checkpoint", e)
            continue
        return ck
    if problems:
        raise CheckpointError(f"no valid checkpoint in {checkpoints_dir(run_dir)} ({len(problems)} broken: "
                              f"{problems[0]}); start over with --overwrite or choose another output folder")
    return None


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path} ({e}); delete its checkpoint or resume from an "
                              f"earlier one: rm -r {path.parent}") from None


def load_checkpoint(ck: Checkpoint | str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any], Checkpoint]:
    """(model state dict, optimiser state dict, checkpoint) of a (validated) checkpoint folder."""
    if not isinstance(ck, Checkpoint):
        ck = validate_checkpoint(ck)
    model = _load_safetensors(ck.path / MODEL_FILE)
    opt = unflatten_optimizer_state(_load_safetensors(ck.path / OPTIMIZER_FILE), ck.state["optimizer"])
    return model, opt, ck


def resolve_checkpoint(path: str | os.PathLike, weights_only: bool = False) -> Checkpoint:
    """A run folder (→ its newest valid checkpoint) or a checkpoint folder → a validated checkpoint
    (``weights_only``: valid for reading its weights, see :func:`validate_checkpoint`)."""
    path = Path(path)
    if (path / STATE_FILE).exists() or _NAME.match(path.name):
        return validate_checkpoint(path, weights_only=weights_only)
    if checkpoints_dir(path).is_dir():
        ck = latest_checkpoint(path, weights_only=weights_only)
        if ck is not None:
            return ck
    raise CheckpointError(f"{path} is neither a run folder with checkpoints nor a checkpoint folder; "
                          "give the output folder of `selfpose pretrain` or one of its checkpoints/ckpt-* folders")


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The method's state dict (for inference) from a run folder, a checkpoint folder or a ``.safetensors`` file."""
    p = Path(path)
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise CheckpointError(f"weights file {p} not found; check the path")
        return _load_safetensors(p)
    return _load_safetensors(resolve_checkpoint(p, weights_only=True).path / MODEL_FILE)
