import numpy as np
import pytest

from selfpose.data.synthetic import scenarios as sc
from selfpose.data.synthetic.bodies import identity_for, retarget
from selfpose.data.synthetic.motion import GRAVITY_MM_S2
from selfpose.data.synthetic.procedural import procedural_motion
from selfpose.data.synthetic.render import Renderer

H = W = 64


@pytest.fixture(scope="module")
def walk():
    """A 3 s procedural walk (circle path) at 10 fps, retargeted to P0's body."""
    m = procedural_motion("walk", np.random.default_rng(0), fps=10, duration_s=3.0)
    ident = identity_for("P0", 0)
    return m, ident, retarget(m.joints, ident)


@pytest.fixture(scope="module")
def renderer():
    return Renderer(H, W, batch_size=16)


def _check_labels(plan, out):
    """2D labels are the projection of the 3D labels; boxes hold the masks; arrays agree in length."""
    T = plan.num_frames
    cam = plan.meta.camera
    for k in ("frames", "masks", "boxes", "joints2d", "joints2d_conf", "joints3d", "frame_ids"):
        assert len(out[k]) == T, k
    np.testing.assert_allclose(out["joints2d"], cam.project(out["joints3d"].astype(np.float64)), atol=1e-3)
    assert (out["joints2d_conf"] == 1).all() and out["masks"].max() == 1
    b = out["boxes"]
    for i in range(T):
        ys, xs = np.nonzero(out["masks"][i])
        assert (b[i] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).all()
    j2 = out["joints2d"]
    assert (j2 >= 0).all() and (j2[..., 0] <= W - 1).all() and (j2[..., 1] <= H - 1).all()


def test_mask_boxes_with_empty_fallback():
    m = np.zeros((2, 10, 12), np.uint8)
    m[0, 2:5, 3:9] = 1
    pts = np.array([[[1.0, 2.0], [4.0, 6.0]]] * 2)
    b = sc.mask_boxes(m, pts)
    np.testing.assert_array_equal(b, [[3, 2, 9, 5], [1, 2, 4, 6]])
    assert np.isnan(sc.mask_boxes(m)[1]).all()


def test_lab_views_share_take_and_frame_ids(walk, renderer):
    m, ident, joints = walk
    rig = sc.lab_rig(np.random.default_rng(1), 4, H, W)
    plans = sc.plan_lab(m, joints, ident, "P0", "P0__walk", rig)
    assert [p.meta.view for p in plans] == ["cam0", "cam1", "cam2", "cam3"]
    assert {p.meta.take for p in plans} == {"P0__walk"} and len({p.meta.id for p in plans}) == 4
    for p in plans:
        np.testing.assert_array_equal(p.frame_ids, np.arange(len(joints)))
        # Static extrinsics: world joints come back from the camera-frame labels.
        np.testing.assert_allclose(p.meta.camera.camera_to_world(p.joints_cam), joints, atol=1e-6)
    # Cameras ~90° apart around the subject, ~1.5 m high, looking at the motion's centre.
    centres = np.array([p.meta.camera.center for p in plans])
    assert ((centres[:, 2] > 1250) & (centres[:, 2] < 1750)).all()
    target = sc.motion_centre(joints)
    az = np.arctan2(*(centres[:, :2] - target[:2]).T[::-1])
    gaps = np.degrees(np.mod(np.diff(np.r_[az, az[0]]), 2 * np.pi))
    assert ((gaps > 65) & (gaps < 115)).all()
    for p in plans:
        c = p.meta.camera.project(p.meta.camera.world_to_camera(target))
        np.testing.assert_allclose(c, [W / 2, H / 2], atol=1.0)
    # The same rig gives every take the same background per camera.
    again = sc.plan_lab(m, joints[:5], ident, "P0", "other", rig)
    assert all(a.background is b.background for a, b in zip(plans, again))
    out = sc.render_plan(plans[0], renderer)
    _check_labels(plans[0], out)
    assert out["true_background"].shape == (H, W, 3)
    fill = (out["boxes"][:, 3] - out["boxes"][:, 1]) / H
    assert fill.min() >= 0.15 and fill.max() <= 0.6
    # The person moves within the frame.
    centre_x = out["boxes"][:, [0, 2]].mean(axis=1)
    assert np.ptp(centre_x) > 3


def test_lab_person_fills_15_to_60_percent_in_every_view(renderer):
    m = procedural_motion("squat", np.random.default_rng(4), fps=5, duration_s=4.0)
    ident = identity_for("S7", 3)
    joints = retarget(m.joints, ident)
    for p in sc.plan_lab(m, joints, ident, "S7", "t", sc.lab_rig(np.random.default_rng(9), 4, H, W)):
        out = sc.render_plan(p, renderer)
        fill = (out["boxes"][:, 3] - out["boxes"][:, 1]) / H
        assert 0.15 <= fill.min() and fill.max() <= 0.6, (p.meta.view, fill.min(), fill.max())


