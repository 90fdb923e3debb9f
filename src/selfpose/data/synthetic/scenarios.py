"""Synthetic recording scenarios: where the cameras are and what is behind the person.

A scenario turns a motion (world frame, mm, z up, already at the rendered
identity's bone lengths — see :func:`selfpose.data.synthetic.bodies.retarget`)
into one or more :class:`SequencePlan`: the sequence's metadata, its 3D labels
in the camera frame, the camera(s) and the true background. Plans are small
(joints and cameras only); :func:`render_sequence` turns a plan into the
stored arrays, chunk by chunk, so a long sequence is never held in memory.

Scenarios (docs/design.md §2):

* ``lab`` (:func:`plan_lab`): several static synchronised cameras around the
  motion (:class:`LabRig`: equally spaced azimuths, ~1.5 m high, one fixed
  background per camera); views of a take share ``take`` and ``frame_ids``.
* ``dive`` (:func:`plan_dive`): a procedural dive in free fall, from the top of
  the frame to the bottom, somersaulting; a static camera looks side-on.
* ``pan`` (:func:`plan_pan`): a camera turning about its centre to follow the
  subject in front of a far planar wall; each frame's background is a
  homography warp of the wall texture, and each frame has its own extrinsics.
* ``wild`` (:func:`plan_wild`): a random static camera and a new background
  per sequence.

Framing: static cameras are placed along a chosen direction at the smallest
distance that keeps the whole motion (plus a margin for the body's volume) in
the frame, and no nearer than the distance at which the person's standing
height fills a chosen fraction of the frame; they then back off if the person
would fill more than :data:`MAX_FILL` of the frame height in any frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator

import numpy as np

from selfpose.data.sequence import SequenceMeta, safe_id
from selfpose.data.synthetic import textures
from selfpose.data.synthetic.bodies import Identity, retarget
from selfpose.data.synthetic.motion import GRAVITY_MM_S2, Motion
from selfpose.data.synthetic.procedural import procedural_motion
from selfpose.errors import SelfposeError
from selfpose.geometry.camera import Camera, look_at

if TYPE_CHECKING:  # the renderer imports torch when it renders; typing it costs nothing
    from selfpose.data.synthetic.render import Renderer

SCENARIOS = ("lab", "dive", "pan", "wild")

#: Largest fraction of the frame height the person may fill (in any frame).
MAX_FILL = 0.6
# Framing aims a little below MAX_FILL: it measures joints plus clearances,
# and hands, hair and shoes reach a bit beyond those.
_FILL_TARGET = 0.56
#: Fraction of the frame kept free at each border when fitting a motion in it.
BORDER = 0.05
#: How far the body's surface reaches beyond its joints, mm: above the head
#: joint (the head top), below the ankles (shoes) and around everything else.
HEAD_CLEARANCE_MM, FOOT_CLEARANCE_MM, SIDE_CLEARANCE_MM = 90.0, 80.0, 120.0

_HEAD, _ANKLES = 10, (3, 6)
_UP = np.array([0.0, 0.0, 1.0])


class ScenarioError(SelfposeError, ValueError):
    """A motion or setting a scenario cannot frame or render."""


@dataclass
class SequencePlan:
    """Everything needed to render one sequence, without its pixels.

    Attributes:
        meta: the stored sequence's metadata (``camera`` holds the intrinsics,
            and the extrinsics when the camera is static).
        joints_cam: ``(T, 17, 3)`` float64 mm, camera frame, at the identity's
            bone lengths: the 3D labels.
        identity: who is rendered.
        frame_ids: ``(T,)`` int64, index of each frame in its take.
        background: ``(H, W, 3)`` uint8 true background of a static camera.
        wall: for a moving camera, the wall texture ``(h, w, 3)`` uint8 …
        homographies: … and ``(T, 3, 3)`` maps from wall texels (col, row) to
            frame pixels: frame ``i``'s true background is the texture warped
            by ``homographies[i]``.
        camera_R, camera_t: ``(T, 3, 3)`` and ``(T, 3)`` mm per-frame
            world→camera extrinsics of a moving camera.
    """

    meta: SequenceMeta
    joints_cam: np.ndarray
    identity: Identity
    frame_ids: np.ndarray
    background: np.ndarray | None = None
    wall: np.ndarray | None = None
    homographies: np.ndarray | None = None
    camera_R: np.ndarray | None = None
    camera_t: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.joints_cam.shape[0])

    @property
    def moving(self) -> bool:
        return self.camera_R is not None

    def backgrounds(self, start: int, stop: int) -> np.ndarray:
        """True backgrounds of frames ``start:stop``: ``(n, H, W, 3)`` uint8 (moving camera) or ``(H, W, 3)``."""
        if self.wall is None:
            return self.background
        import cv2

        H, W = self.meta.height, self.meta.width
        out = np.empty((stop - start, H, W, 3), np.uint8)
        for i in range(start, stop):
            cv2.warpPerspective(self.wall, self.homographies[i], (W, H), dst=out[i - start],
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return out


# ---------------------------------------------------------------------------
# Rendering a plan
# ---------------------------------------------------------------------------

def mask_boxes(masks: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """Tight boxes ``(T, 4)`` float32 ``x0, y0, x1, y1`` px of ``(T, H, W)`` masks.

    ``frame[y0:y1, x0:x1]`` is the smallest crop holding the mask (``x1``/``y1``
    exclusive). Frames with an empty mask take the box of ``fallback``
    ``(T, J, 2)`` points (px; e.g. the projected joints), or NaN without one.
    """
    masks = np.asarray(masks).astype(bool)
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    T, H, W = masks.shape
    y0 = rows.argmax(axis=1)
    y1 = H - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = W - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)
    empty = ~rows.any(axis=1)
    if empty.any():
        if fallback is None:
            boxes[empty] = np.nan
        else:
            p = np.asarray(fallback)[empty]
            boxes[empty] = np.concatenate([p.min(axis=1), p.max(axis=1)], axis=1)
    return boxes


def render_sequence(plan: SequencePlan, renderer: Renderer, light: str = "camera") -> Iterator[dict[str, np.ndarray]]:
    """Render ``plan`` in chunks of ``renderer.batch_size`` frames, in frame order.

    ``light``: ``camera`` lights every view from the renderer's own direction
    (fixed to the camera); ``room`` from one direction fixed in the world
    (:data:`~selfpose.data.synthetic.render.ROOM_LIGHT`), rotated into each
    camera — a moving camera's frames one by one, each by its own rotation
    (slower, and independent of ``renderer.batch_size``).

    Yields dicts of temporal arrays (names and units of
    :data:`selfpose.data.sequence.ARRAY_SPECS`): ``frames``, ``masks``,
    ``boxes``, ``joints2d``, ``joints2d_conf``, ``joints3d``, ``frame_ids``,
    and for a moving camera ``camera_R``, ``camera_t``, ``true_backgrounds``.
    A static camera's ``true_background`` is ``plan.background``.
    """
    from selfpose.data.synthetic.render import RenderError, RenderResult, room_light

    if light not in ("camera", "room"):
        raise RenderError(f"light must be camera or room, got {light!r}")
    cam = plan.meta.camera
    bs = renderer.batch_size
    for s in range(0, plan.num_frames, bs):
        e = min(plan.num_frames, s + bs)
        j3 = plan.joints_cam[s:e]
        bg = plan.backgrounds(s, e)
        if light == "room" and plan.moving:
            res = RenderResult.concatenate([
                renderer.render(j3[i:i + 1], cam, plan.identity, bg[i:i + 1], light_dir=room_light(plan.camera_R[s + i]))
                for i in range(e - s)])
        else:
            res = renderer.render(j3, cam, plan.identity, bg,
                                  light_dir=room_light(cam.R) if light == "room" else None)
        j2 = cam.project(j3)
        chunk = {
            "frames": res.frames, "masks": res.masks, "boxes": mask_boxes(res.masks, j2),
            "joints2d": j2.astype(np.float32), "joints2d_conf": np.ones(j2.shape[:2], np.float32),
            "joints3d": j3.astype(np.float32), "frame_ids": plan.frame_ids[s:e],
        }
        if plan.moving:
            chunk.update(camera_R=plan.camera_R[s:e].astype(np.float32),
                         camera_t=plan.camera_t[s:e].astype(np.float32), true_backgrounds=bg)
        yield chunk


def render_plan(plan: SequencePlan, renderer: Renderer, light: str = "camera") -> dict[str, np.ndarray]:
    """All of :func:`render_sequence` at once, plus ``true_background`` (small sequences, tests)."""
    parts = list(render_sequence(plan, renderer, light=light))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if plan.background is not None:
        out["true_background"] = plan.background
    return out


# ---------------------------------------------------------------------------
# Framing helpers
# ---------------------------------------------------------------------------

def body_points(joints_world: np.ndarray) -> np.ndarray:
    """``(T, 20, 3)`` joints plus the top of the head and the soles (world z up, mm).

    The rendered body reaches beyond its joints; these points bound it
    vertically for an upright person.
    """
    head = joints_world[:, [_HEAD]] + HEAD_CLEARANCE_MM * _UP
    feet = joints_world[:, list(_ANKLES)] - FOOT_CLEARANCE_MM * _UP
    return np.concatenate([joints_world, head, feet], axis=1)


def _fill(pts_cam: np.ndarray, cam: Camera) -> np.ndarray:
    """Per-frame vertical extent of ``(T, P, 3)`` camera points as a fraction of the frame height."""
    v = cam.project(pts_cam)[..., 1]
    return (v.max(axis=1) - v.min(axis=1)) / cam.height


def _intrinsics(height: int, width: int, fov_y_deg: float) -> Camera:
    return Camera.from_fov(width, height, fov_y_deg)


def _static_camera(eye: np.ndarray, target: np.ndarray, intr: Camera, roll_rad: float = 0.0) -> Camera:
    R, _ = look_at(eye, target)
    if roll_rad:
        c, s = np.cos(roll_rad), np.sin(roll_rad)
        R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ R
    return replace(intr, R=R, t=-R @ eye)


def frame_static_camera(joints_world: np.ndarray, intr: Camera, azimuth_rad: float, eye_height_mm: float,
                        target: np.ndarray, fill: float, stature_mm: float, roll_rad: float = 0.0,
                        max_fill: float = _FILL_TARGET) -> Camera:
    """A static camera looking at ``target`` from ``azimuth_rad`` that keeps the whole motion in frame.

    Args:
        joints_world: ``(T, 17, 3)`` mm, z up.
        intr: intrinsics (image size, focal length).
        azimuth_rad: direction from ``target`` to the camera in the ground plane.
        eye_height_mm: camera height above the floor.
        target: ``(3,)`` world point the camera looks at, mm.
        fill: wanted fraction of the frame height filled by a standing person of
            height ``stature_mm`` at the target (a lower bound on the distance).
        roll_rad: rotation of the image about the optical axis.
        max_fill: the person may fill at most this fraction of the frame height.

    Returns:
        The camera (``R``, ``t`` world→camera, mm).

    Raises:
        ScenarioError: when no distance keeps the motion in frame.
    """
    pts = body_points(joints_world)
    flat = pts.reshape(-1, 3)
    direction = np.array([np.cos(azimuth_rad), np.sin(azimuth_rad), 0.0])
    target = np.asarray(target, dtype=np.float64)
    margin = BORDER * max(intr.width, intr.height)

    def camera(d: float) -> Camera:
        eye = target + d * direction
        eye[2] = eye_height_mm
        return _static_camera(eye, target, intr, roll_rad)

    def fits(d: float) -> bool:
        cam = camera(d)
        Xc = cam.world_to_camera(flat)
        # Widen by the body's half-width at each point's depth.
        m = margin + intr.fx * SIDE_CLEARANCE_MM / np.maximum(Xc[:, 2], 1.0)
        uv = cam.project(Xc)
        return bool((Xc[:, 2] > 100.0).all() and (uv[:, 0] >= m).all() and (uv[:, 0] <= intr.width - 1 - m).all()
                    and (uv[:, 1] >= m).all() and (uv[:, 1] <= intr.height - 1 - m).all())

    def too_big(d: float) -> bool:
        cam = camera(d)
        return bool(_fill(cam.world_to_camera(pts), cam).max() > max_fill)

    reach = np.linalg.norm(flat[:, :2] - target[:2], axis=1).max()
    lo, hi = reach + 300.0, 200_000.0
    if not fits(hi):
        raise ScenarioError("cannot frame the motion from this direction (the camera would have to be more "
                            "than 200 m away); use a shorter motion or a wider field of view")
    d = _bisect(fits, lo, hi)
    d = max(d, intr.fy * stature_mm / (fill * intr.height))
    if too_big(d):
        d = _bisect(lambda x: not too_big(x), d, hi)
    return camera(d)


def _bisect(ok, lo: float, hi: float, iters: int = 40) -> float:
    """Smallest ``x`` in ``[lo, hi]`` with ``ok(x)`` (``ok(hi)`` assumed true, ``ok`` monotone)."""
    if ok(lo):
        return lo
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
        if hi - lo < 1.0:
            break
    return hi


def motion_centre(joints_world: np.ndarray) -> np.ndarray:
    """Centre of the motion's bounding box in the ground plane, at mid body height (mm)."""
    flat = body_points(joints_world).reshape(-1, 3)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    return 0.5 * (lo + hi)


