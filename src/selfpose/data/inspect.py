"""What a prepared dataset holds, and whether it is consistent (``selfpose info DIR [--check]``).

:func:`summarize` reads only the index. :func:`check` reads the arrays too,
streaming: one sequence at a time, temporal arrays in chunks of frames from
their memory maps, so a dataset of any size is checked in bounded memory.
Both return JSON-serialisable dicts; :func:`format_summary` and
:func:`format_check` render them as text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfpose.data.sequence import ARRAY_SPECS, outside_image
from selfpose.data.store import Dataset, DatasetError, SequenceRecord
from selfpose.geometry.skeleton import H36M17, bone_lengths
from selfpose.utils.progress import track

#: A reprojection error above this (px) fails :func:`check`: stored 3D and 2D
#: of one frame must describe the same pose through the stored camera.
DEFAULT_REPROJ_THRESHOLD_PX = 2.0
#: Plausible median length of every house bone, mm. Wide enough for children,
#: HumanEva's 70-mm hips and long synthetic limbs; it catches metres (≈0.4)
#: and centimetres stored as millimetres in the long bones.
DEFAULT_BONE_RANGE_MM = (20.0, 800.0)
#: A 2D joint counts as ground truth (and is reprojection-checked) at this confidence.
_GT_CONF = 0.999
#: How far a box may stick out of the image, px (rounding of clipped boxes).
_BOX_TOL_PX = 1.0
#: Problems listed per kind and sequence are capped so a broken dataset gives a readable report.
_MAX_PROBLEMS_SHOWN = 50

_BONE_NAMES = tuple(f"{H36M17.joint_names[p]}-{H36M17.joint_names[c]}" for p, c in H36M17.bones)


# -- summary ---------------------------------------------------------------------

def summarize(ds: Dataset) -> dict[str, Any]:
    """Counts, sizes and available labels of a dataset, from its index only (no array is read).

    Returns a JSON-serialisable dict: ``num_sequences``, ``num_subjects``,
    ``num_actions``, ``num_views``, ``num_takes``, ``num_frames``,
    ``duration_s``, ``frames_per_subject`` {subject: frames},
    ``sequences_per_action`` {action: sequences}, ``views`` [names],
    ``resolutions`` {"WxH": sequences}, ``fps`` {"25": sequences},
    ``scenarios`` {scenario: sequences}, ``cameras`` {"intrinsics": n,
    "per_frame_extrinsics": n}, ``labels`` {array name: sequences that have
    it}, plus ``root``, ``created`` and the dataset ``attrs``.
    """
    metas = [s.meta for s in ds.sequences]
    frames_per_subject: Counter = Counter()
    for m in metas:
        frames_per_subject[m.subject] += m.num_frames
    labels: Counter = Counter()
    for s in ds.sequences:
        labels.update(s.arrays)
    return {
        "root": str(ds.root),
        "created": ds.created,
        "attrs": ds.attrs,
        "num_sequences": len(metas),
        "num_subjects": len(frames_per_subject),
        "num_actions": len({m.action for m in metas}),
        "num_views": len({m.view for m in metas}),
        "num_takes": len({m.take for m in metas}),
        "num_frames": int(sum(m.num_frames for m in metas)),
        "duration_s": float(sum(m.num_frames / m.fps for m in metas if m.fps > 0)),
        "frames_per_subject": dict(sorted(frames_per_subject.items())),
        "sequences_per_action": dict(sorted(Counter(m.action for m in metas).items())),
        "views": sorted({m.view for m in metas}),
        "resolutions": dict(sorted(Counter(f"{m.width}x{m.height}" for m in metas).items())),
        "fps": dict(sorted(Counter(f"{m.fps:g}" for m in metas).items(), key=lambda kv: float(kv[0]))),
        "scenarios": dict(sorted(Counter(m.scenario or "-" for m in metas).items())),
        "cameras": {"intrinsics": sum(m.camera is not None for m in metas),
                    "per_frame_extrinsics": labels.get("camera_R", 0)},
        # ARRAY_SPECS order (frames first), then anything unknown.
        "labels": {n: labels[n] for n in [*ARRAY_SPECS, *sorted(set(labels) - set(ARRAY_SPECS))] if labels[n]},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A readable multi-line text rendering of :func:`summarize`'s dict."""
    s = summary

    def listing(items: list[str], most: int = 12) -> str:
        # Synthetic datasets have hundreds of subjects: keep each row one line.
        more = f", … ({len(items) - most:,} more)" if len(items) > most else ""
        return ", ".join(items[:most]) + more if items else "-"

    def counts(d: dict) -> str:
        return listing([f"{k} ({v:,})" for k, v in d.items()])

    lines = [f"Dataset {s['root']}" + (f"  (created {s['created']})" if s["created"] else "")]
    rows = [
        ("sequences", f"{s['num_sequences']:,}  ({s['num_subjects']} subjects, {s['num_actions']} actions, "
                      f"{s['num_views']} views, {s['num_takes']} takes)"),
        ("frames", f"{s['num_frames']:,}  ({s['duration_s'] / 60:.1f} min)"),
        ("resolution", counts(s["resolutions"])),
        ("fps", counts(s["fps"])),
        ("scenario", counts(s["scenarios"])),
        ("cameras", f"{s['cameras']['intrinsics']} with intrinsics, "
                    f"{s['cameras']['per_frame_extrinsics']} with per-frame extrinsics"),
        ("subjects", listing([f"{k} ({v:,} frames)" for k, v in s["frames_per_subject"].items()])),
        ("actions", counts(s["sequences_per_action"])),
        ("views", listing(s["views"])),
    ]
    for attr, value in s["attrs"].items():
        if isinstance(value, (str, int, float, bool)):
            rows.append((f"attr {attr}", str(value)))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    if s["labels"]:
        lines.append("  labels (sequences that have them):")
        name_w = max(len(n) for n in s["labels"])
        for name, n in s["labels"].items():
            doc = ARRAY_SPECS[name].doc if name in ARRAY_SPECS else "(unknown array)"
            lines.append(f"    {name:<{name_w}}  {n:>6,}/{s['num_sequences']:,}  {doc}")
    return "\n".join(lines)


