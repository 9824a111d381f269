"""Drift tests on CIFAR-10 in the "Failing Loudly" style: detection rates and false alarms, and MMD speed.

    python bench/drift.py [--draws 100] [--null_draws 1000] [--epochs 3]

Trains a small model with the project's trainer on CIFAR-10 JPEGs from ../shared/datasets (or reuses
--run), takes its validation split (images it did not train on) as the reference and the test set, with
shifts applied to a fraction of the images, as new data. For each shift, fraction and sample size it prints
how often each test (alpha 0.05) and the overall Bonferroni verdict detect drift, then the false-alarm rate
on unshifted data, then the time of one MMD test at n = 1000 vs 1000, d = 512, 100 permutations.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as T
from PIL import Image

from data import SHARED, unpack  # bench/data.py
from image_classifier.data import fit_square, normalise_batch, scan_dataset
from image_classifier.drift import (
    forward_pass,
    image_stats,
    ks_test,
    label_shift_test,
    mmd_test,
)
from image_classifier.experiments import load_run
from image_classifier.params import TrainParams
from image_classifier.train import train

SIZES = [10, 20, 50, 100, 200, 500, 1000]
FRACTIONS = [0.1, 0.5, 1.0]
NOISE = {"small": 1, "medium": 10, "large": 100}  # std of Gaussian noise, 0-255 units
AFFINE = {
    "small": (10, 0.05, 0.1),
    "medium": (40, 0.2, 0.2),
    "large": (90, 0.4, 0.4),
}  # degrees, translate, zoom


def features(model, info, images):
    "probs, embeddings and image statistics of uint8 N×32×32×3 images, computed as the CLI computes them."
    probs, embs = [], []
    with torch.no_grad():
        for start in range(0, len(images), 500):
            x = torch.from_numpy(
                normalise_batch(list(images[start : start + 500]), info)
            )
            p, e = forward_pass(model, x)  # every view of the model, one pass
            probs.append(p)
            embs.append(e)
    stats = np.array([image_stats(Image.fromarray(im)) for im in images], np.float32)
    return dict(
        probs=torch.cat(probs).numpy(), embeddings=torch.cat(embs).numpy(), stats=stats
    )


def shifted_versions(images, seed=0):
    "{shift name: shifted copy of `images`} for Gaussian noise and affine transforms, small to large."
    rng, out = np.random.default_rng(seed), {}
    for level, std in NOISE.items():
        out[f"noise {level}"] = np.clip(
            images + rng.normal(0, std, images.shape), 0, 255
        ).astype(np.uint8)
    torch.manual_seed(seed)
    for level, (deg, shift, zoom) in AFFINE.items():
        tf = T.RandomAffine(
            degrees=deg, translate=(shift, shift), scale=(1 - zoom, 1 + zoom)
        )
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        out[f"image {level}"] = (
            torch.stack([tf(im) for im in x]).permute(0, 2, 3, 1).numpy()
        )
    return out


def draw(rng, clean, shifted, labels, n, fraction, knockout):
    "Indices and features of n new images, `fraction` of them shifted (or, for knock-out, class 0 thinned)."
    pool = np.arange(len(labels))
    if (
        knockout
    ):  # remove `fraction` of class 0's images from the pool the new data is drawn from
        zeros = pool[labels == 0]
        pool = np.setdiff1d(
            pool, rng.choice(zeros, int(round(fraction * len(zeros))), replace=False)
        )
    idx = rng.choice(pool, n, replace=False)
    take = np.zeros(n, bool)
    if not knockout:
        take[rng.choice(n, int(round(fraction * n)), replace=False)] = True
    return {
        k: np.where(
            take.reshape(-1, *([1] * (v.ndim - 1))),
            shifted[k][idx] if shifted else v[idx],
            v[idx],
        )
        for k, v in clean.items()
    }


def run_tests(ref, new, n_classes, rng, num_permutations):
    "p-values of the four tests: the whole reference against `new`, as the CLI runs them (MMD on an equal-size subsample)."
    r = ref["embeddings"][
        rng.choice(len(ref["embeddings"]), len(new["probs"]), replace=False)
    ]
    return dict(
        outputs=ks_test(ref["probs"], new["probs"])["p_value"],
        labels=label_shift_test(
            ref["probs"].argmax(1), new["probs"].argmax(1), n_classes
        )["p_value"],
        embeddings=mmd_test(
            r,
            new["embeddings"],
            num_permutations,
            permutation_seed=int(rng.integers(1 << 31)),
            fuse=True,
        )["p_value"],
        inputs=ks_test(ref["stats"], new["stats"])["p_value"],
    )


def detected(p, alpha=0.05):
    "Per test: p < alpha; overall: any p < alpha / 4 (Bonferroni)."
    out = {k: v is not None and v < alpha for k, v in p.items()}
    return out | {
        "overall": any(v is not None and v < alpha / len(p) for v in p.values())
    }


def cifar_features(run, root):
    "(reference, clean test, {shift: shifted test}, test labels): features of the run's model on CIFAR-10."
    model, info = load_run(run)
    samples = scan_dataset(root)

    def as_array(split):
        return np.stack(
            [
                fit_square(Image.open(s.path).convert("RGB"), 32)
                for s in samples
                if s.split == split
            ]
        )

    ref, test_images = features(model, info, as_array("valid")), as_array("test")
    labels = np.array(
        [info["classes"].index(s.label) for s in samples if s.split == "test"]
    )
    clean = features(model, info, test_images)
    shifted = {
        k: features(model, info, v) for k, v in shifted_versions(test_images).items()
    }
    return ref, clean, shifted, labels


def mmd_timings(others=None):
    "Print the median time of one MMD test at n=1000 vs 1000, d=512, 100 permutations: ours, and `others[label](x, y)`."
    x, y = np.random.default_rng(1).normal(size=(2, 1000, 512)).astype(np.float32)
    timings = {
        "ours, median bandwidth": lambda: mmd_test(x, y, 100),
        "ours, fused (5 kernels)": lambda: mmd_test(x, y, 100, fuse=True),
    } | {label: make(x, y) for label, make in (others or {}).items()}
    print("\nMMD, n=1000 vs 1000, d=512, 100 permutations (median of 5)")
    for label, fn in timings.items():
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        print(f"{label:32} {np.median(times):.3f} s")


def detection_tables(run_once, tests, data, cells, sizes, null_sizes, args):
    """Print the detection rate of each test in `tests` per shift, fraction and sample size, then the
    false-alarm rate with no shift; `run_once(new_data, rng)` maps each test to whether it flagged.
    """
    clean, shifted, labels = data
    rng = np.random.default_rng(0)

    def rates(n_draws, new_data):
        hits = [run_once(new_data(), rng) for _ in range(n_draws)]
        return " ".join(f"{np.mean([h[t] for h in hits]):10.3f}" for t in tests)

    print(
        f"\ndetection rate over {args.draws} draws per cell (alpha 0.05), the same draws for every test"
    )
    print(f"{'shift':17} {'frac':>4} {'n':>5} " + " ".join(f"{t:>10}" for t in tests))
    for name, fraction in cells:
        knockout = name.startswith("knock")
        for n in sizes:
            row = rates(
                args.draws,
                lambda: draw(
                    rng, clean, shifted.get(name), labels, n, fraction, knockout
                ),
            )
            print(
                f"{name:17} {fraction:4.1f} {n:5d} {row}",
                flush=True,
            )
    bound = 0.05 + 1.645 * np.sqrt(0.05 * 0.95 / args.null_draws)
    print(
        f"\nfalse-alarm rate with no shift over {args.null_draws} draws (one-sided 95% binomial bound: {bound:.3f})"
    )
    for n in null_sizes:
        row = rates(
            args.null_draws, lambda: draw(rng, clean, None, labels, n, 0.0, False)
        )
        print(f"{'no shift':17} {'':4} {n:5d} {row}", flush=True)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--null_draws", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument(
        "--run", default=None, help="reuse this run folder instead of training one"
    )
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the benchmark reads the shared datasets)")
        return
    torch.set_num_threads(os.cpu_count())
    root = unpack("cifar10_jpg")
    t0 = time.perf_counter()
    run = (
        Path(args.run)
        if args.run
        else train(
            TrainParams(
                str(root),
                num_epochs=args.epochs,
                batch_size=256,
                learning_rate=0.2,
                optimizer="sgd",
                warmup_pct=0.25,
                translate=2,  # the settings its figures were measured with
            ),
            Path(tempfile.mkdtemp()),
            "drift",
            "model",
            quiet=True,
        )
    )
    print(f"model: {run} ({(time.perf_counter() - t0) / 60:.1f} min)")
    ref, clean, shifted, labels = cifar_features(run, root)
    print(
        f"features ready ({(time.perf_counter() - t0) / 60:.1f} min); reference {len(ref['probs'])}, test {len(labels)}"
    )
    tests = ["outputs", "labels", "embeddings", "inputs", "overall"]
    cells = [
        (name, f) for name in list(shifted) + ["knock-out class 0"] for f in FRACTIONS
    ]

    def run_once(new, rng):
        return detected(run_tests(ref, new, 10, rng, args.permutations))

    detection_tables(
        run_once, tests, (clean, shifted, labels), cells, SIZES, SIZES, args
    )
    mmd_timings()


if __name__ == "__main__":
    main()