def _meta(scenario: str, motion: Motion, subject: str, view: str, take: str, camera: Camera, T: int,
          fps: float, height: int, width: int, identity: Identity, **attrs) -> SequenceMeta:
    return SequenceMeta(
        id=safe_id(take, view), subject=subject, action=motion.action, take=take, view=view, fps=float(fps),
        num_frames=T, height=height, width=width, camera=camera, scenario=scenario,
        attrs={"motion": motion.name, "motion_source": motion.source, "identity": identity.name,
               **attrs})


# ---------------------------------------------------------------------------
# lab
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LabRig:
    """The fixed part of a lab: per view an azimuth, a height, a field of view and a background.

    Attributes:
        azimuths_rad: ``(V,)`` directions from the subject to each camera.
        heights_mm: ``(V,)`` camera heights.
        fovs_deg: ``(V,)`` vertical fields of view.
        backgrounds: ``V`` ``(H, W, 3)`` uint8 images, the same for every take.
        fill: fraction of the frame height a standing person fills at the
            motion's centre (when the motion's extent allows).
        aim: optional ``(V, 3)`` offsets of each camera's aim point from the
            motion's centre, as fractions of the motion's extent (x, y) and of
            the person's stature (z): the person is then not always in the
            middle of the frame. None: every camera aims at the centre.
    """

    azimuths_rad: np.ndarray
    heights_mm: np.ndarray
    fovs_deg: np.ndarray
    backgrounds: tuple[np.ndarray, ...]
    fill: float
    height: int
    width: int
    aim: np.ndarray | None = None

    @property
    def views(self) -> int:
        return len(self.azimuths_rad)

    @staticmethod
    def view_name(k: int) -> str:
        return f"cam{k}"


