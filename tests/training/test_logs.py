"""Metric logs: CSV widening and resume truncation, pictures, environment."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from selfpose.training.logs import MetricLogger, append_environment, environment, read_metrics


def test_csv_widens_and_truncates_on_resume(tmp_path):
    log = MetricLogger(tmp_path, tensorboard=False)
    log.scalars(1, {"lr": 0.1, "loss": 2.0}, 0.5)
    log.scalars(2, {"lr": 0.1, "loss": 1.5, "dsl": 0.3}, 1.0)  # a new column appears
    log.scalars(3, {"lr": 0.1, "loss": 1.0}, 1.5)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3] and "dsl" not in rows[0] and rows[1]["dsl"] == 0.3
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "step,time,lr,loss,dsl"
    MetricLogger(tmp_path, tensorboard=False, resume_step=2)  # resumed at step 2: step 3 is dropped
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_pictures_and_disabled(tmp_path):
    log = MetricLogger(tmp_path / "a")
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 0] = 255
    (p,) = log.pictures(5, {"recon/x": img})
    log.close()
    assert p.name == "step_000005_recon_x.png"
    import cv2

    assert (cv2.imread(str(p))[..., ::-1] == img).all()  # stored as RGB correctly
    with pytest.raises(ValueError, match="uint8"):
        MetricLogger(tmp_path / "b", tensorboard=False).pictures(1, {"x": img.astype(float)})
    off = MetricLogger(tmp_path / "c", enabled=False)
    off.scalars(1, {"lr": 1.0}, 0.0)
    assert off.pictures(1, {"x": img}) == [] and not (tmp_path / "c").exists()


def test_environment_appends(tmp_path):
    append_environment(tmp_path, environment({"processes": 1}))
    append_environment(tmp_path, environment({"processes": 2}))
    env = yaml.safe_load((tmp_path / "environment.yaml").read_text())
    assert [e["processes"] for e in env] == [1, 2]
    assert {"python", "torch", "selfpose", "cpu", "torch_threads", "command", "git"} <= set(env[0])
