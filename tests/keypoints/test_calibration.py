"""Calibration readers: synthetic cameras written in each format read back and project the same."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.geometry.camera import Camera, look_at
from selfpose.keypoints.calibration import (CalibrationError, matrix_to_rodrigues, read_calibration, read_qca,
                                            read_toml, rodrigues_to_matrix, write_toml)


def rig(n: int = 4, seed: int = 0) -> dict[str, Camera]:
    """``n`` distorted portrait cameras on a ring 3.5 m around the origin, looking at a standing person (z up)."""
    rng = np.random.default_rng(seed)
    cams = {}
    for i in range(n):
        a = 2 * np.pi * i / n + rng.uniform(-0.3, 0.3)
        eye = np.array([3500 * np.cos(a), 3500 * np.sin(a), rng.uniform(1200, 2000)])
        R, t = look_at(eye, np.array([0.0, 0.0, 900.0]))
        cams[f"cam{i + 1:02d}"] = Camera(1680 + 10 * i, 1681 + 10 * i, 540 + 3 * i, 955 - 2 * i, 1088, 1920,
                                         k=(-0.046, 0.14, 0.0), p=(6e-4, -7e-4), R=R, t=t)
    return cams


def points(n: int = 50, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform([-400, -400, 0], [400, 400, 1800], size=(n, 3))


def qca_text(cams: dict[str, Camera], left: int = 0) -> str:
    """A Qualisys export of ``cams`` in the convention :func:`read_qca` documents (graphics camera, 1/64 px)."""
    parts = ['<?xml version="1.0"?>\n<calibration><cameras>']
    for name, c in cams.items():
        Rq = np.diag([1.0, -1.0, -1.0]) @ c.R  # world → a camera with y up, looking along −z
        C = c.center
        r = " ".join(f'r{a + 1}{b + 1}="{float(Rq[a, b])!r}"' for a in range(3) for b in range(3))
        parts.append(
            f'<camera serial="{name}"><fov_video left="{left}" top="0" right="{left + c.width - 1}" '
            f'bottom="{c.height - 1}"/>'
            f'<transform {r} x="{float(C[0])!r}" y="{float(C[1])!r}" z="{float(C[2])!r}"/>'
            f'<intrinsic focalLengthU="{c.fx * 64}" focalLengthV="{c.fy * 64}" centerPointU="{(c.cx + left) * 64}" '
            f'centerPointV="{c.cy * 64}" sensorMaxU="{(c.width + 2 * left) * 64}" sensorMaxV="{c.height * 64}" '
            f'radialDistortion1="{c.k[0]}" radialDistortion2="{c.k[1]}" radialDistortion3="{c.k[2]}" '
            f'tangentalDistortion1="{c.p[0]}" tangentalDistortion2="{c.p[1]}"/></camera>')
    parts.append("</cameras></calibration>\n")
    return "\n".join(parts)


def test_rodrigues_round_trip_including_half_turns():
    rng = np.random.default_rng(0)
    vecs = list(rng.normal(size=(20, 3))) + [np.array([np.pi, 0, 0]), np.array([0, 0, np.pi - 1e-6]), np.zeros(3)]
    for v in vecs:
        R = rodrigues_to_matrix(v)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.allclose(rodrigues_to_matrix(matrix_to_rodrigues(R)), R, atol=1e-6)


def test_toml_round_trip_projects_the_same(tmp_path):
    cams = rig()
    back = read_toml(write_toml(cams, tmp_path / "calib.toml"))
    assert list(back) == list(cams)
    X = points()
    for name, c in cams.items():
        assert np.allclose(back[name].project_world(X), c.project_world(X), atol=1e-6)
        assert (back[name].width, back[name].height) == (1088, 1920)


def test_qca_reads_the_documented_convention(tmp_path):
    cams = rig()
    path = tmp_path / "Calib.qca.txt"
    path.write_text(qca_text(cams))
    back = read_qca(path)
    X = points()
    for name, c in cams.items():
        assert np.allclose(back[name].project_world(X), c.project_world(X), atol=1e-4)
        assert (back[name].world_to_camera(X)[:, 2] > 0).all()  # the person is in front of every camera


def test_qca_fov_video_offset_shifts_the_principal_point(tmp_path):
    cams = rig(2)
    path = tmp_path / "c.qca.txt"
    path.write_text(qca_text(cams, left=4))
    back = read_calibration(path)
    X = points()
    for name, c in cams.items():
        assert np.allclose(back[name].project_world(X), c.project_world(X), atol=1e-4)


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.replace('<intrinsic', '<intrinsicX', 1), "no <intrinsic>"),
    (lambda s: s.replace(' r23="', ' r2x="', 1), "r23"),
    (lambda s: s.replace('<cameras>', '<cameras><!--', 1).replace('</cameras>', '--></cameras>'), "no <camera>"),
    (lambda s: s[: len(s) // 2], "not a Qualisys XML"),
])
def test_qca_errors_name_what_is_missing(tmp_path, edit, message):
    path = tmp_path / "bad.qca.txt"
    path.write_text(edit(qca_text(rig(2))))
    with pytest.raises(CalibrationError, match=message):
        read_qca(path)


def test_toml_errors_name_what_is_missing(tmp_path):
    path = write_toml(rig(2), tmp_path / "c.toml")
    text = path.read_text()
    broken = tmp_path / "b.toml"
    broken.write_text(text.replace("rotation = ", "rot = ", 1))
    with pytest.raises(CalibrationError, match="cam01.*'rotation'"):
        read_toml(broken)
    broken.write_text("[metadata]\nerror = 0.0\n")
    with pytest.raises(CalibrationError, match="no camera table"):
        read_toml(broken)
    with pytest.raises(CalibrationError, match="unknown calibration format"):
        read_calibration(tmp_path / "c.json")
    with pytest.raises(CalibrationError, match="not found"):
        read_calibration(tmp_path / "none.toml")


def test_normalize_inverts_project_with_distortion():
    c = rig(1)["cam01"]
    X = c.world_to_camera(points())
    xy = c.normalize(c.project(X))
    assert np.allclose(xy, X[:, :2] / X[:, 2:], atol=1e-7)


def test_the_real_qualisys_calibration_looks_at_one_capture_volume(shared_file):
    """Pose2Sim's four real cameras: the optical axes as read meet in front of every camera, near the floor's
    origin, at a person's height — under the other readings of the rotation they do not."""
    cams = read_qca(shared_file("multiview/pose2sim_single/Calib.qca.txt"))
    assert list(cams) == ["cam01", "cam02", "cam03", "cam04"]
    centres = np.stack([c.center for c in cams.values()])
    axes = np.stack([c.R[2] for c in cams.values()])  # each camera's viewing direction in the world
    # the point nearest to the four axes (least squares)
    A = sum(np.eye(3) - np.outer(d, d) for d in axes)
    b = sum((np.eye(3) - np.outer(d, d)) @ o for d, o in zip(axes, centres))
    p = np.linalg.solve(A, b)
    miss = [np.linalg.norm(np.cross(p - o, d)) for o, d in zip(centres, axes)]
    assert max(miss) < 300  # mm: the four axes pass within 0.3 m of one point (measured: 41–108 mm)
    assert all(c.world_to_camera(p)[2] > 1500 for c in cams.values())  # ... in front of every camera
    assert np.linalg.norm(p[:2]) < 1500 and 0 < p[2] < 2000  # near the origin, above the floor, z up
    for c in cams.values():
        assert (c.width, c.height) == (1088, 1920) and 0 < c.cx < c.width and 0 < c.cy < c.height
        assert 1600 < c.fx < 1720 and abs(c.fx - c.fy) < 1