def lab_rig(rng: np.random.Generator, views: int, height: int, width: int, background_kind: str = "any") -> LabRig:
    """A random lab: ``views`` cameras equally spaced in azimuth (±10°), 1.3–1.7 m high, 45–65° fov."""
    if views < 1:
        raise ScenarioError(f"a lab needs at least one view, got {views}")
    base = rng.uniform(0, 2 * np.pi)
    az = base + 2 * np.pi * np.arange(views) / views + np.radians(rng.uniform(-10, 10, views))
    return LabRig(
        azimuths_rad=az, heights_mm=rng.uniform(1300, 1700, views), fovs_deg=rng.uniform(45, 65, views),
        backgrounds=tuple(textures.background(rng, height, width, background_kind) for _ in range(views)),
        fill=float(rng.uniform(0.3, 0.45)), height=height, width=width)


#: Ranges of :func:`vary_rig` (per-take lab cameras): camera height (mm), vertical field of view (degrees),
#: aim offset (fraction of the motion's extent / the person's stature).
TAKE_HEIGHTS_MM = (600.0, 2400.0)
TAKE_FOVS_DEG = (35.0, 70.0)
TAKE_AIM = 0.15


def vary_rig(rig: LabRig, rng: np.random.Generator, fill: tuple[float, float]) -> LabRig:
    """``rig`` with new camera geometry for one take: the same backgrounds and number of views.

    Per take: a random base azimuth (views stay about evenly spread, ±10°),
    heights in :data:`TAKE_HEIGHTS_MM`, fields of view in :data:`TAKE_FOVS_DEG`,
    a fill fraction in ``fill`` and an aim offset per view up to :data:`TAKE_AIM`,
    so that neither the box's size nor its place in the frame is fixed by the
    camera index. (The backgrounds are flat images behind the person, not a 3D
    room: keeping them per view keeps the per-camera background pooling valid.)
    """
    v = rig.views
    base = rng.uniform(0, 2 * np.pi)
    az = base + 2 * np.pi * np.arange(v) / v + np.radians(rng.uniform(-10, 10, v))
    return replace(rig, azimuths_rad=az, heights_mm=rng.uniform(*TAKE_HEIGHTS_MM, v),
                   fovs_deg=rng.uniform(*TAKE_FOVS_DEG, v), fill=float(rng.uniform(*fill)),
                   aim=rng.uniform(-TAKE_AIM, TAKE_AIM, (v, 3)))


