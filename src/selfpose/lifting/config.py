"""``selfpose fit-lifter``'s configuration: common keys, one section per method, per-method defaults.

:class:`LifterConfig` holds what every lifter shares (data, optimisation,
validation, noise, checkpoints); each method's own settings live in its
section (``martinez.width``, ``temporal_conv.receptive_field``, ...).

**A method's name selects its defaults.** The dataclass defaults are the
``martinez`` setting; each method registers the keys its reported
configuration changes (:attr:`selfpose.lifting.lifters.LifterMethod.defaults`,
e.g. ``temporal_conv``'s batch size). :func:`load_lifter_config` layers
``common defaults ← the method's defaults ← YAML file ← key=value overrides``,
the method being read from the overrides, else the file, else ``martinez``.
The CLI and the benchmark build every config through it; a library user who
writes ``LifterConfig(method="temporal_conv")`` gets the common defaults
(call :func:`load_lifter_config` with ``["method=temporal_conv"]`` instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from selfpose.config import ConfigError, _merge, _merge_file, defaults, from_dict, parse_overrides, read_mapping
from selfpose.lifting.noise import NoiseConfig


@dataclass
class MartinezConfig:
    """``martinez`` (Martinez et al. 2017): width × residual blocks, dropout, max-norm radius (null = off)."""

    width: int = 1024
    blocks: int = 2
    dropout: float = 0.5
    max_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if self.width < 1 or self.blocks < 0:
            raise ConfigError(f"martinez: width must be >= 1 and blocks >= 0, got {self.width}, {self.blocks}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"martinez.dropout must be in [0, 1), got {self.dropout}")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ConfigError(f"martinez.max_norm must be > 0 (or null: off), got {self.max_norm}")


@dataclass
class TemporalConvConfig:
    """``temporal_conv`` (Pavllo et al., VideoPose3D, CVPR 2019): dilated temporal convolutions.

    Attributes:
        receptive_field: frames seen per output, a power of 3 (27 = three layers of
            width 3 with dilations 1, 3, 9; 81 and 243 add layers).
        causal: the output is the window's last frame (real-time use) instead of its centre.
        channels: width of every layer (VideoPose3D: 1024; see ``configs/lifting_gpu.yaml``).
        dropout: after every layer (VideoPose3D: 0.25).
        clip: consecutive target frames per training window (they share the
            convolutions of their overlapping receptive fields, so a longer clip
            trains more frames for the same compute; batch normalisation then sees
            correlated frames, which is why it is not longer).
    """

    receptive_field: int = 27
    causal: bool = False
    channels: int = 256
    dropout: float = 0.25
    clip: int = 8

    def __post_init__(self) -> None:
        from selfpose.lifting.temporal_conv import filter_widths

        filter_widths(self.receptive_field)   # raises ConfigError on a bad receptive field
        if self.channels < 1 or self.clip < 1:
            raise ConfigError(f"temporal_conv: channels and clip must be >= 1, got {self.channels}, {self.clip}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"temporal_conv.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class CorrectionConfig:
    """``pose_machine.correction``: the test-time self-supervised correction (Wang et al., TPAMI 2019).

    Per clip (prediction window), ``steps`` gradient steps on the clip's own
    copy of Ψ_C minimising the re-projection error ``‖p_2D − Ψ_P(Ψ_C(p_3D))‖²``;
    see :func:`selfpose.lifting.pose_machine.correct`.

    Attributes:
        enabled: run it by default at prediction (``evaluate --no-correction`` turns it off).
        steps: gradient steps per clip at most.
        lr: step size (Adam with a fresh state per clip, or plain SGD; ``optimizer``).
        optimizer: ``adam`` or ``sgd``.
        stop_mm: stop early when a step moves the robust joints (pelvis, hips,
            shoulders) by less than this (mean over the clip's frames and those joints, mm).
        discard_mm: keep the uncorrected 3D when the correction moved the robust
            joints by more than this from it (mm, same mean).
        clips_per_batch: clips corrected at once (each holds its own copy of Ψ_C's weights: memory).
    """

    enabled: bool = True
    steps: int = 2
    lr: float = 1.5e-4
    optimizer: Literal["adam", "sgd"] = "adam"
    stop_mm: float = 5.0
    discard_mm: float = 20.0
    clips_per_batch: int = 32

    def __post_init__(self) -> None:
        if self.steps < 1 or self.clips_per_batch < 1:
            raise ConfigError(f"pose_machine.correction: steps and clips_per_batch must be >= 1, got "
                              f"{self.steps}, {self.clips_per_batch}")
        if not self.lr > 0 or not 0 <= self.stop_mm <= self.discard_mm:
            raise ConfigError("pose_machine.correction: lr must be > 0 and 0 <= stop_mm <= discard_mm, got "
                              f"lr={self.lr}, stop_mm={self.stop_mm}, discard_mm={self.discard_mm}")


@dataclass
class PoseMachineConfig:
    """``pose_machine`` (Wang, Lin et al., TPAMI 2019): 2D-to-3D transformer + 3D-to-2D projector, staged.

    See :mod:`selfpose.lifting.pose_machine` for the network and the stages.

    Attributes:
        hidden: width of the transformer's FC and both LSTMs, of Ψ_C's hidden layer and of Ψ_P's layers (seed: 1024).
        conv_channels: output channels of the two per-frame convolutions over the joint axis.
        clip: consecutive frames per training window (the LSTMs' sequence length).
        predict_clip: frames per window at prediction (null: ``clip``).
        joint_fraction: share of the run's ``steps`` spent in the joint stage (the
            rest: the transformer stage).
        projector_steps: steps of the projector stage (cheap: no LSTM; batches of ``batch_size`` windows).
        projector_lr, joint_lr: peak learning rates of those stages (the transformer stage uses ``lr``).
        joint_params: what the joint stage updates: ``all`` (the seed's "everything
            jointly") or ``transformer`` (Ψ_C and Ψ_P stay as the projector stage
            learnt them from 3D–2D pairs, so the re-projection term on 2D-only
            frames can only be lowered by changing the 3D, not by bending the
            projector towards those frames).
        drop_joints: probability of dropping (zeroing) each 3D joint of the projector stage's input.
        reproj_weight: λ, the weight of the 2D re-projection term against the 3D terms.
        reproj_path: what carries the joint stage's 2D term back to the transformer:
            ``projector`` (the seed: Ψ_P∘Ψ_C, and Ψ_C's own 3D term, are
            differentiated through) or ``camera`` (the camera's pinhole projection
            of the transformer's 3D, placed by least squares —
            :mod:`selfpose.lifting.perspective`; Ψ_C and Ψ_P still learn, from the
            3D detached). Needs ``input_norm=focal``. Default ``projector``: at the
            old 30-minute defaults (clips of 32) ``camera`` scored 44.0 mm on S8 against 44.1 and made the
            correction cost 2.5 mm with ground-truth 2D (docs/lifting.md).
        camera_reproj_weight: the weight of the camera re-projection term (``reproj_path=camera``).
        bone_weight: the joint stage's bone-length term (:mod:`selfpose.lifting.bones`): the
            transformer's bones held to the labelled windows' mean lengths, on every window; 0 = off.
        skip: add each frame's own features (after the FC layer) to the LSTMs' output
            before the last FC — a deviation from the seed's layout, chosen by a probe (see
            :mod:`selfpose.lifting.pose_machine`, "Why the skip").
        frame_blocks, frame_dropout: Martinez-style residual blocks (BN, ReLU, dropout)
            after the per-frame FC layer (0 = the seed's single FC); also from that probe.
        bf16: run the transformer's convolutions, FC and LSTMs under bfloat16
            autocast (the output layer stays float32). ``auto`` (default): only on a CPU with
            native bf16 (AMX/AVX512-BF16: training measured 1.3–2× faster there); on an
            AVX2-only CPU bf16 is emulated and a 1024-wide LSTM step ran about 70× slower.
        correction: the test-time correction (:class:`CorrectionConfig`).
    """

    hidden: int = 1024
    conv_channels: tuple[int, ...] = (64, 128)
    skip: bool = True
    frame_blocks: int = 1
    frame_dropout: float = 0.1
    clip: int = 32
    predict_clip: int | None = None
    joint_fraction: float = 0.3
    projector_steps: int = 2000
    projector_lr: float = 1e-3
    joint_lr: float = 3e-4
    joint_params: Literal["all", "transformer"] = "all"
    drop_joints: float = 0.3
    reproj_weight: float = 10.0
    reproj_path: Literal["projector", "camera"] = "projector"
    camera_reproj_weight: float = 10.0
    bone_weight: float = 0.0
    bf16: bool | Literal["auto"] = "auto"
    correction: CorrectionConfig = field(default_factory=CorrectionConfig)

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.clip < 1 or (self.predict_clip is not None and self.predict_clip < 1):
            raise ConfigError(f"pose_machine: hidden, clip and predict_clip must be >= 1, got {self.hidden}, "
                              f"{self.clip}, {self.predict_clip}")
        if len(self.conv_channels) != 2 or min(self.conv_channels) < 1:
            raise ConfigError(f"pose_machine.conv_channels must be two numbers >= 1, got {self.conv_channels}")
        if not 0 <= self.joint_fraction <= 1 or not 0 <= self.drop_joints < 1:
            raise ConfigError("pose_machine: joint_fraction must be in [0, 1] and drop_joints in [0, 1), got "
                              f"{self.joint_fraction}, {self.drop_joints}")
        if self.frame_blocks < 0 or not 0 <= self.frame_dropout < 1:
            raise ConfigError(f"pose_machine: frame_blocks must be >= 0 and frame_dropout in [0, 1), got "
                              f"{self.frame_blocks}, {self.frame_dropout}")
        if self.projector_steps < 0 or self.reproj_weight < 0 or self.camera_reproj_weight < 0 \
                or self.bone_weight < 0:
            raise ConfigError("pose_machine: projector_steps and the weights must be >= 0")


@dataclass
class LifterConfig:
    """``selfpose fit-lifter`` (strict: unknown keys are errors). Defaults: the reported ``martinez`` setting.

    Measured with each method's defaults (``load_lifter_config(None, ["method=NAME"])``;
    GT 2D, real Human3.6M motion through the real cameras, trained on S1, S5,
    S6, S7, tested on S8 without its smoking takes, which repeat S5's motion;
    2 CPU cores shared with other runs, 2026-12-01): ``martinez`` 47.3 mm MPJPE
    (45.8 with the repeated takes; 8500 steps, 1473 s — 444 s on an idle
    machine), ``temporal_conv`` 47.1 (8500 steps, 1414 s, one thread),
    ``pose_machine`` 50.4 (701 s, one thread; at today's defaults, clips of 4
    and 12,000 steps, 38.3 / 38.8 with its correction on two seeds, 1638 /
    1711 s, one thread, 2026-12-04: see :mod:`selfpose.lifting.pose_machine`). Easier than the published
    protocol: one shared skeleton for every subject and re-placed mocap (see
    issue 12), so not directly comparable with Martinez et al.'s 45.5 mm::

        selfpose prepare mocap h36m17_train_S1-S8_25fps.npz --cameras cameras.pkl --out D
        selfpose fit-lifter --data D --out RUN [method=NAME]
        selfpose evaluate RUN --data D --subjects S8 --exclude-takes S8__smoking_1,S8__smoking_2 --json

    Attributes:
        method: a name of :data:`selfpose.lifting.lifters.LIFTERS`.
        martinez, temporal_conv, pose_machine: the methods' own settings (sections).
        input_norm: ``focal`` (needs cameras) or ``image``; see :mod:`selfpose.lifting.data`.
        steps, batch_size, lr, weight_decay, warmup_steps, lr_schedule, min_lr_ratio:
            optimisation (Adam; the toolkit's warm-up + cosine schedule).
            ``batch_size`` counts training windows (a window holds the method's
            clip of target frames).
            ``pose_machine`` shares ``steps`` between its transformer and joint
            stages (``pose_machine.joint_fraction``); its projector stage has its own.
        max_seconds: stop training after this long (the best step so far is
            kept); null = run every step.
        lr_clock: what the warm-up + cosine schedule counts as progress. ``steps``:
            the stage's steps done. ``budget``: the larger of that and the share of
            the stage's time limit spent (a stage's own share of ``max_seconds``, or
            what is left of ``max_seconds``), so a stage that its time limit cuts
            still anneals to ``min_lr_ratio`` instead of stopping at a high rate on
            a slower machine. The same as ``steps`` without a time limit; the
            learning rates then depend on the machine's speed. Not a lever for
            ``pose_machine``'s old 30-minute defaults (clips of 32): 48.0 mm on S8 against 44.5 with
            ``steps`` (docs/lifting.md), so ``steps`` stays the default.
        train_subjects: subjects trained on (and validated on: held-out takes);
            empty = every subject of the data.
        train_splits: only sequences of these splits (``attrs["split"]``, e.g.
            HumanEva-I's ``Train``); empty = every sequence.
        labels_3d: the training subjects whose 3D labels are used; the other
            training subjects are 2D-only (their 3D is never read). Empty = all.
            Only methods with a 2D re-projection path (``pose_machine``) learn
            from 2D-only sequences; the others refuse them.
        input_stats_subjects: subjects whose 2D *also* fits the z-scoring of
            the inputs (their 3D is never read, and they are not trained on).
            Empty = the training frames only. A control for the 2D-only lever: a
            ``labels_3d`` run's 2D-only subjects reach the model through two
            channels — the re-projection loss and these statistics — and an
            S1-only run with ``input_stats_subjects=[S1,S5,S6,S7]`` shares the
            second, so the two can be told apart (docs/lifting.md).
        keypoints_2d: a 2D heatmap network run (``fit-lifter method=heatmap2d``):
            train on the 2D it predicts for the frames of ``--data`` (an image
            dataset) instead of the 2D labels — the image path of Wang et al.,
            so that the lifter learns the network's errors. Null = the 2D labels.
        image_features: with ``keypoints_2d``, also feed the network's pooled
            backbone features of each frame to the lifter (appended to the
            encoded 2D; :attr:`selfpose.lifting.data.LiftingArrays.features`).
        val_subjects: validate on these people instead (never trained on; all
            their 3D-labelled sequences, up to ``val_max_frames``): model
            selection on held-out *people*, as the test subjects are. Empty =
            held-out takes of the training subjects (``val_fraction``).
        val_fraction: share of the 3D-labelled training takes held out (whole
            takes, all views together); 0 = no validation, keep the last step.
            Unused when ``val_subjects`` is set.
        val_max_frames: validate on whole held-out sequences up to about this many frames.
        eval_every: validate every this many steps (and at the last one).
        checkpoint_every: save a resumable checkpoint every this many steps (0 = never).
        keep_checkpoints: keep the newest this many checkpoints (0 = all).
        train_noise: draw 2D detector noise (``noise``) for every training batch;
            false = ground-truth 2D.
        test_noise: evaluate (and validate) on 2D through ``noise`` (seeded by
            ``seed``) instead of ground truth.
        noise: the 2D noise model (:class:`~selfpose.lifting.noise.NoiseConfig`;
            its defaults are the benchmark's "default detector noise").
        flip_train: mirror each training window with probability 1/2 (2D and 3D
            together, left and right swapped; :mod:`selfpose.lifting.flip`).
        flip_test: predict twice, from the 2D and from its mirror, and average
            the two 3D (the mirrored one mirrored back); validation too.
            Both off: at the old 30-minute defaults mirroring did not pay (docs/lifting.md, "Mirror augmentation").
        seed: initialisation, batches, validation split, noise.
        threads: torch intra-op threads while training (restored afterwards);
            null = torch's default.
    """

    method: str = "martinez"
    martinez: MartinezConfig = field(default_factory=MartinezConfig)
    temporal_conv: TemporalConvConfig = field(default_factory=TemporalConvConfig)
    pose_machine: PoseMachineConfig = field(default_factory=PoseMachineConfig)
    input_norm: Literal["focal", "image"] = "focal"
    steps: int = 8500
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.01
    max_seconds: float | None = None
    lr_clock: Literal["steps", "budget"] = "steps"
    train_subjects: tuple[str, ...] = ("S1", "S5", "S6", "S7")
    train_splits: tuple[str, ...] = ()
    labels_3d: tuple[str, ...] = ()
    input_stats_subjects: tuple[str, ...] = ()
    keypoints_2d: str | None = None
    image_features: bool = False
    val_subjects: tuple[str, ...] = ()
    val_fraction: float = 0.05
    val_max_frames: int = 8192
    eval_every: int = 250
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    train_noise: bool = False
    test_noise: bool = False
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    flip_train: bool = False
    flip_test: bool = False
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        from selfpose.lifting.lifters import LIFTERS

        if self.method not in LIFTERS:
            raise ConfigError(f"method must be one of {', '.join(LIFTERS)}, got {self.method!r}")
        for name in ("steps", "batch_size", "eval_every", "val_max_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (batch normalisation needs two samples)")
        if self.warmup_steps < 0 or self.checkpoint_every < 0 or self.keep_checkpoints < 0:
            raise ConfigError("warmup_steps, checkpoint_every and keep_checkpoints must be >= 0")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"max_seconds must be > 0 (or null: no limit), got {self.max_seconds}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 (or null), got {self.threads}")
        if self.method == "pose_machine" and self.pose_machine.reproj_path == "camera" and self.input_norm != "focal":
            raise ConfigError("pose_machine.reproj_path=camera projects through the camera, which needs "
                              "input_norm=focal (2D in focal-normalised units)")
        if self.image_features and (self.flip_train or self.flip_test):
            raise ConfigError("flip_train / flip_test cannot mirror image features; turn them off with "
                              "image_features=true")
        if self.image_features and not self.keypoints_2d:
            raise ConfigError("image_features needs keypoints_2d (the 2D network run whose features are fed); "
                              "pass --keypoints-2d RUN2D")
        if self.keypoints_2d and (self.labels_3d or self.train_splits or self.input_stats_subjects):
            raise ConfigError("keypoints_2d cannot be combined with labels_3d, train_splits or "
                              "input_stats_subjects yet; train on every frame of the training subjects")
        if set(self.input_stats_subjects) & set(self.val_subjects):
            both = sorted(set(self.input_stats_subjects) & set(self.val_subjects))
            raise ConfigError(f"input_stats_subjects {', '.join(both)} are validation people: model selection "
                              "must not depend on their 2D; drop them from input_stats_subjects")
        if set(self.val_subjects) & set(self.train_subjects):
            both = sorted(set(self.val_subjects) & set(self.train_subjects))
            raise ConfigError(f"val_subjects must be people not trained on, but {', '.join(both)} "
                              "are in train_subjects too; drop them from one of the two")
        if self.labels_3d and self.train_subjects and not set(self.labels_3d) <= set(self.train_subjects):
            extra = sorted(set(self.labels_3d) - set(self.train_subjects))
            raise ConfigError(f"labels_3d names subjects that are not trained on: {', '.join(extra)}; "
                              "add them to train_subjects or drop them")

    @property
    def section(self):
        """This method's own section (e.g. ``self.martinez``); None for a method without one."""
        return getattr(self, self.method, None)

    def optim(self):
        """The toolkit's :class:`~selfpose.training.config.OptimConfig` for this run."""
        from selfpose.training.config import OptimConfig

        return OptimConfig(optimizer="adam" if self.weight_decay == 0 else "adamw", lr=self.lr,
                           weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                           schedule=self.lr_schedule, min_lr_ratio=self.min_lr_ratio, grad_clip=None)


# Keys of the martinez section that were top-level before sections existed (runs saved then).
_OLD_MARTINEZ_KEYS = ("width", "blocks", "dropout", "max_norm")


def upgrade_config_dict(data: dict) -> dict:
    """A saved config from before method sections (``width`` … at the top) → today's layout."""
    data = dict(data)
    moved = {k: data.pop(k) for k in _OLD_MARTINEZ_KEYS if k in data}
    if moved:
        data["martinez"] = {**moved, **dict(data.get("martinez") or {})}
    return data


def load_lifter_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] | dict = ()) -> LifterConfig:
    """Common defaults ← the method's registered defaults ← YAML ``path`` ← ``overrides`` (see module doc).

    ``overrides``: ``key=value`` strings (dotted keys reach sections) or a nested mapping.
    """
    from selfpose.lifting.lifters import LIFTERS

    file_data: dict = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} not found")
        file_data = upgrade_config_dict(read_mapping(path))
    extra = dict(overrides) if isinstance(overrides, dict) else parse_overrides(list(overrides))
    method = extra.get("method", file_data.get("method", "martinez"))
    if method not in LIFTERS:
        raise ConfigError(f"method must be one of {', '.join(LIFTERS)}, got {method!r}")
    data = _merge_file(LifterConfig, defaults(LifterConfig), dict(LIFTERS[method].defaults))
    data = _merge_file(LifterConfig, data, file_data)
    data = _merge(data, extra)
    return from_dict(LifterConfig, data)
