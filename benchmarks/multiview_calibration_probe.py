"""Which convention does a Qualisys ``.qca.txt`` use? Try each one on real detections and keep what reprojects.

The calibration of Pose2Sim's demo (``../shared/data/multiview/pose2sim_single``)
gives per camera a 3 × 3 ``transform`` and a position, intrinsics in 1/64 px,
and a 1088-px-wide sensor, while two of the four videos are 1080 px wide.
This probe reads the raw numbers and builds every candidate camera:

* rotation: the rows as given (``R_q``) or transposed, with no turn, half a
  turn about the camera's x axis (graphics camera: y up, looking −z) or about
  its y axis;
* for the 1080-px videos: the sensor cropped by 0, 4 or 8 px on the left,
  or scaled by 1080/1088;

then triangulates MediaPipe's 2D of the four views (``selfpose keypoints``)
with RANSAC and reports the median reprojection error in every view (inlier
or not), how many triangulated points lie in front of every camera, how many
views agree per point, and whether the head is above the ankles (the world
is z-up). The right convention has all four views agree, every point in
front and the person upright; wrong ones do not.

    selfpose keypoints ../shared/data/multiview/pose2sim_single --out K
    python benchmarks/multiview_calibration_probe.py ../shared/data/multiview/pose2sim_single/Calib.qca.txt K
"""

from __future__ import annotations

import argparse
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from selfpose.geometry.camera import Camera
from selfpose.keypoints.triangulate import TriangulationConfig, triangulate


def raw_cameras(path: Path) -> dict[str, dict]:
    out = {}
    for el in ET.parse(path).getroot().iter("camera"):
        tr, intr = el.find("transform").attrib, el.find("intrinsic").attrib
        out[el.attrib["serial"]] = {
            "Rq": np.array([[float(tr[f"r{a}{b}"]) for b in "123"] for a in "123"]),
            "C": np.array([float(tr[k]) for k in "xyz"]),
            "f": (float(intr["focalLengthU"]) / 64, float(intr["focalLengthV"]) / 64),
            "c": (float(intr["centerPointU"]) / 64, float(intr["centerPointV"]) / 64),
            "sensor": (float(intr["sensorMaxU"]) / 64, float(intr["sensorMaxV"]) / 64),
            "k": tuple(float(intr[f"radialDistortion{i}"]) for i in (1, 2, 3)),
            "p": tuple(float(intr[f"tangentalDistortion{i}"]) for i in (1, 2))}
    return out


_TURNS = {"none": np.eye(3), "about x": np.diag([1.0, -1.0, -1.0]), "about y": np.diag([-1.0, 1.0, -1.0])}


def camera(raw: dict, transpose: bool, turn: str, width: int, height: int, fit: str, v_up: bool = False,
           distortion: bool = True) -> Camera:
    R = _TURNS[turn] @ (raw["Rq"].T if transpose else raw["Rq"])
    fx, fy = raw["f"]
    cx, cy = raw["c"]
    if v_up:  # the principal point's v measured from the sensor's bottom edge
        cy = raw["sensor"][1] - cy
    sensor_w = raw["sensor"][0]
    if width != round(sensor_w) and fit.startswith("crop"):
        cx -= float(fit[4:])
    elif width != round(sensor_w) and fit == "scale":
        s = width / sensor_w
        fx, cx = fx * s, cx * s
    k, p = (raw["k"], raw["p"]) if distortion else ((0.0, 0.0, 0.0), (0.0, 0.0))
    return Camera(fx, fy, cx, cy, width, height, k=k, p=p, R=R, t=-R @ raw["C"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("calibration", type=Path)
    ap.add_argument("keypoints", type=Path, help="folder of keypoint files from `selfpose keypoints`, one per view")
    args = ap.parse_args()
    raw = raw_cameras(args.calibration)
    names = list(raw)
    files = [np.load(args.keypoints / f"{n}.npz") for n in names]
    T = min(len(f["h36m17"]) for f in files)
    h36 = np.stack([f["h36m17"][:T] for f in files], axis=2)  # (T, 17, V, 3)
    sizes = [(int(f["width"]), int(f["height"])) for f in files]
    print(f"views {names}, sizes {sizes}, {T} frames")
    rows = []
    candidates = [(tr, turn, fit, False, True) for tr, turn, fit in itertools.product(
        (False, True), tuple(_TURNS), ("crop0", "crop4", "crop8", "scale"))]
    # around the best rotation: the principal point's v from the bottom edge, and no lens distortion
    candidates += [(False, "about x", fit, True, True) for fit in ("crop0", "crop4")]
    candidates += [(False, "about x", fit, False, False) for fit in ("crop0", "crop4")]
    for transpose, turn, fit, v_up, dist in candidates:
        cams = [camera(raw[n], transpose, turn, w, h, fit, v_up, dist) for n, (w, h) in zip(names, sizes)]
        res = triangulate(h36[..., :2], h36[..., 2], cams, cfg=TriangulationConfig(fix_swaps=False))
        ok = np.isfinite(res.world).all(-1)
        depth = np.stack([c.world_to_camera(res.world)[..., 2] for c in cams], -1)
        front = (depth[ok] > 0).all(-1).mean() if ok.any() else 0.0
        err = np.where(res.inliers, res.reproj_px, np.nan)
        per_view = [np.nanmedian(err[..., v]) if np.isfinite(err[..., v]).any() else np.inf for v in range(len(cams))]
        allv = res.reproj_px[np.isfinite(res.reproj_px)]
        head_up = float(np.nanmean(res.world[:, 10, 2] - res.world[:, 3, 2])) if ok.any() else float("nan")
        label = ("R_qᵀ" if transpose else "R_q", turn, fit, "bottom" if v_up else "top",
                 "yes" if dist else "no")
        rows.append((np.nanmedian(err) if ok.any() else np.inf, label, ok.mean(), front,
                     np.median(allv) if allv.size else np.inf, res.inliers.sum(-1)[ok].mean() if ok.any() else 0,
                     per_view, head_up))
    rows.sort(key=lambda r: (-r[2] * r[3], r[4]))
    print("| R | half turn | 1080-px videos | v from | distortion | triangulated | in front of all | "
          "median reproj px, all views | median inlier reproj px | per view (inliers) | views per point | "
          "head above ankle, mm |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---|---:|---:|")
    for med, label, okf, front, allmed, nv, per_view, head_up in rows:
        pv = " / ".join(f"{x:.1f}" for x in per_view)
        print(f"| {' | '.join(label)} | {okf:.1%} | {front:.1%} | {allmed:.2f} | {med:.2f} | {pv} | {nv:.2f} | "
              f"{head_up:.0f} |")


if __name__ == "__main__":
    main()