# -- check -------------------------------------------------------------------------

@dataclass
class _Reprojection:
    """Running reprojection statistics over all sequences."""

    total_px: float = 0.0
    count: int = 0
    worst_px: float = -1.0
    worst: dict[str, Any] = field(default_factory=dict)
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Problems:
    """Problem messages (all counted, the first few kept) so a broken dataset's report stays readable."""

    items: list[str] = field(default_factory=list)
    total: int = 0

    def add(self, seq_id: str, message: str) -> None:
        self.total += 1
        if len(self.items) < _MAX_PROBLEMS_SHOWN:
            self.items.append(f"{seq_id}: {message}")


def check(ds: Dataset, reproj_threshold_px: float = DEFAULT_REPROJ_THRESHOLD_PX,
          bone_range_mm: tuple[float, float] = DEFAULT_BONE_RANGE_MM, chunk_frames: int = 256,
          progress: bool | None = None) -> dict[str, Any]:
    """Check every sequence's arrays against its metadata and each other.

    Checks: every listed array opens and has the shape and dtype of
    :data:`~selfpose.data.sequence.ARRAY_SPECS` for the sequence's ``T``,
    ``H``, ``W`` (and 17 joints); the first and last frames are readable;
    frame ids increase; masks are 0/1; boxes are finite, non-empty and inside
    the image (±1 px); 2D joints are finite or NaN (NaN = unknown) with
    confidences in [0, 1]; 3D joints are finite, in front of the camera
    (z > 0) with median bone lengths in ``bone_range_mm``; per-frame camera
    rotations are rotations; the camera matches the frame size; and the 3D
    joints project onto the ground-truth 2D joints (confidence 1) through the
    sequence's camera within ``reproj_threshold_px``. Sequences without a
    camera, 3D or ground-truth 2D are skipped for that last check and listed.

    Arrays are read in chunks of ``chunk_frames`` frames; memory stays
    bounded whatever the dataset's size.

    Returns:
        A JSON-serialisable report: ``ok`` (no problems), ``problems`` (the
        first messages, each prefixed by the sequence id), ``num_problems``,
        ``warnings`` and ``num_warnings`` (suspicious but possibly genuine
        data, e.g. bone lengths that jump in a few frames; they do not fail),
        ``num_sequences``, ``num_frames``, ``reprojection`` {``mean_px``,
        ``worst_px`` (None when nothing was checked), ``worst_sequence``,
        ``worst_frame``, ``worst_joint``, ``threshold_px``,
        ``num_sequences``, ``per_sequence`` {id: {mean_px, worst_px}},
        ``skipped`` {id: reason}}, and ``bone_lengths_mm`` {bone: [min, max]
        of the sequences' median lengths}.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be ≥ 1, got {chunk_frames}")
    problems, warnings, reproj = _Problems(), _Problems(), _Reprojection()
    if not len(ds):
        problems.add(str(ds.root), "the dataset has no sequences")
    bone_medians: list[np.ndarray] = []
    for rec in track(ds.sequences, "checking sequences", total=len(ds), enabled=progress):
        med = _check_sequence(rec, problems, warnings, reproj, reproj_threshold_px, bone_range_mm, chunk_frames)
        if med is not None:
            bone_medians.append(med)

    worst = reproj.worst_px if reproj.count else None
    bones: dict[str, list[float]] = {}
    if bone_medians:
        m = np.stack(bone_medians)
        bones = {name: [float(np.nanmin(m[:, i])), float(np.nanmax(m[:, i]))]
                 for i, name in enumerate(_BONE_NAMES) if np.isfinite(m[:, i]).any()}
    return {
        "ok": problems.total == 0,
        "problems": problems.items,
        "num_problems": problems.total,
        "warnings": warnings.items,
        "num_warnings": warnings.total,
        "num_sequences": len(ds),
        "num_frames": int(ds.num_frames),
        "reprojection": {
            "threshold_px": float(reproj_threshold_px),
            "num_sequences": len(reproj.per_sequence),
            "mean_px": reproj.total_px / reproj.count if reproj.count else None,
            "worst_px": worst,
            "worst_sequence": reproj.worst.get("sequence"),
            "worst_frame": reproj.worst.get("frame"),
            "worst_joint": reproj.worst.get("joint"),
            "per_sequence": reproj.per_sequence,
            "skipped": reproj.skipped,
        },
        "bone_lengths_mm": bones,
    }


def _expected_shape(name: str, rec: SequenceRecord) -> tuple[int, ...]:
    m = rec.meta
    sizes = {"T": m.num_frames, "H": m.height, "W": m.width, "J": H36M17.num_joints}
    return tuple(sizes[d] if isinstance(d, str) else d for d in ARRAY_SPECS[name].shape)


def _open_arrays(rec: SequenceRecord, problems: _Problems) -> dict[str, np.ndarray]:
    """The sequence's arrays whose files open with the right shape and dtype."""
    sid, out = rec.id, {}
    for name in rec.arrays:
        if name not in ARRAY_SPECS:
            problems.add(sid, f"unknown array {name!r} listed in the index")
            continue
        try:
            arr = rec[name]
        except DatasetError as e:
            problems.add(sid, f"{name} cannot be read: {e}")
            continue
        want = _expected_shape(name, rec)
        if arr.shape != want:
            problems.add(sid, f"{name} has shape {arr.shape}, expected {want} {ARRAY_SPECS[name].shape}")
            continue
        if arr.dtype != np.dtype(ARRAY_SPECS[name].dtype):
            problems.add(sid, f"{name} has dtype {arr.dtype}, expected {ARRAY_SPECS[name].dtype}")
            continue
        out[name] = arr
    return out


