"""Data loading throughput: fastai's from_folder vs our cached path vs a bare uint8-tensor loop.

    python bench/data.py [--batches 40] [--batch_size 256]

Reads CIFAR-10 (32 px) and Imagenette (160 px) from ../shared/datasets (unpacked once into the
cache folder), prints images/s for each path, the one-off cache build time and its peak memory.
"""

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from image_classifier.checks import checked_samples
from image_classifier.core import cache_dir
from image_classifier.loaders import TensorLoader, cache_images, dataloaders

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = {
    "cifar10_jpg": ("train", "test", 32),
    "imagenette2_160sq": ("train", "val", 160),
}


def unpack(name):
    "The dataset folder, unpacked from ../shared/datasets into the cache on first use."
    dest = cache_dir("datasets")
    if not (dest / name).is_dir():
        with tarfile.open(SHARED / f"{name}.tar.gz") as tar:
            tar.extractall(dest, filter="data")
    return dest / name


def rate(batches, n_batches):
    "Images per second over the first `n_batches` of an iterable of (x, y) batches (after one warm-up)."
    it = iter(batches)
    next(it)
    count, start = 0, time.perf_counter()
    for _, (x, _) in zip(range(n_batches), it):
        count += len(x)
    return count / (time.perf_counter() - start)


def fastai_rate(root, valid, size, bs, n_batches):
    from fastai.vision.all import ImageDataLoaders, Resize

    dls = ImageDataLoaders.from_folder(
        root, train="train", valid=valid, item_tfms=Resize(size), bs=bs, num_workers=0
    )
    return rate(dls.train, n_batches)


def bare_rate(images, bs, n_batches):
    "A bare loop over a uint8 tensor in memory: shuffle, index, to float, normalise."
    x_all = torch.from_numpy(np.asarray(images))
    mean, std = torch.full((3,), 127.0), torch.full((3,), 64.0)

    def batches():
        order = torch.randperm(len(x_all))
        for i in range(len(x_all) // bs):
            idx = order[i * bs : (i + 1) * bs]
            yield x_all[idx].float().sub_(mean).div_(std).permute(0, 3, 1, 2), None

    return rate(batches(), n_batches)


def build_in_child(root, size):
    "(seconds, peak RSS growth in MB) of building the cache from scratch in a fresh process."
    code = f"""
import resource, time, os
from pathlib import Path
from image_classifier.checks import checked_samples
from image_classifier.loaders import cache_images
root = Path({str(root)!r})
usable, _, fp = checked_samples(root)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
cache_images(usable, fp, {size})
print(time.perf_counter() - t, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    with tempfile.TemporaryDirectory() as d:
        inspect_cache = cache_dir("inspect")
        env = os.environ | {"IMAGE_CLASSIFIER_CACHE": d}
        Path(d, "inspect").symlink_to(
            inspect_cache
        )  # reuse the hashes, rebuild only the images
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, mb = map(float, out.stdout.split()[-2:])
    return seconds, mb


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batches", type=int, default=40, help="batches timed per path")
    p.add_argument("--batch_size", type=int, default=256)
    args = p.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the benchmark reads the shared datasets)")
        return
    torch.set_num_threads(os.cpu_count())
    print(f"{'dataset':18} {'path':34} {'images/s':>10}")
    for name, (train, valid, size) in SETS.items():
        root = unpack(name)
        usable, _, fp = checked_samples(root)
        build_s, build_mb = build_in_child(root, size)
        dls = dataloaders(
            usable, fp, img_size=size, batch_size=args.batch_size, device="cpu"
        )
        images = cache_images(usable, fp, size)
        train_rows = np.flatnonzero([s.split == "train" for s in usable])
        plain = TensorLoader(
            images,
            np.zeros(len(train_rows)),
            dls.vocab,
            train_rows,
            args.batch_size,
            shuffle=True,
        )
        mapped = TensorLoader(images, np.zeros(len(train_rows)), dls.vocab, train_rows, args.batch_size,
                              shuffle=True, augment=True, memory_budget=0)  # fmt: skip
        rows = [
            (
                "(a) fastai from_folder",
                fastai_rate(
                    root,
                    valid,
                    size,
                    args.batch_size,
                    min(args.batches, 10 if size > 64 else args.batches),
                ),
            ),
            ("(b) cached, flip + translate", rate(dls.train, args.batches)),
            ("(b) cached, no augmentation", rate(plain, args.batches)),
            ("(b) cached, memory-mapped + aug", rate(mapped, args.batches)),
            (
                "(c) bare uint8 tensor loop",
                bare_rate(images[train_rows], args.batch_size, args.batches),
            ),
        ]
        for label, r in rows:
            print(f"{name:18} {label:34} {r:10,.0f}")
        a, b_aug, b_plain, c = rows[0][1], rows[1][1], rows[2][1], rows[4][1]
        print(
            f"{name:18} {'(b)/(a), augmented / not':34} {b_aug / a:9.0f}× / {b_plain / a:.0f}×"
        )
        print(
            f"{name:18} {'(c)/(b), augmented / not':34} {c / b_aug:9.2f}× / {c / b_plain:.2f}×"
        )
        print(f"{name:18} cache build: {len(usable):,} images at {size}px in {build_s:.1f} s "
              f"({len(usable) / build_s:,.0f} images/s), peak memory +{build_mb:.0f} MB")  # fmt: skip
    print(
        f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