def plan_lab(motion: Motion, joints_world: np.ndarray, identity: Identity, subject: str, take: str,
             rig: LabRig) -> list[SequencePlan]:
    """One :class:`SequencePlan` per camera of ``rig`` for one take.

    Args:
        motion: the source motion (name, action, fps).
        joints_world: ``(T, 17, 3)`` mm, z up: ``motion.joints`` at the
            identity's bone lengths.
        identity: who is rendered; ``subject`` is stored as the sequence's subject.
        take: take id shared by the views.
        rig: the lab's cameras and backgrounds.
    """
    T = len(joints_world)
    centre = motion_centre(joints_world)
    extent = np.ptp(joints_world[..., :2].reshape(-1, 2), axis=0)
    plans = []
    for k in range(rig.views):
        intr = _intrinsics(rig.height, rig.width, float(rig.fovs_deg[k]))
        target = centre if rig.aim is None else \
            centre + rig.aim[k] * np.array([extent[0], extent[1], identity.height_mm])
        cam = frame_static_camera(joints_world, intr, float(rig.azimuths_rad[k]), float(rig.heights_mm[k]),
                                  target, rig.fill, identity.height_mm)
        meta = _meta("lab", motion, subject, LabRig.view_name(k), take, cam, T, motion.fps, rig.height, rig.width,
                     identity)
        plans.append(SequencePlan(meta, cam.world_to_camera(joints_world), identity, np.arange(T, dtype=np.int64),
                                  background=rig.backgrounds[k]))
    return plans


