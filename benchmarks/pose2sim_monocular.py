"""Monocular 3D on real footage, against the 3D triangulated from four calibrated views (issue 13, item 5).

Per view of ``multiview/pose2sim_single``, in that camera's frame, pelvis-centred, mm:

* reference — the 3D triangulated from all four views' MediaPipe 2D
  (``selfpose triangulate``), seen from that camera;
* (a) MediaPipe's own world landmarks of that view (metric, hips' midpoint at
  the origin, axes along the camera's);
* (b) a selfpose lifter on that view's 2D alone, without its test-time
  correction, (c) with it, (d) with it and every bone given one length over the
  clip (``selfpose predict``'s default) — through
  :func:`selfpose.lifting.video.lift_keypoints`, the code of ``selfpose predict``
  (swap repair included), with the view's calibrated focal length.

Reported: MPJPE, P-MPJPE (similarity Procrustes per frame), the mean absolute
limb-length error over the eight limbs, and each 3D's limb-length consistency
(std/mean over the clip). The reference is built from the same detector's 2D,
so it flatters detector-based answers — (a) most of all, whose joints are the
detector's own definitions; a lifter trained on Human3.6M's joints (narrower
shoulders, a lower thorax, the nose nearer it) differs from them by definition,
one trained with ``prepare mocap ... joints=detector`` does not: prefer P-MPJPE
and limb lengths, and read MPJPE with that in mind. Limb-length errors are in
absolute mm: a lifter's body is the training motion's (a 0.90-m leg), this
person's leg is about 0.78 m.

    selfpose keypoints ../shared/data/multiview/pose2sim_single --out K
    selfpose triangulate K --calibration ../shared/data/multiview/pose2sim_single/Calib.qca.txt --out T
    python benchmarks/pose2sim_monocular.py K T RUN [RUN ...] [--out benchmarks/results/multiview_pose2sim]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def scores(pred: np.ndarray, ref: np.ndarray) -> dict:
    from selfpose.evaluation.metrics import compare_to_reference

    return compare_to_reference(pred, ref)


def _trained_joints(lifter) -> str:
    """The joint definitions a lifter was trained in (its dataset's ``joints`` fact; ``h36m`` when unknown)."""
    from selfpose.data.store import Dataset

    try:
        return str(Dataset.open(lifter.info["data"]).attrs.get("joints", "h36m"))
    except Exception:   # the training data is gone or moved: assume the default
        return "h36m"


def main() -> None:
    from selfpose.keypoints.files import world_house_mm
    from selfpose.keypoints.calibration import read_toml
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.video import VideoLiftConfig, lift_keypoints

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("keypoints", type=Path)
    ap.add_argument("triangulation", type=Path)
    ap.add_argument("runs", type=Path, nargs="+", help="lifter runs (fit-lifter)")
    ap.add_argument("--out", type=Path, default=None, help="write results.md and results.json here")
    ap.add_argument("--map-output", action="store_true",
                    help="also score each run's corrected 3D moved to the detector's joint definitions "
                         "(selfpose.geometry.joint_definitions; for lifters trained on Human3.6M's joints)")
    args = ap.parse_args()
    tri = np.load(args.triangulation / "triangulation.npz")
    names = [str(n) for n in tri["camera_names"]]
    cams = read_toml(args.triangulation / "calibration.toml")
    lifters = {str(r): Lifter.load(r) for r in args.runs}
    rows = []
    for v, name in enumerate(names):
        ref = tri["cameras"][v].astype(np.float64)
        ref = ref - ref[:, :1]
        kp = np.load(args.keypoints / f"{name}.npz")
        world = world_house_mm(kp["world"])
        rows.append({"view": name, "method": "MediaPipe world landmarks", **scores(world, ref)})
        h = kp["h36m17"]
        cam = cams[name]
        for run, lifter in lifters.items():
            # reference that reads no 2D: the run's mean training pose (its output normalisation), every frame
            mean = np.repeat(lifter.mean_pose()[None], len(ref), 0)
            rows.append({"view": name, "method": f"{Path(run).name}: mean training pose (reads no 2D)",
                         **scores(mean, ref)})
            for correct in (False, True):
                if correct and lifter.method.correct is None:
                    continue
                cfg = VideoLiftConfig(focal_px=cam.fx, correct=correct, fixed_bones=False)
                res = lift_keypoints(lifter, h[..., :2], h[..., 2], int(kp["width"]), int(kp["height"]), cfg, name)
                label = f"{Path(run).name} ({lifter.cfg.method}){' + correction' if correct else ''}"
                corr = res["correction"] or {}
                ref_sw = tri["swapped"][:, v]
                rows.append({"view": name, "method": label, **scores(res["joints3d"], ref),
                             "swaps_repaired": int(res["swapped"].sum()),
                             "swaps_also_in_triangulation": int((res["swapped"] & ref_sw).sum()),
                             "swaps_triangulation": int(ref_sw.sum()),
                             "corrected_windows": f"{corr.get('applied', 0)}/{corr.get('clips', 0)}" if correct else ""})
                last_correct = correct or lifter.method.correct is None
                if last_correct:
                    from selfpose.lifting.video import fix_bone_lengths

                    fixed = fix_bone_lengths(res["joints3d"])
                    rows.append({"view": name, "method": label + ", bones fixed over the clip (predict's default)",
                                 **scores(fixed - fixed[:, :1], ref), "swaps_repaired": int(res["swapped"].sum())})
                if args.map_output and last_correct and _trained_joints(lifter) == "h36m":
                    from selfpose.geometry.joint_definitions import to_detector_joints

                    mapped = to_detector_joints(res["joints3d"])
                    rows.append({"view": name, "method": label + ", joints mapped to the detector's",
                                 **scores(mapped - mapped[:, :1], ref), "swaps_repaired": int(res["swapped"].sum())})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    mean = {m: {k: float(np.mean([r[k] for r in rows if r["method"] == m]))
                for k in ("mpjpe", "p_mpjpe", "limb_error_mm", "limb_cv")} for m in methods}
    lines = ["| view | 3D | MPJPE | P-MPJPE | limb-length error (mm) | limb std/mean | swaps repaired (of them "
             "also repaired by the triangulation / the triangulation's) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        sw = (f"{r['swaps_repaired']} ({r['swaps_also_in_triangulation']} / {r['swaps_triangulation']})"
              if "swaps_triangulation" in r else "")
        lines.append(f"| {r['view']} | {r['method']} | {r['mpjpe']:.1f} | {r['p_mpjpe']:.1f} | "
                     f"{r['limb_error_mm']:.1f} | {100 * r['limb_cv']:.1f}% | {sw} |")
    lines += ["", "| 3D, mean over the four views | MPJPE | P-MPJPE | limb-length error (mm) | limb std/mean |",
              "|---|---:|---:|---:|---:|"]
    for m, s in mean.items():
        lines.append(f"| {m} | {s['mpjpe']:.1f} | {s['p_mpjpe']:.1f} | {s['limb_error_mm']:.1f} | "
                     f"{100 * s['limb_cv']:.1f}% |")
    base = mean["MediaPipe world landmarks"]["p_mpjpe"]
    lines += [""] + [f"- P-MPJPE ratio {m} / MediaPipe world landmarks: {mean[m]['p_mpjpe'] / base:.3f} "
                     f"({mean[m]['p_mpjpe']:.1f} / {base:.1f} mm)" for m in methods if m != "MediaPipe world landmarks"]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip()
        head = (f"# Monocular 3D on the Pose2Sim views against the triangulated reference\n\n"
                f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {platform.processor() or platform.machine()}, commit {commit}.\n"
                f"Command: `python benchmarks/pose2sim_monocular.py {args.keypoints} {args.triangulation} "
                f"{' '.join(str(r) for r in args.runs)}{' --map-output' if args.map_output else ''}`\n\n"
                "Camera frame of each view, pelvis-centred, mm; 100 frames. The reference is triangulated from the "
                "same detector's 2D, in the detector's joint definitions: it flatters MediaPipe's own 3D, whose "
                "joints are those definitions; a lifter trained on Human3.6M's joints differs from them by "
                "definition (narrower shoulders, a lower thorax) — prefer P-MPJPE. Limb-length errors are absolute: "
                "the lifters' body is the training motion's.\n\n")
        (args.out / "results.md").write_text(head + text + "\n")
        (args.out / "results.json").write_text(json.dumps({"rows": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
