"""The pose stage: frozen features → 3D pose, its evaluation, and the supervised baseline.

Paper: Honari et al., TPAMI 2022, Eq. 15 — freeze the self-supervised
network, train a small head ``P_3D(v_t [, p̂_2D])`` with MSE on a fraction of
labelled frames, and report MPJPE / N-MPJPE / P-MPJPE.

Everything here is decoupled from how a pretrained run is stored: functions
take a *feature function* ``feature_fn(frames) -> (B, D)`` with ``frames``
float32 ``(B, 3, H, W)`` in [0, 1] (and optionally a ``box_fn`` giving
predicted boxes in pixels).

Modules (import them directly; nothing is imported here so that
``import selfpose.pose`` stays cheap):

* :mod:`selfpose.pose.labels` — which frames are labelled (every K-th frame),
  and a validation split that holds out whole takes.
* :mod:`selfpose.pose.features` — stream frames from the store through a
  feature function into a :class:`~selfpose.pose.features.FeatureSet`.
* :mod:`selfpose.pose.fit` — :class:`~selfpose.pose.fit.PoseConfig`,
  :func:`~selfpose.pose.fit.fit_pose` and :class:`~selfpose.pose.fit.FittedPose`.
* :mod:`selfpose.pose.evaluate` — metrics, box IoU, ``results.json``/``.md``
  and the whole stage in one call (:func:`~selfpose.pose.evaluate.run_pose_stage`).
* :mod:`selfpose.pose.supervised` — baseline (b): the same network trained
  fully supervised from scratch on the same labelled frames.
"""
