"""Is the synchronisation pretext task solved? Accuracy of a sync run's two heads on held-out pairs.

Pairs are drawn by :class:`~selfpose.data.samplers.SyncPairSampler` from
data the run did not train on (held-out takes, or a block of frames kept
apart from the training frames by more than the largest time offset), with
a fixed seed, and classified by the run's heads in eval mode (no jitter, no
order swap). Reported per task: accuracy (threshold ½), the share of each
class, and a 95% confidence interval by a **cluster bootstrap** over the
instants of the pairs' first images: pairs drawn from one short take share
frames, so treating them as independent would make the interval far too
narrow. Chance is 50% for both tasks (balanced classes: ``sync_prob`` ½;
``flip_prob`` ½ among synchronised pairs, which alone are scored for flips).
Also ``sync_unflipped`` (whenever some pairs are flipped and the unflipped
ones hold both classes): the sync head on the pairs that are not flipped,
balanced over its two classes — only synchronised pairs are flipped, so a
head that detects flips knows those pairs are synchronised; this score is
free of that leak.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from selfpose.errors import SelfposeError
from selfpose.utils.jsonsafe import jsonable


def cluster_bootstrap_ci(correct: np.ndarray, clusters: np.ndarray, reps: int = 2000, seed: int = 0,
                         level: float = 0.95, classes: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile interval of the accuracy, resampling whole clusters with replacement.

    Args:
        correct: ``(n,)`` bool, one per scored pair.
        clusters: ``(n,)`` cluster label of each pair (pairs of one cluster are resampled together).
        reps: bootstrap replicates.
        level: coverage of the interval.
        classes: ``(n,)`` class of each pair (e.g. the truth) for a **balanced**
            accuracy: each replicate averages the per-class accuracies of its
            own draw, so the interval does not move with the drawn class mix.
            None: the plain accuracy.

    Returns:
        ``(low, high)`` accuracies in [0, 1] (NaN, NaN when nothing is scored).
    """
    correct = np.asarray(correct, bool)
    if correct.size == 0:
        return float("nan"), float("nan")
    labels, inv = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(labels)
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, k, size=(reps, k))
    kinds = [None] if classes is None else list(np.unique(np.asarray(classes)))
    per_class = []
    for c in kinds:
        m = np.ones(correct.shape, bool) if c is None else np.asarray(classes) == c
        hits = np.bincount(inv[m], weights=correct[m].astype(np.float64), minlength=k)
        sizes = np.bincount(inv[m], minlength=k).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class.append(hits[draw].sum(axis=1) / sizes[draw].sum(axis=1))
    # A replicate that drew no pair of some class has no balanced accuracy: left out (NaN).
    acc = np.mean(per_class, axis=0)
    acc = acc[np.isfinite(acc)]
    if not acc.size:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(acc, a)), float(np.quantile(acc, 1 - a))


def run_sampler_kwargs(sampler) -> dict:
    """A run's ``sampler`` config section → the :class:`~selfpose.data.samplers.SyncPairSampler` arguments that
    draw pairs as that run was trained on (offsets in seconds, still fraction, single view, mirrored
    unsynchronised pairs), for :func:`pretext_scores`' ``sampler_kwargs``."""
    return dict(min_offset_s=sampler.sync_min_offset_s, max_offset_s=sampler.sync_max_offset_s,
                still_fraction=sampler.still_fraction, motion_gap_s=sampler.motion_gap_s,
                single_view=sampler.single_view, flip_unsync=sampler.flip_unsync)


def format_accuracy(score: dict | None) -> str:
    """One task's score of :func:`pretext_scores` → ``"61.5% [58.6, 64.3]"`` (accuracy, 95% interval); ``"—"``
    when the task was not scored."""
    if not score:
        return "—"
    lo, hi = score["ci95"]
    return f"{100 * score['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


