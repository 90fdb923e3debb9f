"""The synthetic data generator: people made of capsules, animated by real or procedural motion.

Modules: :mod:`~selfpose.data.synthetic.motion` (the motion record),
:mod:`~selfpose.data.synthetic.mocap` (mocap files),
:mod:`~selfpose.data.synthetic.procedural` (procedural motion on
:mod:`~selfpose.data.synthetic.kinematics`), :mod:`~selfpose.data.synthetic.bodies` (identities, retargeting),
:mod:`~selfpose.data.synthetic.render` (the ray-caster),
:mod:`~selfpose.data.synthetic.textures` (backgrounds),
:mod:`~selfpose.data.synthetic.scenarios` (lab, dive, pan, wild) and
:mod:`~selfpose.data.synthetic.synthesize` (a whole dataset to disk).

The names below are imported lazily, on first use, so that importing this
package costs nothing (no torch, no image loading). The dataset entry point is
``selfpose.data.synthetic.synthesize.synthesize`` (not re-exported here: the
function would be shadowed by its module of the same name).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Motion": "motion", "MotionFile": "mocap", "MotionError": "motion", "load_motions": "mocap",
    "procedural_motion": "procedural", "PROCEDURAL_ACTIONS": "procedural",
    "background": "textures", "wide_background": "textures",
    "SequencePlan": "scenarios", "plan_lab": "scenarios", "plan_dive": "scenarios", "plan_pan": "scenarios",
    "plan_wild": "scenarios", "lab_rig": "scenarios", "render_sequence": "scenarios", "render_plan": "scenarios",
    "SCENARIOS": "scenarios",
    "SynthConfig": "synthesize",
    "Identity": "bodies", "identity_for": "bodies", "sample_identity": "bodies", "retarget": "bodies",
    "Renderer": "render", "RenderResult": "render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