# ---------------------------------------------------------------------------
# wild
# ---------------------------------------------------------------------------

def plan_wild(motion: Motion, joints_world: np.ndarray, identity: Identity, subject: str, take: str,
              rng: np.random.Generator, height: int, width: int, background_kind: str = "any") -> SequencePlan:
    """A static camera at a random azimuth, height (0.5–2.5 m), field of view (35–75°), slight roll and
    aim, over a new background."""
    intr = _intrinsics(height, width, rng.uniform(35, 75))
    centre = motion_centre(joints_world)
    extent = np.ptp(joints_world[..., :2].reshape(-1, 2), axis=0)
    # Aim off-centre so the person is not always in the middle of the frame.
    target = centre + np.array([*(rng.uniform(-0.15, 0.15, 2) * extent), rng.uniform(-200, 200)])
    cam = frame_static_camera(joints_world, intr, rng.uniform(0, 2 * np.pi), rng.uniform(500, 2500), target,
                              rng.uniform(0.25, 0.5), identity.height_mm, roll_rad=np.radians(rng.uniform(-6, 6)))
    bg = textures.background(rng, height, width, background_kind)
    T = len(joints_world)
    meta = _meta("wild", motion, subject, "cam0", take, cam, T, motion.fps, height, width, identity)
    return SequencePlan(meta, cam.world_to_camera(joints_world), identity, np.arange(T, dtype=np.int64), background=bg)