@torch.no_grad()
def pretext_scores(method, ds, num_pairs: int = 2000, seed: int = 0, batch_size: int = 64,
                   sampler_kwargs: dict | None = None, keep_batches: bool = False) -> dict:
    """Sync and flip accuracy of ``method`` (a sync run's method) on pairs drawn from ``ds``.

    Args:
        method: a :class:`~selfpose.methods.sync.SyncMethod` (eval mode is set here).
        ds: the opened dataset to draw the pairs from (held-out data).
        num_pairs: pairs to draw (with replacement; the interval accounts for repeats).
        seed: the pairs' seed.
        sampler_kwargs: :class:`~selfpose.data.samplers.SyncPairSampler` arguments
            (offsets, ``still_fraction``, ``frame_range``…); use the run's own
            ``sampler`` settings for the offsets.
        keep_batches: also return the loaded pairs (``"batch"``), e.g. for :func:`pair_grid`.

    Returns:
        ``{"sync": {...}, "flip": {...}, "pairs", "clusters"}``; per task ``accuracy``,
        ``ci95`` (low, high), ``scored`` pairs, ``positives`` (share of the positive class),
        ``chance`` 0.5; plus per pair ``p_sync``/``p_flip``, ``sync``/``flip`` truth, ``cluster``.
    """
    from selfpose.data.loader import TupleDataset
    from selfpose.data.samplers import SyncPairSampler

    sampler = SyncPairSampler(ds, **(sampler_kwargs or {}))
    pairs = sampler.sample(num_pairs, np.random.default_rng(seed))
    loader = TupleDataset(ds, sampler, labels=method.batch_labels(1))
    was = method.training
    method.eval()
    probs: dict[str, list[np.ndarray]] = {}
    batches = []
    try:
        for a in range(0, num_pairs, batch_size):
            sl = slice(a, a + batch_size)
            part = type(pairs)(pairs.seq[sl], pairs.frames[sl], {k: v[sl] for k, v in pairs.extras.items()})
            batch = loader.load(part)
            logits, _ = method.pair_logits(batch)
            for t, z in logits.items():
                probs.setdefault(t, []).append(torch.sigmoid(z).cpu().numpy())
            if keep_batches:
                batches.append(batch)
    finally:
        method.train(was)
    sync, flip = pairs.extras["sync"], pairs.extras["flip"]
    ids = np.array([loader.records[q]["frame_ids"][f] if loader.records[q].has("frame_ids") else f
                    for q, f in zip(pairs.seq[:, 0], pairs.frames[:, 0])])
    takes = np.array([loader.records[q].meta.take for q in pairs.seq[:, 0]])
    cluster = np.char.add(np.char.add(takes.astype(str), "@"), ids.astype(str))
    out: dict = {"pairs": int(num_pairs), "clusters": int(len(np.unique(cluster))), "sync_truth": sync,
                 "flip_truth": flip, "cluster": cluster}
    for t, p in probs.items():
        p = np.concatenate(p)
        truth, scored = (sync, np.ones_like(sync)) if t == "sync" else (flip, sync)
        right = (p > 0.5) == truth
        low, high = cluster_bootstrap_ci(right[scored], cluster[scored], seed=seed)
        out[t] = {"accuracy": float(right[scored].mean()) if scored.any() else float("nan"), "ci95": (low, high),
                  "scored": int(scored.sum()), "positives": float(truth[scored].mean()) if scored.any() else float("nan"),
                  "chance": 0.5}
        out[f"p_{t}"] = p
        keep = ~flip
        if t == "sync" and flip.any() and (sync & keep).any() and (~sync & keep).any():
            # Only synchronised pairs are flipped (unless the sampler's flip_unsync), so a head that spots a
            # flip knows the pair is synchronised: a flip cue (a lighting shortcut, say) leaks into the sync
            # score. Scored on the unflipped pairs alone, balanced over the two classes (chance 50%).
            acc = 0.5 * (right[keep & sync].mean() + right[keep & ~sync].mean())
            low, high = cluster_bootstrap_ci(right[keep], cluster[keep], seed=seed, classes=sync[keep])
            out["sync_unflipped"] = {"accuracy": float(acc), "ci95": (low, high), "scored": int(keep.sum()),
                                     "positives": float(sync[keep].mean()), "chance": 0.5, "balanced": True}
    if keep_batches:
        out["batch"] = {k: torch.cat([b[k] for b in batches]) for k in batches[0]} if batches else {}
    return out


