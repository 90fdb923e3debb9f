"""The lifting benchmark's config (``kind: lifting``): lifters × 2D input × 3D label sets × seeds, test on S8.

``selfpose benchmark --config configs/lifting_cpu.yaml --work WORK [key=value ...]``
reads a :class:`LiftingBenchmarkConfig` when the file says ``kind: lifting``
(:mod:`selfpose.bench.kinds`); see ``configs/lifting_*.yaml`` and
:mod:`selfpose.bench.lifting` for what a cell is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from selfpose.config import ConfigError

#: 2D input of a cell: ground truth, or ground truth through the default detector-noise model (train and test).
INPUTS = ("gt", "noisy")
#: 3D label sets: ``all`` (3D of every training subject), ``s1`` (train on the ``few_3d`` subjects only),
#: ``s1_2d`` (every training subject, 3D of ``few_3d`` only: the others are 2D-only).
LABEL_SETS = ("all", "s1", "s1_2d")
#: Reference rows that expose shortcuts (no lifter): the mean pelvis-centred training pose for every test frame;
#: the 3D of the training frame with the nearest ground-truth 2D (retrieval); a least-squares linear map from
#: the ground-truth 2D to 3D (what depth a lifter gets without any non-linearity); a frozen, untrained
#: ``martinez`` network's features of the same 2D read out linearly (a random network on the same input).
REFERENCES = ("mean_pose", "nearest_2d", "linear_2d", "random_2d")


def _registered() -> tuple[str, ...]:
    from selfpose.lifting.lifters import LIFTERS

    return tuple(LIFTERS)


@dataclass
class LiftingDataConfig:
    """The keypoint dataset every cell uses, prepared once into ``WORK/data/keypoints``.

    Attributes:
        motion: motion ``.npz`` for ``selfpose prepare mocap`` (relative paths
            are read from the directory the command runs in: the repository root).
        cameras: Human3.6M ``cameras.pkl`` (each subject seen through its own
            four cameras); null = seeded synthetic cameras (any motion file).
        prepare: further ``PrepareConfig`` keys (``max_frames``, ``bone_scale_std``, ...).
        dir: a prepared keypoint dataset to use instead (then ``motion`` is not read).
    """

    motion: str = "../shared/data/mocap/h36m17_train_S1-S8_25fps.npz"
    cameras: str | None = "../shared/data/fixtures/h36m/cameras.pkl"
    prepare: dict[str, Any] = field(default_factory=dict)
    dir: str | None = None

    def prepare_config(self):
        """The :class:`~selfpose.data.datasets.config.PrepareConfig` that makes the dataset (strict keys)."""
        from selfpose.config import from_dict
        from selfpose.data.datasets.config import PrepareConfig

        extra = dict(self.prepare)
        if "cameras" in extra:
            raise ConfigError("data.prepare.cameras: give the camera file as data.cameras")
        try:
            return from_dict(PrepareConfig, {**extra, "cameras": self.cameras or ""}, _prefix="data.prepare.")
        except ConfigError as e:
            raise ConfigError(f"data.prepare: {e}") from None

    def __post_init__(self) -> None:
        self.prepare_config()


@dataclass
class LiftingBenchmarkConfig:
    """Lifters, 2D inputs, 3D label sets, seeds and per-method budgets (strict: unknown keys are errors).

    Attributes:
        kind: ``lifting`` (selects this schema; see :mod:`selfpose.bench.kinds`).
        methods: lifter names (:data:`selfpose.lifting.lifters.LIFTERS`), in table order;
            default: every registered lifter.
        inputs: 2D inputs (:data:`INPUTS`): ``gt`` trains and tests on ground-truth
            2D; ``noisy`` sets ``train_noise`` and ``test_noise`` (the lifter's
            ``noise`` section: the default detector noise unless ``lifter.noise`` says otherwise).
        label_sets: 3D label sets (:data:`LABEL_SETS`); ``s1_2d`` runs only for
            methods that learn from 2D-only sequences.
        train_subjects: the training subjects (label set ``all``).
        few_3d: the subjects whose 3D the ``s1`` and ``s1_2d`` label sets use.
        test_subjects: every cell is scored on these (never trained on).
        exclude_repeated: leave out of every score the test takes whose motion
            repeats a training take (:func:`selfpose.bench.lifting.repeated_takes`;
            the Human3.6M motion file's S8 smoking takes are S5's): they measure
            recall, not lifting. The report names them either way.
        references: reference rows (:data:`REFERENCES`; see :mod:`selfpose.bench.lifting`).
        nearest_stride: ``nearest_2d`` searches every this-many-th training frame
            (1 = all; the cost grows with training × test frames).
        seeds: seeds of the cells matched by ``all_seeds_for``; every other cell runs ``seeds[0]``.
        all_seeds_for: ``method/input/label_set`` patterns (``*`` matches any part,
            e.g. ``pose_machine/*/*``) of the cells that run every seed: where the
            targets are judged.
        lifter: ``LifterConfig`` keys (nested mapping) for every cell.
        per_method: method → ``LifterConfig`` keys of its budget (``steps``,
            ``max_seconds``, widths...), over ``lifter``.
        publish: path prefix (relative to the command's directory) that receives a copy
            of the report as ``PREFIX.md`` and the plot as ``PREFIX.png``, e.g.
            ``benchmarks/results/lifting_cpu``; null = the work folder only.
        data: :class:`LiftingDataConfig`.
    """

    kind: Literal["lifting"] = "lifting"
    methods: tuple[str, ...] = field(default_factory=_registered)
    inputs: tuple[str, ...] = INPUTS
    label_sets: tuple[str, ...] = LABEL_SETS
    train_subjects: tuple[str, ...] = ("S1", "S5", "S6", "S7")
    few_3d: tuple[str, ...] = ("S1",)
    test_subjects: tuple[str, ...] = ("S8",)
    exclude_repeated: bool = True
    references: tuple[str, ...] = REFERENCES
    nearest_stride: int = 4
    seeds: tuple[int, ...] = (0, 1)
    all_seeds_for: tuple[str, ...] = ("pose_machine/gt/all", "martinez/gt/all", "pose_machine/gt/s1",
                                      "pose_machine/gt/s1_2d", "pose_machine/noisy/*")
    lifter: dict[str, Any] = field(default_factory=dict)
    per_method: dict[str, Any] = field(default_factory=dict)
    publish: str | None = None
    data: LiftingDataConfig = field(default_factory=LiftingDataConfig)

    def __post_init__(self) -> None:
        known = _registered()
        for name, values, allowed in (("methods", self.methods, known), ("inputs", self.inputs, INPUTS),
                                      ("label_sets", self.label_sets, LABEL_SETS),
                                      ("references", self.references, REFERENCES)):
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ConfigError(f"unknown {name} {bad}; choose from {', '.join(allowed)}")
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} are listed twice: {list(values)}")
        if not self.methods and not self.references:
            raise ConfigError("nothing to run: methods and references are both empty")
        if self.methods and not (self.inputs and self.label_sets):
            raise ConfigError("inputs and label_sets must name at least one each")
        extra = [m for m in self.per_method if m not in known]
        if extra:
            raise ConfigError(f"per_method names unknown method(s) {extra}; known: {', '.join(known)}")
        bad = [m for m, v in self.per_method.items() if not isinstance(v, dict)]
        if bad:
            raise ConfigError(f"per_method.{bad[0]} must be a mapping of LifterConfig keys, e.g. {{steps: 3000}}")
        if not self.train_subjects or not self.test_subjects or not self.few_3d:
            raise ConfigError("train_subjects, few_3d and test_subjects must each name at least one subject")
        if not set(self.few_3d) <= set(self.train_subjects):
            raise ConfigError(f"few_3d {list(self.few_3d)} must be training subjects ({list(self.train_subjects)})")
        both = sorted(set(self.test_subjects) & set(self.train_subjects))
        if both:
            raise ConfigError(f"subjects {both} are both trained and tested on; the test subjects must be unseen")
        if self.nearest_stride < 1:
            raise ConfigError(f"nearest_stride must be >= 1, got {self.nearest_stride}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        for p in self.all_seeds_for:
            if len(p.split("/")) != 3:
                raise ConfigError(f"all_seeds_for entry {p!r} must look like method/input/label_set "
                                  "(e.g. pose_machine/gt/all; * matches anything)")
        for k in ("method", "seed", "train_subjects", "labels_3d", "train_noise", "test_noise"):
            if k in self.lifter or any(k in v for v in self.per_method.values()):
                raise ConfigError(f"lifter.{k} is set by each cell (methods, seeds, inputs, label_sets); remove it")

    def seeds_of(self, method: str, inp: str, labels: str) -> tuple[int, ...]:
        """The seeds the cell ``method/inp/labels`` runs."""
        from fnmatch import fnmatchcase

        every = any(fnmatchcase(f"{method}/{inp}/{labels}", p) for p in self.all_seeds_for)
        return self.seeds if every else self.seeds[:1]
