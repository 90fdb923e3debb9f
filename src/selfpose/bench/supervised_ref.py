"""Reference ``supervised``: the full method's network trained end to end from scratch on the cell's labels.

Honari et al.'s baseline (b) (:mod:`selfpose.pose.supervised`) as a
benchmark row at every label share: the same detector + encoder as the full
method (its resolved ``model`` section; no decoder, nothing is
reconstructed) and the same MLP head, trained on exactly the labelled frames
of the share with the same validation split (``val_by`` of the benchmark:
held-out people by default), for the same budget — by default the
pretraining steps plus the pose-head steps. ``supervised_upper`` is its cell
at 100% of the labels, the row a method's features would have to match.
With ``supervised: {crop: true_box}`` the network reads the true person box
instead of learning its detector from the pose loss alone (see
:mod:`selfpose.pose.supervised`); the report says which.
"""

from __future__ import annotations

from pathlib import Path

#: Keys of the ``supervised`` section the benchmark sets itself (the same network, the cell's labels and split).
FIXED_KEYS = ("model", "fraction", "seed", "val_by")


def supervised_config(cfg, share: float, seed: int):
    """The :class:`~selfpose.pose.supervised.SupervisedConfig` of the supervised cell at ``share`` and ``seed``.

    ``cfg.supervised`` ← the full method's model, ``share``, ``seed``, ``cfg.val_by``;
    ``steps`` defaults to ``cfg.steps + cfg.pose_steps``, ``threads`` to the pretraining's and ``device`` to
    the benchmark's.
    """
    from selfpose.bench.run import pretrain_config
    from selfpose.config import from_dict, to_dict
    from selfpose.pose.supervised import SupervisedConfig

    pcfg = pretrain_config(cfg, "temporal", seed)
    d = {"steps": cfg.steps + cfg.pose_steps, "threads": pcfg.train.threads, "device": cfg.device, **cfg.supervised,
         "model": to_dict(pcfg.model), "fraction": share, "seed": seed, "val_by": cfg.val_by}
    return from_dict(SupervisedConfig, d)


def supervised_cell(train_dir: Path, test_dir: Path, scfg, out: Path, progress: bool) -> dict:
    """Train the baseline (saved to ``out``), score it on every test frame.

    Returns:
        The cell's metrics (``n_mpjpe``, ``mpjpe``, ``p_mpjpe`` mm, ``box_iou``
        of its detector), ``frames``, ``labelled``, ``val_n_mpjpe`` (the kept
        step's), ``best_step``, and the ``train_subjects``/``val_subjects`` of
        its split.
    """
    from selfpose.data.store import Dataset
    from selfpose.pose.evaluate import evaluate, summary
    from selfpose.pose.features import extract
    from selfpose.pose.labels import label_subset
    from selfpose.pose.supervised import train_supervised

    train, test = Dataset.open(train_dir), Dataset.open(test_dir)
    sm = train_supervised(train, scfg, progress=progress)
    sm.save(out)
    fs = extract(sm.feature_fn, test, label_subset(test, 1.0, finite_only=False), batch_size=scfg.eval_batch_size,
                 device=next(sm.parameters()).device, autocast=scfg.autocast, progress=progress, pass_boxes=sm.needs_boxes)
    res = summary(evaluate(sm.pose.predict(fs), fs))
    labelled = label_subset(train, scfg.fraction, seed=scfg.seed)
    return {**res, "labelled": int(len(labelled)), "val_n_mpjpe": sm.pose.best_val_n_mpjpe,
            "best_step": sm.best_step, **sm.split}
