"""Reference ``random_same_crop``: the untrained network's encoder on the crop a trained method reads.

The ``random`` reference runs the full method's network frozen at its random
initialisation end to end, untrained detector included; that detector cuts a
fixed centred square that keeps where the person stands, while a trained
method's tight box throws that away — the two rows differ in their crop, not
only in their encoder (issue 14). Here the random encoder reads exactly the
crop of another source:

* a method with a detector (``same_crop_of: temporal``, the default): the
  crop its trained detector cuts (``theta`` of its encoding: the square
  around the box when ``model.square_crop``), per frame;
* ``same_crop_of: true_box``, or a method without a detector: the true person
  box, cut as a detector that found it exactly would cut it (the encoder
  model's ``crop_theta``: square × ``crop_margin``).

Crop boxes are STN parameters θ (normalised to the frame), so they carry
over between the two models whatever their input size. Features are ``v``
of the random model (its pose code, as for the full method).
"""

from __future__ import annotations

import torch

from selfpose.models.stn import box_px_to_theta, theta_to_box_px

TRUE_BOX = "true_box"


def crop_theta_of(crop_method, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """``(θ (B, 4), detector boxes (B, 4) px of frames or None, final)`` of ``crop_method`` on ``frames``.

    ``final``: θ is the crop the method cut (its ``encoded["theta"]``); else
    it is the detector's box, to be turned into a crop by the encoder model.
    """
    model = getattr(crop_method, "model", None)
    if getattr(model, "detector", None) is not None and hasattr(model, "crop_theta"):
        # A temporal-family model: its detector alone gives the crop (what encode() cuts), no encoder pass.
        x = model.prepare(frames)
        box = model.detect(x).float()
        H, W = frames.shape[-2:]
        return model.crop_theta(box, tuple(x.shape[-2:])).float(), theta_to_box_px(box, W, H), True
    out = crop_method.encode_for_pose(frames)
    enc = out.get("encoded")
    if isinstance(enc, dict) and enc.get("theta") is not None:
        return enc["theta"].float(), out.get("boxes"), True
    if out.get("theta") is not None:
        return out["theta"].float(), out.get("boxes"), False
    if out.get("boxes") is not None:
        H, W = frames.shape[-2:]
        return box_px_to_theta(out["boxes"].float(), W, H), out["boxes"], False
    from selfpose.bench.run import BenchmarkError

    raise BenchmarkError(f"method {getattr(crop_method, 'name', '?')!r} gives no box (it has no detector); "
                         f"use same_crop_of: {TRUE_BOX}")


def same_crop_feature_fn(encoder_method, crop_method=None):
    """``feature_fn`` of :mod:`selfpose.pose.features`: ``v`` of ``encoder_method`` (a temporal-family method)
    on the crop of ``crop_method`` — or, with ``crop_method=None``, on the true box (extract with
    ``pass_boxes=True``: the function then takes ``(frames, boxes)``).

    Returns ``{"features": (B, D), "boxes": (B, 4) px}`` — the crop source's
    detector boxes, or the true boxes — for the benchmark's box IoU.
    """
    model = encoder_method.model

    def encode(frames: torch.Tensor, theta: torch.Tensor, final: bool) -> torch.Tensor:
        x = model.prepare(frames)
        v, _ = (model.encode_crop(model.crop(x, theta.to(x.device, torch.float32))) if final
                else model.encode_box(x, theta))
        return v.float()

    if crop_method is None:
        def fn(frames: torch.Tensor, boxes: torch.Tensor) -> dict:
            H, W = frames.shape[-2:]
            theta = box_px_to_theta(boxes.float(), W, H)
            return {"features": encode(frames, theta, False), "boxes": boxes.float()}
    else:
        def fn(frames: torch.Tensor) -> dict:
            theta, boxes, final = crop_theta_of(crop_method, frames)
            if boxes is None:
                H, W = frames.shape[-2:]
                boxes = theta_to_box_px(theta, W, H)
            return {"features": encode(frames, theta, final), "boxes": boxes.float()}
    return fn


def same_crop_caches(random_run, crop_run, train_ds, test_ds, batch_size: int, autocast: bool,
                     progress: bool) -> tuple:
    """``(train, test)`` :class:`~selfpose.pose.features.FeatureCache` of the random encoder on the crop of
    ``crop_run`` (a loaded run, or None for the true box; a run whose method has no detector also
    reads the true box)."""
    from selfpose.pose.features import FeatureCache

    crop_method = crop_run.method if crop_run is not None and crop_run.method.has_detector else None
    for m in (random_run.method, crop_method):
        if m is not None:
            m.eval()
    fn = same_crop_feature_fn(random_run.method, crop_method)
    kw = dict(batch_size=batch_size, autocast=autocast, progress=progress, pass_boxes=crop_method is None,
              device=next(random_run.method.parameters()).device)   # where the benchmark put the runs
    return FeatureCache(fn, train_ds, source=random_run, **kw), FeatureCache(fn, test_ds, source=random_run, **kw)
