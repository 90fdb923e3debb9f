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


def test_one_metrics_reader_two_views(tmp_path):
    from selfpose.training.logs import MetricsError, read_metric_columns

    p = tmp_path / "metrics.csv"
    p.write_text("step,time,lr,loss\n1,0.1,0.01,2.0\n2,0.2,0.01,\n3,0.3,0.0")  # a blank cell, a torn last line
    rows = read_metrics(tmp_path)
    assert rows == read_metrics(p) and [r["step"] for r in rows] == [1, 2, 3]
    assert "loss" not in rows[1] and "loss" not in rows[2]
    cols = read_metric_columns(p)
    assert list(cols) == ["step", "time", "lr", "loss"] and np.isnan(cols["loss"][1:]).all()
    MetricLogger(tmp_path, tensorboard=False, resume_step=2)  # resume keeps rows verbatim up to the step
    assert p.read_text().splitlines() == ["step,time,lr,loss", "1,0.1,0.01,2.0", "2,0.2,0.01,"]
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MetricsError, match="step"):
        read_metrics(tmp_path / "x.csv")
    with pytest.raises(MetricsError, match="no metrics file"):
        read_metric_columns(tmp_path / "none")
    assert read_metrics(tmp_path / "none") == []
