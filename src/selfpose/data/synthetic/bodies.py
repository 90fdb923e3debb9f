"""Synthetic people: body proportions, clothing, and the primitives they are drawn with.

An :class:`Identity` is one synthetic person: bone-length scale factors, limb
and torso radii (mm), and clothing (colours and patterns). Identities are
sampled (:func:`sample_identity`) or derived deterministically from a subject
name and a seed (:func:`identity_for`), so the same subject always looks the
same and a new seed gives a person never seen before.

:func:`retarget` gives a motion the identity's bone lengths; the result is the
3D label of the rendered video. :func:`body_primitives` turns joints (any
right-handed frame, mm, Human3.6M-17 order) into the capsules and ellipsoids
that :mod:`selfpose.data.synthetic.render` ray-casts. Only body-relative
directions are used, so the same function serves world and camera frames.
"""

from __future__ import annotations

import colorsys
import zlib
from dataclasses import dataclass, fields, replace

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17

Color = tuple[float, float, float]

PATTERNS = ("plain", "stripes", "checks", "dots")

#: Bone lengths (mm) of the reference body, in ``H36M17.bones`` order: the
#: skeleton of the Human3.6M motion release (about 1.70 m tall).
CANONICAL_BONE_LENGTHS_MM = np.array(
    [133.0, 443.0, 454.0, 133.0, 443.0, 454.0, 233.0, 257.0, 121.0, 115.0, 151.0, 279.0, 252.0, 151.0, 279.0, 252.0])
CANONICAL_HEIGHT_MM = 1700.0

# Which scale factor each bone takes (H36M17.bones order).
_BONE_GROUP = ("hip", "leg", "leg", "hip", "leg", "leg", "torso", "torso", "torso", "torso",
               "shoulder", "arm", "arm", "shoulder", "arm", "arm")
_LEG_BONES = (1, 2, 4, 5)            # thighs and shins
_HEIGHT_BONES = (1, 2, 6, 7, 8, 9)   # the vertical chain: leg, spine, neck, head


_COLOUR_FIELDS = ("skin", "top", "bottom", "shoe", "hair", "top_pattern_color", "bottom_pattern_color")


class BodyError(SelfposeError, ValueError):
    """Joints or an identity that a body cannot be built from."""


