"""3DPW (mmhuman3d npz format) → the house store.

Source folder::

    SOURCE/*.npz      image_path (N,), bbox_xywh (N, 4) px, smpl {body_pose (N, 23, 3), global_orient (N, 3),
                      betas (N, 10)}, meta {gender (N,)}
    SOURCE/<image_path> (e.g. imageFiles/courtyard_rangeOfMotions_00/image_00311.jpg),
                      or the bare file name in SOURCE (flat sample folders)

Samples of one video folder form a sequence per person (a folder's k-th
annotation of an image belongs to its k-th person), ordered by image number.

3D joints. The SMPL parameters are in the camera's orientation (mmhuman3d
rotates ``global_orient`` by the camera extrinsics), but the files carry
neither the body's translation nor the camera intrinsics, so ``joints3d`` is
**pelvis-centred** (camera orientation, mm), ``camera`` is None and there
is no ``joints2d``. Joints come from SMPL forward kinematics:

- with ``PrepareConfig.smpl_model`` (a standard SMPL ``.npz``, or a ``.pkl``
  that unpickles without chumpy): exact — rest joints
  ``J_regressor · (v_template + shapedirs · betas)``, then the pose;
- without it: **approximate** — the pose applied to a fixed rest skeleton
  (:data:`APPROX_REST_MM`, an average adult; ``betas`` ignored). Bone
  directions are right, bone lengths are an average body's.

Then SMPL-24 → Human3.6M-17 with :func:`~selfpose.geometry.skeleton.to_h36m`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.data.datasets.files import check_found, find_image
from selfpose.data.datasets.image_sequences import ImageSample, write_image_sequences
from selfpose.data.datasets.safe_read import npz_keys, npz_object, read_npz, read_pickle
from selfpose.geometry.skeleton import SMPL24, to_h36m

PW3D_FPS = 30.0

# Offsets of each SMPL joint from its parent in the rest (T) pose, mm, SMPL's
# canonical frame (x = the body's left, y up, z forward). Rounded from the
# neutral SMPL template's joints; bone lengths of an average adult.
_REST_OFFSETS_MM = (
    (0, 0, 0),                              # 0 pelvis
    (70, -90, -5), (-70, -90, -5),          # 1, 2 hips
    (0, 110, -15),                          # 3 spine1
    (35, -375, 0), (-35, -375, 0),          # 4, 5 knees
    (0, 135, 10),                           # 6 spine2
    (-10, -400, -40), (10, -400, -40),      # 7, 8 ankles
    (0, 55, 5),                             # 9 spine3
    (25, -55, 120), (-25, -55, 120),        # 10, 11 feet
    (0, 215, -30),                          # 12 neck
    (75, 115, -10), (-75, 115, -10),        # 13, 14 collars
    (0, 90, 50),                            # 15 head
    (120, 45, -10), (-120, 45, -10),        # 16, 17 shoulders
    (255, -15, -20), (-255, -15, -20),      # 18, 19 elbows
    (250, 10, -5), (-250, 10, -5),          # 20, 21 wrists
    (85, -10, -15), (-85, -10, -15),        # 22, 23 hands
)


def _rest_from_offsets() -> np.ndarray:
    rest = np.zeros((24, 3))
    for j, p in enumerate(SMPL24.parents):
        if p >= 0:
            rest[j] = rest[p] + np.array(_REST_OFFSETS_MM[j], dtype=np.float64)
    return rest


#: Approximate SMPL-24 rest joints, mm, pelvis at the origin (see the module docstring).
APPROX_REST_MM = _rest_from_offsets()


def smpl_forward_kinematics(rotvecs: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """SMPL-24 joints posed by axis-angle rotations.

    Args:
        rotvecs: ``(N, 24, 3)`` axis-angle per joint (joint 0 = global orientation), radians.
        rest: ``(24, 3)`` or ``(N, 24, 3)`` rest-pose joints (any length unit).

    Returns:
        ``(N, 24, 3)`` posed joints in the rest joints' unit, pelvis at the origin,
        in the frame ``global_orient`` rotates into.
    """
    from scipy.spatial.transform import Rotation

    rotvecs = np.asarray(rotvecs, np.float64)
    N = rotvecs.shape[0]
    R = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(N, 24, 3, 3)
    rest = np.broadcast_to(np.asarray(rest, np.float64), (N, 24, 3))
    G = np.empty_like(R)
    pos = np.zeros((N, 24, 3))
    G[:, 0] = R[:, 0]
    for j in range(1, 24):
        p = SMPL24.parents[j]
        G[:, j] = G[:, p] @ R[:, j]
        pos[:, j] = pos[:, p] + np.einsum("nab,nb->na", G[:, p], rest[:, j] - rest[:, p])
    return pos


class SmplJoints:
    """Rest joints of an SMPL model as a linear function of the shape ``betas``.

    ``J(β) = J_regressor · (v_template + shapedirs · β)``, precomputed as
    ``J_template + J_shapedirs · β`` so no mesh is ever built.
    """

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_file():
            raise PrepareError(f"SMPL model {path} not found")
        if path.suffix == ".npz":
            d = read_npz(path, error=PrepareError)
        elif path.suffix == ".pkl":
            d = read_pickle(path, error=PrepareError)
        else:
            raise PrepareError(f"SMPL model {path} must be a .npz or .pkl file")
        if not isinstance(d, dict):
            raise PrepareError(f"SMPL model {path} must hold a dict of arrays, it holds a {type(d).__name__}")
        missing = [k for k in ("v_template", "shapedirs", "J_regressor") if k not in d]
        if missing:
            raise PrepareError(f"SMPL model {path} lacks {', '.join(missing)}")
        jreg = d["J_regressor"]
        jreg = np.asarray(jreg.toarray() if hasattr(jreg, "toarray") else jreg, np.float64)
        v = np.asarray(d["v_template"], np.float64)
        sd = np.asarray(d["shapedirs"], np.float64)
        if jreg.shape != (24, len(v)) or sd.shape[:2] != v.shape:
            raise PrepareError(f"SMPL model {path}: J_regressor {jreg.shape}, v_template {v.shape} and "
                               f"shapedirs {sd.shape} do not fit together (need 24 joints)")
        if "kintree_table" in d:
            parents = np.asarray(d["kintree_table"]).astype(np.int64)[0].copy()
            parents[0] = -1
            if tuple(parents.tolist()) != SMPL24.parents:
                raise PrepareError(f"SMPL model {path}: its kinematic tree is not SMPL's 24-joint tree")
        self.template_mm = jreg @ v * 1000.0                                  # (24, 3)
        self.shapedirs_mm = np.einsum("jv,vcb->jcb", jreg, sd) * 1000.0      # (24, 3, B)

    def rest(self, betas: np.ndarray) -> np.ndarray:
        """``(N, 24, 3)`` rest joints, mm, for ``(N, B)`` betas (extra betas beyond the model's are ignored)."""
        betas = np.asarray(betas, np.float64).reshape(len(betas), -1)
        nb = min(betas.shape[1], self.shapedirs_mm.shape[2])
        return self.template_mm + np.einsum("jcb,nb->njc", self.shapedirs_mm[..., :nb], betas[:, :nb])


def _as_float(x: Any, shape_tail: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
        return arr.reshape((-1,) + shape_tail)
    except (TypeError, ValueError) as e:
        tail = ", ".join(map(str, shape_tail))
        raise PrepareError(f"{path}: {what} must be numbers of shape (N, {tail}): {e}") from e


def read_3dpw_npz(path: Path) -> dict[str, np.ndarray]:
    """``image_path`` (N,), ``bbox_xywh`` (N, 4), ``pose`` (N, 24, 3), ``betas`` (N, B), ``gender`` (N,)."""
    d = read_npz(path, ("image_path", "bbox_xywh", "smpl"), error=PrepareError)
    smpl = npz_object(d, "smpl", path, error=PrepareError)
    if not {"body_pose", "global_orient"} <= set(smpl):
        raise PrepareError(f"{path}: 'smpl' must be a dict with body_pose and global_orient")
    n = len(d["image_path"])
    body = _as_float(smpl["body_pose"], (23, 3), "smpl.body_pose", path)
    glob = _as_float(smpl["global_orient"], (1, 3), "smpl.global_orient", path)
    if len(body) != n or len(glob) != n:
        raise PrepareError(f"{path}: {n} images but {len(body)} body poses and {len(glob)} global orientations")
    betas = np.asarray(smpl["betas"], np.float64).reshape(n, -1) if "betas" in smpl else np.zeros((n, 10))
    gender = np.array([""] * n, dtype=object)
    if "meta" in d:
        meta = d["meta"].item() if d["meta"].dtype == object and d["meta"].ndim == 0 else {}
        if isinstance(meta, dict) and "gender" in meta and len(meta["gender"]) == n:
            gender = np.asarray(meta["gender"], dtype=object)
    return {"image_path": np.asarray(d["image_path"]).astype(str),
            "bbox_xywh": _as_float(d["bbox_xywh"], (4,), "bbox_xywh", path),
            "pose": np.concatenate([glob, body], axis=1), "betas": betas, "gender": gender}


def _is_3dpw_npz(path: Path) -> bool:
    # A truncated or corrupt npz raises (naming it) rather than being skipped as "some other file".
    return {"image_path", "bbox_xywh", "smpl"} <= set(npz_keys(path, error=PrepareError))


def prepare_3dpw(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write 3DPW sequences from ``source`` into ``writer``; returns facts for the dataset attrs."""
    root = source.parent if source.is_file() else source
    files = [source] if source.is_file() else sorted(p for p in source.glob("*.npz") if _is_3dpw_npz(p))
    if not files or not _is_3dpw_npz(files[0]):
        raise PrepareError(f"no 3DPW annotation file (npz with image_path, bbox_xywh and smpl) in {source}")
    model = SmplJoints(Path(cfg.smpl_model)) if cfg.smpl_model else None
    samples: list[ImageSample] = []
    skipped: list[str] = []
    for f in files:
        d = read_3dpw_npz(f)
        rest = APPROX_REST_MM if model is None else model.rest(d["betas"])
        j24 = smpl_forward_kinematics(d["pose"], rest)
        j17, _ = to_h36m(j24, "smpl24")
        seen: Counter = Counter()
        seq_attrs = {"joints3d_frame": "camera orientation, pelvis-centred (translation unknown)",
                     "joints3d_root_relative": True, "joints3d_model": "smpl" if model else "approximate"}
        for i, name in enumerate(d["image_path"]):
            seq = Path(name).parent.name or f.stem
            person = seen[name]
            seen[name] += 1
            # 3DPW's actors are not identified in these files: the video folder stands for its actor(s).
            subject = seq
            if cfg.subjects and subject not in cfg.subjects:
                continue
            image = find_image(root, name)
            if image is None:
                skipped.append(name)
                continue
            numbers = re.findall(r"\d+", Path(name).stem)
            x, y, w, h = d["bbox_xywh"][i]
            samples.append(ImageSample(
                image=image, subject=subject, action=re.sub(r"_\d+$", "", seq), take=seq, view=f"p{person}",
                frame_id=int(numbers[-1]) if numbers else i, camera=None, box=np.array([x, y, x + w, y + h]),
                joints3d=j17[i], attrs={**seq_attrs, "gender": str(d["gender"][i]), "source_file": f.name}))
    check_found(samples, skipped, root)
    info = write_image_sequences(writer, samples, cfg, PW3D_FPS, progress, "3DPW")
    how = "exact SMPL joints from " + Path(cfg.smpl_model).name if model else \
        "approximate SMPL joints (pose on an average rest skeleton, betas ignored)"
    return {**info, "num_skipped_images": len(skipped), "skipped_images": skipped[:50],
            "joints3d_model": "smpl" if model else "approximate",
            "notes": [f"joints3d: {how}; pelvis-centred, camera orientation, mm; translation and camera "
                      "intrinsics unknown (camera is None, no joints2d)"]}
