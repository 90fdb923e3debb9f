"""Closed-form probes beside the MLP head: ridge regression and k nearest neighbours on standardised features.

The MLP head of :mod:`selfpose.pose.fit` has capacity of its own (two layers
of 2048); the self-supervised-learning literature also reads a representation
with probes that have almost none, so that the score is what the features
already hold. :func:`fit_probes` fits them on the pose stage's training
frames and chooses their one setting on its validation frames (the same
split as the head, held-out subjects in the benchmark):

* ``ridge``: ``[z, 1] @ W`` with ``z`` the features z-scored with the
  training rows' statistics; the ridge weight is chosen among
  ``ridge_alphas`` (:func:`selfpose.pose.probes.select_ridge`);
* ``knn``: the mean pose of the ``k`` nearest training rows in ``z``
  (Euclidean), ``k`` chosen among ``knn_ks``.

Without validation frames the first value of each list is used. The fitted
probes keep the standardisation, the ridge weights and the k-NN bank (the
training rows' standardised features and poses: ``N × (D + 3J)`` float32, e.g.
about 70 MB for 96,000 frames of 128-d features) in
``probes.safetensors`` + ``probes.json`` (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from selfpose.config import ConfigError, from_dict, to_dict
from selfpose.errors import SelfposeError

PROBES = ("ridge", "knn")
FORMAT = "selfpose-probes"
VERSION = 1
WEIGHTS = "probes.safetensors"
META = "probes.json"


class ProbeFitError(SelfposeError, RuntimeError):
    """Probes cannot be fitted, saved or loaded as asked."""


@dataclass
class ProbeConfig:
    """The closed-form probes of the pose stage (strict: unknown keys are errors).

    Attributes:
        kinds: which probes to fit, among ``ridge`` and ``knn``; empty: none.
        ridge_alphas: candidate ridge weights (relative to the mean diagonal
            of ``zᵀz``, :func:`selfpose.pose.probes.ridge_fit`); the first is
            used when there is no validation set.
        knn_ks: candidate neighbour counts; the first is used without validation.
        knn_val_rows: at most this many held-out rows choose ``k`` (evenly spaced
            over them, so every held-out sequence keeps its share); None: all.
            The search costs held-out rows × training rows distances: at 100%
            of 186,740 labelled frames, choosing on all ~40,000 held-out rows
            took most of a 12-minute pose cell on 2 cores.
    """

    kinds: tuple[Literal["ridge", "knn"], ...] = PROBES
    ridge_alphas: tuple[float, ...] = (1e-3, 1e-4, 1e-2, 1e-1, 1.0)
    knn_ks: tuple[int, ...] = (10, 1, 5, 20, 50)
    knn_val_rows: int | None = 5000

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in PROBES]
        if bad or len(set(self.kinds)) != len(self.kinds):
            raise ConfigError(f"probes.kinds must be distinct values among {', '.join(PROBES)}, got {list(self.kinds)}")
        if not self.ridge_alphas or any(not (np.isfinite(a) and a >= 0) for a in self.ridge_alphas):
            raise ConfigError(f"probes.ridge_alphas must be finite numbers >= 0, got {list(self.ridge_alphas)}")
        if not self.knn_ks or any(int(k) != k or k < 1 for k in self.knn_ks):
            raise ConfigError(f"probes.knn_ks must be whole numbers >= 1, got {list(self.knn_ks)}")
        if self.knn_val_rows is not None and self.knn_val_rows < 1:
            raise ConfigError(f"probes.knn_val_rows must be >= 1 or null, got {self.knn_val_rows}")


def knn_selection_rows(n: int, cap: int | None) -> np.ndarray:
    """Indices of the held-out rows that choose ``k``: all ``n``, or ``cap`` evenly spaced ones (sorted, unique)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))