def test_dive_falls_under_gravity_and_down_the_frame(renderer):
    ident = identity_for("P1", 0)
    fps = 50.0
    p = sc.plan_dive(ident, "P1", "dive0", np.random.default_rng(5), fps, H, W)
    assert p.meta.fps == fps and p.meta.scenario == "dive" and p.num_frames > 15
    world = p.meta.camera.camera_to_world(p.joints_cam)
    centre_z = world.mean(axis=1)[:, 2]
    accel = np.diff(centre_z, 2) * fps ** 2                       # mm/s²
    np.testing.assert_allclose(accel, -GRAVITY_MM_S2, rtol=1e-6)
    # Somersault about the lateral axis (world y), which the camera looks along.
    axis = world[:, 8] - world[:, 0]
    assert np.abs(axis[:, 1]).max() < 0.2 * np.linalg.norm(axis, axis=1).min()
    assert abs(p.meta.camera.R[2, 1]) > 0.999                     # optical axis = ±y
    out = sc.render_plan(p, renderer)
    _check_labels(p, out)
    cy = out["boxes"][:, [1, 3]].mean(axis=1)
    assert cy[-1] - cy[0] > 0.3 * H and cy[: len(cy) // 3].mean() < H / 2 < cy[-len(cy) // 3:].mean()
    assert np.corrcoef(np.arange(len(cy)), cy)[0, 1] > 0.9
    side = np.maximum(out["boxes"][:, 2] - out["boxes"][:, 0], out["boxes"][:, 3] - out["boxes"][:, 1]) / H
    assert side.min() >= 0.15 and side.max() <= 0.6


def test_pan_rotates_about_a_fixed_centre_with_warped_wall(walk, renderer):
    m = procedural_motion("walk", np.random.default_rng(2), fps=10, duration_s=4.0, path="straight")
    ident = identity_for("P2", 0)
    joints = retarget(m.joints, ident)
    p = sc.plan_pan(m, joints, ident, "P2", "pan0", np.random.default_rng(3), H, W)
    assert p.moving and p.background is None
    T = p.num_frames
    # Pure rotation: the camera centre -Rᵀt is the same in every frame; the rotation changes.
    centres = -np.einsum("tji,tj->ti", p.camera_R, p.camera_t)
    np.testing.assert_allclose(centres, np.broadcast_to(centres[0], centres.shape), atol=1e-6)
    turn = np.degrees(np.arccos(np.clip((np.trace(p.camera_R[0].T @ p.camera_R[-1]) - 1) / 2, -1, 1)))
    assert turn > 10
    # 3D labels are in each frame's camera.
    np.testing.assert_allclose(np.einsum("tij,tkj->tki", p.camera_R, joints) + p.camera_t[:, None], p.joints_cam,
                               atol=1e-6)
    # The homographies agree with the cameras: a texel's wall point projects where H maps the texel.
    K = p.meta.camera.K
    texel = np.array([p.wall.shape[1] * 0.3, p.wall.shape[0] * 0.6, 1.0])
    wall_point = np.linalg.solve(K @ p.camera_R[0], p.homographies[0] @ texel)  # ray direction to it
    for i in (0, T // 2, T - 1):
        ray = p.camera_R[i] @ wall_point
        np.testing.assert_allclose((K @ ray)[:2] / (K @ ray)[2], (p.homographies[i] @ texel)[:2]
                                   / (p.homographies[i] @ texel)[2], atol=1e-6)
    out = sc.render_plan(p, renderer)
    _check_labels(p, out)
    bgs = out["true_backgrounds"]
    assert bgs.shape == (T, H, W, 3) and np.abs(bgs[0].astype(int) - bgs[-1]).mean() > 5
    assert out["camera_R"].shape == (T, 3, 3) and out["camera_t"].shape == (T, 3)
    # Outside the mask a frame is exactly its true background.
    off = out["masks"] == 0
    np.testing.assert_array_equal(out["frames"][off], bgs[off])
    # The camera follows: the person stays near the middle while the wall slides past.
    cx = out["boxes"][:, [0, 2]].mean(axis=1)
    assert np.abs(cx - W / 2).max() < W / 4
    # A light fixed in the room: every frame lit by its own camera rotation, whatever the chunk size.
    room = sc.render_plan(p, renderer, light="room")
    room5 = sc.render_plan(p, Renderer(H, W, batch_size=5), light="room")
    np.testing.assert_array_equal(room["frames"], room5["frames"])
    np.testing.assert_array_equal(room["masks"], out["masks"])
    assert (room["frames"] != out["frames"]).any()


def test_wild_cameras_and_backgrounds_change_with_the_seed(walk, renderer):
    m, ident, joints = walk
    a = sc.plan_wild(m, joints, ident, "P0", "w", np.random.default_rng(0), H, W)
    b = sc.plan_wild(m, joints, ident, "P0", "w", np.random.default_rng(1), H, W)
    a2 = sc.plan_wild(m, joints, ident, "P0", "w", np.random.default_rng(0), H, W)
    assert np.linalg.norm(a.meta.camera.center - b.meta.camera.center) > 100
    assert not np.array_equal(a.background, b.background)
    np.testing.assert_array_equal(a.joints_cam, a2.joints_cam)
    np.testing.assert_array_equal(a.background, a2.background)
    out = sc.render_plan(a, renderer)
    _check_labels(a, out)
    np.testing.assert_array_equal(out["frames"][out["masks"] == 0],
                                  np.broadcast_to(a.background, out["frames"].shape)[out["masks"] == 0])


def test_unframeable_motion_is_a_clear_error():
    m = procedural_motion("walk", np.random.default_rng(0), fps=2, duration_s=2.0)
    far = m.joints.astype(np.float64).copy()
    far[-1] += np.array([1e6, 0, 0])     # one frame a kilometre away
    intr = sc._intrinsics(H, W, 50)
    with pytest.raises(sc.ScenarioError, match="cannot frame"):
        sc.frame_static_camera(far, intr, 0.0, 1500.0, sc.motion_centre(far), 0.4, 1700.0)
