"""The bad-input corpus: data, settings, files and runs a careless or hostile user could give, each through
the real command as a shell runs it. Each must end in its documented exit status and one clear line (never a
traceback), and leave nothing behind it should not. The server's HTTP cases live in nbs/04c_serve.ipynb and
the workflow steps' in test_delivery.py."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_classifier.data import synth_cifar, synth_images

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    "The environment of every command: offline, its own cache, two threads."
    cache = tmp_path_factory.mktemp("cache")
    return os.environ | dict(
        HF_HUB_OFFLINE="1", IMAGE_CLASSIFIER_CACHE=str(cache), OMP_NUM_THREADS="2"
    )


def run(env, cwd, command, *args, timeout=300):
    "Run `command` (a console script of the package) in `cwd`."
    return subprocess.run(
        [str(BIN / command), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused(done, code, message):
    "`done` exited with `code`, its last line of stderr says `message`, and there is no traceback."
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines and message in lines[-1], lines[-3:]


TINY = ("--arch", "test_airnet", "--img_size", "16", "--num_epochs", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    "The corpus of datasets, each one thing wrong (or nothing: `good`)."
    root = tmp_path_factory.mktemp("data")
    synth_images(root / "good", classes=("a", "b", "c"), n=12)
    synth_images(root / "hollow", classes=("a", "b"), n=12)
    for f in (root / "hollow" / "b").iterdir():
        f.write_bytes(b"\x89PNG broken")
    synth_images(root / "broken", classes=("a", "b"), n=4)
    for f in (root / "broken").rglob("*.png"):
        f.write_bytes(b"")
    synth_images(root / "small", classes=("a", "b"), n=10)  # 16 training images
    synth_cifar(root / "cifar", n=20)
    meta = (root / "cifar" / "batches.meta").read_bytes()
    (root / "cifar" / "batches.meta").write_bytes(meta[: len(meta) // 2])
    odd = synth_images(root / "odd", classes=("a", "b"), n=12)
    a = bytes(odd / "a")
    with open(os.path.join(a, b"caf\xe9-latin1.png"), "wb") as f:  # not UTF-8
        f.write((odd / "a" / "0.png").read_bytes())
    (odd / "a" / "dangling.png").symlink_to(odd / "nowhere.png")
    (odd / "a" / "folder.png").mkdir()
    os.mkfifo(odd / "b" / "pipe.png")  # reading it would block forever
    (odd / "b" / "notes.txt").write_text("not an image")
    latin = synth_images(root / "latin", classes=("cat", "dog"), n=12)
    os.rename(bytes(latin / "dog"), bytes(latin) + b"/d\xf6g")  # a Latin-1 class name
    (odd / "b" / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((20, 20), np.uint16) + 40000).save(odd / "b" / "deep.png")
    return root


@pytest.fixture(scope="module")
def trained(env, data, tmp_path_factory):
    "A finished run on `good`, in its own folder: (working folder, run folder)."
    cwd = tmp_path_factory.mktemp("trained")
    done = run(env, cwd, "image_classifier_trainer", "--dataset_folder", data / "good",
               *TINY, "--batch_size", "8", "--run_name", "r")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return cwd, cwd / "experiments" / "default" / "r"


SETTINGS = [
    (("--learning_rate", "-0.5"), "--learning_rate must be above 0 (and at most 1000), not -0.5"),
    (("--learning_rate", "nan"), "--learning_rate must be a finite number, not nan"),
    (("--num_epochs", "0"), "--num_epochs must be at least 1, not 0"),
    (("--batch_size", "0"), "--batch_size must be at least 1, not 0"),
    (("--img_size", "1"), "--img_size must be from 8 to 2048 pixels, not 1"),
    (("--valid_pct", "1.0"), "--valid_pct must be a share from 0 to below 1, not 1.0"),
    (("--monitor", "f1"), "--monitor must be valid_loss or accuracy or f1_macro or balanced_accuracy, not 'f1'"),
    (("--optimizer", "rmsprop"), "--optimizer must be sgd or adam or muon, not 'rmsprop'"),
    (("--arch", "resnt18"), "Unknown model 'resnt18'. Did you mean: resnet18"),
    (("--pretrained_model", "missing.pth"), "missing.pth: no such run folder or file"),
    (("--precision", "fp16"), "--precision fp16 needs a GPU"),
    (("--learning", "0.1"), "unrecognized arguments: --learning 0.1"),
    (("--num_epochs", "many"), "invalid int value: 'many'"),
    (("--resume",), "--resume takes only --run_name and --experiment_name"),
    (("--translate", "8", "--img_size", "16"), "--translate must be less than half of --img_size (16), not 8"),
    (("--run_name", "x" * 300), "is not a valid experiment or run name: use one plain folder name (at most 200 bytes)"),
    (("--experiments_folder", __file__), "cannot create the run folder (Not a directory); check --experiments_folder"),
]  # fmt: skip


def trainer_refuses(env, tmp_path, cases):
    """Each (flags, message) of `cases` through the trainer in a folder of its own, two at a time (the two
    cores): refused with status 2 and `message`, and no experiments/ folder."""

    def one(i, args):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        return cwd, run(env, cwd, "image_classifier_trainer", *args)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(len(cases)), [a for a, _ in cases]))
    for (cwd, done), (args, message) in zip(results, cases):
        refused(done, 2, message)
        assert not (cwd / "experiments").exists(), args


def test_trainer_refuses_a_bad_setting_before_writing(env, data, tmp_path):
    base = ("--dataset_folder", data / "good", "--arch", "test_airnet", "--batch_size", "8", "--run_name", "r")  # fmt: skip
    trainer_refuses(env, tmp_path, [((*base, *args), message) for args, message in SETTINGS])  # fmt: skip


CONFIGS = [
    ("broken.yaml", "batch_size: [8\n", "broken.yaml: not valid YAML at line 2"),
    ("typo.yaml", "lr: 0.1\n", "typo.yaml: unknown setting(s) lr; known:"),
    ("type.yaml", "num_epochs: many\n", "type.yaml: --num_epochs must be a whole number, not 'many'"),
    ("list.yaml", "- arch: airnet\n", "list.yaml: must be a mapping of settings"),
    ("missing.yaml", None, "missing.yaml: cannot be read (No such file or directory)"),
]  # fmt: skip


def test_trainer_refuses_a_bad_config_in_one_line(env, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, text, _ in CONFIGS:
        if text is not None:
            (configs / name).write_text(text)
    trainer_refuses(env, tmp_path, [(("--config", configs / name), message) for name, _, message in CONFIGS])  # fmt: skip


DATASETS = [
    ("hollow", (), "classes with no usable training image: b"),
    ("broken", (), "cannot train on this dataset: no usable images"),
    # a batch given larger than the training split (the recipe's own batch always fits)
    ("small", ("--batch_size", "64"), "16 usable training images, fewer than one batch of 64: use --batch_size 16 or less"),
    ("good", ("--valid_pct", "0"), "no usable validation image"),
    ("cifar", (), "batches.meta: not a CIFAR-10 batches.meta (UnpicklingError: pickle data was truncated)"),
    ("nowhere", (), "nowhere: no such folder"),
    ("latin", (), "class folder names that are not UTF-8 text: 'd\\udcf6g'; rename them"),
]  # fmt: skip


def test_trainer_refuses_data_it_cannot_train_on(env, data, tmp_path):
    cases = [(("--dataset_folder", data / name, *TINY, *args), message) for name, args, message in DATASETS]  # fmt: skip
    trainer_refuses(env, tmp_path, cases)


def test_validate_says_fatal_in_its_report_not_a_traceback(env, data, tmp_path):
    done = run(env, tmp_path, "image_classifier_data", "validate", data / "broken")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "FATAL (1):\n  no usable images" in done.stdout, done.stdout
    refused(run(env, tmp_path, "image_classifier_data", "validate", data / "good", "--valid_pct", "2"),
            2, "--valid_pct must be a share from 0 to below 1, not 2.0")  # fmt: skip


def test_odd_files_are_skipped_or_read_and_the_run_finishes(env, data, tmp_path):
    "A name that is not UTF-8, a dangling link, a folder and a FIFO named .png, a 16-bit PNG, text, empty."
    done = run(env, tmp_path, "image_classifier_data", "validate", data / "odd")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "b/empty.png: empty file" in done.stdout and "b/notes.txt" in done.stdout
    done = run(env, tmp_path, "image_classifier_trainer", "--dataset_folder", data / "odd",
               *TINY, "--batch_size", "8", "--run_name", "odd")  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "skipping " in done.stderr and "empty.png: empty file" in done.stderr
    info = json.loads((tmp_path / "experiments/default/odd/environment.json").read_text())  # fmt: skip
    assert info["data"]["counts"]["train"] + info["data"]["counts"]["valid"] == 2 * 12 + 2  # fmt: skip
    refused(run(env, tmp_path, "image_classifier_trainer", "--dataset_folder", data / "odd",
                *TINY, "--batch_size", "8", "--run_name", "odd"), 2, "already exists: choose another --run_name")  # fmt: skip


def test_a_killed_run_is_listed_resumed_and_its_name_reusable(env, data, tmp_path):
    "kill -9 after the first checkpoint: listed as interrupted, then resumed to the end."
    args = ("--dataset_folder", data / "good", "--arch", "test_airnet", "--img_size", "16",
            "--batch_size", "8", "--num_epochs", "10", "--run_name", "k")  # fmt: skip
    process = subprocess.Popen([str(BIN / "image_classifier_trainer"), *map(str, args)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    run_dir = tmp_path / "experiments/default/k"
    deadline = time.time() + 240
    while not (run_dir / "checkpoint.pth").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (run_dir / "checkpoint.pth").exists()
    listed = run(env, tmp_path, "image_classifier_experiments", "list")
    assert listed.returncode == 0 and "interrupted" in listed.stdout, listed.stdout
    refused(run(env, tmp_path, "image_classifier_trainer", "--resume", "--run_name", "nothing"), 2,
            "nothing: not a run folder (no params.yaml)")  # fmt: skip
    resumed = run(env, tmp_path, "image_classifier_trainer", "--resume", "--run_name", "k")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def test_experiments_list_survives_damaged_records(env, trained, tmp_path):
    cwd, run_dir = trained
    damaged = cwd / "experiments" / "default" / "damaged"
    damaged.mkdir()
    (damaged / "params.yaml").write_text("arch: [\n")
    (damaged / "status.json").write_text("{")
    done = run(env, cwd, "image_classifier_experiments", "list")
    assert done.returncode == 0 and "damaged" in done.stdout, done.stderr
    refused(run(env, cwd, "image_classifier_experiments", "compare", "--targets", run_dir), 2,
            "compare takes two runs")  # fmt: skip
    refused(run(env, cwd, "image_classifier_experiments", "summary", "--targets", "e/nope"), 2,
            "e/nope: not a run folder, as a path or under experiments/")  # fmt: skip
    refused(run(env, cwd, "image_classifier_experiments", "list", "--experiments_folder", "nope"), 2,
            "--experiments_folder nope: no such folder")  # fmt: skip


def test_drift_refuses_a_reference_from_other_data(env, data, trained, tmp_path):
    "No saved reference, and the folder the run names now holds other images: refused, nothing saved."
    cwd, run_dir = trained
    fresh = synth_images(tmp_path / "fresh", classes=("a", "b", "c"), n=10, seed=5)
    elsewhere = tmp_path / "elsewhere"
    synth_images(elsewhere / data.name / "good", classes=("a", "b", "c"), n=12, seed=9)
    params = run_dir / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace(str(data / "good"), f"{data.name}/good"))
    done = run(env, elsewhere, "image_classifier_drift", "--run", run_dir, "--data", fresh)  # fmt: skip
    params.write_text(original)
    refused(done, 2, "is not the data it was trained on")
    assert not (run_dir / "drift_reference.npz").exists()
    done = run(env, cwd, "image_classifier_drift", "--run", run_dir, "--data", fresh)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    assert (run_dir / "drift_reference.npz").exists()


def test_drift_errors_are_never_the_drift_code(env, trained, tmp_path):
    "Exit 1 means drift; a broken run or a bad setting is 2."
    cwd, run_dir = trained
    fresh = synth_images(tmp_path / "fresh", classes=("a", "b", "c"), n=10, seed=5)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("model.pth", "model.json", "environment.json"):
        (copy / f).write_bytes((run_dir / f).read_bytes())
    refused(run(env, cwd, "image_classifier_drift", "--run", copy, "--data", fresh), 2,
            "params.yaml: cannot be read (No such file or directory)")  # fmt: skip
    model = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps(model | dict(arch="resnet18")))
    refused(run(env, cwd, "image_classifier_drift", "--run", copy, "--data", fresh), 2,
            "do not fit resnet18 with 3 classes")  # fmt: skip
    refused(run(env, cwd, "image_classifier_drift", "--run", run_dir, "--data", fresh, "--alpha", "2"),
            2, "--alpha is a false-alarm rate between 0 and 1")  # fmt: skip
    refused(run(env, cwd, "image_classifier_drift", "--run", run_dir, "--data", fresh, "--output", fresh / "report"),
            2, "is inside --data: its files would be read as new images next time")  # fmt: skip
    refused(run(env, cwd, "image_classifier_drift", "--run", tmp_path / "none", "--data", fresh),
            2, "no model.pth and model.json")  # fmt: skip


def test_predict_export_and_serve_refuse_bad_settings(env, trained, tmp_path):
    "One line each, and no half-written file left: not the CSV's temporary, not an ONNX file in the run."
    cwd, run_dir = trained
    images = synth_images(tmp_path / "images", n=2)
    (tmp_path / "empty").mkdir()
    for args, message in [
        (("--data", images, "--backend", "tensorflow"), "--backend must be torch or onnx, not 'tensorflow'"),
        (("--data", images, "--output", tmp_path / "no" / "p.csv"), "give a file in an existing folder"),
        (("--data", images, "--top_k", "0"), "--top_k and --batch_size must be at least 1, not 0 and 64"),
        (("--data", images, "--device", "garbage"), "--device 'garbage' is not a device"),
        (("--data", images, "--backend", "onnx", "--device", "cuda:7"), "--device cuda:7: there is no such device here"),
        (("--data", f"{images},{tmp_path / 'nope.png'}"), "nope.png: no such file or folder"),
    ]:  # fmt: skip
        refused(run(env, cwd, "image_classifier_predict", "--run", run_dir, *args), 2, message)  # fmt: skip
    assert not list(cwd.glob(".*.tmp")), list(cwd.glob(".*"))
    refused(run(env, cwd, "image_classifier_export", "--run", run_dir, "--check_data", tmp_path / "empty"), 2,
            "no image files in it")  # fmt: skip
    assert not list(run_dir.glob("*onnx*")), list(run_dir.iterdir())
    refused(run(env, cwd, "image_classifier_serve", "--run", run_dir, "--backend", "tensorflow"), 2,
            "backend must be torch or onnx")  # fmt: skip
    refused(run(env, cwd, "image_classifier_serve", "--run", tmp_path), 2, "no model.pth and model.json")  # fmt: skip
    refused(run(env, cwd, "image_classifier_serve", "--run", run_dir, "--port", "99999"), 2,
            "--port must be from 0 to 65535, not 99999")  # fmt: skip


def test_a_bad_device_variable_is_refused_before_anything_is_written(env, tmp_path):
    "IMAGE_CLASSIFIER_DEVICE is checked first: no embedded dataset, no cache, no run folder."
    bad = env | dict(
        IMAGE_CLASSIFIER_DEVICE="garbage",
        IMAGE_CLASSIFIER_CACHE=str(tmp_path / "cache"),
    )
    refused(run(bad, tmp_path, "image_classifier_trainer", *TINY), 2,
            "IMAGE_CLASSIFIER_DEVICE 'garbage' is not a device: use cpu, cuda, cuda:N or mps")  # fmt: skip
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())
