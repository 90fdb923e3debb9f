"""Procedural motion: seeded walk, run, jump, wave, squat and dive on the rest skeleton.

Each action sets the joint angles of a :class:`~selfpose.data.synthetic.kinematics.JointAngles`
body over time; forward kinematics on :data:`~selfpose.data.synthetic.kinematics.REST_OFFSETS_MM`
gives the joints.
"""

from __future__ import annotations

import numpy as np

from selfpose.data.synthetic.kinematics import ANKLE_HEIGHT_MM, ANKLE_JOINTS, JointAngles, rot_y
from selfpose.data.synthetic.motion import GRAVITY_MM_S2, Motion, MotionError

#: Procedural motions :func:`procedural_motion` can make.
PROCEDURAL_ACTIONS = ("walk", "run", "jump", "wave", "squat", "dive")


def _deg(x) -> np.ndarray:
    return np.radians(x)


def _on_floor(joints: np.ndarray, lift_mm: np.ndarray | None = None) -> np.ndarray:
    """Shift each frame vertically so the lower ankle is at :data:`ANKLE_HEIGHT_MM` (+ ``lift_mm``)."""
    low = joints[:, ANKLE_JOINTS, 2].min(axis=1)
    dz = ANKLE_HEIGHT_MM - low + (0.0 if lift_mm is None else lift_mm)
    out = joints.copy()
    out[..., 2] += dz[:, None]
    return out


def _pin_feet(joints: np.ndarray) -> np.ndarray:
    """Shift each frame horizontally so the ankles' midpoint stays where it is in frame 0."""
    mid = joints[:, ANKLE_JOINTS, :2].mean(axis=1)
    out = joints.copy()
    out[..., :2] -= (mid - mid[0])[:, None]
    return out


