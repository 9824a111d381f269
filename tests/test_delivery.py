"""Delivery checks that need no Docker engine and no GitHub runner: the dispatch form matches the trainer,
and Git LFS stores exactly the binary outputs of a committed run."""

import inspect
import os
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


def train_step(name):
    "The step called `name` of training.yaml's train job."
    steps = workflow("training.yaml")["jobs"]["train"]["steps"]
    return next(s for s in steps if s.get("name") == name)


def test_training_form_passes_only_real_trainer_flags():
    wf = workflow("training.yaml")
    inputs = wf[True]["workflow_dispatch"]["inputs"]  # YAML reads the key `on` as True
    assert (
        len(inputs) <= 10
    ), "GitHub Enterprise Server before 2025 allows 10 dispatch inputs"
    flags = re.findall(r"--([a-z_]+)", train_step("Train")["run"])
    cli = set(inspect.signature(image_classifier_trainer).parameters)
    assert flags and set(flags) <= cli, sorted(set(flags) - cli)
    for name in inputs:
        if name in cli:
            assert name in flags, f"input {name} is never passed to the trainer"


def run_step(name, cwd, **env):
    "Run the `run:` script of the training job's step `name` in `cwd` as a runner would (bash -e)."
    return subprocess.run(
        ["bash", "-e", "-c", train_step(name)["run"]],
        cwd=cwd,
        env=os.environ | env,
        capture_output=True,
        text=True,
    )


def test_training_form_passes_only_the_fields_filled_in(tmp_path):
    "An empty field is not passed, so the config's value (or the trainer's default) stands."
    fake = tmp_path / "docker" / "train.sh"  # prints what the image would be given
    fake.parent.mkdir()
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    form = dict(
        EXPERIMENT="e", RUN="r", DATASET_FOLDER="data/cifar", ARCH="", NUM_EPOCHS=""
    )
    form |= dict(BATCH_SIZE="", SEED="", LEARNING_RATE="0.8")
    done = run_step("Train", tmp_path, CONFIG="experiments/e/old/params.yaml", **form)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.split()
        == ["image_classifier:ci"]
        + (
            "--experiment_name e --run_name r --dataset_folder data/cifar"
            " --config experiments/e/old/params.yaml --learning_rate 0.8"
        ).split()
    )
    done = run_step("Train", tmp_path, CONFIG="", **form | dict(SEED="7"))
    assert "--config" not in done.stdout.split() and done.stdout.split()[-2:] == [
        "--seed",
        "7",
    ]


def test_training_form_refuses_a_bad_dataset_or_config(tmp_path):
    "No checksum, no download; a config outside what the container sees, or missing, is refused."
    env = dict(GITHUB_ENV=str(tmp_path / "github_env"))
    params = tmp_path / "experiments" / "e" / "old" / "params.yaml"
    params.parent.mkdir(parents=True)
    params.write_text("arch: airnet\n")
    for dataset, config, error in [
        ("https://example.org/d.tar.gz", "", "ends in #sha256="),
        ("https://example.org/d.tar.gz#sha256=abc", "", "ends in #sha256="),
        ("digits", "../params.yaml", "is not a .yaml file under experiments/ or data/"),
        ("digits", "experiments/e/new/params.yaml", "does not exist"),
    ]:
        done = run_step(
            "Dataset and config", tmp_path, DATASET=dataset, CONFIG=config, **env
        )
        assert done.returncode == 1 and error in done.stdout, (
            dataset,
            config,
            done.stdout,
        )
    (tmp_path / "github_env").unlink()
    done = run_step(
        "Dataset and config",
        tmp_path,
        DATASET="digits",
        CONFIG="experiments/e/old/params.yaml",
        **env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "github_env").read_text() == "DATASET_FOLDER=digits\n"


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