def _check_meta(rec: SequenceRecord, arrays: dict[str, np.ndarray], problems: _Problems) -> None:
    m, sid = rec.meta, rec.id
    if m.num_frames < 1:
        problems.add(sid, "has no frames (num_frames = 0)")
    if not m.fps > 0:
        problems.add(sid, f"fps must be positive, got {m.fps}")
    cam = m.camera
    if cam is not None:
        if (cam.width, cam.height) != (m.width, m.height):
            problems.add(sid, f"camera is for {cam.width}x{cam.height} images but frames are {m.width}x{m.height}")
        if not (np.isfinite([cam.fx, cam.fy, cam.cx, cam.cy]).all() and cam.fx > 0 and cam.fy > 0):
            problems.add(sid, f"camera has invalid intrinsics fx={cam.fx}, fy={cam.fy}, cx={cam.cx}, cy={cam.cy}")
        if not _is_rotation(cam.R[None]).all():
            problems.add(sid, "camera R is not a rotation matrix")
    if "frames" in arrays and m.num_frames:
        frames = arrays["frames"]
        try:  # touch both ends: a truncated file fails here
            np.asarray(frames[0]).sum(), np.asarray(frames[-1]).sum()
        except (OSError, ValueError) as e:
            problems.add(sid, f"frames cannot be read: {e}")
    if "frame_ids" in arrays and m.num_frames > 1:
        ids = np.asarray(arrays["frame_ids"])
        if (np.diff(ids) <= 0).any() or ids[0] < 0:
            problems.add(sid, "frame_ids must be non-negative and strictly increasing")


