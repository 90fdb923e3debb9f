"""Multi-camera calibration files → :class:`~selfpose.geometry.camera.Camera`.

Two layouts are read, one is written:

* **Qualisys** ``.qca.txt`` (XML; :func:`read_qca`) — per camera a ``transform``
  (rotation entries ``r11 … r33`` and position ``x, y, z`` in mm) and an
  ``intrinsic`` element whose focal lengths and principal point are in
  sensor sub-pixel units (1/64 px), plus radial ``k1–k3`` and tangential
  ``p1, p2`` distortion of the OpenCV (Brown) model on normalised points — the
  same model :func:`selfpose.geometry.camera.distort` applies.
* **TOML** in the OpenCV/Pose2Sim layout (:func:`read_toml`,
  :func:`write_toml`) — one table per camera with ``name``, ``size``
  ``[w, h]``, ``matrix`` (3 × 3 K in px), ``distortions`` ``[k1, k2, p1,
  p2]``, ``rotation`` (a Rodrigues vector, world → camera) and
  ``translation`` (world → camera, **metres**); other tables (``metadata``)
  are ignored.

The Qualisys convention, worked out by reprojection on the four real views
of ``multiview/pose2sim_single`` (``benchmarks/multiview_calibration_probe.py``
tries every candidate on MediaPipe's 2D; the results are in
``docs/keypoints.md``; ``tests/keypoints/test_calibration.py`` holds them):
the ``transform`` rows are the world → camera rotation of a camera whose y
axis points **up** and which looks along **−z** (the graphics convention),
and ``x, y, z`` is the camera's centre ``C`` in the world, mm. selfpose's
cameras look along +z with y down, so the reader turns each camera half a
turn about its x axis: ``R = diag(1, −1, −1) · R_q``, ``t = −R · C``. Every
other reading (``R_qᵀ``, no half turn) leaves half or more of the
triangulated points behind a camera or off by ~75 px; this one reprojects
to a median of 12 px (MediaPipe's own error at that scale) with every point
in front of all four cameras. The principal point is measured from the
sensor's top-left corner; ``fov_video`` gives the part of the sensor the
video covers.
"""

from __future__ import annotations

import math
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.geometry.camera import Camera

#: Qualisys stores intrinsics in sensor sub-pixels: 64 to a pixel.
QCA_SUBPIXELS = 64.0
# Half a turn about the camera's x axis: graphics camera (y up, looking −z) ↔ vision camera (y down, +z).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


class CalibrationError(SelfposeError, ValueError):
    """A calibration file is missing, unreadable or lacks a camera or a field."""


def _float(el: ET.Element, key: str, path: Path, cam: str) -> float:
    v = el.attrib.get(key)
    if v is None:
        raise CalibrationError(f"{path}: camera {cam!r} has no {el.tag}/@{key}; is this a Qualisys .qca.txt export?")
    try:
        return float(v)
    except ValueError:
        raise CalibrationError(f"{path}: camera {cam!r} {el.tag}/@{key}={v!r} is not a number") from None


def read_qca(path: str | Path) -> dict[str, Camera]:
    """Cameras of a Qualisys ``.qca.txt`` calibration, by serial, in file order.

    Image size: the ``fov_video`` element (inclusive pixel bounds), else
    ``fov_marker``, else the sensor size. The principal point is shifted by
    ``fov_video``'s top-left corner, so pixels are those of the video.

    Raises:
        CalibrationError: no such file, not XML, no camera, or a camera lacking
            its ``transform``/``intrinsic`` or one of their fields.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise CalibrationError(f"{path}: not a Qualisys XML calibration ({e})") from None
    cams: dict[str, Camera] = {}
    for i, el in enumerate(root.iter("camera")):
        name = el.attrib.get("serial") or f"cam{i + 1:02d}"
        tr, intr = el.find("transform"), el.find("intrinsic")
        if tr is None or intr is None:
            missing = "transform" if tr is None else "intrinsic"
            raise CalibrationError(f"{path}: camera {name!r} has no <{missing}> element")
        Rq = np.array([[_float(tr, f"r{a}{b}", path, name) for b in (1, 2, 3)] for a in (1, 2, 3)])
        C = np.array([_float(tr, k, path, name) for k in ("x", "y", "z")])
        g = {k: _float(intr, k, path, name) for k in (
            "focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "sensorMaxU", "sensorMaxV")}
        k = tuple(float(intr.attrib.get(f"radialDistortion{n}", 0.0)) for n in (1, 2, 3))
        p = tuple(float(intr.attrib.get(f"tangentalDistortion{n}", 0.0)) for n in (1, 2))
        fov = el.find("fov_video")
        if fov is None:
            fov = el.find("fov_marker")
        if fov is not None:
            left, top = _float(fov, "left", path, name), _float(fov, "top", path, name)
            width = int(_float(fov, "right", path, name) - left + 1)
            height = int(_float(fov, "bottom", path, name) - top + 1)
        else:
            left = top = 0.0
            width, height = int(round(g["sensorMaxU"] / QCA_SUBPIXELS)), int(round(g["sensorMaxV"] / QCA_SUBPIXELS))
        R = _FLIP_YZ @ Rq
        cams[name] = Camera(g["focalLengthU"] / QCA_SUBPIXELS, g["focalLengthV"] / QCA_SUBPIXELS,
                            g["centerPointU"] / QCA_SUBPIXELS - left, g["centerPointV"] / QCA_SUBPIXELS - top,
                            width, height, k=k, p=p, R=R, t=-R @ C)
    if not cams:
        raise CalibrationError(f"{path}: no <camera> element; is this a Qualisys .qca.txt export?")
    return cams


def rodrigues_to_matrix(rvec) -> np.ndarray:
    """Rotation vector (axis × angle, rad) → ``(3, 3)`` rotation matrix."""
    r = np.asarray(rvec, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * Kx + (1 - math.cos(theta)) * Kx @ Kx


def matrix_to_rodrigues(R: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation matrix → rotation vector (rad); exact near 0 and π."""
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    theta = math.acos(cos)
    if theta < 1e-9:
        return np.zeros(3)
    if math.pi - theta < 1e-4:  # near a half turn the antisymmetric part vanishes: read the axis off R + I
        B = (R + np.eye(3)) / 2
        axis = np.sqrt(np.clip(np.diag(B), 0, None))
        j = int(np.argmax(axis))
        axis = B[j] / axis[j]
        return axis / np.linalg.norm(axis) * theta
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(theta))
    return w * theta


