"""Delivery checks that need no Docker engine and no GitHub runner: the dispatch form matches the trainer,
and Git LFS stores exactly the binary outputs of a committed run."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from image_classifier.cli import trainer_parser

ROOT = Path(__file__).resolve().parents[1]


def workflow(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def find_step(file, job, name):
    "The step called `name` of `job` in the workflow `file`."
    steps = workflow(file)["jobs"][job]["steps"]
    return next(s for s in steps if s.get("name") == name)


def train_step(name):
    "The step called `name` of training.yaml's train job."
    return find_step("training.yaml", "train", name)


def drift_step(name):
    "The step called `name` of drift.yaml's drift job."
    return find_step("drift.yaml", "drift", name)


def form_flags():
    "The trainer flags the Train step passes: literal ones, and those of its `for flag in ...` loop."
    script = train_step("Train")["run"].replace("\\\n", " ")
    looped = re.search(r"for flag in ([a-z_ ]+); do", script)
    return re.findall(r"--([a-z_]+)", script) + (
        looped.group(1).split() if looped else []
    )


def test_training_form_passes_only_real_trainer_flags():
    wf = workflow("training.yaml")
    inputs = wf[True]["workflow_dispatch"]["inputs"]  # YAML reads the key `on` as True
    assert len(inputs) <= 25, "GitHub allows 25 workflow_dispatch inputs"
    flags = form_flags()
    cli = {a.dest for a in trainer_parser()._actions} - {"help"}
    assert flags and set(flags) <= cli, sorted(set(flags) - cli)
    for name in inputs:
        if name in cli:
            assert name in flags, f"input {name} is never passed to the trainer"
    env = train_step("Train")["env"]
    for (
        flag
    ) in (
        flags
    ):  # each looped flag reads the env variable of its name in capitals, set from its input
        if flag not in ("experiment_name", "run_name", "dataset_folder"):
            assert env[flag.upper()] == f"${{{{ inputs.{flag} }}}}", flag


def run_step(name, cwd, find=train_step, **env):
    "Run the `run:` script of the step `name` (of the training job, or as `find` finds it) in `cwd` as a runner would (bash -e)."
    return subprocess.run(
        ["bash", "-e", "-c", find(name)["run"]],
        cwd=cwd,
        env=os.environ | env,
        capture_output=True,
        text=True,
    )


def fake_command(folder, name, script):
    "An executable `folder/name` that runs the bash `script`: it stands in for a command (first on PATH, or at its path)."
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/usr/bin/env bash\n{script}\n")
    (folder / name).chmod(0o755)
    return dict(PATH=f"{folder}{os.pathsep}{os.environ['PATH']}")


def errors(done):
    "The ::error:: lines a step printed."
    return [line for line in done.stdout.splitlines() if line.startswith("::error::")]


def test_training_form_passes_only_the_fields_filled_in(tmp_path):
    "An empty field is not passed, so the config's value (or the trainer's default) stands."
    fake_command(
        tmp_path / "docker", "train.sh", 'printf "%s\\n" "$@"'
    )  # what the image would be given
    form = {
        name: "" for name in train_step("Train")["env"]
    }  # every field, as the runner sets them
    form |= dict(
        EXPERIMENT="e", RUN="r", DATASET_FOLDER="data/cifar", LEARNING_RATE="0.8"
    )
    done = run_step(
        "Train", tmp_path, **form | dict(CONFIG="experiments/e/old/params.yaml")
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.split()
        == ["image_classifier:ci"]
        + (
            "--experiment_name e --run_name r --dataset_folder data/cifar"
            " --config experiments/e/old/params.yaml --learning_rate 0.8"
        ).split()
    )
    done = run_step("Train", tmp_path, **form | dict(SEED="7"))
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
        ("digits", "experiments/./e/old/params.yaml", "is not a .yaml file under"),
        ("./mine", "", "is not a folder under data/"),
        ("mine/../..", "", "is not a folder under data/"),
        (".hidden", "", "is not a folder under data/"),
        ("mine", "", "data/mine does not exist"),
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


def test_training_uses_nothing_of_a_truncated_archive(tmp_path):
    "A URL serving a cut-off archive, given with the cut-off file's sha256: tar fails, so the step fails and data/ gets nothing."
    images = tmp_path / "src" / "images"
    images.mkdir(parents=True)
    for i in range(40):
        (images / f"{i}.png").write_bytes(
            os.urandom(4096)
        )  # incompressible: half the archive is half the files
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as tar:
        tar.add(images, arcname="images")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # The step takes only https URLs: a fake curl "downloads" $SERVED; the real sha256sum and tar run.
    env = fake_command(
        tmp_path / "bin",
        "curl",
        'while [ "$#" -gt 1 ] && [ "$1" != --output ]; do shift; done\ncp "$SERVED" "$2"',
    )
    env |= dict(GITHUB_ENV=str(tmp_path / "github_env"), CONFIG="")
    env |= dict(TMPDIR=str(tmp_path / "tmp"))  # the step's temporary folder must go too
    (tmp_path / "tmp").mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()

    def step(served, sha):
        url = f"https://example.org/d.tar.gz#sha256={sha}"
        return run_step(
            "Dataset and config", repo, DATASET=url, SERVED=str(served), **env
        )

    def sha256(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for served, sha, error in [
        (cut, sha256(cut), "the dataset archive does not extract"),
        (cut, sha256(whole), f"the archive's sha256 is {sha256(cut)}"),
    ]:
        done = step(served, sha)
        assert done.returncode != 0 and len(errors(done)) == 1, done.stdout
        assert error in errors(done)[0], done.stdout
        assert not (repo / "data" / "downloaded").exists()
        assert not (tmp_path / "github_env").exists()
        assert not any((tmp_path / "tmp").iterdir())
    done = step(whole, sha256(whole))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((repo / "data" / "downloaded" / "images").iterdir())) == 40
    assert (
        tmp_path / "github_env"
    ).read_text() == "DATASET_FOLDER=data/downloaded/images\n"
    assert not any((tmp_path / "tmp").iterdir())


def test_workflow_scripts_stop_at_the_first_failure():
    "bash -e spares a failing command inside an && list (and a failing pipe stage): every script sets -euo pipefail."
    for name in ("training.yaml", "drift.yaml"):
        for job in workflow(name)["jobs"].values():
            for step in job["steps"]:
                if "run" in step:
                    assert step["run"].startswith("set -euo pipefail\n"), (
                        name,
                        step["name"],
                    )


def test_drift_refuses_paths_outside_experiments_and_data(tmp_path):
    "No '.', '..' or hidden component in run or data, checked right after the checkout, before anything else runs."
    steps = workflow("drift.yaml")["jobs"]["drift"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[1]["name"] == "Check the run and the data"
    (tmp_path / "experiments" / "e" / "r").mkdir(parents=True)
    (tmp_path / "data" / "new").mkdir(parents=True)
    good = dict(RUN_DIR="experiments/e/r", DATA_DIR="data/new")
    done = run_step("Check the run and the data", tmp_path, find=drift_step, **good)
    assert done.returncode == 0 and not errors(done), done.stdout + done.stderr
    run_error = "is not experiments/<experiment>/<run>"
    data_error = "is not a folder under data/"
    for env, error in [
        (dict(RUN_DIR="experiments/../.."), f"run 'experiments/../..' {run_error}"),
        (dict(RUN_DIR="experiments/./x"), f"run 'experiments/./x' {run_error}"),
        (dict(RUN_DIR="experiments/.hidden/x"), run_error),
        (dict(RUN_DIR="experiments/e/.."), run_error),
        (dict(RUN_DIR="experiments/e/r/"), run_error),
        (dict(DATA_DIR="../x"), f"data '../x' {data_error}"),
        (dict(DATA_DIR="data/../x"), data_error),
        (dict(DATA_DIR="data/new/.."), data_error),
        (dict(DATA_DIR="data/.hidden"), data_error),
        (dict(DATA_DIR="data/./new"), data_error),
        (dict(DATA_DIR="data"), data_error),
    ]:
        done = run_step(
            "Check the run and the data", tmp_path, find=drift_step, **good | env
        )
        assert done.returncode == 1 and len(errors(done)) == 1, (env, done.stdout)
        assert error in errors(done)[0], (env, done.stdout)


def test_drift_on_a_fresh_repository_says_what_is_missing(tmp_path):
    """The schedule's defaults do not exist in a new repository: on the schedule, a notice and a green job
    that checks nothing; started by hand, one ::error:: line names what is missing."""
    defaults = {
        name: re.fullmatch(r"\$\{\{ inputs\.\w+ \|\| '(.+)' \}\}", value).group(1)
        for name, value in workflow("drift.yaml")["env"].items()
    }
    assert defaults == dict(
        RUN_DIR="experiments/default/baseline", DATA_DIR="data/incoming"
    )
    out = tmp_path / "github_output"
    for present, missing in [
        ((), ("experiments/default/baseline", "data/incoming")),
        (("experiments/default/baseline",), ("data/incoming",)),
    ]:
        for folder in present:
            (tmp_path / folder).mkdir(parents=True)
        check = dict(find=drift_step, GITHUB_OUTPUT=str(out), **defaults)
        done = run_step(
            "Check the run and the data", tmp_path, EVENT="schedule", **check
        )
        assert done.returncode == 0 and not errors(done), done.stdout + done.stderr
        assert (
            done.stdout.startswith("::notice::nothing to check yet")
            and out.read_text() == "skip=true\n"
        )
        out.unlink()
        done = run_step(
            "Check the run and the data", tmp_path, EVENT="workflow_dispatch", **check
        )
        assert done.returncode == 1 and len(errors(done)) == 1, done.stdout
        assert "Traceback" not in done.stdout + done.stderr
        named, how = errors(done)[0].split(". ", 1)
        for folder in defaults.values():
            assert (folder in missing) == (folder in named), done.stdout
        assert ("training.yaml" in named) == ("experiments/default/baseline" in missing)
        assert "set run and data" in how
    for later in (
        "Fetch this run's files and the new data only (not every LFS object in the repository)",
        "Drift tests",
    ):
        assert drift_step(later)["if"] == "${{ steps.check.outputs.skip != 'true' }}"
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    done = run_step("Check the run and the data", tmp_path, EVENT="schedule", **check)
    assert done.returncode == 0 and not errors(done) and not out.exists(), (
        done.stdout + done.stderr
    )


def test_drift_step_records_its_verdict_and_fails_on_drift_or_error(tmp_path):
    "Exit 0: none, 1: drift, 2 (usage or data) and anything else (a crash): error. The job fails on all but 0."
    env = fake_command(tmp_path / "bin", "image_classifier_drift", 'exit "$CODE"')
    env |= dict(RUN_DIR="experiments/e/r", DATA_DIR="data/new")
    for code, verdict in [(0, "none"), (1, "drift"), (2, "error"), (3, "error")]:
        output = tmp_path / f"github_output_{code}"
        done = run_step(
            "Drift tests",
            tmp_path,
            find=drift_step,
            CODE=str(code),
            GITHUB_OUTPUT=str(output),
            **env,
        )
        assert done.returncode == code, (code, done.stdout, done.stderr)
        assert output.read_text() == f"code={code}\nverdict={verdict}\n"
        assert len(errors(done)) == (code != 0), done.stdout
    job = workflow("drift.yaml")["jobs"]["drift"]
    step_id = drift_step("Drift tests")["id"]
    assert job["outputs"]["verdict"] == f"${{{{ steps.{step_id}.outputs.verdict }}}}"


def test_retrain_starts_only_on_a_drift_verdict():
    "Not on failure(): an install failure, a refused path or a crash fails the drift job too."
    condition = workflow("drift.yaml")["jobs"]["retrain"]["if"]
    assert "failure()" not in condition and "||" not in condition, condition
    assert "needs.drift.outputs.verdict == 'drift'" in condition, condition
    assert "inputs.retrain" in condition, condition
    # The drift job fails on drift: without a status function the retrain job would be skipped.
    assert re.search(r"!cancelled\(\)|always\(\)", condition), condition


def test_inputs_never_expand_inside_shell():
    for path in (ROOT / ".github" / "workflows").glob("*.yaml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get(
                    "run", ""
                ), f"{path.name}: {step.get('name')} expands an expression in run:"


@pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (make tools says how)",
)
def test_committed_run_stores_models_and_pictures_in_lfs(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout

    "Runs and datasets are added without --force; their binaries become LFS pointers; scratch stays out."
    git("init", "-q")
    git("lfs", "install", "--local")
    shutil.copy(ROOT / ".gitattributes", tmp_path / ".gitattributes")
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    run = tmp_path / "experiments" / "e" / "r"
    run.mkdir(parents=True)
    binaries = [
        "model.pth",
        "metrics.png",
        "confusion_matrix.png",
        "drift_reference.npz",
    ]
    for name in binaries + ["checkpoint.pth", "best.pth", ".model.pth.x1.tmp"]:
        (run / name).write_bytes(b"\x00binary\xff" * 100)
    for name in ("metrics.json", "metrics.csv", "params.yaml", "train.log"):
        (run / name).write_text("text\n")
    images = ["data/pets/cat/a.JPG", "data/pets/dog/b.png", "data/cifar/data_batch_1", "data/cifar/batches.meta"]  # fmt: skip
    for name in images + ["data/digits/0/x.png", "data/downloaded/x/y.jpg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\x89PNG\x00" * 50)
    (tmp_path / "data" / "pets" / "labels.csv").write_text("a,cat\n")
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "00_core.ipynb").write_text("{}\n")
    git("add", "experiments/e/r", "data/pets", "data/cifar", "nbs")  # no --force needed
    git("add", ".")  # and nothing generated comes with `git add .`
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")
    in_lfs = set(git("lfs", "ls-files", "--name-only").split())
    assert in_lfs == {f"experiments/e/r/{n}" for n in binaries} | set(images), in_lfs
    tracked = set(git("ls-files").split())
    assert (
        "data/pets/labels.csv" in tracked and "experiments/e/r/params.yaml" in tracked
    )
    scratch = ("checkpoint.pth", "best.pth", "data/digits/", "data/downloaded/", ".tmp")
    assert not [t for t in tracked if any(s in t for s in scratch)], tracked
    assert git("show", "HEAD:experiments/e/r/model.pth").startswith(
        "version https://git-lfs.github.com/spec/v1"
    )
    assert git("show", "HEAD:experiments/e/r/metrics.json") == "text\n"
    assert git("show", "HEAD:nbs/00_core.ipynb") == "{}\n"


def test_image_check_knows_the_variant_and_the_lock(tmp_path):
    """docker/check-installed.py, run after the image's install: pip falls back to PyPI's CUDA torch without
    a word when the CPU index is out of reach, so a CPU image with CUDA libraries must fail here, as must a
    package the lock does not pin. A fake environment: dist-info folders, and the real `packaging`.
    """
    import packaging

    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True
    )
    site = next((tmp_path / "venv").glob("lib/python3*/site-packages"))
    shutil.copytree(Path(packaging.__file__).parent, site / "packaging")
    lock = tmp_path / "prod.txt"
    lock.write_text(
        "torch==2.14.1\nnvidia-cublas==13.1.1.3 ; sys_platform == 'linux'\n"
    )

    def installed(*dists):
        for old in site.glob("*.dist-info"):
            shutil.rmtree(old)
        for name, version in dists:
            info = site / f"{name.replace('-', '_')}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            )

    def check(variant):
        python = tmp_path / "venv" / "bin" / "python"
        script = ROOT / "docker" / "check-installed.py"
        return subprocess.run(
            [python, "-I", script, variant, lock], capture_output=True, text=True
        )

    installed(("torch", "2.14.1"), ("nvidia-cublas", "13.1.1.3"))
    done = check("cpu")
    assert (
        done.returncode == 1
        and "a CPU image with CUDA libraries (nvidia-cublas" in done.stderr
    ), done
    assert (
        check("cuda").returncode == 0 or sys.platform != "linux"
    )  # the pin applies on Linux only
    installed(("torch", "2.14.1+cpu"))
    assert check("cpu").returncode == 0, check("cpu").stderr
    assert "torch 2.14.1+cpu, a CPU-only build" in check("cuda").stderr
    installed(("torch", "2.14.1+cpu"), ("requests", "2.0"))
    assert (
        "not at a version pinned in" in check("cpu").stderr
        and "requests 2.0" in check("cpu").stderr
    )


def test_export_leaves_the_setup_stamp_valid():
    "After `nbdev_export` (every `make test` runs it) the next `make` must not reinstall everything."
    stamp = ROOT / ".venv" / ".installed"
    if not stamp.exists():
        pytest.skip("no .venv set up by make here")
    before = (ROOT / "pyproject.toml").stat().st_mtime_ns
    subprocess.run(
        [str(Path(sys.executable).parent / "nbdev_export")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert (ROOT / "pyproject.toml").stat().st_mtime_ns == before
    dry = subprocess.run(
        ["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "pip install" not in dry.stdout, dry.stdout


def test_no_module_imports_a_later_notebooks_module():
    "Notebooks are numbered by dependency: a module may import only modules of earlier notebooks."
    order = []
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        first = "".join(json.loads(nb.read_text())["cells"][0]["source"])
        order.append(re.search(r"default_exp (\w+)", first)[1])
    imported = re.compile(
        r"from \.(\w+) import|from image_classifier\.(\w+) import|from image_classifier import (\w+)"
    )
    for mod in order:
        source = (ROOT / "image_classifier" / f"{mod}.py").read_text()
        used = {a or b or c for a, b, c in imported.findall(source)} & set(order)
        later = sorted(u for u in used if order.index(u) > order.index(mod))
        assert not later, f"{mod} imports {later}, from later notebooks"


def test_training_uploads_the_experiments_report(tmp_path):
    "The report step builds the experiment's page from the checkout, uploaded as its own artifact beside the run's."
    from image_classifier.train import synth_run

    run = synth_run(tmp_path / "made", experiment="e", run="r")
    shutil.move(run.parent.parent, tmp_path / "experiments")
    env = fake_command(
        tmp_path / "docker", "run.sh", 'shift; exec "$@"'
    )  # the image: the command itself, here
    env["PATH"] += os.pathsep + str(Path(sys.executable).parent)
    done = run_step("Report of the experiment", tmp_path, EXPERIMENT="e", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "report.html").read_text()
    assert "e/r" in page and page.count("<img ") >= 2, page[:500]
    step = train_step("Report of the experiment")
    upload = train_step("Upload the report")
    assert (
        step["continue-on-error"] and upload["continue-on-error"]
    )  # a report never costs the run
    assert upload["with"]["path"] == "report.html" and upload["with"]["name"] != "run"
    steps = [
        s.get("name") or s.get("uses")
        for s in workflow("training.yaml")["jobs"]["train"]["steps"]
    ]
    assert steps.index("Report of the experiment") > steps.index("Train")


def test_training_form_chooses_the_runner_and_the_image(tmp_path):
    "runner goes to runs-on; image builds that variant, and a cuda container gets the GPUs; anything else is refused."
    form = workflow("training.yaml")[True]["workflow_dispatch"]["inputs"]
    assert len(form) <= 25  # GitHub's limit on a form's inputs
    assert form["runner"]["default"] == "ubuntu-24.04" and form["image"]["options"] == [
        "cpu",
        "cuda",
    ]
    assert (
        workflow("training.yaml")["jobs"]["train"]["runs-on"] == "${{ inputs.runner }}"
    )
    assert workflow("training.yaml")["env"]["VARIANT"] == "${{ inputs.image }}"
    names = dict(EXPERIMENT="e", RUN="r", RUNNER="gpu-box")
    for variant, code in [
        ("cpu", 0),
        ("cuda", 0),
        ("gpu", 1),
        ("cuda; rm -rf ~", 1),
        ("", 1),
    ]:
        done = run_step("Refuse an existing run", tmp_path, VARIANT=variant, **names)
        assert done.returncode == code, (variant, done.stdout, done.stderr)
        assert bool(errors(done)) == bool(code), done.stdout
    # GitHub's own runners have no GPU: the cuda image is refused there before minutes of building
    for runner, variant, code in [
        ("ubuntu-24.04", "cuda", 1),
        ("ubuntu-24.04", "cpu", 0),
        ("self-hosted", "cuda", 0),
    ]:
        done = run_step(
            "Refuse an existing run",
            tmp_path,
            VARIANT=variant,
            **names | dict(RUNNER=runner),
        )
        assert done.returncode == code, (runner, variant, done.stdout, done.stderr)
    assert (
        "image cuda needs a GPU"
        in run_step(
            "Refuse an existing run",
            tmp_path,
            VARIANT="cuda",
            **names | dict(RUNNER="ubuntu-24.04"),
        ).stdout
    )
    # the build step builds the variant in VARIANT; docker run gets --gpus all for cuda alone
    env = fake_command(
        tmp_path / "docker", "build.sh", 'echo "building $1 as $VARIANT"'
    )
    env |= fake_command(tmp_path / "bin", "pip", "true")
    env |= fake_command(tmp_path / "bin", "python", "true")
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    done = run_step("Build the image", tmp_path, VARIANT="cuda", **env)
    assert (
        done.returncode == 0 and "building image_classifier:ci as cuda" in done.stdout
    ), (done.stdout + done.stderr)
    docker = fake_command(tmp_path / "fake", "docker", 'printf "%s\\n" "$@"')
    for variant, gpus in [("cuda", True), ("cpu", False), (None, False)]:
        env = {k: v for k, v in os.environ.items() if k != "VARIANT"} | docker
        env |= {"VARIANT": variant} if variant else {}
        ran = subprocess.run(
            ["bash", str(ROOT / "docker" / "run.sh"), "tag", "image_classifier_trainer", "--seed", "1"],
            cwd=tmp_path, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        args = ran.stdout.split("\n")
        assert (
            args[:2] == ["run", "--rm"] and (args[2:4] == ["--gpus", "all"]) == gpus
        ), (variant, args)
        assert args[-4:-1] == ["tag", "--seed", "1"], args