def _is_rotation(R: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """``(N,)`` bool: which ``(N, 3, 3)`` matrices are proper rotations (float32 tolerance)."""
    R = np.asarray(R, dtype=np.float64)
    ortho = np.abs(R @ np.swapaxes(R, -1, -2) - np.eye(3)).max(axis=(-2, -1)) < tol
    return ortho & (np.linalg.det(R) > 0)


class _Counts:
    """Per-sequence counts of bad items with the first frame where each kind occurred."""

    def __init__(self) -> None:
        self.n: Counter = Counter()
        self.first: dict[str, int] = {}

    def add(self, kind: str, bad: np.ndarray, offset: int) -> None:
        """``bad`` is a bool array with frames on axis 0."""
        k = int(np.count_nonzero(bad))
        if k:
            self.n[kind] += k
            self.first.setdefault(kind, offset + int(np.argmax(bad.reshape(len(bad), -1).any(axis=1))))


def _check_sequence(rec: SequenceRecord, problems: _Problems, warnings: _Problems, reproj: _Reprojection,
                    reproj_threshold_px: float, bone_range_mm: tuple[float, float], chunk: int) -> np.ndarray | None:
    """Check one sequence; returns its median bone lengths (mm) when it has 3D."""
    sid, m = rec.id, rec.meta
    arrays = _open_arrays(rec, problems)
    _check_meta(rec, arrays, problems)

    cam = m.camera
    j3, j2, conf = arrays.get("joints3d"), arrays.get("joints2d"), arrays.get("joints2d_conf")
    skip = ("no camera" if cam is None else "no joints3d" if j3 is None else "no joints2d" if j2 is None
            else "root-relative 3D (unknown translation)" if m.attrs.get("joints3d_root_relative", False) else None)
    if skip:
        reproj.skipped[sid] = skip
    counts = _Counts()
    bones: list[np.ndarray] = []
    seq_err_sum, seq_err_n, seq_worst = 0.0, 0, (-1.0, 0, 0)
    for s in range(0, m.num_frames, chunk):
        e = min(s + chunk, m.num_frames)
        if "masks" in arrays:
            mk = np.asarray(arrays["masks"][s:e])
            if mk.max(initial=0) > 1:
                counts.add("masks", mk > 1, s)
        if "boxes" in arrays:
            b = np.asarray(arrays["boxes"][s:e], dtype=np.float64)
            finite = np.isfinite(b).all(axis=-1)
            counts.add("boxes_nan", ~finite, s)
            with np.errstate(invalid="ignore"):
                counts.add("boxes_empty", finite & ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])), s)
                outside = ((b[:, 0] < -_BOX_TOL_PX) | (b[:, 1] < -_BOX_TOL_PX)
                           | (b[:, 2] > m.width + _BOX_TOL_PX) | (b[:, 3] > m.height + _BOX_TOL_PX))
            counts.add("boxes_outside", finite & outside, s)
        if j2 is not None:
            counts.add("joints2d_inf", np.isinf(np.asarray(j2[s:e])).any(axis=-1), s)
            if "joints2d_outside" in arrays:  # the flag must say what the 2D says
                flag = np.asarray(arrays["joints2d_outside"][s:e])
                counts.add("outside_flag", flag != outside_image(np.asarray(j2[s:e]), m.width, m.height), s)
        c = None
        if conf is not None:
            c = np.asarray(conf[s:e])
            with np.errstate(invalid="ignore"):
                counts.add("conf", ~((c >= 0) & (c <= 1)), s)
        if j3 is None:
            continue
        X = np.asarray(j3[s:e], dtype=np.float64)
        finite3 = np.isfinite(X).all(axis=-1)
        counts.add("joints3d_nan", ~finite3, s)
        # Root-relative 3D (e.g. 3DPW without translation) has no depth to check.
        if not m.attrs.get("joints3d_root_relative", False):
            with np.errstate(invalid="ignore"):
                counts.add("joints3d_behind", finite3 & (X[..., 2] <= 0), s)
        bones.append(bone_lengths(X))  # NaN where a joint is NaN
        if skip:
            continue
        uv = np.asarray(j2[s:e], dtype=np.float64)
        valid = finite3 & np.isfinite(uv).all(axis=-1) & (X[..., 2] > 0)
        if c is not None:
            valid &= c >= _GT_CONF
        if not valid.any():
            continue
        err = np.linalg.norm(cam.project(np.where(valid[..., None], X, 1.0)) - uv, axis=-1)
        err = np.where(valid, err, -1.0)
        seq_err_sum += float(err[valid].sum())
        seq_err_n += int(valid.sum())
        f, j = np.unravel_index(int(np.argmax(err)), err.shape)
        if err[f, j] > seq_worst[0]:
            seq_worst = (float(err[f, j]), s + int(f), int(j))

    _report_counts(rec, counts, problems)
    if not skip:
        if seq_err_n == 0:
            reproj.skipped[sid] = "no ground-truth 2D joints (confidence 1) with finite 3D in front of the camera"
        else:
            reproj.per_sequence[sid] = {"mean_px": seq_err_sum / seq_err_n, "worst_px": seq_worst[0]}
            if seq_worst[0] > reproj_threshold_px:
                problems.add(sid, f"3D joints reproject up to {seq_worst[0]:.2f} px (mean "
                                  f"{seq_err_sum / seq_err_n:.2f} px) from the 2D joints, threshold "
                                  f"{reproj_threshold_px:g} px; worst at frame {seq_worst[1]}, "
                                  f"{H36M17.joint_names[seq_worst[2]]}")
            reproj.total_px += seq_err_sum
            reproj.count += seq_err_n
            if seq_worst[0] > reproj.worst_px:
                reproj.worst_px = seq_worst[0]
                reproj.worst = {"sequence": sid, "frame": seq_worst[1], "joint": H36M17.joint_names[seq_worst[2]]}
    if "camera_R" in arrays:
        for s in range(0, m.num_frames, chunk):
            bad = ~_is_rotation(np.asarray(arrays["camera_R"][s:s + chunk]))
            if bad.any():
                problems.add(sid, f"camera_R is not a rotation at {int(bad.sum())} frames from frame "
                                  f"{s + int(np.argmax(bad))}")
                break
    if not bones:
        return None
    return _check_bones(sid, np.concatenate(bones), bone_range_mm, problems, warnings)