class FittedProbes:
    """Fitted probes: standardised features ``(N, D)`` → pelvis-centred 3D ``(N, J, 3)`` mm per probe.

    Attributes:
        cfg: the :class:`ProbeConfig`.
        mean, std: ``(D,)`` standardisation of the features (training rows).
        ridge_w: ``(D + 1, 3J)`` ridge weights, or None.
        bank_x, bank_y: ``(N, D)`` standardised training features and their
            ``(N, J, 3)`` poses for k-NN, or None.
        chosen: ``{"ridge": alpha, "knn": k}`` of the fitted probes.
        val_n_mpjpe: ``{probe: {str(value): validation N-MPJPE mm}}`` (empty without validation).
        num_joints: ``J``.
    """

    def __init__(self, cfg: ProbeConfig, mean: np.ndarray, std: np.ndarray, num_joints: int,
                 ridge_w: np.ndarray | None = None, bank_x: np.ndarray | None = None,
                 bank_y: np.ndarray | None = None, chosen: dict | None = None, val_n_mpjpe: dict | None = None):
        self.cfg, self.mean, self.std, self.num_joints = cfg, mean, std, int(num_joints)
        self.ridge_w, self.bank_x, self.bank_y = ridge_w, bank_x, bank_y
        self.chosen, self.val_n_mpjpe = dict(chosen or {}), dict(val_n_mpjpe or {})

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in PROBES if k in self.chosen)

    def _z(self, features) -> np.ndarray:
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ProbeFitError(f"the probes take (N, {len(self.mean)}) features, got shape {x.shape}; were the "
                                "features extracted with the same model?")
        return (x - self.mean) / self.std

    def predict(self, features) -> dict[str, np.ndarray]:
        """``{probe: (N, J, 3) float32 mm}`` pelvis-centred poses from ``(N, D)`` raw (unstandardised) features."""
        from selfpose.pose.probes import knn_predict, ridge_predict

        z = self._z(features)
        out = {}
        if self.ridge_w is not None:
            out["ridge"] = ridge_predict(self.ridge_w, z, (self.num_joints, 3))
        if self.bank_x is not None:
            out["knn"] = knn_predict(self.bank_x, self.bank_y, z, k=int(self.chosen["knn"]))
        return {k: (v - v[:, :1]).astype(np.float32) for k, v in out.items()}   # exactly pelvis-centred

    def info(self) -> dict:
        """What was chosen and how it scored on validation (for ``pose.json``)."""
        return {k: {"chosen": self.chosen[k], "val_n_mpjpe": self.val_n_mpjpe.get(k, {})} for k in self.kinds}

    def save(self, path: str | Path) -> Path:
        """Write ``path/probes.safetensors`` and ``path/probes.json``."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "std": self.std}
        if self.ridge_w is not None:
            arrays["ridge_w"] = self.ridge_w
        if self.bank_x is not None:
            arrays.update(bank_x=self.bank_x, bank_y=self.bank_y)
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path / WEIGHTS))
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg), "num_joints": self.num_joints,
                "chosen": self.chosen, "val_n_mpjpe": self.val_n_mpjpe}
        (path / META).write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FittedProbes":
        """Read probes written by :meth:`save`."""
        from selfpose.utils.bundle import read_bundle

        meta, tensors = read_bundle(path, WEIGHTS, META, FORMAT, VERSION, ProbeFitError, "probes",
                                    "fit the pose head again")
        a = {k: v.numpy() for k, v in tensors.items()}
        return cls(from_dict(ProbeConfig, meta["config"]), a["mean"], a["std"], meta["num_joints"], a.get("ridge_w"),
                   a.get("bank_x"), a.get("bank_y"), meta["chosen"], meta["val_n_mpjpe"])


def fit_probes(train, cfg: ProbeConfig, val=None) -> FittedProbes | None:
    """Fit ``cfg.kinds`` on a training :class:`~selfpose.pose.features.FeatureSet`, choosing on ``val``.

    Args:
        train: labelled features (``joints3d``, pelvis-centred mm).
        cfg: :class:`ProbeConfig`.
        val: validation features (the pose head's), or None: the first
            value of each list is used.

    Returns:
        The :class:`FittedProbes`, or None when ``cfg.kinds`` is empty.
    """
    from selfpose.pose.probes import ridge_fit, scale_of, select_knn, select_ridge

    if not cfg.kinds:
        return None
    has_val = val is not None and len(val) > 0
    if train.joints3d is None or (has_val and val.joints3d is None):
        raise ProbeFitError("the probes need 3D labels on the training and validation frames")
    mean, std = scale_of(train.features)
    z = (np.asarray(train.features, np.float64) - mean) / std
    zv = (np.asarray(val.features, np.float64) - mean) / std if has_val else None
    y = train.joints3d.astype(np.float64)
    chosen: dict = {}
    scores: dict = {}
    ridge_w = bank_x = bank_y = None
    if "ridge" in cfg.kinds:
        if has_val:
            chosen["ridge"], s = select_ridge(z, y, zv, val.joints3d, cfg.ridge_alphas)
            scores["ridge"] = {f"{a:g}": v for a, v in s.items()}
        else:
            chosen["ridge"] = float(cfg.ridge_alphas[0])
        ridge_w = ridge_fit(z, y, chosen["ridge"])
    if "knn" in cfg.kinds:
        # The bank is kept in float32; choose k on exactly the bank that will be searched.
        bank_x, bank_y = z.astype(np.float32), train.joints3d.astype(np.float32)
        if has_val:
            rows = knn_selection_rows(len(zv), cfg.knn_val_rows)
            chosen["knn"], s = select_knn(bank_x, bank_y, zv[rows], val.joints3d[rows], cfg.knn_ks)
            scores["knn"] = {str(k): v for k, v in s.items()}
        else:
            chosen["knn"] = int(cfg.knn_ks[0])
    return FittedProbes(cfg, mean, std, y.shape[1], ridge_w, bank_x, bank_y, chosen, scores)
