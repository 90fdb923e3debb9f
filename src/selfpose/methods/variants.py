"""The main method's ablations and the single-view baselines that differ from it only in switches.

Honari et al. (TPAMI 2022, Tables I and V) compare the full method
(DSL-STN-Dec-Split) with versions that drop one part at a time, and with a
contrastive baseline (CSS) on the same encoder. Here each of them is the
temporal method with a few model/loss switches set, so every variant has the
same detector, encoder and decoder capacity and only the losses differ:

=====================  =========  ========  =======  ============
variant                detector   decoder   split    contrastive
=====================  =========  ========  =======  ============
``temporal`` (full)    yes        yes       yes      DSL
``dsl``                no         no        no       DSL
``dsl_stn``            yes        no        no       DSL
``dsl_stn_dec``        yes        yes       no       DSL
``ae_stn_dec``         yes        yes       no       none
``css_stn_dec_split``  yes        yes       yes      InfoNCE
``css``                no         no        no       InfoNCE
``mv_css``             no         no        no       triplet, multi-view
``drnet``              yes        yes       yes      none (+ DrNet's own terms)
``nsd``                yes        yes       yes      none (decodes the other view)
=====================  =========  ========  =======  ============

Without a detector the encoder sees the whole frame (θ = identity). The
InfoNCE variants train on (reference, near positive, two far negatives) of
one video (:class:`~selfpose.data.samplers.ContrastivePairSampler`);
``mv_css`` (MV-CSS, time-contrastive networks) on an anchor, the same instant
in another synchronised view and a far frame of the anchor's video
(:class:`~selfpose.data.samplers.MultiViewTripletSampler`); the others on
DSL tuples. A variant's switches override the config it is given
(``method=dsl model.decoder=true`` is still ``dsl``): the name says what is
trained, and the run folder's ``config.yaml`` records the resolved values.
Models that do not split use their whole latent for pose; split models ``v``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One row of the table above.

    Attributes:
        name: registry name (``method=<name>``).
        paper_name: the name in the paper's tables.
        model: ``ModelConfig`` fields the variant sets.
        loss: ``LossConfig`` fields the variant sets.
    """

    name: str
    paper_name: str
    model: dict[str, Any]
    loss: dict[str, Any]


_NO_DET = {"detector": False, "decoder": False, "split": False}
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("temporal", "DSL-STN-Dec-Split", {"detector": True, "decoder": True, "split": True},
            {"contrastive": "dsl"}),
    Variant("dsl", "DSL", dict(_NO_DET), {"contrastive": "dsl"}),
    Variant("dsl_stn", "DSL-STN", {"detector": True, "decoder": False, "split": False}, {"contrastive": "dsl"}),
    Variant("dsl_stn_dec", "DSL-STN-Dec", {"detector": True, "decoder": True, "split": False},
            {"contrastive": "dsl"}),
    Variant("ae_stn_dec", "AE-STN-Dec", {"detector": True, "decoder": True, "split": False},
            {"contrastive": "none"}),
    Variant("css_stn_dec_split", "CSS-STN-Dec-Split", {"detector": True, "decoder": True, "split": True},
            {"contrastive": "css"}),
    Variant("css", "CSS", dict(_NO_DET), {"contrastive": "css"}),
    Variant("mv_css", "MV-CSS", dict(_NO_DET), {"contrastive": "tcn"}),
    # Switches only; its content-similarity and scene-discriminator terms are in methods/drnet.py.
    Variant("drnet", "DrNet", {"detector": True, "decoder": True, "split": True}, {"contrastive": "none"}),
    # Switches only; the cross-view decoding is in methods/nsd.py.
    Variant("nsd", "NSD (multi-view)", {"detector": True, "decoder": True, "split": True}, {"contrastive": "none"}),
)}


def resolve(cfg):
    """``cfg`` (a :class:`~selfpose.pretrain.PretrainConfig`) with its variant's switches set.

    Idempotent; a config whose ``method`` is not a variant of the temporal
    method is returned unchanged.
    """
    v = VARIANTS.get(cfg.method)
    if v is None:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **v.model),
                               loss=dataclasses.replace(cfg.loss, **v.loss))


__all__ = ("VARIANTS", "Variant", "resolve")