_COUNT_MESSAGES = {
    "masks": "masks have {n:,} values other than 0/1",
    "boxes_nan": "{n:,} boxes are not finite",
    "boxes_empty": "{n:,} boxes are empty or inverted (need x0 < x1, y0 < y1)",
    "boxes_outside": "{n:,} boxes lie outside the {w}x{h} image",
    "joints2d_inf": "{n:,} 2D joints are infinite (use NaN for unknown)",
    "outside_flag": "{n:,} joints2d_outside flags disagree with the 2D joints and the {w}x{h} image",
    "conf": "{n:,} joints2d_conf values are outside [0, 1]",
    "joints3d_nan": "{n:,} 3D joints are NaN or infinite (3D must be complete)",
    "joints3d_behind": "{n:,} 3D joints are not in front of the camera (z <= 0 mm)",
}


def _report_counts(rec: SequenceRecord, counts: _Counts, problems: _Problems) -> None:
    m = rec.meta
    for kind, n in counts.n.items():
        msg = _COUNT_MESSAGES[kind].format(n=n, w=m.width, h=m.height)
        problems.add(rec.id, f"{msg} (first at frame {counts.first[kind]} of {m.num_frames})")


def _check_bones(sid: str, lengths: np.ndarray, bone_range_mm: tuple[float, float], problems: _Problems,
                 warnings: _Problems) -> np.ndarray:
    """Median bone lengths ``(16,)`` mm of ``(T, 16)`` lengths; flags implausible ones.

    A median outside ``bone_range_mm`` is a problem (wrong unit or skeleton);
    a few frames whose bones jump are only a warning: real mocap has such
    glitches (HumanEva-I S1 "Jog 1" frames 211-213, a shoulder marker).
    """
    lo, hi = bone_range_mm
    finite = np.isfinite(lengths)
    med = np.array([np.median(lengths[finite[:, i], i]) if finite[:, i].any() else np.nan
                    for i in range(lengths.shape[1])])
    bad = [f"{_BONE_NAMES[i]} {med[i]:.1f}" for i in range(len(med)) if np.isfinite(med[i])
           and not lo <= med[i] <= hi]
    if bad:
        problems.add(sid, f"implausible bone lengths (median, mm; expected {lo:g}-{hi:g}; are the 3D joints in "
                          f"millimetres?): {', '.join(bad)}")
    # A joint that jumps (swapped or mislabelled in some frames) changes its bones' lengths.
    with np.errstate(invalid="ignore"):
        dev = np.abs(lengths - med) > np.maximum(0.5 * med, 50.0)
    frames = int(dev.any(axis=1).sum())
    if frames:
        i = int(np.argmax(dev.sum(axis=0)))
        warnings.add(sid, f"bone lengths jump by more than 50% in {frames:,} frames (mostly "
                          f"{_BONE_NAMES[i]}, median {med[i]:.0f} mm)")
    return med


