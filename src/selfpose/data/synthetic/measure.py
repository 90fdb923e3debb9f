"""How large the rendered person is in pixels: can a network at this resolution see the limbs at all?

A benchmark rewards pose only if the pixels carry it. At 128 px a person 30 px
tall has forearms about 1 px wide; no encoder recovers an elbow angle from
that. :func:`limb_widths_px` gives the apparent width of each limb capsule in
every frame (diameter × focal length / depth of the limb's middle), and
:func:`dataset_limb_widths` summarises a rendered dataset with the people it
was rendered with (their radii are in each identity).
"""

from __future__ import annotations

import numpy as np

#: Limb → (joint pairs of its two sides, Human3.6M-17 indices; the ``Identity`` radius attribute).
LIMBS = {
    "forearm": (((15, 16), (12, 13)), "forearm_radius_mm"),
    "upper_arm": (((14, 15), (11, 12)), "upper_arm_radius_mm"),
    "shin": (((2, 3), (5, 6)), "shin_radius_mm"),
    "thigh": (((1, 2), (4, 5)), "thigh_radius_mm"),
}


def limb_widths_px(joints3d: np.ndarray, fx: float, radius_mm: float, pairs) -> np.ndarray:
    """Apparent width (px) of a limb capsule in each frame: ``2 r fx / z`` at the middle of each of its sides.

    Args:
        joints3d: ``(T, J, 3)`` camera frame, mm (z = depth, not pelvis-centred).
        fx: focal length, px.
        radius_mm: the capsule's radius, mm.
        pairs: ``((a, b), …)`` joint index pairs, one per side (left and right limb).

    Returns:
        ``(T, len(pairs))`` px.
    """
    j = np.asarray(joints3d, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3:
        raise ValueError(f"joints3d must be (T, J, 3) mm in the camera frame, got {j.shape}")
    z = np.stack([(j[:, a, 2] + j[:, b, 2]) / 2 for a, b in pairs], axis=1)
    return 2.0 * radius_mm * float(fx) / np.maximum(z, 1.0)


def dataset_limb_widths(ds) -> dict[str, dict[str, float]]:
    """Median and 10th percentile (px) of each limb's width over every frame of a rendered ``synth`` dataset.

    The identity of each sequence is rebuilt from its ``attrs["identity"]``
    (``NAME#SEED``, :func:`~selfpose.data.synthetic.bodies.identity_for`).
    """
    from selfpose.data.synthetic.bodies import identity_for

    widths: dict[str, list[np.ndarray]] = {k: [] for k in LIMBS}
    for rec in ds.sequences:
        name, _, seed = str(rec.meta.attrs.get("identity", "")).rpartition("#")
        if not name or not seed.lstrip("-").isdigit() or rec.meta.camera is None:
            raise ValueError(f"{rec.meta.id} has no synthetic identity or camera; limb widths need a `synth` dataset")
        who = identity_for(name, int(seed))
        j3 = np.asarray(rec["joints3d"][:], dtype=np.float64)
        for limb, (pairs, attr) in LIMBS.items():
            widths[limb].append(limb_widths_px(j3, rec.meta.camera.fx, getattr(who, attr), pairs).ravel())
    out = {}
    for limb, parts in widths.items():
        w = np.concatenate(parts)
        out[limb] = {"median_px": float(np.median(w)), "p10_px": float(np.percentile(w, 10))}
    return out
