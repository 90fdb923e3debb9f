"""A trained lifter: its network, normalisation and config; prediction over whole sequences; files.

:class:`Lifter` turns a keypoint dataset's 2D into pelvis-centred 3D (camera
frame, mm). Prediction cuts each sequence into windows of the method's
prediction clip plus its context (:mod:`selfpose.lifting.windows`, edge
padding within a sequence), runs the network on batches of windows, and
optionally the method's test-time correction per window
(``pose_machine``'s self-supervised correction).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from selfpose.config import from_dict, to_dict
from selfpose.errors import SelfposeError
from selfpose.lifting.data import LiftingArrays, encode, fill_missing

FORMAT = "selfpose-lifter"
VERSION = 1
WEIGHTS = "lifter.safetensors"
META = "lifter.json"
KIND = "lifter"


class LifterError(SelfposeError, RuntimeError):
    """A lifter cannot be trained, loaded or evaluated as asked."""


class Lifter:
    """A lifter with its normalisation: encoded 2D windows → pelvis-centred 3D (mm, camera frame).

    Attributes:
        net: the network (see :mod:`selfpose.lifting.lifters` for its contract).
        cfg: its :class:`~selfpose.lifting.config.LifterConfig`.
        in_mean, in_std: ``(in_dim,)`` z-scoring of the encoded 2D (visibility columns: 0, 1).
        out_mean, out_std: ``(3J,)`` z-scoring of the targets, mm.
        num_joints: ``J``.
        info: facts about training (best step, curve, data, seconds...).
        last_correction: counts of the correction's rules at the last :meth:`predict` (None: not run).
    """

    def __init__(self, net: nn.Module, cfg, in_mean, in_std, out_mean, out_std, num_joints: int,
                 info: dict | None = None):
        self.net, self.cfg, self.num_joints = net.eval(), cfg, int(num_joints)
        self.in_mean, self.in_std = in_mean.float().cpu(), in_std.float().cpu()
        self.out_mean, self.out_std = out_mean.float().cpu(), out_std.float().cpu()
        self.info = dict(info or {})
        self.last_correction: dict | None = None

    @property
    def method(self):
        """The :class:`~selfpose.lifting.lifters.LifterMethod` of ``cfg.method``."""
        from selfpose.lifting.lifters import LIFTERS

        return LIFTERS[self.cfg.method]

    @property
    def context(self) -> tuple[int, int]:
        """``(before, after)`` input frames each output needs."""
        return tuple(getattr(self.net, "context", (0, 0)))

    @property
    def feature_dim(self) -> int:
        """``F``: image-feature columns this lifter was trained with after the 3J + 2 keypoint columns (0: none)."""
        return int(self.in_mean.numel()) - 3 * self.num_joints - 2

    def check_features(self, arrays: LiftingArrays) -> None:
        """Refuse arrays whose image features do not match what the lifter was trained with (one line)."""
        got = 0 if arrays.features is None else int(arrays.features.shape[1])
        if got != self.feature_dim:
            want = (f"{self.feature_dim} image features per frame (evaluate with --keypoints-2d "
                    f"{self.cfg.keypoints_2d or 'RUN2D'})" if self.feature_dim else "keypoints only, no image features")
            raise LifterError(f"this lifter was trained on {want}; the frames given have {got} feature columns")

    def mean_pose(self) -> np.ndarray:
        """``(J, 3)`` the training targets' mean pose, mm, pelvis-centred: the answer of a lifter that reads no 2D."""
        with torch.no_grad():   # a z-score of zero is the mean
            return self.to_mm(torch.zeros(self.out_mean.numel())).double().numpy()

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Encoded 2D ``(..., in_dim)`` → the network's input (z-scored, missing → 0)."""
        return fill_missing((raw - self.in_mean.to(raw.device)) / self.in_std.to(raw.device))

    def to_mm(self, y: torch.Tensor) -> torch.Tensor:
        """Z-scored output ``(..., 3J)`` → ``(..., J, 3)`` mm, exactly pelvis-centred (differentiable)."""
        y = y.float() * self.out_std.to(y.device) + self.out_mean.to(y.device)
        y = y.view(*y.shape[:-1], self.num_joints, 3)
        return y - y[..., :1, :]

    def forward_mm(self, raw: torch.Tensor) -> torch.Tensor:
        """Encoded 2D → mm: ``(B, in_dim)`` → ``(B, J, 3)`` (single-frame nets), or ``(B, T, in_dim)`` → ``(B, T', J, 3)``."""
        if raw.dim() == 2:
            return self.to_mm(self.net(self.normalise(raw)[:, None]))[:, 0]
        return self.to_mm(self.net(self.normalise(raw)))

    def encode_sequences(self, arrays: LiftingArrays, noise=None, seed: int = 0) -> np.ndarray:
        """``(N, in_dim)`` encoded 2D of every frame; with ``noise``, drawn per whole sequence (so temporal
        dropouts span frames), seeded by ``(seed, sequence order)``."""
        if noise is None:
            return encode(arrays, None, self.cfg.input_norm)
        from selfpose.lifting.windows import sequence_bounds

        starts, ends = sequence_bounds(arrays.sequences)
        out = np.empty((len(arrays), int(self.in_mean.numel())), np.float32)
        for k, s in enumerate(np.unique(starts)):
            e = int(ends[s])
            rng = np.random.default_rng([seed, k])
            out[s:e] = encode(arrays, np.arange(s, e)[None], self.cfg.input_norm, noise, rng)[0]
        return out

    def predict(self, arrays: LiftingArrays, noise=None, seed: int = 0, correction: bool | None = None,
                batch_frames: int = 16384, raw: np.ndarray | None = None, flip: bool | None = None,
                clip: int | None = None) -> np.ndarray:
        """``(N, J, 3)`` float32 mm for every frame of ``arrays``.

        Args:
            noise: a :class:`~selfpose.lifting.noise.NoiseConfig` to corrupt the 2D first (seeded by ``seed``).
            correction: run the method's test-time correction (None: the method's default;
                a method without one ignores True). Its rule counts land in :attr:`last_correction`.
            batch_frames: input frames per forward pass (memory).
            raw: the encoded 2D (``(N, in_dim)``, e.g. from :meth:`encode_sequences`) instead of ``arrays``' own.
            flip: also predict from the mirrored 2D and average the two (None: the config's
                ``flip_test``); see :mod:`selfpose.lifting.flip`. The correction runs on each pass.
            clip: target frames per prediction window (None: the method's own, e.g.
                ``pose_machine.predict_clip``; 1024 for the others). A sequence shorter than
                the window is padded with copies of its last frame.
        """
        if raw is None:
            self.check_features(arrays)
            raw = self.encode_sequences(arrays, noise, seed)
        if not (self.cfg.flip_test if flip is None else flip):
            return self._predict(arrays, raw, correction, batch_frames, clip)
        from selfpose.lifting.flip import flip_3d, flip_encoded

        J = self.num_joints
        a = self._predict(arrays, raw, correction, batch_frames, clip)
        stats = self.last_correction
        b = flip_3d(self._predict(arrays, flip_encoded(np.asarray(raw, np.float32), J), correction, batch_frames,
                                    clip), J)
        if stats is not None and self.last_correction is not None:   # both passes' rule counts
            self.last_correction = {k: stats.get(k, 0) + self.last_correction.get(k, 0)
                                    for k in {*stats, *self.last_correction}}
        return (a + b) / 2

    def _predict(self, arrays: LiftingArrays, raw: np.ndarray, correction: bool | None,
                 batch_frames: int, clip: int | None = None) -> np.ndarray:
        """:meth:`predict` of one encoded 2D (no mirroring)."""
        from selfpose.lifting.windows import context_index, sequence_bounds, tile_sequences

        method = self.method
        use = correction
        if use is None:   # the method's own default (pose_machine: its correction section's `enabled`)
            use = bool(getattr(getattr(self.cfg.section, "correction", None), "enabled", False))
        correct = method.correct if use else None
        before, after = self.context
        if clip is None:
            clip = method.predict_clip(self.cfg) if method.predict_clip else 1024
        elif clip < 1:
            raise LifterError(f"clip must be >= 1 frame, got {clip}")
        starts, ends = sequence_bounds(arrays.sequences)
        firsts = tile_sequences(starts, ends, clip)
        out = np.full((len(arrays), self.num_joints, 3), np.nan, np.float32)
        per = max(1, batch_frames // (before + clip + after))
        stats: dict = {}
        x_all = self.normalise(torch.from_numpy(np.asarray(raw, np.float32)))
        self.net.eval()
        for b in range(0, len(firsts), per):
            f = firsts[b:b + per]
            inp, tgt = context_index(starts[f], ends[f], f, clip, before, after)
            xb = x_all[torch.from_numpy(inp)]
            with torch.inference_mode():
                y = self.net(xb)
            if correct is not None:
                y, s = correct(self, xb, y.clone(), self.cfg)
                for k, v in s.items():
                    stats[k] = stats.get(k, 0) + v
            with torch.inference_mode():
                mm = self.to_mm(y).numpy()
            # Only the window's own frames: a clip padded past its sequence's end repeats the last frame.
            real = (f[:, None] + np.arange(clip)[None]) < ends[f][:, None]
            out[tgt[real]] = mm[real]
        self.last_correction = stats if correct is not None else None
        return out

    def save(self, folder: str | Path) -> None:
        """``folder/lifter.safetensors`` + ``folder/lifter.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors.update({"norm.in_mean": self.in_mean, "norm.in_std": self.in_std,
                        "norm.out_mean": self.out_mean, "norm.out_std": self.out_std})
        save_file(tensors, str(folder / WEIGHTS))
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg),
                "in_dim": int(self.in_mean.numel()), "num_joints": self.num_joints, **self.info}
        (folder / META).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> "Lifter":
        """Read a run folder written by :func:`selfpose.lifting.train.fit_lifter_run`."""
        from selfpose.config import ConfigError
        from selfpose.lifting.config import LifterConfig, upgrade_config_dict
        from selfpose.lifting.lifters import LIFTERS
        from selfpose.utils.bundle import read_bundle

        meta, tensors = read_bundle(Path(folder), WEIGHTS, META, FORMAT, VERSION, LifterError, "a lifter",
                                    "run fit-lifter again")
        try:
            cfg = from_dict(LifterConfig, upgrade_config_dict(meta["config"]))
        except ConfigError as e:
            raise LifterError(f"{folder}: its config does not load with this selfpose ({e}); run fit-lifter again") \
                from None
        J = int(meta["num_joints"])
        net = LIFTERS[cfg.method](int(meta["in_dim"]), 3 * J, cfg)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        info = {k: v for k, v in meta.items() if k not in ("format", "version", "config", "in_dim", "num_joints")}
        return cls(net, cfg, tensors["norm.in_mean"], tensors["norm.in_std"], tensors["norm.out_mean"],
                   tensors["norm.out_std"], J, info)