# ---------------------------------------------------------------------------
# dive
# ---------------------------------------------------------------------------

def plan_dive(identity: Identity, subject: str, take: str, rng: np.random.Generator, fps: float, height: int,
              width: int, background_kind: str = "any") -> SequencePlan:
    """A procedural dive: free fall from the top of the frame to the bottom with somersaults.

    The diver's centre (joint centroid) follows ``x(t) = x0 + vx t``,
    ``z(t) = z0 + v0 t − g t² / 2`` (g = 9810 mm/s²) while the body
    somersaults about the world y axis (see :func:`procedural_motion`
    ``"dive"``). The camera looks along y (side-on), so the rotation is in the
    image plane and the fall is vertical in the image. The visible window's
    height is chosen so that the diver's box (its larger side) fills 15–60% of
    the frame height in every pose; the sequence lasts from the top of the
    window to the bottom (at ``fps`` frames per second), the whole body in
    view throughout. The body has the identity's bone lengths.
    """
    fov = rng.uniform(40, 60)
    intr = _intrinsics(height, width, fov)
    v0 = rng.uniform(-1500, 1000)                     # initial vertical speed, mm/s (up > 0)
    vx = rng.uniform(300, 1200) * rng.choice([-1, 1])
    window_u = rng.random()
    body_seed = int(rng.integers(2**63))

    def body(duration: float) -> np.ndarray:
        m = procedural_motion("dive", np.random.default_rng(body_seed), fps, duration)
        j = retarget(m.joints, identity)
        return j - j.mean(axis=1, keepdims=True)      # centred on the joint centroid every frame

    g = GRAVITY_MM_S2
    # Shoes stick out ~20 cm from the ankles and hands ~10 cm beyond the
    # wrists, in any direction once the body turns: a wider clearance than
    # for an upright person.
    clearance = 250.0

    def drop(t: np.ndarray) -> np.ndarray:
        """Height of the centre relative to its start, mm."""
        return v0 * t - 0.5 * g * t ** 2

    def placement(rel: np.ndarray, window: float) -> tuple[float, np.ndarray, float]:
        """Start height z0 (window centre = 0), the pose's reach below the centre, and the fall's duration.

        z0 is the highest start that keeps the body below the window's top in
        every frame (``up`` per frame); the fall lasts until the last pose's
        lowest point reaches the window's bottom.
        """
        t = np.arange(len(rel)) / fps
        up = rel[..., 2].max(axis=1) + clearance
        down = -rel[..., 2].min(axis=1) + clearance
        z0 = 0.5 * window - (up + drop(t)).max()
        fall = z0 + 0.5 * window - down[-1]
        if fall <= 0:
            raise ScenarioError("dive window too small for the diver")
        return z0, down, (v0 + np.sqrt(v0 ** 2 + 2 * g * fall)) / g

    # The window (visible height at the diver's distance, mm) is sized from
    # the body: its most compact pose (tucked) must fill >= 15% of the frame
    # height and its longest (stretched, arms up) at most MAX_FILL. Poses
    # depend on the duration (the dive's phases are fractions of it), which
    # depends on the window: iterate a few times, it settles quickly.
    dur = 0.8
    for _ in range(3):
        rel = body(dur)
        side = np.ptp(rel[..., [0, 2]], axis=1).max(axis=1) + 2 * SIDE_CLEARANCE_MM   # box's larger side
        lo, hi = side.max() / _FILL_TARGET, side.min() / 0.18
        window = lo + window_u * (hi - lo) if hi > lo else np.sqrt(lo * hi)
        _, _, dur = placement(rel, window)
    dist = intr.fy * window / intr.height
    rel = body(dur)
    z0, down, _ = placement(rel, window)
    t = np.arange(len(rel)) / fps
    z = z0 + drop(t)
    # Keep the frames whose body is wholly above the window's bottom (all of
    # them, or all but the last one or two where the estimate was slightly off).
    below = np.nonzero(z - down < -0.5 * window - 1e-6)[0]
    if len(below):
        rel, t, z = rel[:below[0]], t[:below[0]], z[:below[0]]
    T = len(rel)
    centre = np.stack([vx * t, np.zeros(T), z], axis=1)
    joints_world = rel + centre[:, None]
    # Side-on camera at the window's centre height, at y = ±dist, looking along y.
    side = rng.choice([-1.0, 1.0])
    mid_x = 0.5 * (centre[0, 0] + centre[-1, 0])
    eye = np.array([mid_x, side * dist, 0.0])
    cam = _static_camera(eye, np.array([mid_x, 0.0, 0.0]), intr)
    bg = textures.background(rng, height, width, background_kind)
    motion = Motion(f"procedural/dive/{take}", "", "dive", float(fps), joints_world.astype(np.float32), "procedural")
    meta = _meta("dive", motion, subject, "cam0", take, cam, T, fps, height, width, identity,
                 gravity_mm_s2=GRAVITY_MM_S2, initial_vertical_speed_mm_s=float(v0),
                 horizontal_speed_mm_s=float(vx))
    return SequencePlan(meta, cam.world_to_camera(joints_world), identity, np.arange(T, dtype=np.int64), background=bg)


