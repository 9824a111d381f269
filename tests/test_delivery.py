"""Delivery checks that need no Docker engine and no GitHub runner: the dispatch form matches the trainer,
and Git LFS stores exactly the binary outputs of a committed run."""

import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from image_classifier.cli import image_classifier_trainer

ROOT = Path(__file__).resolve().parents[1]


def workflow(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_training_form_passes_only_real_trainer_flags():
    wf = workflow("training.yaml")
    inputs = wf[True]["workflow_dispatch"]["inputs"]  # YAML reads the key `on` as True
    assert (
        len(inputs) <= 10
    ), "GitHub Enterprise Server before 2025 allows 10 dispatch inputs"
    train = next(s for s in wf["jobs"]["train"]["steps"] if s.get("name") == "Train")
    flags = re.findall(r"--([a-z_]+)", train["run"])
    cli = set(inspect.signature(image_classifier_trainer).parameters)
    assert flags and set(flags) <= cli, sorted(set(flags) - cli)
    for name in inputs:
        if name in cli:
            assert name in flags, f"input {name} is never passed to the trainer"


def test_inputs_never_expand_inside_shell():
    for path in (ROOT / ".github" / "workflows").glob("*.yaml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get(
                    "run", ""
                ), f"{path.name}: {step.get('name')} expands an expression in run:"


@pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (Debian package git-lfs)",
)
def test_committed_run_stores_models_and_pictures_in_lfs(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    git("lfs", "install", "--local")
    shutil.copy(ROOT / ".gitattributes", tmp_path / ".gitattributes")
    run = tmp_path / "experiments" / "e" / "r"
    run.mkdir(parents=True)
    for name in (
        "model.pth",
        "metrics.png",
        "confusion_matrix.png",
        "drift_reference.npz",
    ):
        (run / name).write_bytes(b"\x00binary\xff" * 100)
    for name in ("metrics.json", "metrics.csv", "params.yaml", "train.log"):
        (run / name).write_text("text\n")
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "00_core.ipynb").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")
    in_lfs = set(git("lfs", "ls-files", "--name-only").split())
    assert in_lfs == {
        f"experiments/e/r/{n}"
        for n in (
            "model.pth",
            "metrics.png",
            "confusion_matrix.png",
            "drift_reference.npz",
        )
    }
    assert git("show", "HEAD:experiments/e/r/model.pth").startswith(
        "version https://git-lfs.github.com/spec/v1"
    )
    assert git("show", "HEAD:experiments/e/r/metrics.json") == "text\n"
    assert git("show", "HEAD:nbs/00_core.ipynb") == "{}\n"