def _path(rng: np.random.Generator, t: np.ndarray, speed_mm_s: float, path: str,
          radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Root ``(T, 2)`` xy mm and heading ``(T,)`` rad for travel at ``speed_mm_s``."""
    heading0 = rng.uniform(-np.pi, np.pi)
    if path == "straight":
        heading = np.full_like(t, heading0)
    elif path == "circle":
        direction = rng.choice([-1.0, 1.0])
        heading = heading0 + direction * speed_mm_s / radius_mm * t
    else:
        raise MotionError(f"unknown path {path!r}; use 'circle' or 'straight'")
    dt = np.diff(t, prepend=t[0])
    xy = np.cumsum(speed_mm_s * dt[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1), axis=0)
    return xy, heading


def _gait(rng: np.random.Generator, t: np.ndarray, run: bool, path: str) -> np.ndarray:
    T = len(t)
    p = JointAngles(T)
    if run:
        f = rng.uniform(1.3, 1.5)          # strides per second
        stride = rng.uniform(2.2, 2.9)     # m per stride (two steps)
        hip_amp, hip_off, knee_amp, knee_base = 38.0, 12.0, 95.0, 20.0
        lean, arm_amp, elbow = rng.uniform(8, 14), 32.0, rng.uniform(75, 95)
        radius = rng.uniform(2500, 3500)
    else:
        f = rng.uniform(0.85, 1.05)
        stride = rng.uniform(1.25, 1.5)
        hip_amp, hip_off, knee_amp, knee_base = rng.uniform(20, 26), 6.0, 55.0, 5.0
        lean, arm_amp, elbow = rng.uniform(0, 5), rng.uniform(10, 20), rng.uniform(10, 25)
        radius = rng.uniform(1500, 2500)
    phi = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
    for side, ph in (("r", phi), ("l", phi + np.pi)):
        setattr(p, f"hip_{side}_flex", _deg(hip_off + hip_amp * np.sin(ph)))
        # The knee flexes most early in the swing (hip moving forward) and a
        # little at heel strike.
        swing = np.maximum(0, np.cos(ph + np.pi / 6)) ** 2
        load = np.maximum(0, np.cos(ph - 2 * np.pi / 3)) ** 2
        setattr(p, f"knee_{side}", _deg(knee_base + knee_amp * swing + 10 * load))
        # Arms swing opposite to the leg on their side.
        setattr(p, f"sho_{side}_flex", _deg(-arm_amp * np.sin(ph)))
        setattr(p, f"elb_{side}", _deg(elbow + 0.4 * arm_amp * np.maximum(0, -np.sin(ph))))
    p.lean = np.full(T, _deg(lean))
    p.twist = _deg(6 * np.sin(phi))
    p.roll = _deg(3 * np.sin(2 * phi))
    xy, heading = _path(rng, t, stride * f * 1000, path, radius)
    p.yaw = heading
    joints = p.joints()
    lift = (rng.uniform(40, 90) * np.maximum(0, np.sin(2 * phi - np.pi / 3))) if run else None
    joints = _on_floor(joints, lift)
    joints[..., :2] += (xy - joints[:1, 0, :2])[:, None]
    return joints


def _smooth_step(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _jump(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = JointAngles(T)
    period = rng.uniform(1.5, 2.2)
    v0 = rng.uniform(2000, 2800)            # take-off speed, mm/s
    flight = 2 * v0 / GRAVITY_MM_S2         # seconds in the air
    crouch_t = 0.45                         # countermovement: down and up again
    tau = np.mod(t + rng.uniform(0, period), period)
    # Crouch depth: dip before take-off, absorb after landing.
    dip = np.sin(np.pi * np.clip(tau / crouch_t, 0, 1)) ** 2
    land = tau - crouch_t - flight
    absorb = np.where(land > 0, np.sin(np.pi * np.clip(land / 0.35, 0, 1)) ** 2 * 0.6, 0.0)
    c = np.maximum(dip, absorb)
    in_air = (tau >= crouch_t) & (tau < crouch_t + flight)
    ta = tau - crouch_t
    height = np.where(in_air, v0 * ta - 0.5 * GRAVITY_MM_S2 * ta ** 2, 0.0)
    depth = rng.uniform(0.6, 0.9)
    for side in ("l", "r"):
        setattr(p, f"hip_{side}_flex", _deg(75 * depth * c + 15 * in_air))
        setattr(p, f"knee_{side}", _deg(105 * depth * c + 25 * in_air))
        # Arms swing back in the dip, then up through take-off and flight.
        up = _smooth_step((tau - crouch_t * 0.6) / 0.2) * (1 - _smooth_step((land - 0.1) / 0.3))
        setattr(p, f"sho_{side}_flex", _deg(-45 * dip * (tau < crouch_t * 0.6) + 150 * up))
        setattr(p, f"elb_{side}", _deg(15 + 10 * c))
    p.lean = _deg(35 * depth * c)
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    joints = _on_floor(p.joints(), height)
    return _pin_feet(joints)


def _wave(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = JointAngles(T)
    f = rng.uniform(1.5, 2.5)
    sides = [rng.choice(["l", "r"])] if rng.random() < 0.7 else ["l", "r"]
    for s in sides:
        # Raise the arm sideways, forearm up, and swing the forearm in the
        # frontal plane; the arm comes up over the first ~0.6 s.
        ramp = _smooth_step(t / 0.6)
        setattr(p, f"sho_{s}_abd", _deg(8 + ramp * rng.uniform(75, 100)))
        setattr(p, f"sho_{s}_flex", _deg(ramp * rng.uniform(0, 20)))
        setattr(p, f"elb_{s}_abd", _deg(ramp * (70 + 28 * np.sin(2 * np.pi * f * t))))
    sway = rng.uniform(0.2, 0.4)
    p.roll = _deg(2 * np.sin(2 * np.pi * sway * t))
    p.nod = _deg(rng.uniform(-10, 10) + 3 * np.sin(2 * np.pi * 0.3 * t))
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    p.hip_l_abd = p.hip_r_abd = np.full(T, _deg(rng.uniform(2, 6)))
    return _pin_feet(_on_floor(p.joints()))


def _squat(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = JointAngles(T)
    period = rng.uniform(2.5, 4.0)
    depth = rng.uniform(0.6, 1.0)
    c = depth * (0.5 - 0.5 * np.cos(2 * np.pi * t / period))
    for s in ("l", "r"):
        # Thighs to horizontal and shins tilted forward (knee ahead of ankle)
        # at full depth; arms forward for balance.
        setattr(p, f"hip_{s}_flex", _deg(90 * c))
        setattr(p, f"knee_{s}", _deg(115 * c))
        setattr(p, f"hip_{s}_abd", _deg(8 + 6 * c))
        setattr(p, f"sho_{s}_flex", _deg(85 * c))
        setattr(p, f"elb_{s}", _deg(10 + 10 * c))
    p.lean = _deg(40 * c)
    p.nod = _deg(-20 * c)
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    return _pin_feet(_on_floor(p.joints()))


#: Dive body positions: joint angles in degrees.
_DIVE_POSITIONS = {
    "straight": dict(hip=0, knee=0, lean=0, sho=175, elb=0, nod=0),
    "pike": dict(hip=125, knee=0, lean=25, sho=95, elb=0, nod=-25),
    "tuck": dict(hip=130, knee=140, lean=30, sho=55, elb=100, nod=-30),
}


def _dive(rng: np.random.Generator, t: np.ndarray, position: str | None = None) -> np.ndarray:
    T = len(t)
    dur = max(t[-1], 1e-6)
    position = position or rng.choice(["tuck", "pike", "straight"])
    if position not in _DIVE_POSITIONS:
        raise MotionError(f"unknown dive position {position!r}; use one of {', '.join(_DIVE_POSITIONS)}")
    # Straight arms-up at take-off, close into the position, open straight
    # again (arms overhead) for the entry.
    close_t, open_t = rng.uniform(0.05, 0.15) * dur, rng.uniform(0.7, 0.85) * dur
    w = _smooth_step((t - close_t) / (0.12 * dur + 1e-6)) * (1 - _smooth_step((t - open_t) / (0.12 * dur + 1e-6)))
    a, s = _DIVE_POSITIONS[position], _DIVE_POSITIONS["straight"]
    p = JointAngles(T)

    def blend(k):
        return _deg(s[k] + w * (a[k] - s[k]))
    for side in ("l", "r"):
        setattr(p, f"hip_{side}_flex", blend("hip"))
        setattr(p, f"knee_{side}", blend("knee"))
        setattr(p, f"sho_{side}_flex", blend("sho"))
        setattr(p, f"elb_{side}", blend("elb"))
        setattr(p, f"sho_{side}_abd", _deg(np.full(T, 4.0)))
    p.lean, p.nod = blend("lean"), blend("nod")
    body = p.joints()                                   # pelvis at origin, upright, facing +x
    body -= body.mean(axis=1, keepdims=True)            # about the centre (joint centroid)
    # Somersault about the lateral (y) axis; angular momentum is conserved,
    # so the rate is inversely proportional to the moment of inertia (joints
    # as equal point masses): tucking spins faster, opening slows the spin.
    inertia = (body[..., 0] ** 2 + body[..., 2] ** 2).sum(axis=1)
    # Half-integer somersaults (1½, 2½, …) so the diver enters the water head first.
    turns = (rng.choice([1.5, 2.5]) if position != "straight" else rng.choice([0.5, 1.5])) + rng.uniform(-0.05, 0.05)
    dt = np.diff(t, prepend=t[0])
    theta = np.cumsum(dt / inertia)
    theta = theta / max(theta[-1], 1e-12) * 2 * np.pi * turns
    R = rot_y(theta)                                    # forward somersault: head towards +x
    return np.einsum("tij,tkj->tki", R, body)


def procedural_motion(action: str, rng: np.random.Generator, fps: float, duration_s: float, *,
                      path: str = "circle", name: str | None = None) -> Motion:
    """A seeded procedural motion on the rest skeleton :data:`~selfpose.data.synthetic.kinematics.REST_OFFSETS_MM`.

    Args:
        action: one of :data:`PROCEDURAL_ACTIONS`.
        rng: randomness for speed, amplitude, phase, heading, dive position…
        fps: frames per second.
        duration_s: length in seconds (``round(duration_s * fps) + 1`` frames).
        path: ``"circle"`` (stays within a few metres, for static cameras) or
            ``"straight"`` (for a camera that pans along); walk and run only.
        name: motion name (default ``"procedural/<action>"``).

    Returns:
        A :class:`Motion` with ``(T, 17, 3)`` mm joints, world z up. Walk,
        run, jump, wave and squat stand on the floor (the lower ankle at
        :data:`~selfpose.data.synthetic.kinematics.ANKLE_HEIGHT_MM`, except
        in flight). ``dive`` is the diver's
        body only: centred on its joint centroid at the origin in every frame,
        somersaulting about the world y axis (facing +x at the start); the
        dive scenario adds the ballistic trajectory.
    """
    if action not in PROCEDURAL_ACTIONS:
        raise MotionError(f"unknown procedural action {action!r}; choose one of {', '.join(PROCEDURAL_ACTIONS)}")
    if fps <= 0 or duration_s <= 0:
        raise MotionError(f"fps and duration must be positive, got fps={fps}, duration_s={duration_s}")
    T = int(round(duration_s * fps)) + 1
    t = np.arange(T) / fps
    if action in ("walk", "run"):
        joints = _gait(rng, t, run=action == "run", path=path)
    elif action == "jump":
        joints = _jump(rng, t)
    elif action == "wave":
        joints = _wave(rng, t)
    elif action == "squat":
        joints = _squat(rng, t)
    else:
        joints = _dive(rng, t)
    return Motion(name or f"procedural/{action}", "", action, float(fps), joints.astype(np.float32), "procedural")
