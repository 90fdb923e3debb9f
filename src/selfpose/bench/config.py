"""The image benchmark's config: methods × label shares × seeds on one pair of datasets, one budget for all.

``selfpose benchmark --config configs/benchmark_cpu.yaml --work WORK [key=value ...]``
reads a :class:`BenchmarkConfig` when the file has no ``kind`` key or ``kind: lab``
(``kind: lifting`` is the lifting benchmark, :mod:`selfpose.bench.kinds`); see
``configs/benchmark_*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from selfpose.config import ConfigError

REFERENCES = ("random", "random_same_crop", "supervised", "supervised_upper", "mean_pose", "box_camera_ridge",
              "box_camera_knn", "scratch", "supervised_start", "scratch_frozen")
#: References of the fine-tuning protocols only (not run unless asked).
TRANSFER_REFERENCES = ("scratch", "supervised_start")
#: References that need ``scratch_of`` (not run unless asked).
SCRATCH_REFERENCES = (*TRANSFER_REFERENCES, "scratch_frozen")
#: What a label protocol of the fine-tuning cells may set (``protocols``).
PROTOCOL_KEYS = ("subjects", "looks_per_subject", "fraction", "val_by")
VAL_BY = ("subject", "take")
POSE_FIXED_KEYS = ("fraction", "steps", "epochs", "seed", "val_by", "device")


def _builtin_methods() -> tuple[str, ...]:
    from selfpose.methods.registry import method_names

    return method_names(builtin_only=True)


@dataclass
class BenchDataConfig:
    """The data every method sees.

    Attributes:
        train, test: ``SynthConfig`` keys (a mapping) of the pretraining/label
            data and of the test data, rendered into ``WORK/data/`` once;
            e.g. ``{scenario: lab, motion: PATH, subjects: [S1, S5]}``.
            Relative paths are read from the directory the command runs in.
        train_dir, test_dir: prepared dataset folders to use instead of
            rendering (both or neither).
    """

    train: dict[str, Any] = field(default_factory=lambda: {"scenario": "lab", "subjects": ["train"]})
    test: dict[str, Any] = field(default_factory=lambda: {"scenario": "lab", "subjects": ["test"], "seed": 1,
                                                          "num_subjects": 2, "subject_prefix": "Q"})
    train_dir: str | None = None
    test_dir: str | None = None

    def __post_init__(self) -> None:
        from selfpose.config import from_dict
        from selfpose.data.synthetic.synthesize import SynthConfig

        if (self.train_dir is None) != (self.test_dir is None):
            raise ConfigError("data.train_dir and data.test_dir go together: give both prepared folders or neither")
        for name in ("train", "test"):
            try:
                from_dict(SynthConfig, getattr(self, name), _prefix=f"data.{name}.")
            except ConfigError as e:
                raise ConfigError(f"data.{name}: {e}") from None


@dataclass
class BenchmarkConfig:
    """Methods, label shares, seeds and the one budget they share.

    Attributes:
        kind: ``lab`` (optional: a config without ``kind`` is this schema; ``kind: lifting``
            selects :class:`~selfpose.bench.lifting_config.LiftingBenchmarkConfig`,
            see :mod:`selfpose.bench.kinds`).
        methods: registered method names (:func:`selfpose.methods.register_method`),
            in table order; default: every method shipped with selfpose.
        references: rows that need no pretraining: ``random`` (the pose head
            on the full method's network frozen at its random initialisation,
            untrained detector included), ``random_same_crop`` (that random
            encoder on the crop of ``same_crop_of``, :mod:`selfpose.bench.same_crop`),
            ``supervised`` (the full method's network trained end to end from
            scratch on the cell's labels, :mod:`selfpose.bench.supervised_ref`),
            ``supervised_upper`` (that at 100% of the labels: the upper bound),
            ``mean_pose`` (the mean labelled training pose for every frame);
            ``box_camera_ridge`` / ``box_camera_knn`` read only the true person
            box and the camera (no pixels, :mod:`selfpose.bench.shortcuts`): what
            where the person stands is worth on this data. Fine-tuning protocols only
            (never by default): ``scratch`` (the ``scratch_of`` row's network from random
            weights, every stage fine-tuned) and ``supervised_start`` (that network first
            trained on the 3D labels of the training people a protocol leaves unlabelled,
            then fine-tuned as the rows: the most any start could buy,
            :mod:`selfpose.bench.supervised_start`). Frozen features, never by default: ``scratch_frozen``
            (the ``scratch_of`` row's network at its random initialisation, frozen, read exactly as that row
            reads its frames — its own crop and pose input, e.g. the sync rows' masked crops — and the same
            pose head: the random network on the same input, where ``random_same_crop`` is another
            network, the temporal one, on the raw crop).
        shares: label shares (every K-th labelled frame, see
            :func:`selfpose.pose.labels.label_subset`).
        seeds: pretraining/pose seeds of the methods in ``all_seeds_for``;
            the other methods run ``seeds[0]`` only.
        all_seeds_for: methods that run every seed (the full method and its
            closest rivals); ``["*"]``: all.
        largest_share_for: methods that run the largest of ``shares`` (default
            ``["*"]``: all); the others stop a share short. A 100% cell costs
            3–5 times a 1% one (every training frame encoded and searched) while
            frozen features move ≤ 1.1 mm from 10% to 100% in the full profile,
            so the ≤ 3-hour profile spends its 100% cells on the full method, its
            closest rivals and the ratio's DSL. References always run every share.
        pretrain_config: YAML of ``PretrainConfig`` every method starts from
            (then ``pretrain`` overrides, then the method's own switches).
        pretrain_configs: rows (methods or variants) whose recipe is another
            YAML, by name, e.g. ``{sync: configs/sync_cpu.yaml}``: it replaces
            ``pretrain_config`` for that row (a method whose network, sampler and
            optimiser differ from the temporal family's; ``pretrain`` and the
            benchmark's steps and seed still apply, so the YAML's
            ``train.steps`` does not). A variant without an entry uses its
            method's.
        pretrain: ``PretrainConfig`` keys (a mapping) for every method.
        steps: pretraining steps of every method (but those in ``row_steps``).
        row_steps: rows (methods or variants) that pretrain for other steps, by name, e.g.
            ``{sync_groups: 16000}``: a recipe whose pretext keeps improving past ``steps`` (its
            checkpoint and picture intervals follow: a quarter of its own steps). By the row's own
            name only: a variant does not take its method's entry (unlike ``pretrain_configs``), and
            overriding ``steps`` leaves these rows alone (a quick try of a config: ``row_steps={}``
            too). The ``supervised`` reference's default length stays ``steps + pose_steps``.
        pose_steps: pose-head steps of every cell.
        pose: :class:`~selfpose.pose.fit.PoseConfig` keys (a mapping) of every
            frozen-feature cell's head, e.g. ``{val_max_frames: 8000}``; the
            share, steps, epochs, seed, ``val_by`` and device are the benchmark's.
        analysis: KMeans of ``v``/``i`` and pose from ``i`` for the split methods, and how well a
            linear classifier reads the person from ``v``/``i`` of every run, on held-out takes of the
            training people and of the test people (seed ``seeds[0]``). ``persons``: the classifier
            only (about a minute a run; the KMeans/pose-from-``i`` analysis took 10 min a run on 2 cores).
        val_by: what the pose heads, probes and the supervised reference hold out
            of the labelled frames to choose their step or setting: ``subject``
            (whole training people, as the test people are new — the default) or
            ``take`` (held-out takes of the training people, the earlier default).
        probes: :class:`~selfpose.pose.probe_fit.ProbeConfig` keys (a mapping) of
            the ridge and k-NN probes fitted beside every pose head.
        same_crop_of: the method whose crop ``random_same_crop`` reads (one of
            ``methods``, run at the same seeds), or ``true_box``; None (default):
            the full method (``temporal``) when it is among ``methods``, else the
            true box (:meth:`crop_source`).
        supervised: :class:`~selfpose.pose.supervised.SupervisedConfig` keys
            (a mapping) of the supervised reference, e.g. ``{autocast: auto}``;
            ``steps`` defaults to ``steps + pose_steps``; the network, labels and
            split are the benchmark's (``model``, ``fraction``, ``seed``,
            ``val_by`` cannot be set here).
        variants: named rows that are a registered method with its own
            ``PretrainConfig`` keys, e.g. ``{sync_keep: {method: sync,
            method_config: {sync: {background: keep}}}}`` (an ablation); a
            variant's name is listed in ``methods`` like a method's, and its
            keys apply after ``pretrain``.
        finetune_for: rows (methods or variants) that are also fine-tuned
            (``fit-pose --finetune``, :mod:`selfpose.pose.finetune`) under every
            label protocol; their cells are the ``transfer`` table.
        finetune: :class:`~selfpose.pose.finetune.FinetuneConfig` keys of those
            cells (``enabled`` is set by the benchmark).
        protocols: label protocols of the fine-tuning cells, by name: the
            labelled ``subjects`` (empty: every training subject), of each only
            its first ``looks_per_subject`` rendered looks (default every look:
            the paper's S1 is one person in one outfit, a house subject has
            ``data.train.identities_per_subject`` looks), the label
            ``fraction`` (default 1.0) and ``val_by`` (default the benchmark's;
            a one-subject protocol has no other labelled person to hold out,
            so it validates on held-out ``take``s of that subject).
        scratch_of: the ``scratch`` reference: this row's network at its random
            initialisation, fine-tuned with every stage trainable
            (``frozen_stages: 0``) for the same steps under every protocol —
            "the same network from scratch with the same budget".
        supervised_start_steps: steps of the ``supervised_start`` reference's training on
            other people's 3D labels (before its fine-tuning, which has the rows' budget).
        data: :class:`BenchDataConfig`.
        device: where pretraining, feature extraction, the pose heads and the supervised
            reference compute (``cpu``, ``cuda``, ``cuda:N``, ``auto``; see
            :mod:`selfpose.training.device`). It is not part of any cell's fingerprint: cells
            computed on a GPU and on the CPU mix in one work folder. Rendering, the closed-form
            probes and the analyses run on the CPU.
    """

    kind: Literal["lab"] = "lab"
    methods: tuple[str, ...] = field(default_factory=lambda: _builtin_methods())
    references: tuple[str, ...] = tuple(r for r in REFERENCES if r not in SCRATCH_REFERENCES)
    shares: tuple[float, ...] = (0.01, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1)
    all_seeds_for: tuple[str, ...] = ("temporal", "css_stn_dec_split", "ae_stn_dec")
    largest_share_for: tuple[str, ...] = ("*",)
    pretrain_config: str | None = "configs/temporal_cpu.yaml"
    pretrain_configs: dict[str, str] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)
    steps: int = 1000
    row_steps: dict[str, int] = field(default_factory=dict)
    pose_steps: int = 1000
    pose: dict[str, Any] = field(default_factory=dict)
    analysis: bool | Literal["persons"] = True
    val_by: Literal["subject", "take"] = "subject"
    probes: dict[str, Any] = field(default_factory=dict)
    same_crop_of: str | None = None
    supervised: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    finetune_for: tuple[str, ...] = ()
    finetune: dict[str, Any] = field(default_factory=dict)
    protocols: dict[str, dict[str, Any]] = field(default_factory=lambda: {"all": {}})
    scratch_of: str | None = None
    supervised_start_steps: int = 3000
    data: BenchDataConfig = field(default_factory=BenchDataConfig)
    device: str = "cpu"

    def __post_init__(self) -> None:
        from selfpose.methods.registry import method_names
        from selfpose.training.device import check_device_name

        check_device_name(self.device, "device")

        known = method_names()
        if not isinstance(self.variants, dict):
            raise ConfigError(f"variants must be a mapping of name → PretrainConfig keys, got {self.variants!r}")
        for v, keys in self.variants.items():
            if v in known:
                raise ConfigError(f"variant {v!r} has the name of a registered method; name it differently")
            if not isinstance(keys, dict) or keys.get("method") not in known:
                raise ConfigError(f"variant {v!r} must name a registered method (method: NAME), got {keys!r}")
        known = (*known, *self.variants)
        if not isinstance(self.pretrain_configs, dict) or not all(isinstance(v, str) for v in self.pretrain_configs.values()):
            raise ConfigError(f"pretrain_configs must map a method or variant to a YAML path, got {self.pretrain_configs!r}")
        stray = [m for m in self.pretrain_configs if m not in known]
        if stray:
            raise ConfigError(f"pretrain_configs names {stray}, not a method or variant; known: {', '.join(sorted(known))}")
        if not isinstance(self.row_steps, dict):
            raise ConfigError(f"row_steps must map a method or variant to its pretraining steps, got {self.row_steps!r}")
        stray = [m for m in self.row_steps if m not in known]
        if stray:
            raise ConfigError(f"row_steps names {stray}, not a method or variant; known: {', '.join(sorted(known))}")
        bad = {m: n for m, n in self.row_steps.items() if isinstance(n, bool) or not isinstance(n, int) or n < 1}
        if bad:
            raise ConfigError(f"row_steps must be whole numbers >= 1, got {bad}")
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            raise ConfigError(f"unknown method(s) {unknown}; known: {', '.join(sorted(known))}")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"methods are listed twice: {list(self.methods)}")
        bad = [r for r in self.references if r not in REFERENCES]
        if bad:
            raise ConfigError(f"unknown reference(s) {bad}; choose from {', '.join(REFERENCES)}")
        if not self.methods and not self.references:
            raise ConfigError("nothing to run: methods and references are both empty")
        if not self.shares or any(not 0 < s <= 1 for s in self.shares):
            raise ConfigError(f"shares must be in (0, 1], got {list(self.shares)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        # Checked against the registry, not ``methods``: narrowing ``methods`` on the command line
        # ('methods=[temporal]') must not make the config's own list an error.
        stray = [m for m in self.largest_share_for if m != "*" and m not in known]
        if stray:
            raise ConfigError(f"largest_share_for names {stray}, not a method; known: {', '.join(sorted(known))} "
                              "(references always run every share)")
        if self.steps < 1 or self.pose_steps < 1:
            raise ConfigError(f"steps and pose_steps must be >= 1, got {self.steps}, {self.pose_steps}")
        if self.val_by not in VAL_BY:
            raise ConfigError(f"val_by must be one of {', '.join(VAL_BY)}, got {self.val_by!r}")
        stray = [m for m in self.finetune_for if m not in self.methods]
        if stray:
            raise ConfigError(f"finetune_for names {stray}, not among methods {list(self.methods)}")
        if self.scratch_of is not None and self.scratch_of not in known:
            raise ConfigError(f"scratch_of names {self.scratch_of!r}, not a method or variant")
        for ref in ("scratch", "scratch_frozen"):
            if ref in self.references and self.scratch_of is None:
                raise ConfigError(f"the {ref} reference needs scratch_of: the row whose network starts from scratch")
        if "supervised_start" in self.references and "scratch" not in self.references:
            raise ConfigError("the supervised_start reference trains the scratch network: add scratch to references")
        if self.supervised_start_steps < 1:
            raise ConfigError(f"supervised_start_steps must be >= 1, got {self.supervised_start_steps}")
        if not isinstance(self.protocols, dict) or not self.protocols:
            raise ConfigError(f"protocols must be a non-empty mapping of name → settings, got {self.protocols!r}")
        for name, p in self.protocols.items():
            bad = [k for k in (p or {}) if k not in PROTOCOL_KEYS]
            if bad or not isinstance(p or {}, dict):
                raise ConfigError(f"protocols.{name}: unknown key(s) {bad}; a protocol sets {', '.join(PROTOCOL_KEYS)}")
            if (p or {}).get("val_by", self.val_by) not in VAL_BY:
                raise ConfigError(f"protocols.{name}.val_by must be one of {', '.join(VAL_BY)}")
            looks = (p or {}).get("looks_per_subject")
            if looks is not None and (isinstance(looks, bool) or not isinstance(looks, int) or looks < 1):
                raise ConfigError(f"protocols.{name}.looks_per_subject must be a whole number >= 1, got {looks!r}")
        self._check_sections()

    def _check_sections(self) -> None:
        """The pose, probes and supervised sections are strict, and ``same_crop_of`` names a crop that exists."""
        from selfpose.bench.same_crop import TRUE_BOX
        from selfpose.bench.supervised_ref import FIXED_KEYS
        from selfpose.config import from_dict
        from selfpose.pose.fit import PoseConfig
        from selfpose.pose.probe_fit import ProbeConfig
        from selfpose.pose.supervised import SupervisedConfig

        from selfpose.pose.finetune import FinetuneConfig

        if not isinstance(self.finetune, dict) or "enabled" in self.finetune:
            raise ConfigError(f"finetune must be a mapping of FinetuneConfig keys without 'enabled' (the benchmark "
                              f"sets it), got {self.finetune!r}")
        try:
            from_dict(FinetuneConfig, self.finetune, _prefix="finetune.")
        except ConfigError as e:
            raise ConfigError(f"finetune: {e}") from None
        for name in ("pose", "probes", "supervised"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a mapping of keys (or {{}}), got {getattr(self, name)!r}")
        fixed = [k for k in POSE_FIXED_KEYS if k in self.pose]
        if fixed:
            raise ConfigError(f"pose.{fixed[0]} is set by the benchmark (shares, pose_steps, seeds, val_by, device; "
                              "epochs would override pose_steps); "
                              "remove it")
        try:
            from_dict(PoseConfig, self.pose, _prefix="pose.")
        except ConfigError as e:
            raise ConfigError(f"pose: {e}") from None
        try:
            from_dict(ProbeConfig, self.probes, _prefix="probes.")
        except ConfigError as e:
            raise ConfigError(f"probes: {e}") from None
        fixed = [k for k in FIXED_KEYS if k in self.supervised]
        if fixed:
            raise ConfigError(f"supervised.{fixed[0]} is set by the benchmark (the full method's network, the "
                              "cell's labels and split); remove it")
        try:
            from_dict(SupervisedConfig, self.supervised, _prefix="supervised.")
        except ConfigError as e:
            raise ConfigError(f"supervised: {e}") from None
        crop = self.crop_source()
        if "random_same_crop" in self.references and crop != TRUE_BOX:
            if crop not in self.methods:
                raise ConfigError(f"same_crop_of {crop!r} is not among methods; name one of them or {TRUE_BOX}")
            missing = sorted(set(self.seeds_of("random")) - set(self.seeds_of(crop)))
            if missing:
                raise ConfigError(f"random_same_crop runs seeds {list(self.seeds_of('random'))} but {crop} runs "
                                  f"only {list(self.seeds_of(crop))}; add it to all_seeds_for")

    def crop_source(self) -> str:
        """What ``random_same_crop`` reads: ``same_crop_of``, or by default the full method's crop when it is
        benchmarked, else ``true_box``."""
        from selfpose.bench.same_crop import TRUE_BOX

        if self.same_crop_of is not None:
            return self.same_crop_of
        return "temporal" if "temporal" in self.methods else TRUE_BOX

    def seeds_of(self, method: str) -> tuple[int, ...]:
        """The seeds ``method`` runs."""
        every = "*" in self.all_seeds_for or method in self.all_seeds_for
        return self.seeds if every else self.seeds[:1]

    def shares_of(self, method: str) -> tuple[float, ...]:
        """The label shares ``method`` runs, in config order: every share, or all but the largest when
        ``method`` is not in ``largest_share_for`` (a lone share always runs; references run every share)."""
        if (method not in self.methods or "*" in self.largest_share_for or method in self.largest_share_for
                or len(self.shares) < 2):
            return tuple(self.shares)
        top = max(self.shares)
        return tuple(s for s in self.shares if s != top)