@dataclass(frozen=True)
class Identity:
    """One synthetic person.

    Proportions:
        height_mm: nominal stature; scales every bone.
        leg_scale, arm_scale, torso_scale: relative bone-length factors
            (legs: thighs and shins; arms: upper arms and forearms; torso:
            spine, neck and head bones), applied on top of the height so that
            the stature stays ``height_mm``.
        shoulder_scale, hip_scale: breadth factors for thorax→shoulder and
            pelvis→hip bones.
    Radii (mm): capsule radii of limbs, neck, hands and shoes, half-widths and
        half-depth of the torso ellipsoids, vertical semi-axis of the head.
    Clothing: RGB colours in 0..1; top covers chest, waist, shoulders and upper
        arms (and forearms with ``long_sleeves``); bottom covers pelvis and
        thighs (and shins with ``long_trousers``); patterns from
        :data:`PATTERNS` with their colour and period (mm on the body surface).
        ``hair_length`` in 0..1 sets how far hair reaches down the back of the head.
        ``side``: colour of the body's *left* sleeve, trouser leg and shoe (a
        side cue, like a team kit's odd sleeve; :func:`with_side_marks`), or
        None: both sides dressed alike. A body dressed alike on both sides looks
        nearly the same facing the camera as facing away with its left and right
        swapped, so at low resolution its pixels do not tell which way it faces.
    """

    name: str
    height_mm: float = CANONICAL_HEIGHT_MM
    leg_scale: float = 1.0
    arm_scale: float = 1.0
    torso_scale: float = 1.0
    shoulder_scale: float = 1.0
    hip_scale: float = 1.0
    thigh_radius_mm: float = 62.0
    shin_radius_mm: float = 45.0
    upper_arm_radius_mm: float = 42.0
    forearm_radius_mm: float = 35.0
    hand_radius_mm: float = 36.0
    foot_radius_mm: float = 40.0
    shoe_length_mm: float = 260.0
    neck_radius_mm: float = 50.0
    chest_width_mm: float = 150.0
    waist_width_mm: float = 130.0
    hip_width_mm: float = 150.0
    torso_depth_mm: float = 105.0
    head_radius_mm: float = 112.0
    skin: Color = (0.87, 0.68, 0.55)
    top: Color = (0.2, 0.35, 0.7)
    bottom: Color = (0.15, 0.15, 0.2)
    shoe: Color = (0.1, 0.1, 0.1)
    hair: Color = (0.12, 0.08, 0.05)
    top_pattern: str = "plain"
    top_pattern_color: Color = (1.0, 1.0, 1.0)
    top_pattern_period_mm: float = 60.0
    bottom_pattern: str = "plain"
    bottom_pattern_color: Color = (1.0, 1.0, 1.0)
    bottom_pattern_period_mm: float = 60.0
    long_sleeves: bool = True
    long_trousers: bool = True
    hair_length: float = 0.3
    side: Color | None = None

    def __post_init__(self) -> None:
        for pat in (self.top_pattern, self.bottom_pattern):
            if pat not in PATTERNS:
                raise BodyError(f"identity {self.name!r}: unknown pattern {pat!r}; use one of {PATTERNS}")
        for f in _COLOUR_FIELDS + (("side",) if self.side is not None else ()):
            c = getattr(self, f)
            if len(c) != 3 or not all(0.0 <= float(v) <= 1.0 for v in c):
                raise BodyError(f"identity {self.name!r}: {f} must be 3 RGB floats in 0..1, got {c!r}")
        if not 0.0 <= self.hair_length <= 1.0:
            raise BodyError(f"identity {self.name!r}: hair_length must be in 0..1, got {self.hair_length!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith(("_mm", "_scale")) and not (np.isfinite(v) and v > 0):
                raise BodyError(f"identity {self.name!r}: {f.name} must be a positive number, got {v!r}")

    def to_dict(self) -> dict:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Identity":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise BodyError(f"unknown identity fields {sorted(unknown)}; known: {sorted(known)}")
        colour = lambda k, v: k in _COLOUR_FIELDS or (k == "side" and v is not None)   # noqa: E731
        return cls(**{k: (tuple(float(x) for x in v) if colour(k, v) else v) for k, v in d.items()})

    @property
    def height_scale(self) -> float:
        """Factor on the canonical bone lengths that gives ``height_mm`` for these proportions."""
        rel = self._relative_lengths()
        idx = list(_HEIGHT_BONES)
        return float(self.height_mm / CANONICAL_HEIGHT_MM
                     * CANONICAL_BONE_LENGTHS_MM[idx].sum() / (CANONICAL_BONE_LENGTHS_MM[idx] * rel[idx]).sum())

    def _relative_lengths(self) -> np.ndarray:
        scale = {"hip": self.hip_scale, "leg": self.leg_scale, "torso": self.torso_scale,
                 "shoulder": self.shoulder_scale, "arm": self.arm_scale}
        return np.array([scale[g] for g in _BONE_GROUP])

    def bone_lengths_mm(self) -> np.ndarray:
        """``(16,)`` bone lengths in mm, ``H36M17.bones`` order."""
        return CANONICAL_BONE_LENGTHS_MM * self._relative_lengths() * self.height_scale


# -- sampling ---------------------------------------------------------------

# Skin tones from light to dark (sRGB 0..1), jittered when sampled.
_SKIN_TONES = np.array([
    [0.98, 0.84, 0.74], [0.94, 0.76, 0.64], [0.88, 0.67, 0.53], [0.78, 0.57, 0.42],
    [0.66, 0.45, 0.30], [0.52, 0.34, 0.22], [0.38, 0.25, 0.17], [0.27, 0.18, 0.13]])
_HAIR_COLOURS = np.array([
    [0.05, 0.04, 0.04], [0.12, 0.08, 0.05], [0.28, 0.17, 0.09], [0.45, 0.30, 0.16],
    [0.78, 0.64, 0.38], [0.55, 0.22, 0.10], [0.62, 0.60, 0.58], [0.90, 0.88, 0.84]])
_HAIR_WEIGHTS = np.array([0.25, 0.25, 0.15, 0.1, 0.08, 0.06, 0.07, 0.04])


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A clothing colour: saturated, pastel, dark or neutral."""
    kind = rng.choice(4, p=[0.45, 0.15, 0.2, 0.2])
    h = rng.random()
    if kind == 0:      # saturated
        s, v = rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.95)
    elif kind == 1:    # pastel
        s, v = rng.uniform(0.15, 0.4), rng.uniform(0.75, 0.97)
    elif kind == 2:    # dark
        s, v = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.35)
    else:              # neutral (black, greys, white)
        s, v = rng.uniform(0.0, 0.08), rng.uniform(0.06, 0.97)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def _distinct_colour(rng: np.random.Generator, *others: np.ndarray, min_dist: float = 0.3) -> np.ndarray:
    """A random colour at least ``min_dist`` (RGB Euclidean) from ``others`` (best of a few tries)."""
    best, best_d = None, -1.0
    for _ in range(20):
        c = _random_colour(rng)
        d = min((np.linalg.norm(c - o) for o in others), default=np.inf)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _tup(c: np.ndarray) -> Color:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


def sample_identity(rng: np.random.Generator, name: str) -> Identity:
    """A random person: stature 1.50–1.95 m, slim to broad build, varied skin, hair and clothes."""
    height = float(np.clip(rng.normal(1715.0, 95.0), 1500.0, 1950.0))
    build = float(rng.uniform(0.8, 1.3))          # slim .. broad: scales every radius
    size = (height / CANONICAL_HEIGHT_MM) ** 0.5  # taller people are a little wider too

    def jit(sd: float = 0.06) -> float:
        return float(np.clip(rng.normal(1.0, sd), 1.0 - 2.5 * sd, 1.0 + 2.5 * sd))

    r = build * size
    belly = float(rng.uniform(0.9, 1.0 + 0.4 * (build - 0.8)))
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.93, 1.05, 3)
    top = _distinct_colour(rng, skin, min_dist=0.25)
    bottom = _distinct_colour(rng, top, min_dist=0.35)
    shoe = _distinct_colour(rng, bottom, min_dist=0.15) if rng.random() < 0.4 else \
        np.full(3, rng.choice([0.06, 0.12, 0.9]))
    hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=_HAIR_WEIGHTS)] * rng.uniform(0.9, 1.1, 3)

    def pattern(base: np.ndarray) -> tuple[str, Color, float]:
        pat = str(rng.choice(PATTERNS, p=[0.4, 0.25, 0.2, 0.15]))
        return pat, _tup(_distinct_colour(rng, base, min_dist=0.4)), float(rng.uniform(35.0, 95.0))

    top_pat, bottom_pat = pattern(top), pattern(bottom)
    return Identity(
        name=name, height_mm=height,
        leg_scale=jit(0.04), arm_scale=jit(0.04), torso_scale=jit(0.04),
        shoulder_scale=jit(0.06) * build ** 0.3, hip_scale=jit(0.06),
        thigh_radius_mm=62.0 * r * jit(), shin_radius_mm=45.0 * r * jit(),
        upper_arm_radius_mm=42.0 * r * jit(), forearm_radius_mm=35.0 * r * jit(),
        hand_radius_mm=36.0 * size * jit(0.04), foot_radius_mm=40.0 * size * jit(0.04),
        shoe_length_mm=260.0 * height / CANONICAL_HEIGHT_MM * jit(0.04),
        neck_radius_mm=50.0 * r * jit(),
        chest_width_mm=150.0 * r ** 0.7 * jit(), waist_width_mm=130.0 * r * belly * jit(),
        hip_width_mm=150.0 * r ** 0.7 * jit(), torso_depth_mm=105.0 * r * belly * jit(),
        head_radius_mm=112.0 * jit(0.04),
        skin=_tup(skin), top=_tup(top), bottom=_tup(bottom), shoe=_tup(shoe), hair=_tup(hair),
        top_pattern=top_pat[0], top_pattern_color=top_pat[1], top_pattern_period_mm=top_pat[2],
        bottom_pattern=bottom_pat[0], bottom_pattern_color=bottom_pat[1], bottom_pattern_period_mm=bottom_pat[2],
        long_sleeves=bool(rng.random() < 0.6), long_trousers=bool(rng.random() < 0.7),
        hair_length=float(rng.uniform(0.0, 1.0)),
    )


def identity_for(subject: str, seed: int) -> Identity:
    """The identity of ``subject`` under ``seed``: the same pair always gives the same person.

    Uses a stable hash of the name (not Python's salted ``hash``) so that
    identities are reproducible across processes.
    """
    entropy = [zlib.crc32(subject.encode("utf-8")), int(seed) % 2**63]
    return sample_identity(np.random.default_rng(np.random.SeedSequence(entropy)), name=f"{subject}#{seed}")


def with_side_marks(identity: Identity) -> Identity:
    """``identity`` with its left sleeve, trouser leg and shoe in a colour of their own (``Identity.side``).

    The colour is drawn from the identity's name alone (a generator of its
    own), far from its top, bottom and skin colours, so adding marks changes
    nothing else about the person and the same person always gets the same marks.
    """
    if identity.side is not None:
        return identity
    rng = np.random.default_rng(np.random.SeedSequence([zlib.crc32(f"side:{identity.name}".encode("utf-8"))]))
    side = _distinct_colour(rng, np.array(identity.top), np.array(identity.bottom), np.array(identity.skin),
                            min_dist=0.45)
    return replace(identity, side=_tup(side))


# -- retargeting --------------------------------------------------------------

def _check_joints(joints: np.ndarray, what: str) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (17, 3):
        raise BodyError(f"{what} must be (T, 17, 3) Human3.6M-17 joints in mm, got shape {joints.shape}")
    if not np.isfinite(joints).all():
        raise BodyError(f"{what} contain NaN or inf; fill or drop those frames before building a body")
    return joints


def _unit(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def retarget(joints_world: np.ndarray, identity: Identity) -> np.ndarray:
    """The same motion with ``identity``'s bone lengths.

    Args:
        joints_world: ``(T, 17, 3)`` mm, world frame with z up and the floor at z = 0.
        identity: whose bone lengths to use (:meth:`Identity.bone_lengths_mm`).

    Returns:
        ``(T, 17, 3)`` float64 mm. Every bone keeps its direction in every
        frame and gets the identity's length exactly. The root's horizontal
        displacement from the first frame and its height are scaled by the
        ratio of leg lengths (so strides match the new legs and feet do not
        slide), then the whole sequence is shifted vertically so that its
        lowest ankle is as high above the floor as in the source.
    """
    src = _check_joints(joints_world, "joints_world")
    lengths = identity.bone_lengths_mm()
    src_len = np.linalg.norm(src[:, [c for _, c in H36M17.bones]] - src[:, [p for p, _ in H36M17.bones]], axis=-1)
    ratio = lengths[list(_LEG_BONES)].sum() / max(src_len[:, list(_LEG_BONES)].mean(0).sum(), 1e-6)

    out = np.empty_like(src)
    root = src[:, 0]
    out[:, 0, :2] = root[0, :2] + ratio * (root[:, :2] - root[0, :2])
    out[:, 0, 2] = ratio * root[:, 2]
    # H36M17's parents precede their children, so one pass in bone order works.
    for k, (p, c) in enumerate(H36M17.bones):
        out[:, c] = out[:, p] + _unit(src[:, c] - src[:, p]) * lengths[k]
    ankles = [H36M17.index("right_ankle"), H36M17.index("left_ankle")]
    out[..., 2] += src[:, ankles, 2].min() - out[:, ankles, 2].min()
    return out


# Unit-free bone directions of a standing pose facing -y (z up; the person's
# right is -x), H36M17.bones order; normalised in rest_pose.
_REST_DIRS = np.array([
    [-1, 0, 0], [0, 0, -1], [0, 0, -1], [1, 0, 0], [0, 0, -1], [0, 0, -1],
    [0, 0.15, 1], [0, -0.05, 1], [0, -0.63, 0.77], [0, 0.53, 0.85],
    [0.82, 0, -0.57], [0.12, 0, -1], [0.05, -0.15, -1], [-0.82, 0, -0.57], [-0.12, 0, -1], [-0.05, -0.15, -1]])


def rest_pose(identity: Identity | None = None, ankle_height_mm: float = 60.0) -> np.ndarray:
    """A standing pose, arms down, facing -y: ``(17, 3)`` world mm, z up, ankles ``ankle_height_mm`` above z = 0.

    Bone lengths are ``identity``'s (the canonical body's when None); the pelvis is at x = y = 0.
    """
    lengths = CANONICAL_BONE_LENGTHS_MM if identity is None else identity.bone_lengths_mm()
    out = np.zeros((17, 3))
    for k, (p, c) in enumerate(H36M17.bones):
        out[c] = out[p] + _unit(_REST_DIRS[k]) * lengths[k]
    out[:, 2] += ankle_height_mm - out[[H36M17.index("right_ankle"), H36M17.index("left_ankle")], 2].min()
    return out


# -- primitives ---------------------------------------------------------------

REGION_SKIN, REGION_TOP, REGION_BOTTOM, REGION_SHOE, REGION_HEAD = range(5)
"""Material regions; the renderer splits ``REGION_HEAD`` into skin and hair in head coordinates."""
REGION_SIDE = 6
"""The left sleeve, trouser leg and shoe of an identity with ``side`` marks (palette index; 5 is hair)."""


@dataclass(frozen=True)
class BodyPrimitives:
    """Capsules and ellipsoids of ``T`` frames of one body, in the joints' frame (mm).

    Capsules (``Pc`` of them): axis from ``cap_a`` to ``cap_b`` ``(T, Pc, 3)``,
    radius ``cap_radius`` ``(Pc,)``, ``cap_ref`` ``(T, Pc, 3)`` a unit vector
    perpendicular to the axis (pointing to the body's front) that fixes the
    angle around the axis for clothing patterns.
    Ellipsoids (``Pe``): centre ``ell_center`` ``(T, Pe, 3)``, orthonormal axes
    ``ell_axes`` ``(T, Pe, 3, 3)`` whose rows are the body's (right, up,
    forward), semi-axes ``ell_semi`` ``(Pe, 3)`` along those rows.
    ``cap_region``/``ell_region`` give each primitive's ``REGION_*``.
    """

    cap_a: np.ndarray
    cap_b: np.ndarray
    cap_radius: np.ndarray
    cap_ref: np.ndarray
    cap_region: np.ndarray
    ell_center: np.ndarray
    ell_axes: np.ndarray
    ell_semi: np.ndarray
    ell_region: np.ndarray
    head_index: int  # index of the head among the ellipsoids

    def bounding_spheres(self) -> tuple[np.ndarray, np.ndarray]:
        """Spheres that contain the body: centres ``(T, S, 3)`` mm and radii ``(S,)`` mm."""
        centres = np.concatenate([self.cap_a, self.cap_b, self.ell_center], axis=1)
        radii = np.concatenate([self.cap_radius, self.cap_radius, self.ell_semi.max(axis=1)])
        return centres, radii


def _frame(up: np.ndarray, right_hint: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rows (right, up, forward) from an up vector and a right hint (``(T, 3)`` each)."""
    up = _unit(up)
    right = right_hint - (right_hint * up).sum(-1, keepdims=True) * up
    bad = np.linalg.norm(right, axis=-1) < 1e-3 * np.linalg.norm(right_hint, axis=-1).clip(1e-9)
    if bad.any():  # right hint along the up vector: use the fallback hint instead
        alt = fallback - (fallback * up).sum(-1, keepdims=True) * up
        right = np.where(bad[:, None], alt, right)
    right = _unit(right)
    # In a right-handed frame a person's forward is up × right.
    return np.stack([right, up, np.cross(up, right)], axis=1)


