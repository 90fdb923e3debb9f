"""Ray-cast rendering of synthetic people."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from selfpose.data.synthetic.bodies import Identity, body_primitives, identity_for, rest_pose, retarget
from selfpose.data.synthetic.render import Renderer, RenderError, RenderResult, benchmark_render
from selfpose.geometry.camera import Camera, look_at
from selfpose.geometry.skeleton import H36M17

J = {name: i for i, name in enumerate(H36M17.joint_names)}


def _front_camera(size: int, dist: float = 4000.0, fov: float = 40.0, height: float = 900.0) -> Camera:
    """A level camera on the -y axis looking at the rest pose's front."""
    R, t = look_at(np.array([0.0, -dist, height]), np.array([0.0, 0.0, height]))
    return Camera.from_fov(size, size, fov, R=R, t=t)


def _noise_background(size: int, frames: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if frames is None else (frames, size, size, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _swinging(ident: Identity, T: int = 11) -> np.ndarray:
    """(T, 17, 3) world mm: the rest pose turning and swinging its arms."""
    base = rest_pose(ident)
    out = np.repeat(base[None], T, axis=0)
    for k, ang in enumerate(np.linspace(0.0, 1.2, T)):
        c, s = np.cos(ang), np.sin(ang)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        out[k] = (out[k] - base[0] * [1, 1, 0]) @ rot.T
        out[k, [J["left_wrist"], J["right_wrist"]], 1] -= 150 * np.sin(3 * ang)
    return retarget(out, ident)


def test_masks_depth_and_frames_agree():
    ident = identity_for("S1", 0)
    cam = _front_camera(96)
    jc = cam.world_to_camera(_swinging(ident, 6))
    bg = _noise_background(96)
    for ss in (1, 2):
        res = Renderer(96, 96, supersample=ss).render(jc, cam, ident, bg)
        assert res.frames.shape == (6, 96, 96, 3) and res.frames.dtype == np.uint8
        assert res.masks.dtype == np.uint8 and set(np.unique(res.masks)) == {0, 1}
        assert res.depth.dtype == np.float32
        off = res.masks == 0
        assert (res.frames[off] == np.broadcast_to(bg, res.frames.shape)[off]).all()
        if ss == 1:
            assert (np.isfinite(res.depth) == (res.masks == 1)).all()
            changed = (res.frames != bg).any(-1)
            assert changed[res.masks == 1].mean() > 0.97
        else:  # a partly covered pixel is in the mask; its depth is that of its covered part
            assert (np.isfinite(res.depth) <= (res.masks == 1)).all()
        assert 0.02 < res.masks.mean() < 0.5


def test_nearer_limb_occludes_torso():
    ident = dataclasses.replace(Identity(name="test"), long_sleeves=False, skin=(0.9, 0.6, 0.4),
                                top=(0.1, 0.2, 0.9), top_pattern="plain")
    pose = rest_pose(ident)
    across = pose.copy()
    # Right forearm horizontal, across the front of the belly.
    elbow = across[J["right_elbow"]]
    across[J["right_wrist"]] = elbow + np.array([0.8, -0.6, 0.0]) * ident.bone_lengths_mm()[15]
    cam = _front_camera(128, dist=3000.0)
    renderer = Renderer(128, 128)
    bg = np.zeros((128, 128, 3), np.uint8)
    joints = cam.world_to_camera(np.stack([pose, across]))
    res = renderer.render(joints, cam, ident, bg)
    # The point of the forearm's axis that crosses the body's midline (x = 0).
    e, w = across[J["right_elbow"]], across[J["right_wrist"]]
    mid_w = e + (w - e) * (0.0 - e[0]) / (w[0] - e[0])
    mid_c = cam.world_to_camera(mid_w)
    u, v = np.rint(cam.project(mid_c)).astype(int)
    # With the forearm across: the skin-coloured forearm at its surface depth.
    assert res.masks[1, v, u] == 1
    # Depth where this pixel's ray first comes within the forearm's radius of its axis (marched densely).
    ea, wa = cam.world_to_camera(e), cam.world_to_camera(w)
    ts = np.linspace(mid_c[2] - 300, mid_c[2], 30001)
    pts = ts[:, None] * np.array([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0])
    s_ = np.clip(((pts - ea) @ (wa - ea)) / ((wa - ea) @ (wa - ea)), 0, 1)
    dist = np.linalg.norm(pts - (ea + s_[:, None] * (wa - ea)), axis=1)
    expected = ts[np.argmax(dist <= ident.forearm_radius_mm)]
    assert abs(res.depth[1, v, u] - expected) < 0.1
    r, g, b = res.frames[1, v, u].astype(int)
    assert r > b + 30
    # With the arm down, the same pixel shows the (blue) torso, further away.
    assert res.masks[0, v, u] == 1
    r0, g0, b0 = res.frames[0, v, u].astype(int)
    assert b0 > r0 + 30
    assert res.depth[0, v, u] > res.depth[1, v, u] + ident.forearm_radius_mm


def test_projected_joints_fall_on_the_mask(shared_data):
    ident = identity_for("S5", 1)
    motions = [rest_pose(ident)[None]]
    path = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    if path.exists():
        with np.load(path) as npz:
            m = npz["S5/greeting_1"][::50][:8].astype(np.float64)
        m[..., :2] -= m[:, :1, :2]
        motions.append(retarget(m, ident))
    for world in motions:
        for az in (0.0, 1.3):
            R, t = look_at(np.array([3500 * np.sin(az), -3500 * np.cos(az), 1200.0]), np.array([0.0, 0.0, 900.0]))
            cam = Camera.from_fov(128, 128, 45.0, R=R, t=t)
            jc = cam.world_to_camera(world)
            res = Renderer(128, 128).render(jc, cam, ident, np.zeros((128, 128, 3), np.uint8))
            uv = cam.project(jc)
            for f in range(len(world)):
                dist = distance_transform_edt(res.masks[f] == 0)
                cols, rows = np.rint(uv[f]).astype(int).T
                d = dist[rows, cols]
                assert d.max() <= 1.5, f"joint {H36M17.joint_names[int(d.argmax())]} is {d.max():.1f} px off the mask"
                for name in ("pelvis", "spine", "thorax", "head"):
                    assert res.masks[f, rows[J[name]], cols[J[name]]] == 1


def test_mask_height_matches_projected_body_height():
    size, ident = 256, identity_for("S7", 2)
    pose = rest_pose(ident)
    cam = _front_camera(size, dist=4500.0, height=0.55 * ident.height_mm)
    res = Renderer(size, size).render(cam.world_to_camera(pose[None]), cam, ident,
                                      np.zeros((size, size, 3), np.uint8))
    rows = np.flatnonzero(res.masks[0].any(1))
    # Expected extremes from the primitives: top of the head ellipsoid, bottom of the shoes.
    prims = body_primitives(pose[None], ident)
    k = prims.head_index
    head_c, axes, semi = prims.ell_center[0, k], prims.ell_axes[0, k], prims.ell_semi[k]
    top = head_c + np.array([0, 0, np.sqrt(((axes[:, 2] * semi) ** 2).sum())])
    # Lowest points of every capsule's end spheres; the camera looks down on
    # the shoes, so the lowest in the image is the nearest (the toes).
    ends = np.concatenate([prims.cap_a[0], prims.cap_b[0]])
    bottoms = ends - np.concatenate([prims.cap_radius, prims.cap_radius])[:, None] * [0, 0, 1]
    v_top = cam.project_world(top)[1]
    v_bottom = cam.project_world(bottoms)[:, 1].max()
    assert abs(rows[0] - v_top) <= 2.0
    assert abs(rows[-1] - v_bottom) <= 2.0
    assert rows[-1] - rows[0] > 100


def test_render_iter_batches_concatenate_to_render():
    ident = identity_for("S8", 3)
    cam = _front_camera(80)
    jc = cam.world_to_camera(_swinging(ident, 11))
    bg = _noise_background(80, frames=11)
    whole = Renderer(80, 80, batch_size=32).render(jc, cam, ident, bg)
    parts = list(Renderer(80, 80, batch_size=4).render_iter(jc, cam, ident, bg))
    assert [len(p) for p in parts] == [4, 4, 3]
    joined = RenderResult.concatenate(parts)
    assert (joined.masks == whole.masks).all()
    assert np.abs(joined.frames.astype(int) - whole.frames).max() <= 1
    np.testing.assert_allclose(joined.depth, whole.depth, rtol=1e-5)


def test_primitive_windows_lose_no_pixels(monkeypatch):
    """Rendering restricted to each primitive's projected box equals casting every ray at every primitive."""
    ident = identity_for("S6", 4)
    cam = _front_camera(64, dist=3000.0)
    jc = cam.world_to_camera(_swinging(ident, 5))
    bg = _noise_background(64)
    fast = Renderer(64, 64, supersample=2).render(jc, cam, ident, bg)
    boxes = Renderer._boxes

    def everywhere(self, prims, camera):
        b, behind = boxes(self, prims, camera)
        return b, np.ones_like(behind)

    monkeypatch.setattr(Renderer, "_boxes", everywhere)
    slow = Renderer(64, 64, supersample=2).render(jc, cam, ident, bg)
    assert (fast.masks == slow.masks).all()
    assert (fast.frames == slow.frames).all()


def test_nothing_in_view_gives_the_background():
    ident = identity_for("S1", 0)
    cam = _front_camera(32)
    world = rest_pose(ident)[None] + np.array([20000.0, 0.0, 0.0])  # far to the side
    bg = _noise_background(32)
    res = Renderer(32, 32).render(cam.world_to_camera(world), cam, ident, bg)
    assert (res.frames[0] == bg).all() and res.masks.sum() == 0 and np.isinf(res.depth).all()


def test_bad_inputs_are_rejected():
    ident = identity_for("S1", 0)
    cam = _front_camera(32)
    jc = cam.world_to_camera(rest_pose(ident)[None])
    r = Renderer(32, 32)
    with pytest.raises(RenderError, match="distortion"):
        r.render(jc, dataclasses.replace(cam, k=(0.1, 0.0, 0.0)), ident, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(RenderError, match="background"):
        r.render(jc, cam, ident, np.zeros((32, 32, 3), np.float32))
    with pytest.raises(RenderError, match="background frames"):
        r.render(jc, cam, ident, np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(RenderError, match="scaled"):
        Renderer(64, 64).render(jc, cam, ident, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(RenderError, match=r"\(T, 17, 3\)"):
        r.render(jc[:, :16], cam, ident, np.zeros((32, 32, 3), np.uint8))


def test_benchmark_render_reports_a_rate():
    assert benchmark_render(num_frames=16, size=48, batch_size=8) > 0


def test_side_marks_colour_the_left_limbs_only():
    from selfpose.data.synthetic.bodies import with_side_marks

    ident = identity_for("S1", 0)
    marked = with_side_marks(ident)
    assert marked.side is not None and with_side_marks(marked) == marked == with_side_marks(ident)
    assert dataclasses.replace(marked, side=None) == ident          # nothing else about the person changes
    assert min(np.linalg.norm(np.subtract(marked.side, c)) for c in (ident.top, ident.bottom)) > 0.3
    cam = _front_camera(128)
    jc = cam.world_to_camera(retarget(rest_pose(ident)[None], ident))
    bg = _noise_background(128)
    plain = Renderer(128, 128).render(jc, cam, ident, bg)
    side = Renderer(128, 128).render(jc, cam, marked, bg)
    np.testing.assert_array_equal(side.masks, plain.masks)             # the same body, only recoloured
    changed = (side.frames[0].astype(int) - plain.frames[0]).__abs__().sum(-1) > 30
    assert changed.sum() > 40
    # the changed pixels lie on the projected left leg and arm, none on the right ones
    uv = cam.project(jc[0])
    left = [J[n] for n in ("left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist")]
    right = [J[n] for n in ("right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow", "right_wrist")]
    cols = np.nonzero(changed)[1]
    mid = 0.5 * (uv[left, 0].mean() + uv[right, 0].mean())
    on_left = (cols > mid) if uv[left, 0].mean() > mid else (cols < mid)
    assert on_left.mean() > 0.95


def _lit_side(res: RenderResult) -> float:
    """Mean grey level of the person's right half minus its left half (image sides), over frames."""
    out = []
    for frame, mask in zip(res.frames, res.masks):
        cols = np.nonzero(mask.any(0))[0]
        mid = (cols[0] + cols[-1]) / 2
        grey = frame.astype(np.float64).mean(-1)
        x = np.arange(mask.shape[1])[None].repeat(mask.shape[0], 0)
        on = mask == 1
        out.append(grey[on & (x > mid)].mean() - grey[on & (x < mid)].mean())
    return float(np.mean(out))


def test_room_light_is_seen_from_each_cameras_own_side():
    """A light fixed in the room lights a person from opposite image sides for cameras facing each other;
    the renderer's default light, fixed to the camera, lights both from the same side (why the flip
    task of the sync method has a shortcut on `light: camera` renders)."""
    from selfpose.data.synthetic.render import room_light

    ident = identity_for("S1", 0)
    pose = rest_pose(ident)[None]
    size = 96
    front = _front_camera(size)
    R, t = look_at(np.array([0.0, 4000.0, 900.0]), np.array([0.0, 0.0, 900.0]))
    back = Camera.from_fov(size, size, 40.0, R=R, t=t)
    # The light towards world +x: image right for the front camera, image left for the back one.
    np.testing.assert_allclose(room_light(front.R, (1.0, 0.0, 0.0)), [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(room_light(back.R, (1.0, 0.0, 0.0)), [-1.0, 0.0, 0.0], atol=1e-9)
    # A camera whose rotation is not symmetric: the light's direction in its frame is R d, not Rᵀ d.
    R3, t3 = look_at(np.array([3000.0, -2000.0, 1800.0]), np.array([0.0, 0.0, 900.0]))
    cam3 = Camera.from_fov(size, size, 40.0, R=R3, t=t3)
    assert not np.allclose(R3, R3.T)
    d = np.array([0.45, 0.3, 1.0])
    p0 = np.array([100.0, 200.0, 900.0])
    seen = cam3.world_to_camera((p0 + 1000 * d / np.linalg.norm(d))[None]) - cam3.world_to_camera(p0[None])
    np.testing.assert_allclose(room_light(R3, d), seen[0] / np.linalg.norm(seen[0]), atol=1e-9)
    bg = np.zeros((size, size, 3), np.uint8)
    r = Renderer(size, size, specular=0.0)
    side = {}
    for name, cam in (("front", front), ("back", back)):
        jc = cam.world_to_camera(pose)
        side[name, "room"] = _lit_side(r.render(jc, cam, ident, bg, light_dir=room_light(cam.R, (1.0, 0.0, 0.3))))
        side[name, "camera"] = _lit_side(r.render(jc, cam, ident, bg))
    assert side["front", "room"] > 5 and side["back", "room"] < -5, side
    assert np.sign(side["front", "camera"]) == np.sign(side["back", "camera"]), side
    with pytest.raises(RenderError, match="light_dir"):
        r.render(front.world_to_camera(pose), front, ident, bg, light_dir=(0.0, 0.0, 0.0))
