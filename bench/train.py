"""Training: our Learner path against a bare PyTorch loop, and accuracy on CIFAR-10 in a fixed budget.

    python bench/train.py throughput [--batches 30]
    python bench/train.py ours [--epochs 6] [any other trainer flag, e.g. --translate 1 --seed 0]
    python bench/train.py fastai [--epochs 4]

CIFAR-10 JPEGs come from ../shared/datasets (unpacked once into the cache folder): 50,000 training
images, evaluated on the 10,000 test images. Prints images/s, wall-clock training minutes and accuracy.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback

from data import SHARED, unpack  # bench/data.py
from image_classifier.checks import checked_samples
from image_classifier.data import Sample
from image_classifier.learner import build_learner
from image_classifier.loaders import TensorLoader, dataloaders
from image_classifier.params import TrainParams


def cifar_dls(batch_size, seed=0):
    "Cached DataLoaders: train = the 50,000 training images, valid = the 10,000 test images."
    root = unpack("cifar10_jpg")
    usable, _, fp = checked_samples(root, valid_pct=0.0)
    usable = [
        Sample(s.path, s.label, "valid" if s.split == "test" else s.split, s.index)
        for s in usable
    ]
    return dataloaders(usable, fp, 32, batch_size, seed, device="cpu")


class BatchClock(Callback):
    "Images/s over training batches `start`..`start + n` (the first ones warm up)."

    def __init__(self, start=3, n=30):
        self.start, self.n, self.count = start, n, 0

    def before_batch(self):
        if self.training and self.iter == self.start:
            self.t0 = time.perf_counter()

    def after_batch(self):
        if self.training and self.start <= self.iter < self.start + self.n:
            self.count += len(self.xb[0])
            if self.iter == self.start + self.n - 1:
                self.rate = self.count / (time.perf_counter() - self.t0)
                raise KeyboardInterrupt  # stop the fit: the measurement is complete


def throughput(args):
    args.batch_size = args.batch_size or 256
    dls = cifar_dls(args.batch_size)
    params = TrainParams(arch=args.arch, batch_size=args.batch_size, optimizer="sgd")
    learn = build_learner(params, dls, Path(tempfile.mkdtemp()))
    learn.remove_cb(ProgressCallback)
    clock = BatchClock(n=args.batches)
    try:
        learn.fit_one_cycle(1, 0.05, cbs=clock)
    except KeyboardInterrupt:
        pass
    model, opt = learn.model, torch.optim.SGD(
        learn.model.parameters(), lr=0.01, momentum=0.9, nesterov=True
    )
    loss_fn = learn.loss_func
    loader = TensorLoader(dls.train.images, dls.train.labels.numpy(), dls.vocab, dls.train.rows, args.batch_size,
                          shuffle=True, mean=dls.stats[0], std=dls.stats[1], augment=True)  # fmt: skip
    model.train()
    count = 0
    for i, (x, y) in enumerate(loader):
        if i == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            count += len(x)
        if i == 3 + args.batches - 1:
            break
    bare = count / (time.perf_counter() - t0)
    print(f"{'path':28} {'images/s':>9}")
    print(f"{'fastai Learner (ours)':28} {clock.rate:9.0f}")
    print(f"{'bare PyTorch loop':28} {bare:9.0f}")
    setup = f"{args.arch}, batch {args.batch_size}, bf16, {args.batches} batches"
    print(f"Learner overhead: {100 * (bare / clock.rate - 1):.1f}% ({setup})")


def ours(args):
    "The small-image recipe as a user runs it: `image_classifier_trainer` on train/ + valid/ (the test images)."
    root = unpack("cifar10_jpg")
    layout = (
        root.parent / "cifar10_train_valid"
    )  # fixed, so the inspection and decoding caches are reused
    layout.mkdir(exist_ok=True)
    for split, target in [("train", "train"), ("valid", "test")]:
        if not (layout / split).exists():
            (layout / split).symlink_to(root / target)
    experiments = Path(tempfile.mkdtemp())
    trainer = Path(sys.executable).with_name(
        "image_classifier_trainer"
    )  # the console script of this environment
    cmd = [str(trainer), "--dataset_folder", str(layout), "--experiments_folder", str(experiments),
           "--run_name", "bench", "--arch", args.arch, "--num_epochs", str(args.epochs)]  # fmt: skip
    cmd += ["--batch_size", str(args.batch_size)] * (args.batch_size is not None)
    cmd += ["--learning_rate", str(args.lr)] * (args.lr is not None)
    cmd += args.trainer_flags
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True
    )  # fastai's progress bars: not for the figures
    wall = (time.perf_counter() - t0) / 60
    print(
        done.stdout[-300:].split("\r")[-1]
        + done.stderr[-2000:] * (done.returncode != 0)
    )
    done.check_returncode()
    run = experiments / "default" / "bench"
    history = (run / "metrics.csv").read_text()
    print(history)
    rows = list(csv.DictReader(history.splitlines()))
    fit = sum(float(r["seconds"]) for r in rows) / 60
    acc = json.loads((run / "metrics.json").read_text())["valid"]["accuracy"]
    print(f"ours: {args.arch}, {args.epochs} epochs: {fit:.2f} min of training (fit, with per-epoch validation), "
          f"{wall:.2f} min for the whole command; accuracy on the 10,000 test images {acc:.4f}")  # fmt: skip


def fastai_default(args):
    from fastai.vision.all import ImageDataLoaders, accuracy, resnet18, vision_learner

    root = unpack("cifar10_jpg")
    dls = ImageDataLoaders.from_folder(
        root, train="train", valid="test", num_workers=os.cpu_count()
    )
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.remove_cb(ProgressCallback)
    t0 = time.perf_counter()
    learn.fit_one_cycle(args.epochs)
    minutes = (time.perf_counter() - t0) / 60
    print(f"fastai vision_learner(resnet18, pretrained=False): {args.epochs} epochs, {minutes:.2f} min, "
          f"test accuracy {float(learn.validate()[1]):.4f}")  # fmt: skip


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=["throughput", "ours", "fastai"])
    p.add_argument("--arch", default="airnet")
    p.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="default: ours, the trainer's; throughput, 256",
    )
    p.add_argument("--batches", type=int, default=30, help="throughput: batches timed")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument(
        "--lr", type=float, default=None, help="ours: default, the trainer's"
    )
    args, args.trainer_flags = p.parse_known_args()
    if args.trainer_flags and args.what != "ours":
        p.error(f"unrecognized arguments: {' '.join(args.trainer_flags)}")
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the benchmark reads the shared datasets)")
        return
    torch.manual_seed(0)
    dict(throughput=throughput, ours=ours, fastai=fastai_default)[args.what](args)


if __name__ == "__main__":
    main()