def format_check(report: dict[str, Any]) -> str:
    """A readable multi-line text rendering of :func:`check`'s report."""
    r = report["reprojection"]
    lines = [f"{'OK' if report['ok'] else 'FAILED'}: {report['num_sequences']:,} sequences, "
             f"{report['num_frames']:,} frames, {report['num_problems']:,} problems, "
             f"{report['num_warnings']:,} warnings"]
    if r["worst_px"] is None:
        lines.append("  reprojection: not checked (no sequence has a camera, 3D and ground-truth 2D)")
    else:
        lines.append(f"  reprojection: mean {r['mean_px']:.3f} px, worst {r['worst_px']:.3f} px "
                     f"({r['worst_sequence']}, frame {r['worst_frame']}, {r['worst_joint']}); "
                     f"threshold {r['threshold_px']:g} px; {r['num_sequences']} sequences checked")
    if r["skipped"]:
        reasons = Counter(r["skipped"].values())
        lines.append("  reprojection skipped: " + "; ".join(f"{n} × {why}" for why, n in reasons.items()))
    if report["bone_lengths_mm"]:
        b = report["bone_lengths_mm"]
        short = {k: v for k, v in b.items() if k.endswith(("knee", "ankle", "elbow", "wrist"))}
        lines.append("  bone lengths by child joint (mm, min-max of sequence medians): "
                     + ", ".join(f"{k.split('-')[1]} {lo:.0f}-{hi:.0f}" for k, (lo, hi) in short.items()))
    for key, mark in (("problems", "-"), ("warnings", "!")):
        lines += [f"  {mark} {p}" for p in report[key]]
        if report[f"num_{key}"] > len(report[key]):
            lines.append(f"  ... and {report[f'num_{key}'] - len(report[key]):,} more {key}")
    return "\n".join(lines)