def _field(table: dict, key: str, shape: tuple[int, ...], path: Path, name: str) -> np.ndarray:
    if key not in table:
        raise CalibrationError(f"{path}: camera {name!r} has no '{key}' (needs name, size, matrix, distortions, "
                               "rotation, translation)")
    try:
        arr = np.asarray(table[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{path}: camera {name!r} '{key}' is not numeric") from None
    if arr.shape != shape or not np.isfinite(arr).all():
        raise CalibrationError(f"{path}: camera {name!r} '{key}' must be {shape} finite numbers, got shape {arr.shape}")
    return arr


def read_toml(path: str | Path) -> dict[str, Camera]:
    """Cameras of an OpenCV/Pose2Sim TOML calibration, by their ``name`` (else the table's key)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CalibrationError(f"{path}: not a TOML file ({e})") from None
    cams: dict[str, Camera] = {}
    for key, table in data.items():
        if not isinstance(table, dict) or key == "metadata":
            continue
        name = str(table.get("name", key))
        size = _field(table, "size", (2,), path, name)
        K = _field(table, "matrix", (3, 3), path, name)
        dist = np.asarray(table.get("distortions", [0, 0, 0, 0]), dtype=np.float64).ravel()
        if dist.size not in (4, 5):
            raise CalibrationError(f"{path}: camera {name!r} 'distortions' must be [k1, k2, p1, p2] (or with k3)")
        if table.get("fisheye", False):
            raise CalibrationError(f"{path}: camera {name!r} is a fisheye camera; only the pinhole model is supported")
        R = rodrigues_to_matrix(_field(table, "rotation", (3,), path, name))
        t = _field(table, "translation", (3,), path, name) * 1000.0
        k3 = dist[4] if dist.size == 5 else 0.0
        cams[name] = Camera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(size[0]), int(size[1]),
                            k=(dist[0], dist[1], k3), p=(dist[2], dist[3]), R=R, t=t)
    if not cams:
        raise CalibrationError(f"{path}: no camera table (each camera is a [table] with name, size, matrix, ...)")
    return cams


def write_toml(cameras: dict[str, Camera], path: str | Path) -> Path:
    """Write ``cameras`` in the OpenCV/Pose2Sim TOML layout (translation in metres); returns the path."""
    path = Path(path)

    def vec(v) -> str:
        return "[ " + ", ".join(repr(float(x)) for x in np.asarray(v).ravel()) + "]"

    lines = []
    for name, cam in cameras.items():
        K = cam.K
        lines += [f'[{name}]', f'name = "{name}"', f"size = {vec([cam.width, cam.height])}",
                  "matrix = [ " + ", ".join(vec(row) for row in K) + "]",
                  f"distortions = {vec([cam.k[0], cam.k[1], cam.p[0], cam.p[1]] + ([cam.k[2]] if cam.k[2] else []))}",
                  f"rotation = {vec(matrix_to_rodrigues(cam.R))}", f"translation = {vec(cam.t / 1000.0)}",
                  "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    path.write_text("\n".join(lines))
    return path


def read_calibration(path: str | Path) -> dict[str, Camera]:
    """Read a ``.qca.txt``/``.xml`` (Qualisys) or ``.toml`` calibration by its suffix."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".qca.txt", ".qca", ".xml")):
        return read_qca(path)
    if name.endswith(".toml"):
        return read_toml(path)
    raise CalibrationError(f"{path}: unknown calibration format; give a Qualisys .qca.txt or an OpenCV/Pose2Sim .toml")