# ---------------------------------------------------------------------------
# pan
# ---------------------------------------------------------------------------

def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames <= 0.5:
        return x
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma_frames, axis=0, mode="nearest")


def plan_pan(motion: Motion, joints_world: np.ndarray, identity: Identity, subject: str, take: str,
             rng: np.random.Generator, height: int, width: int, background_kind: str = "any",
             max_texture_px: int = 8192) -> SequencePlan:
    """A camera that turns about its centre to follow the subject in front of a far planar wall.

    The camera stands to the side of the motion's main direction of travel,
    1.2–1.7 m high, at the distance where a standing person fills 30–50% of
    the frame height (farther if they would fill more than :data:`MAX_FILL`).
    In frame ``i`` it looks at the subject's smoothed pelvis (σ = 0.25 s), so
    ``X_cam = R_i (X_world − C)``. The wall is a plane parallel to the path,
    2–6 m behind it, textured with :func:`textures.wide_background`; the
    texture covers everything the camera sees during the pan, at a
    resolution a little finer than the frames'.
    """
    T = len(joints_world)
    fps = motion.fps
    intr = _intrinsics(height, width, rng.uniform(35, 55))
    root = joints_world[:, 0]
    travel = root[-1, :2] - root[0, :2]
    if np.linalg.norm(travel) > 300:
        u = travel / np.linalg.norm(travel)
    else:  # hardly travels: use the main axis of the pelvis's path, or any direction
        xy = root[:, :2] - root[:, :2].mean(axis=0)
        if np.ptp(xy, axis=0).max() > 100:
            u = np.linalg.svd(xy, full_matrices=False)[2][0]
        else:
            a = rng.uniform(0, 2 * np.pi)
            u = np.array([np.cos(a), np.sin(a)])
    n = np.array([-u[1], u[0]]) * rng.choice([-1.0, 1.0])    # from the path towards the camera
    n3 = np.array([n[0], n[1], 0.0])
    mid = 0.5 * (root[:, :2].min(axis=0) + root[:, :2].max(axis=0))
    # Distance: standing person fills `fill` of the frame at the path's closest point.
    fill = rng.uniform(0.3, 0.5)
    d = intr.fy * identity.height_mm / (fill * intr.height)
    pts = body_points(joints_world)
    offset_across = (root[:, :2] - mid) @ n                      # > 0: closer to the camera
    d = max(d, offset_across.max() + 1500.0)
    eye_height = rng.uniform(1200, 1700)
    # Aim at the smoothed pelvis (at its median height): a camera operator
    # follows the body, not the bob of each step.
    aim = _smooth(root, 0.25 * fps).copy()
    aim[:, 2] = np.median(root[:, 2])

    def cameras(dist: float):
        C = np.array([*(mid + dist * n), eye_height])
        return C, np.stack([look_at(C, a)[0] for a in aim])

    for _ in range(60):  # back off until the person never fills more than MAX_FILL
        C, Rs = cameras(d)
        Xc = np.einsum("tij,tkj->tki", Rs, pts - C)
        if _fill(Xc, intr).max() <= _FILL_TARGET:
            break
        d *= 1.05
    ts = -np.einsum("tij,j->ti", Rs, C)
    joints_cam = np.einsum("tij,tkj->tki", Rs, joints_world - C)

    # The wall: plane (P - C)·n3 = -D, basis e1 (image right at rest), e2 (up).
    D = d + rng.uniform(2000, 6000) + max(0.0, -offset_across.min())
    e1 = np.cross(-n3, _UP)
    e1 /= np.linalg.norm(e1)
    W0 = C - D * n3
    Kinv = np.linalg.inv(intr.K)
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1.0]]) @ Kinv.T
    rays = np.einsum("tji,kj->tki", Rs, corners)                 # world directions, (T, 4, 3)
    facing = rays @ n3
    if (facing > -1e-3).any():
        raise ScenarioError(f"{take}: the panning camera turns away from the wall; the subject's path is too "
                            "long for this camera distance")
    hits = C + rays * (-D / facing)[..., None]
    a = (hits - W0) @ e1
    b = (hits - W0) @ _UP
    pad = 0.05 * (a.max() - a.min() + b.max() - b.min())
    a0, a1, b0, b1 = a.min() - pad, a.max() + pad, b.min() - pad, b.max() + pad
    rho = 1.25 * intr.fy / D                                     # texels per mm on the wall
    rho = min(rho, max_texture_px / (a1 - a0), max_texture_px / (b1 - b0))
    tex_w, tex_h = int(np.ceil((a1 - a0) * rho)) + 1, int(np.ceil((b1 - b0) * rho)) + 1
    wall = textures.wide_background(rng, tex_h, width, background_kind, factor=tex_w / width)
    # Texel (c, r) is the wall point W0 + (a0 + c/ρ) e1 + (b1 − r/ρ) up.
    M = np.stack([e1 / rho, -_UP / rho, W0 - C + a0 * e1 + b1 * _UP], axis=1)   # (3, 3), columns
    Hs = np.einsum("ij,tjk,kl->til", intr.K, Rs, M)
    Hs /= Hs[:, 2:3, 2:3]

    meta = _meta("pan", motion, subject, "cam0", take, intr, T, fps, height, width, identity,
                 extrinsics="per frame: camera_R, camera_t", camera_centre_mm=C.tolist(),
                 wall_distance_mm=float(D))
    return SequencePlan(meta, joints_cam, identity, np.arange(T, dtype=np.int64), wall=wall, homographies=Hs,
                        camera_R=Rs, camera_t=ts)


def pan_motion(action: str, rng: np.random.Generator, fps: float, max_seconds: float, name: str) -> Motion:
    """A procedural ``"walk"`` or ``"run"`` along a straight line, for a panning camera to follow."""
    if action not in ("walk", "run"):
        raise ScenarioError(f"the pan scenario's procedural motion is 'walk' or 'run', got {action!r}")
    dur = min(max_seconds, rng.uniform(4, 10) if action == "walk" else rng.uniform(2, 5))
    return procedural_motion(action, rng, fps, dur, path="straight", name=name)
