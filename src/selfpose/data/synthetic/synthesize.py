"""``synth``: render a whole synthetic dataset to disk, streaming.

:func:`synthesize` reads a :class:`SynthConfig`, picks motions (a mocap
``.npz``, the shipped CMU motion or procedural motion), gives every subject a
synthetic identity (:func:`selfpose.data.synthetic.bodies.identity_for`, so
``seed`` changes every person), plans each take with its scenario
(:mod:`selfpose.data.synthetic.scenarios`) and streams the rendered frames
through :class:`selfpose.data.store.DatasetWriter` batch by batch. Memory
stays bounded by one rendering batch plus one take's joints, whatever the
dataset's size.

Randomness: every take draws from its own generator seeded by
``(seed, scenario, take name)``, so the same config gives identical arrays,
and adding or removing motions does not change the other takes.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from selfpose.config import ConfigError, added_field, to_dict
from selfpose.data.sequence import safe_id
from selfpose.data.synthetic import scenarios as sc
from selfpose.data.synthetic.mocap import SHIPPED_CMU, MotionFile, parse_key
from selfpose.data.synthetic.motion import Motion, frames_in, implausibility, resampled_length
from selfpose.data.synthetic.procedural import PROCEDURAL_ACTIONS, procedural_motion

#: ``motion`` values that mean "the CMU motion shipped with the package".
SHIPPED_ALIASES = ("cmu", "shipped")
#: Procedural actions used by the static-camera scenarios (dives have their own scenario).
GROUND_ACTIONS = tuple(a for a in PROCEDURAL_ACTIONS if a != "dive")
#: Procedural actions of the ``pan`` scenario (the subject crosses the view).
PAN_ACTIONS = ("walk", "run")
#: CMU actions that travel far enough for a panning camera (used by ``pan``
#: with the shipped motion when no ``actions`` are given).
PAN_CMU_ACTIONS = ("walking", "running", "basketball", "soccer")


@dataclass
class SynthConfig:
    """What ``selfpose synth`` renders.

    Attributes:
        scenario: ``lab`` (static synchronised cameras), ``dive`` (free fall
            with somersaults), ``pan`` (camera turning to follow the subject),
            ``wild`` (random camera and background per sequence).
        motion: path of an ``.npz`` of ``(T, 17, 3)`` mm motions (z up,
            floor at z = 0, Human3.6M-17 order); ``"cmu"`` for the CMU motion
            shipped with the package; ``"procedural"`` for generated walks,
            runs, jumps, waves and squats (straight walks/runs for ``pan``);
            ``None``: shipped CMU for lab/pan/wild, procedural dives for dive.
        motion_fps: frame rate of the motion file when no sibling ``.json`` gives it.
        subjects: key prefixes to keep (``S1,S5`` keeps ``S1/…`` and
            ``S5/…`` keys; ``train`` keeps CMU's training split); empty: all.
        actions: actions to keep (mocap: e.g. ``walking``; procedural: any of
            walk, run, jump, wave, squat); empty: all.
        max_sequences: use at most this many motions (takes); None: all.
        num_subjects: identities ``P0``…``P{N-1}`` for motions without
            subjects (CMU, procedural), assigned round-robin.
        subject_prefix: names of those identities (``P`` → P0, P1, …); give a
            held-out set another prefix so its people are told apart in reports.
        num_sequences: number of takes of procedural motion (and of dives).
        seed: every random choice (identities, cameras, backgrounds,
            procedural motion) derives from it.
        height, width: frame size, pixels.
        fps: frames per second of the stored videos; None: 10 for
            motion-based scenarios (small datasets), 50 for dive.
        max_seconds: longest sequence, seconds (motions are cut); None: no cap.
        views: cameras per take (lab only); None: 4 for lab, 1 otherwise.
        background: kind of backgrounds: ``any``, ``photo`` or ``procedural``;
            None: ``photo`` for pan (see :attr:`resolved_background`), else ``any``.
        batch_size: frames rendered (and written) together.
        supersample: rays per pixel along each axis (2 gives anti-aliased edges, 4× slower).
        threads: torch threads while rendering; None: one thread (the
            renderer's small tensors stall with more on a busy machine).
        workers: processes rendering sequences at once, each with ``threads``
            torch threads, the sequences written in order by this process;
            None or 1: render here. The stored dataset is the same either way
            (only the time differs): for machines with many cores.
        estimate_backgrounds: also store the background *estimated* from the
            rendered frames (``background``/``backgrounds``, by the scenario's
            rule: median, dive, or panorama), as for real video, beside the
            true one; methods train on the estimate, never on the truth.
        pool_backgrounds: ``lab`` only: then give every camera's takes the
            median of their estimated backgrounds
            (:func:`~selfpose.data.background_pool.pool_dataset_backgrounds`),
            which removes people who stand still for most of a take (a
            take's own median kept them in a quarter of the lab sequences;
            ``benchmarks/bench_background_pool.py``). Ignored by the other
            scenarios, whose cameras move or which have one take per camera.
        lab_cameras: ``lab`` only: ``fixed`` (one rig for every take, a real
            lab) or ``per_take`` (each take gets its own camera geometry:
            azimuths, heights 0.6–2.4 m, fields of view 35–70°, aim offsets and
            ``lab_fill``; :func:`~selfpose.data.synthetic.scenarios.vary_rig`), so
            that where the box is and how big it is tell little about the pose.
        lab_fill: ``(low, high)`` fraction of the frame height a standing
            person fills (when the motion's extent allows); None: 0.3–0.45.
        identities_per_subject: each motion subject is rendered as this many
            different people (its takes take them in turn): the subject fixes
            the motion, the identity the look. Identities of different subjects
            never coincide, so a held-out subject's people are never seen.
        random_heading: rotate each take's motion by a random angle about the
            vertical (through its centre), so the direction a person faces
            relative to the cameras varies.
        side_marks: dress every person's left sleeve, trouser leg and shoe in a
            colour of their own (:func:`~selfpose.data.synthetic.bodies.with_side_marks`),
            so the pixels tell left from right — and hence which way a person
            faces. Without it a 2D network trained on the identity-diverse
            benchmark data put the left/right-swapped pose closer to the truth
            than its own in 41% of S8 frames (issue 14, item 4).
        segments: with a motion file, cut each motion into consecutive pieces of
            ``max_seconds`` (a last piece shorter than half that is dropped), each
            rendered as a take of its own — its own look, camera geometry and
            heading, take id ``<take>_part<k>`` — instead of keeping only the first
            ``max_seconds`` of each motion. More of the motion and many more person ×
            camera contexts for the same motion file (Human3.6M S1, S5, S6, S7:
            2.26× the frames at a 20-s cap: 245 takes instead of 103).
        light: ``camera`` (the historical renders): every view lit from the
            same side of its own image, as by a lamp on the camera; ``room``: one
            light fixed in the world (high, off to one side), seen by each camera
            from its own side, as in a real room. With ``camera`` a mirrored image
            is lit from the wrong side, a cue that solves the sync method's flip
            task without looking at the body (``benchmarks/sync_pretext.py --light``).
    """

    scenario: Literal["lab", "dive", "pan", "wild"] = "lab"
    motion: str | None = None
    motion_fps: float | None = None
    subjects: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    max_sequences: int | None = None
    num_subjects: int = 4
    subject_prefix: str = "P"
    num_sequences: int = 16
    seed: int = 0
    height: int = 128
    width: int = 128
    fps: float | None = None
    max_seconds: float | None = 20.0
    views: int | None = None
    background: Literal["any", "photo", "procedural"] | None = None
    batch_size: int = 32
    supersample: int = 1
    threads: int | None = None
    workers: int | None = added_field(None)
    estimate_backgrounds: bool = True
    pool_backgrounds: bool = True
    lab_cameras: Literal["fixed", "per_take"] = "fixed"
    lab_fill: tuple[float, float] | None = None
    identities_per_subject: int = 1
    random_heading: bool = False
    side_marks: bool = added_field(False)
    segments: bool = added_field(False)
    light: Literal["camera", "room"] = added_field("camera")

    def __post_init__(self) -> None:
        if self.scenario not in sc.SCENARIOS:
            raise ConfigError(f"scenario must be one of {sc.SCENARIOS}, got {self.scenario!r}")
        if self.height < 16 or self.width < 16:
            raise ConfigError(f"height and width must be at least 16 px, got {self.height}x{self.width}")
        if self.lab_fill is not None and not (len(self.lab_fill) == 2 and 0 < self.lab_fill[0] <= self.lab_fill[1] < 1):
            raise ConfigError(f"lab_fill must be (low, high) with 0 < low <= high < 1, got {self.lab_fill}")
        if self.light not in ("camera", "room"):
            raise ConfigError(f"light must be camera or room, got {self.light!r}")
        if self.lab_cameras not in ("fixed", "per_take"):
            raise ConfigError(f"lab_cameras must be fixed or per_take, got {self.lab_cameras!r}")
        for name in ("num_subjects", "num_sequences", "batch_size", "supersample", "identities_per_subject"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise ConfigError(f"workers must be an integer >= 1 (or null), got {self.workers!r}")
        for name in ("fps", "max_seconds", "motion_fps"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ConfigError(f"{name} must be positive (or null), got {v}")
        if self.segments and (self.procedural or self.max_seconds is None):
            raise ConfigError("segments=true cuts a motion file's takes into max_seconds pieces: it needs a motion "
                              "file (not procedural motion) and a max_seconds")
        if self.max_sequences is not None and self.max_sequences < 1:
            raise ConfigError(f"max_sequences must be >= 1 (or null), got {self.max_sequences}")
        if self.views is not None:
            if self.views < 1:
                raise ConfigError(f"views must be >= 1, got {self.views}")
            if self.views > 1 and self.scenario != "lab":
                raise ConfigError(f"views={self.views}: only the lab scenario has several cameras")
        if self.scenario == "dive" and self.motion not in (None, "procedural"):
            raise ConfigError("the dive scenario renders procedural dives; leave motion unset (or 'procedural')")
        if self.motion == "procedural" and self.scenario != "dive":
            allowed = PAN_ACTIONS if self.scenario == "pan" else GROUND_ACTIONS
            bad = [a for a in self.actions if a not in allowed]
            if bad:
                raise ConfigError(f"procedural action(s) {bad} not available for {self.scenario}; "
                                  f"choose among {', '.join(allowed)}")

    # -- resolved values ------------------------------------------------------
    @property
    def resolved_fps(self) -> float:
        if self.fps is not None:
            return float(self.fps)
        return 50.0 if self.scenario == "dive" else 10.0

    @property
    def resolved_background(self) -> str:
        if self.background is not None:
            return self.background
        # A panning shot's background is estimated from SIFT matches, which a
        # smooth gradient or a periodic stripe wall cannot give: real panned
        # scenes are textured, so pan uses photographs unless asked otherwise.
        return "photo" if self.scenario == "pan" else "any"

    @property
    def resolved_views(self) -> int:
        if self.views is not None:
            return self.views
        return 4 if self.scenario == "lab" else 1

    @property
    def procedural(self) -> bool:
        return self.motion == "procedural" or (self.scenario == "dive" and self.motion is None)

    @property
    def motion_path(self) -> Path | None:
        """The motion file (None: the shipped CMU motion); only for non-procedural motion."""
        if self.motion is None or self.motion in SHIPPED_ALIASES:
            return None
        return Path(self.motion)

    @property
    def motion_source(self) -> str:
        if self.procedural:
            return "procedural"
        return f"shipped:{SHIPPED_CMU}" if self.motion_path is None else str(self.motion_path)


def _rng(seed: int, *names: str | int) -> np.random.Generator:
    """A generator that depends on ``seed`` and the (stable-hashed) ``names`` only."""
    words = [int(seed) % 2**63] + [zlib.crc32(str(n).encode()) for n in names]
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass
class _Take:
    """One take to render: where its motion comes from, who performs it, its frame count (per view)."""

    name: str              # unique, becomes the take id
    subject: str
    num_frames: int
    key: str | None = None  # motion file key
    action: str = ""        # procedural action
    start: int | None = None  # first frame (at the target fps) of a ``segments`` piece; None: the motion's start


def _plan_takes(cfg: SynthConfig, mf: MotionFile | None) -> list[_Take]:
    fps = cfg.resolved_fps
    if mf is None:  # procedural
        n = cfg.num_sequences if cfg.max_sequences is None else min(cfg.num_sequences, cfg.max_sequences)
        takes = []
        default = {"dive": ("dive",), "pan": PAN_ACTIONS}.get(cfg.scenario, GROUND_ACTIONS)
        actions = default if cfg.scenario == "dive" else (cfg.actions or default)
        for i in range(n):
            action = actions[i % len(actions)]
            subject = f"{cfg.subject_prefix}{i % cfg.num_subjects}"
            takes.append(_Take(f"{subject}__{action}_{i:04d}", subject, 0, action=action))
        return takes
    actions = cfg.actions
    if not actions and cfg.scenario == "pan" and cfg.motion_path is None:
        actions = PAN_CMU_ACTIONS
    keys = mf.select(cfg.subjects, actions)
    if cfg.max_sequences is not None:
        keys = keys[:cfg.max_sequences]
    with_subjects = any(parse_key(k)[0] for k in keys)
    takes = []
    for i, key in enumerate(keys):
        subject = parse_key(key)[0] if with_subjects else f"{cfg.subject_prefix}{i % cfg.num_subjects}"
        # Take ids: "S1__walking_1" (subject prefix of the key), "P0__train_walking_1".
        rest = key.split("/", 1)[1] if with_subjects and "/" in key else key
        if not cfg.segments:
            T = resampled_length(mf.num_frames(key), mf.fps, fps, cfg.max_seconds)
            takes.append(_Take(safe_id(subject or "unknown", rest), subject or "unknown", T, key=key))
            continue
        piece = frames_in(cfg.max_seconds, fps)   # the frames Motion.cropped would keep
        for k, (start, T) in enumerate(segment_bounds(resampled_length(mf.num_frames(key), mf.fps, fps), piece)):
            takes.append(_Take(safe_id(subject or "unknown", f"{rest}_part{k}"), subject or "unknown", T, key=key,
                               start=start))
    return takes


def segment_bounds(num_frames: int, piece: int) -> list[tuple[int, int]]:
    """``(start, length)`` of consecutive ``piece``-frame pieces of ``num_frames`` frames.

    A last piece shorter than half a piece is dropped (a one-second tail of a 20-s cut
    is a take with little to show); a motion shorter than one piece is one piece.
    """
    if num_frames <= piece:
        return [(0, num_frames)]
    out = [(s, min(piece, num_frames - s)) for s in range(0, num_frames, piece)]
    return [b for b in out if b[1] * 2 >= piece]


def _take_motion(cfg: SynthConfig, take: _Take, mf: MotionFile | None, rng: np.random.Generator) -> Motion | None:
    """The take's motion at the target fps (None for dives: their scenario makes them)."""
    fps = cfg.resolved_fps
    if mf is not None:
        motion = mf.load(take.key).resampled(fps)
        if take.start is None:
            return motion.cropped(cfg.max_seconds)
        return replace(motion, joints=motion.joints[take.start:take.start + take.num_frames])
    if cfg.scenario == "dive":
        return None
    name = f"procedural/{take.name}"
    if cfg.scenario == "pan":
        return sc.pan_motion(take.action, rng, fps, cfg.max_seconds or 10.0, name)
    duration = (cfg.max_seconds or 20.0) * rng.uniform(0.5, 1.0)
    return procedural_motion(take.action, rng, fps, duration, path="circle", name=name)


def iter_plans(cfg: SynthConfig, takes: list[_Take], mf: MotionFile | None,
               skipped: list[dict]) -> Iterator[sc.SequencePlan]:
    """Plans of every take, lazily (one take's joints in memory at a time)."""
    from selfpose.data.synthetic.bodies import identity_for, retarget, with_side_marks

    rig = None
    if cfg.scenario == "lab":
        rig = sc.lab_rig(_rng(cfg.seed, "lab-rig"), cfg.resolved_views, cfg.height, cfg.width, cfg.resolved_background)
        if cfg.lab_fill is not None:
            rig = replace(rig, fill=float(_rng(cfg.seed, "lab-fill").uniform(*cfg.lab_fill)))
    seen: dict[str, int] = {}
    for take in takes:
        rng = _rng(cfg.seed, cfg.scenario, take.name)
        k = seen.get(take.subject, 0)
        seen[take.subject] = k + 1
        # the subject's takes take its identities in turn; "S1~2" is S1's third look
        look = take.subject if cfg.identities_per_subject == 1 else \
            f"{take.subject}~{k % cfg.identities_per_subject}"
        identity = identity_for(look, cfg.seed)
        if cfg.side_marks:
            identity = with_side_marks(identity)
        if cfg.scenario == "dive":
            yield sc.plan_dive(identity, take.subject, take.name, rng, cfg.resolved_fps, cfg.height, cfg.width,
                               cfg.resolved_background)
            continue
        motion = _take_motion(cfg, take, mf, rng)
        problem = implausibility(motion) or (None if motion.num_frames >= 2 else "fewer than 2 frames")
        if problem:
            skipped.append({"take": take.name, "motion": motion.name, "reason": problem})
            continue
        joints = retarget(motion.joints, identity)
        if cfg.random_heading:
            joints = turn_about_vertical(joints, _rng(cfg.seed, "heading", take.name).uniform(0, 2 * np.pi))
        if cfg.scenario == "lab":
            take_rig = rig if cfg.lab_cameras == "fixed" else \
                sc.vary_rig(rig, _rng(cfg.seed, "lab-rig", take.name), cfg.lab_fill or (0.3, 0.45))
            yield from sc.plan_lab(motion, joints, identity, take.subject, take.name, take_rig)
        elif cfg.scenario == "wild":
            yield sc.plan_wild(motion, joints, identity, take.subject, take.name, rng, cfg.height, cfg.width,
                               cfg.resolved_background)
        else:
            yield sc.plan_pan(motion, joints, identity, take.subject, take.name, rng, cfg.height, cfg.width,
                              cfg.resolved_background)


def turn_about_vertical(joints_world: np.ndarray, angle_rad: float) -> np.ndarray:
    """``(T, J, 3)`` mm (z up) rotated by ``angle_rad`` about the vertical through the motion's ground centre."""
    c = sc.motion_centre(joints_world)
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    R = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    pivot = np.array([c[0], c[1], 0.0])
    return (joints_world - pivot) @ R.T + pivot


def _store_estimated_background(sw, scenario: str) -> None:
    """Estimate the background from the frames just written (read back memory-mapped)."""
    from selfpose.data.backgrounds import estimate_background, method_for_scenario

    frames = np.load(sw.array_path("frames"), mmap_mode="r")
    bg = estimate_background(frames, method=method_for_scenario(scenario))
    sw.set(**{"background" if bg.ndim == 3 else "backgrounds": bg})


# -- rendering in worker processes (SynthConfig.workers) ---------------------------------------------------
_WORKER: dict = {}


def _worker_start(cfg: SynthConfig) -> None:
    """A worker's renderer, built once (torch threads as ``cfg.threads``)."""
    from selfpose.data.synthetic.render import Renderer

    _WORKER["cfg"] = cfg
    _WORKER["renderer"] = Renderer(cfg.height, cfg.width, batch_size=cfg.batch_size, supersample=cfg.supersample,
                                   num_threads=cfg.threads)


def _worker_render(plan: sc.SequencePlan) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """One sequence's chunks, and its estimated background when the config asks for one."""
    from selfpose.data.backgrounds import estimate_background, method_for_scenario

    cfg = _WORKER["cfg"]
    chunks = list(sc.render_sequence(plan, _WORKER["renderer"], light=cfg.light))
    estimate = None
    if cfg.estimate_backgrounds:   # the rule _store_estimated_background applies to the stored frames
        frames = np.concatenate([c["frames"] for c in chunks])
        estimate = estimate_background(frames, method=method_for_scenario(plan.meta.scenario or cfg.scenario))
    return chunks, estimate


def _render_in_workers(cfg: SynthConfig, plans: Iterator[sc.SequencePlan]):
    """``(plan, chunks, estimated background)`` of each plan, in plan order, rendered by ``cfg.workers`` processes.

    At most two sequences per worker are in flight (a sequence's frames are ~13 MB at 128 px and 200
    frames), so memory stays bounded however far the workers run ahead of the writer. Spawned, not
    forked: a forked copy of a process whose torch thread pool already ran can deadlock.
    """
    import multiprocessing as mp
    import os
    import sys
    from collections import deque

    # A spawned worker re-runs the parent's main script by its path; a script read from stdin
    # (`python - <<EOF`) has none ('<stdin>'), and its workers would die and be respawned for ever.
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    hide = script is not None and not os.path.isfile(script)
    if hide:
        del main.__file__
    try:
        pool = mp.get_context("spawn").Pool(cfg.workers, initializer=_worker_start, initargs=(cfg,))
    finally:
        if hide:
            main.__file__ = script
    with pool:
        pending: deque = deque()
        for plan in plans:
            pending.append((plan, pool.apply_async(_worker_render, (plan,))))
            if len(pending) >= 2 * cfg.workers:
                p, res = pending.popleft()
                yield (p, *res.get())
        while pending:
            p, res = pending.popleft()
            yield (p, *res.get())


def synthesize(cfg: SynthConfig, out: str | Path, overwrite: bool = False, progress: bool = True) -> Path:
    """Render the dataset described by ``cfg`` into the folder ``out``.

    The folder appears only when complete (see :class:`DatasetWriter`); its
    attributes record the scenario, seed, the config (as a dict), the motion
    source, the selfpose version and any motion skipped (with the reason).

    Args:
        cfg: what to render.
        out: dataset folder to create.
        overwrite: replace an existing ``out`` (only a dataset selfpose wrote; see :mod:`selfpose.outputs`).
        progress: show a progress bar counting frames (``SELFPOSE_PROGRESS=0`` also hides it).

    Returns:
        ``out`` as a Path.
    """
    import selfpose
    from selfpose.data.store import DatasetWriter
    from selfpose.data.synthetic.render import Renderer
    from selfpose.utils.progress import progress_bar

    from selfpose.outputs import check_output

    out = Path(out)
    inputs = [cfg.motion_path] if not cfg.procedural and cfg.motion_path is not None else []
    check_output(out, "dataset", overwrite=overwrite, inputs=inputs)  # before the renderer is built
    # Built here only when this process renders: workers build their own (see _render_in_workers).
    renderer = Renderer(cfg.height, cfg.width, batch_size=cfg.batch_size, supersample=cfg.supersample,
                        num_threads=cfg.threads) if (cfg.workers or 1) == 1 else None
    mf = None if cfg.procedural else MotionFile(cfg.motion_path, fps=cfg.motion_fps)
    skipped: list[dict] = []
    started = time.time()
    try:
        takes = _plan_takes(cfg, mf)
        if not takes:
            raise ConfigError("no motion selected; check subjects/actions/max_sequences")
        # Procedural takes' lengths are known only once generated: count them then.
        views = cfg.resolved_views
        total = sum(t.num_frames for t in takes) * views or None
        attrs = {"scenario": cfg.scenario, "seed": cfg.seed, "config": to_dict(cfg),
                 "motion_source": cfg.motion_source, "selfpose_version": selfpose.__version__,
                 "generator": "selfpose.data.synthetic", "fps": cfg.resolved_fps, "views": views,
                 "skipped": skipped}
        finish = None
        if cfg.estimate_backgrounds and cfg.pool_backgrounds and cfg.scenario == "lab":
            from selfpose.data.background_pool import pool_dataset_backgrounds

            finish = pool_dataset_backgrounds  # on the complete partial folder, before it is swapped in
        with DatasetWriter(out, attrs=attrs, overwrite=overwrite, inputs=inputs, finish=finish) as writer, \
                progress_bar(None if progress else False) as bar:
            task = bar.add_task(f"synth {cfg.scenario}", total=total)
            frames = 0
            plans = iter_plans(cfg, takes, mf, skipped)
            rendered = _render_in_workers(cfg, plans) if (cfg.workers or 1) > 1 else \
                ((plan, sc.render_sequence(plan, renderer, light=cfg.light), None) for plan in plans)
            for plan, chunks, estimate in rendered:
                sw = writer.add_sequence(plan.meta)
                if plan.background is not None:
                    sw.set(true_background=plan.background)
                for chunk in chunks:
                    sw.append(**chunk)
                    frames += len(chunk["frames"])
                    bar.advance(task, len(chunk["frames"]))
                sw.close()
                if estimate is not None:   # a worker estimated it from the same frames
                    sw.set(**{"background" if estimate.ndim == 3 else "backgrounds": estimate})
                elif cfg.estimate_backgrounds:
                    _store_estimated_background(sw, plan.meta.scenario or cfg.scenario)
            attrs["num_frames"] = frames
            attrs["seconds"] = round(time.time() - started, 2)
            writer.attrs.update(attrs)
    finally:
        if mf is not None:
            mf.close()
    return out