def _perp_ref(axis: np.ndarray, ref: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit ``ref`` made perpendicular to unit ``axis`` (``(T, 3)``), ``fallback`` when parallel."""
    out = ref - (ref * axis).sum(-1, keepdims=True) * axis
    bad = np.linalg.norm(out, axis=-1) < 1e-3
    if bad.any():
        alt = fallback - (fallback * axis).sum(-1, keepdims=True) * axis
        out = np.where(bad[:, None], alt, out)
    return _unit(out)


def body_primitives(joints: np.ndarray, identity: Identity) -> BodyPrimitives:
    """The capsules and ellipsoids of ``identity`` posed by ``joints``.

    Args:
        joints: ``(T, 17, 3)`` mm in any right-handed frame (camera or world),
            Human3.6M-17 order, already at the identity's bone lengths
            (see :func:`retarget`).
        identity: radii and clothing layout.
    """
    J = _check_joints(joints, "joints")
    i = identity
    pelvis, rhip, rknee, rank, lhip, lknee, lank, spine, thorax, nose, head, \
        lsho, lelb, lwri, rsho, relb, rwri = (J[:, k] for k in range(17))

    chest = _frame(thorax - spine, rsho - lsho, rhip - lhip)
    hips = _frame(spine - pelvis, rhip - lhip, rsho - lsho)
    right_b, fwd_b = chest[:, 0], chest[:, 2]
    headf = _frame(head - thorax, right_b, fwd_b)
    # Vertical semi-axes follow the identity's spine bones (not the frames'),
    # so that a body keeps its shape from batch to batch.
    lengths = i.bone_lengths_mm()
    lower_len, torso_len = lengths[6], lengths[7]

    # -- ellipsoids: chest, waist, pelvis, head
    R = i.head_radius_mm
    head_c = 0.5 * (nose + head) + 0.08 * R * headf[:, 1] - 0.25 * R * headf[:, 2]
    ell_center = np.stack([
        spine + 0.5 * (thorax - spine),
        spine + 0.1 * (pelvis - spine),
        pelvis + 0.1 * (spine - pelvis),
        head_c], axis=1)
    ell_axes = np.stack([chest, hips, hips, headf], axis=1)
    ell_semi = np.array([
        [i.chest_width_mm, 0.68 * torso_len, i.torso_depth_mm],
        [i.waist_width_mm, 0.55 * lower_len, 0.95 * i.torso_depth_mm],
        [i.hip_width_mm, 0.5 * lower_len, 0.98 * i.torso_depth_mm],
        [0.72 * R, R, 0.88 * R]])

    # -- capsules
    def along(p, q, s):
        return p + s * (q - p)

    shin_r, shin_l = _unit(rank - rknee), _unit(lank - lknee)
    hand_len = 0.6 * i.hand_radius_mm + 30.0

    def foot(ankle, shin):
        f = _perp_ref(shin, fwd_b, -right_b)
        base = ankle + 0.35 * i.foot_radius_mm * shin
        heel = base - 0.12 * i.shoe_length_mm * f
        toe = base + (0.88 * i.shoe_length_mm - 2 * i.foot_radius_mm) * f
        return heel, toe

    heel_r, toe_r = foot(rank, shin_r)
    heel_l, toe_l = foot(lank, shin_l)
    neck_top = along(thorax, head_c, 0.6)
    # Human3.6M's hip joints sit at the outside of the hips; thighs start further in.
    rtop, ltop = along(rhip, pelvis, 0.25), along(lhip, pelvis, 0.25)
    # The left side's clothing: the identity's side colour when it has one (Identity.side).
    side = (lambda region: REGION_SIDE if region != REGION_SKIN else region) if i.side is not None \
        else (lambda region: region)
    shin = REGION_BOTTOM if i.long_trousers else REGION_SKIN
    forearm = REGION_TOP if i.long_sleeves else REGION_SKIN
    caps = [  # (a, b, radius, region)
        (rtop, rknee, i.thigh_radius_mm, REGION_BOTTOM),
        (ltop, lknee, i.thigh_radius_mm, side(REGION_BOTTOM)),
        (rtop, along(rtop, rknee, 0.45), 1.12 * i.thigh_radius_mm, REGION_BOTTOM),
        (ltop, along(ltop, lknee, 0.45), 1.12 * i.thigh_radius_mm, side(REGION_BOTTOM)),
        (rknee, rank, i.shin_radius_mm, shin),
        (lknee, lank, i.shin_radius_mm, side(shin)),
        (along(rknee, rank, 0.12), along(rknee, rank, 0.45), 1.15 * i.shin_radius_mm, shin),
        (along(lknee, lank, 0.12), along(lknee, lank, 0.45), 1.15 * i.shin_radius_mm, side(shin)),
        (rsho, relb, i.upper_arm_radius_mm, REGION_TOP),
        (lsho, lelb, i.upper_arm_radius_mm, side(REGION_TOP)),
        (relb, rwri, i.forearm_radius_mm, forearm),
        (lelb, lwri, i.forearm_radius_mm, side(forearm)),
        (rwri, rwri + hand_len * _unit(rwri - relb), i.hand_radius_mm, REGION_SKIN),
        (lwri, lwri + hand_len * _unit(lwri - lelb), i.hand_radius_mm, REGION_SKIN),
        (heel_r, toe_r, i.foot_radius_mm, REGION_SHOE),
        (heel_l, toe_l, i.foot_radius_mm, side(REGION_SHOE)),
        (thorax, neck_top, i.neck_radius_mm, REGION_SKIN),
        (rsho, lsho, 1.12 * i.upper_arm_radius_mm, REGION_TOP),
    ]
    cap_a = np.stack([c[0] for c in caps], axis=1)
    cap_b = np.stack([c[1] for c in caps], axis=1)
    axis = _unit(cap_b - cap_a)
    cap_ref = _perp_ref(axis.reshape(-1, 3), np.repeat(fwd_b, len(caps), axis=0),
                        np.repeat(right_b, len(caps), axis=0)).reshape(axis.shape)
    return BodyPrimitives(
        cap_a=cap_a, cap_b=cap_b, cap_radius=np.array([c[2] for c in caps]), cap_ref=cap_ref,
        cap_region=np.array([c[3] for c in caps]),
        ell_center=ell_center, ell_axes=ell_axes, ell_semi=ell_semi,
        ell_region=np.array([REGION_TOP, REGION_TOP, REGION_BOTTOM, REGION_HEAD]), head_index=3)
