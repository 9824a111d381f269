"""The bare trainer against fastai's defaults, in the same run, on five real datasets.

    python bench/defaults.py [--datasets digits,mnist,cifar10,catsdogs,imagenette] [--ratio 3]
    python bench/defaults.py --datasets cifar10 --only ours -- --num_epochs 10   # try a trainer flag

For each dataset, a layout `train/<class>/…` + `test/<class>/…` is made once in the cache (links to
../shared/datasets' images, unpacked there; PNGs for the digits and MNIST, seeded stratified 80/20 splits of
their one set). Then:

- ours: `image_classifier_trainer --dataset_folder X` and nothing else, run in an empty folder (so the run
  goes to its `experiments/`); its time is the whole command's wall clock (checking the data, decoding it
  into the cache on the first run, fitting, the final evaluation and the pictures);
- fastai: `vision_learner(resnet18, pretrained=False, metrics=accuracy)` on the same training and
  validation images (our seeded split), at the dataset's own size (`Resize`), fastai's defaults
  everywhere else (batch 64, no augmentation, Adam, its learning rate), `fit_one_cycle(n)` with n the most
  epochs that fit `--ratio` times ours' time (n from one timed epoch, thrown away; at least one); its time is the fit's.

Both are scored on `test/`, which neither trains nor selects on: accuracy and macro F1. Prints one table.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from data import SHARED, unpack  # bench/data.py
from image_classifier.core import cache_dir

LAYOUTS = cache_dir("datasets") / "bench_layouts"
SIZES = dict(
    digits=32, mnist=28, cifar10=32, catsdogs=160, imagenette=160
)  # fastai's Resize


def _write_pngs(dest: Path, images: np.ndarray, labels: np.ndarray, seed: int = 0):
    "A seeded stratified 80/20 split of `images` written as dest/{train,test}/<label>/<i>.png."
    from PIL import Image
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(images)), test_size=0.2, stratify=labels, random_state=seed)  # fmt: skip
    for split, rows in (("train", train), ("test", test)):
        for i in rows:
            folder = dest / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(folder / f"{i:05d}.png")


def _linked(dest: Path, train: Path, test: Path):
    dest.mkdir(parents=True)
    (dest / "train").symlink_to(train)
    (dest / "test").symlink_to(test)


def layout(name: str) -> Path:
    "The dataset `name` as train/ + test/ (made once)."
    dest = LAYOUTS / name
    if (dest / ".complete").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        _write_pngs(dest, np.round(d.images * 255 / 16).astype(np.uint8), d.target)
    elif name == "mnist":
        root = unpack("mnist_t10k")
        pixels = gzip.open(root / "t10k-images-idx3-ubyte.gz").read()[16:]
        labels = np.frombuffer(gzip.open(root / "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)  # fmt: skip
        _write_pngs(dest, np.frombuffer(pixels, np.uint8).reshape(-1, 28, 28), labels)
    elif name == "cifar10":
        root = unpack("cifar10_jpg")
        _linked(dest, root / "train", root / "test")
    elif name == "catsdogs":
        root = unpack("catsdogs_160")
        _linked(dest, root / "train", root / "test")
    elif (
        name == "imagenette"
    ):  # its val/ is our test/: the trainer would validate on a val/
        root = unpack("imagenette2_160sq")
        _linked(dest, root / "train", root / "val")
    (dest / ".complete").write_text("")
    return dest


def ours(folder: Path, flags: list) -> dict:
    "The bare command in an empty folder: its wall clock, its choices, and its test scores."
    work = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    trainer = Path(sys.executable).with_name("image_classifier_trainer")
    cmd = [str(trainer), "--dataset_folder", str(folder), *flags]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"the trainer failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (run,) = (work / "experiments" / "default").iterdir()
    test = json.loads((run / "metrics.json").read_text())["test"]
    params = (run / "params.yaml").read_text()
    shutil.rmtree(work)
    return dict(
        seconds=wall, accuracy=test["accuracy"], f1=test["f1_macro"], params=params
    )


def _split(folder: Path):
    "(train files, valid files, test files, labels of each) as the trainer splits them (its defaults)."
    from image_classifier.checks import checked_samples

    usable, _, _ = checked_samples(folder, valid_pct=0.2, seed=42)
    return {sp: [(s.path, s.label) for s in usable if s.split == sp] for sp in ("train", "valid", "test")}  # fmt: skip


def fastai(folder: Path, size: int, budget: float) -> dict:
    "resnet18 from scratch with fastai's defaults, as many one-cycle epochs as fit `budget` seconds."
    import torch
    from fastai.callback.progress import ProgressCallback
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        IndexSplitter,
        Resize,
        accuracy,
        resnet18,
        vision_learner,
    )
    from sklearn.metrics import f1_score

    torch.manual_seed(0)
    split = _split(folder)
    label = dict(split["train"] + split["valid"] + split["test"])
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_y=lambda path: label[path],
        splitter=IndexSplitter(
            range(len(split["train"]), len(split["train"]) + len(split["valid"]))
        ),
        item_tfms=Resize(size),
    )
    dls = block.dataloaders([p for p, _ in split["train"] + split["valid"]])
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.remove_cb(ProgressCallback)
    with (
        learn.no_logging()
    ):  # one whole epoch's cost, overheads included (its weights are thrown away)
        t0 = time.perf_counter()
        learn.fit(1)
        epoch = time.perf_counter() - t0
    epochs = max(1, int(budget / epoch))
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.remove_cb(ProgressCallback)
    t0 = time.perf_counter()
    with learn.no_logging():
        learn.fit_one_cycle(epochs)
    seconds = time.perf_counter() - t0
    test = learn.dls.test_dl([p for p, _ in split["test"]], with_labels=True)
    probs, targets = learn.get_preds(dl=test)
    pred = probs.argmax(1).numpy()
    acc = float((pred == targets.numpy()).mean())
    f1 = float(f1_score(targets.numpy(), pred, average="macro"))
    return dict(seconds=seconds, accuracy=acc, f1=f1, epochs=epochs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--datasets", default=",".join(SIZES), help="comma-separated, of: " + ", ".join(SIZES))  # fmt: skip
    p.add_argument("--ratio", type=float, default=3, help="fastai's budget: this many times ours' time")  # fmt: skip
    p.add_argument("--only", choices=["ours", "fastai", "both"], default="both")
    p.add_argument("flags", nargs="*", help="after --: trainer flags (the benchmark proper gives none)")  # fmt: skip
    args = p.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the benchmark reads the shared datasets)")
        return
    names = args.datasets.split(",")
    if unknown := set(names) - set(SIZES):
        p.error(f"unknown dataset(s) {', '.join(sorted(unknown))}")
    print(f"{os.cpu_count()} CPU cores; ours: image_classifier_trainer --dataset_folder X {' '.join(args.flags)}")  # fmt: skip
    rows = []
    for name in names:
        folder = layout(name)
        row = dict(dataset=name)
        if args.only != "fastai":
            row["ours"] = ours(folder, args.flags)
            print(*(line for line in row["ours"].pop("params").splitlines() if line.startswith("#")), sep="\n")  # fmt: skip
            print(name, "ours", row["ours"], flush=True)
        if args.only != "ours":
            budget = args.ratio * row["ours"]["seconds"] if "ours" in row else 60.0
            row["fastai"] = fastai(folder, SIZES[name], budget)
            print(name, "fastai", row["fastai"], flush=True)
        rows.append(row)
    head = (
        "dataset",
        "ours s",
        "acc",
        "F1",
        "fastai s",
        "epochs",
        "acc",
        "F1",
        "time ratio",
    )
    print("\n{:11} {:>7} {:>6} {:>6}   {:>8} {:>6} {:>6} {:>6}   {:>10}".format(*head))
    for r in rows:
        o, f = r.get("ours"), r.get("fastai")
        left = f"{o['seconds']:7.0f} {o['accuracy']:6.4f} {o['f1']:6.4f}" if o else f"{'':7} {'':6} {'':6}"  # fmt: skip
        right = f"{f['seconds']:8.0f} {f['epochs']:6d} {f['accuracy']:6.4f} {f['f1']:6.4f}" if f else ""  # fmt: skip
        ratio = f"{f['seconds'] / o['seconds']:10.1f}" if o and f else ""
        print(f"{r['dataset']:11} {left}   {right}   {ratio}")


if __name__ == "__main__":
    main()