def pick_pairs(scores: dict, task: str = "sync", per_kind: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Indices of up to ``per_kind`` correctly and wrongly classified pairs of ``task`` (for a picture),
    half of each synchronised and half unsynchronised where the pairs allow."""
    p, truth = scores[f"p_{task}"], scores[f"{task}_truth"]
    scored = np.ones_like(truth) if task == "sync" else scores["sync_truth"]
    right = ((p > 0.5) == truth) & scored
    wrong = ((p > 0.5) != truth) & scored

    def some(mask):
        pos, neg = np.flatnonzero(mask & truth), np.flatnonzero(mask & ~truth)
        h = per_kind // 2
        take = list(pos[:h]) + list(neg[:per_kind - min(h, len(pos))])
        return np.array(sorted(take[:per_kind]), np.int64)

    return some(right), some(wrong)


class PretextError(SelfposeError):
    """A run or data that pretext scores cannot be computed on (one line, says what to do)."""


def evaluate_pretext(run_dir, data, out=None, subjects=None, frames: tuple[int, int] | None = None,
                     pairs: int = 2000, seed: int = 0) -> dict:
    """A sync run's pretext accuracy on held-out data: ``selfpose evaluate RUN --data D`` for ``method=sync``.

    Pairs are drawn as the run drew them while training (its ``sampler`` offsets, still fraction, single
    view, mirrored unsynchronised pairs; :func:`run_sampler_kwargs`) from ``data`` — other people's takes
    (``subjects``), or a block of frame ids ``frames = (first, stop)`` kept apart from the training frames
    by more than the largest offset — and scored by :func:`pretext_scores`.

    Writes into ``out`` (default ``RUN/pretext``; replaced file by file, nothing else touched):
    ``pretext.json`` (scores, pairs, data, checkpoint step), ``pretext.md`` and ``pairs_correct.png`` /
    ``pairs_wrong.png`` (up to eight pairs each, the sync head's right and wrong answers).

    Returns:
        ``{"sync", "flip", "sync_unflipped"}`` per task as :func:`pretext_scores` (those scored), plus
        ``pairs``, ``clusters``, ``step``, ``run``, ``data``, ``subjects``, ``frames``, ``out``.
    """
    from pathlib import Path

    from selfpose.data.samplers import SamplerError
    from selfpose.data.store import Dataset
    from selfpose.methods.sync import pair_grid
    from selfpose.outputs import output_kind, replace_text
    from selfpose.pretrain import load_config, load_run
    from selfpose.viz.model_pictures import save_png

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise PretextError(f"{run_dir} is not a pretraining run (no config.yaml; see `selfpose pretrain`)")
    cfg = load_config(run_dir)
    if cfg.method != "sync":
        raise PretextError(f"{run_dir} is a run of method {cfg.method}: pretext scores exist for method=sync "
                           f"runs; to score its pose, fit a head (`selfpose fit-pose {run_dir} ...`) and "
                           "evaluate that pose folder")
    if pairs < 2:
        raise PretextError(f"--pairs must be at least 2, got {pairs}")
    out = Path(out) if out is not None else run_dir / "pretext"
    kind = output_kind(out) if out.is_dir() else None
    if kind is not None:   # its files would mix with that output's
        raise PretextError(f"{out} is a selfpose {kind} folder; the pretext scores go into a folder of their own "
                           "(default: RUN/pretext) — choose another --out")
    ds = Dataset.open(data).with_subjects(subjects)
    run = load_run(run_dir)
    kw = {**run_sampler_kwargs(cfg.sampler), **({"frame_range": tuple(frames)} if frames is not None else {})}
    try:
        s = pretext_scores(run.method, ds, num_pairs=pairs, seed=seed, sampler_kwargs=kw, keep_batches=True)
    except SamplerError as e:
        raise PretextError(f"no pairs to score in {data}: {e}") from e
    res = {t: s[t] for t in ("sync", "flip", "sync_unflipped") if t in s}
    res.update(pairs=s["pairs"], clusters=s["clusters"], step=run.step, run=str(run_dir.resolve()),
               data=str(Path(data).resolve()), subjects=ds.subjects(), frames=list(frames) if frames else None,
               out=str(out), sampler=kw)
    out.mkdir(parents=True, exist_ok=True)
    right, wrong = pick_pairs(s, "sync", per_kind=8)
    for which, idx in (("correct", right), ("wrong", wrong)):
        path = out / f"pairs_{which}.png"
        if len(idx):
            sub = {k: v[idx] for k, v in s["batch"].items()}
            save_png(pair_grid(run.method, sub, max_pairs=len(idx), cell_px=160,
                               title=f"sync head, {which} (step {run.step})"), path)
        else:
            path.unlink(missing_ok=True)   # an earlier evaluation's picture would no longer match
    replace_text(out / "pretext.json", json.dumps(jsonable(res), indent=1))
    replace_text(out / "pretext.md", pretext_markdown(res))
    return res


def pretext_markdown(res: dict) -> str:
    """:func:`evaluate_pretext`'s result as a short Markdown report."""
    rows = [("sync (every pair)", "sync"), ("sync, unflipped pairs, balanced (free of the flip leak)",
                                            "sync_unflipped"), ("flip (synchronised pairs)", "flip")]
    table = "\n".join(f"| {name} | {format_accuracy(res.get(k))} | {res[k]['scored']} |" for name, k in rows
                      if res.get(k))
    where = (f"subjects {', '.join(res['subjects'])}" + (f", frames {res['frames'][0]}–{res['frames'][1] - 1}"
                                                          if res.get("frames") else ""))
    return (f"# Pretext accuracy of {res['run']} (step {res['step']})\n\n"
            f"{res['pairs']} pairs drawn from `{res['data']}` ({where}; {res['clusters']} distinct first instants), "
            "as the run drew them while training; 95% interval: cluster bootstrap over the instants. Chance 50%.\n\n"
            "| task | accuracy [95% interval] | pairs scored |\n|---|---:|---:|\n" + table + "\n\n"
            "![the sync head's right answers](pairs_correct.png)\n\n![its wrong answers](pairs_wrong.png)\n")


__all__ = ("cluster_bootstrap_ci", "pretext_scores", "pick_pairs", "evaluate_pretext", "pretext_markdown",
           "PretextError")
