"""The command line end to end, on tiny data: it must call the library and
turn user mistakes into one-line errors (exit 2) without tracebacks."""

import json

import pytest
from typer.testing import CliRunner

from selfpose.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "lab"
    r = invoke("synth", "lab", "--out", out, "--size", 48, "max_sequences=1", "max_seconds=2", "views=2")
    assert r.exit_code == 0, r.output
    return out


def test_every_subcommand_has_help():
    for cmd in ("synth", "prepare", "info", "show", "demo", "pretrain", "fit-pose", "evaluate", "predict", "analyze",
                "keypoints", "triangulate"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.output


def test_synth_info_show(tiny_lab, tmp_path):
    r = invoke("info", tiny_lab, "--check", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["check"]["ok"] and report["check"]["reprojection"]["worst_px"] < 0.01
    assert report["summary"]["num_sequences"] == 2
    r = invoke("info", tiny_lab)
    assert r.exit_code == 0 and "sequences" in r.output
    r = invoke("show", tiny_lab, "--out", tmp_path / "sheet.png", "--frames", 4)
    assert r.exit_code == 0 and (tmp_path / "sheet.png").stat().st_size > 10_000


def test_user_errors_are_one_line(tmp_path, tiny_lab):
    cases = [
        (("synth", "lab", "--out", tmp_path / "x", "max_sequence=1"), "did you mean max_sequences"),
        (("synth", "moon", "--out", tmp_path / "x"), "scenario must be one of"),
        (("info", tmp_path / "missing"), "does not exist"),
        (("show", tmp_path), "not a selfpose dataset"),
        (("prepare", "kinect", tmp_path, "--out", tmp_path / "y"), "kinect"),
        (("synth", "lab", "--out", tiny_lab), "already exists"),
        (("benchmark", "--work", tmp_path / "b", "methods=[temporal,dls]"), "unknown method"),
        (("benchmark", "--work", tmp_path / "b", "pretrain_config=nope.yaml"), "nope.yaml not found"),
        (("keypoints", tmp_path / "no_videos", "--out", tmp_path / "k"), "not found"),
        (("triangulate", tmp_path / "kp", "--calibration", tmp_path / "c.toml", "--out", tmp_path / "t"), "c.toml not found"),
        (("triangulate", tmp_path / "kp", "--calibration", tmp_path / "c.json", "--out", tmp_path / "t",
          "--min-confidence", 2), "min_confidence must be in [0, 1]"),
    ]
    for args, message in cases:
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
