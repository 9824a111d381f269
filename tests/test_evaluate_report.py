"""What a user runs, from a clean clone: train two digits runs (the second fine-tuned from the first),
evaluate one on a held-out folder, build the report. The evaluation's numbers are computed again by hand
from its predictions, the report holds the runs' names, numbers and pictures, and a real browser
(headless Chromium) loads it with no console message (an error, a blocked load, a failing script) and
every picture rendered."""

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from image_classifier.data import write_digits

BIN = Path(sys.executable).parent

BROWSERS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)


def browser() -> str:
    "The headless browser to use: $CHROMIUM, else the first Chromium or Chrome found."
    for name in filter(None, (os.environ.get("CHROMIUM"), *BROWSERS)):
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    pytest.fail(
        "no Chromium or Chrome to check the report page with: `make tools` installs it"
    )


def load(page: Path, *flags) -> subprocess.CompletedProcess:
    "Open `page` in headless Chromium with `flags`; its console goes to stderr."
    command = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run(
        [*command, *flags, page.as_uri()], capture_output=True, text=True, timeout=120
    )


def check(page: Path) -> dict:
    "What a reader would meet: the console's messages, and how many of the pictures rendered."
    shown = load(page, "--dump-dom")
    console = [
        line.split("CONSOLE", 1)[1]
        for line in shown.stderr.splitlines()
        if ":CONSOLE" in line
    ]
    pictures = (
        shown.stdout.split('data-pictures="', 1)[1].split('"', 1)[0]
        if 'data-pictures="' in shown.stdout
        else None
    )
    return dict(console=console, pictures=pictures)


def command(cwd: Path, name: str, *args) -> str:
    "Run one of the package's commands in `cwd` as a user would; its stdout, or a failure with its stderr."
    env = os.environ | dict(OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [BIN / name, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, (name, args, done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    "A folder where two digits runs were trained, the first evaluated on held-out digits, and the report built."
    d = tmp_path_factory.mktemp("digits")
    digits = write_digits(d / "all")
    for label in sorted(p.name for p in digits.iterdir() if p.is_dir()):
        for i, f in enumerate(sorted((digits / label).iterdir())):
            part = (
                "held" if i % 5 == 0 else "train"
            )  # every fifth image of a class is never trained on
            (d / part / label).mkdir(parents=True, exist_ok=True)
            shutil.move(f, d / part / label / f.name)
    command(
        d,
        "image_classifier_trainer",
        "--dataset_folder",
        "train",
        "--run_name",
        "first",
        "--num_epochs",
        2,
    )
    command(d, "image_classifier_trainer", "--dataset_folder", "train", "--run_name", "second", "--num_epochs", 2,
            "--pretrained_model", "default/first")  # fmt: skip
    command(
        d,
        "image_classifier_evaluate",
        "--run",
        "experiments/default/first",
        "--data",
        "held",
    )
    command(d, "image_classifier_experiments", "report", "--output", "report.html")
    return d


def test_evaluation_numbers_by_hand(work):
    out = work / "experiments" / "default" / "first" / "evaluations" / "held"
    m = json.loads((out / "metrics.json").read_text())["evaluation"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    classes = [str(d) for d in range(10)]
    assert len(rows) == m["n"] == 364  # 1,797 digits, every fifth of each class
    matrix = [
        [sum(r["label"] == t and r["predicted"] == p for r in rows) for p in classes]
        for t in classes
    ]
    assert m["confusion_matrix"] == matrix
    recall = [matrix[i][i] / sum(matrix[i]) for i in range(10)]
    predicted = [sum(row[i] for row in matrix) for i in range(10)]
    precision = [matrix[i][i] / predicted[i] if predicted[i] else 0 for i in range(10)]
    f1 = [2 * p * r / (p + r) if p + r else 0 for p, r in zip(precision, recall)]
    assert m["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(10)) / 364)
    assert m["balanced_accuracy"] == pytest.approx(sum(recall) / 10)
    assert m["f1_macro"] == pytest.approx(sum(f1) / 10)
    answer = m["baseline"][
        "answer"
    ]  # the run's commonest training digit, scored on the held-out ones
    assert m["baseline"]["accuracy"] == pytest.approx(
        sum(r["label"] == answer for r in rows) / 364
    )
    assert m["accuracy"] > 0.8, m["accuracy"]
    assert Image.open(out / "mistakes.png").format == "PNG"


def test_report_has_the_runs_numbers_and_pictures(work):
    page = (work / "report.html").read_text()
    for run in ("first", "second"):
        m = json.loads(
            (work / "experiments" / "default" / run / "metrics.json").read_text()
        )["valid"]
        assert f"default/{run}" in page
        for key in ("accuracy", "balanced_accuracy", "f1_macro"):
            assert f"{m[key]:.4f}" in page, (run, key)
    held = json.loads(
        (
            work
            / "experiments"
            / "default"
            / "first"
            / "evaluations"
            / "held"
            / "metrics.json"
        ).read_text()
    )
    assert (
        f"{held['evaluation']['accuracy']:.4f}" in page
        and "fine-tuned from default/first" in page
    )
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert (
        len(images) == page.count("<img ") == 5
    )  # curves, 2 confusion matrices, the evaluation's and its mistakes
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"


def test_report_loads_clean_in_a_browser(work):
    report = work / "report.html"
    n = report.read_text().count("<img ")
    assert check(report) == dict(console=[], pictures=f"{n}/{n}")


def test_report_screenshot_has_the_page(work, tmp_path):
    shot = tmp_path / "shot.png"
    load(
        work / "report.html",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        "--hide-scrollbars",
    )
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    assert image.getextrema()[0] < 100  # text and pictures, not a blank page


def test_the_check_sees_a_broken_page(tmp_path):
    "The check can fail: a picture that does not decode, a script error and a blocked load all show."
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; script-src 'nonce-n'\"></head><body>"
        '<img src="data:image/png;base64,AAAA"><img src="https://example.com/x.png">'
        '<script nonce="n">window.addEventListener("load", () => { document.body.dataset.pictures = '
        'Array.from(document.images).filter(i => i.naturalWidth > 0).length + "/" + document.images.length; '
        "missing(); });</script></body></html>"
    )
    found = check(page)
    assert found["pictures"] == "0/2"
    assert any("missing is not defined" in line for line in found["console"]), found
    assert any("Content Security Policy" in line for line in found["console"]), found
