"""Our drift tests against alibi-detect 0.13's MMDDrift and KSDrift, on the same embeddings and draws.

    PYTHONPATH=.. <python with alibi-detect> drift_alibi.py --run <run folder> [--draws 100]

alibi-detect is not a dependency of the project (its licence is not open source since 0.11.5) and needs
numpy<2, so this runs in an environment of its own that has alibi-detect 0.13 and torch (for its PyTorch
backend). The model's features, the shifts and the draws are those of bench/drift.py. For each cell it
prints the detection rate (alpha 0.05) of: per-class KS on the softmax outputs with Bonferroni correction
(ours, alibi's KSDrift), and MMD on the embeddings (ours with the median bandwidth and fused, alibi's
MMDDrift with its default median-heuristic kernel, both with the same number of permutations, against the
same equal-size reference subsample). Then the time of one MMD test at n = 1000 vs 1000, d = 512.
"""

import argparse
import os
import time
from pathlib import Path

import torch
from alibi_detect.cd import KSDrift, MMDDrift
from drift import cifar_features, detection_tables, mmd_timings  # bench/drift.py

from data import unpack  # bench/data.py
from image_classifier.drift import ks_test, mmd_test

CELLS = [("noise medium", 1.0), ("image medium", 0.5), ("knock-out class 0", 1.0)]
SIZES = [10, 50, 100, 200, 500, 1000]
NULL_SIZES = [20, 100, 500]
TESTS = ["KS ours", "KS alibi", "MMD ours", "MMD fused", "MMD alibi"]


def same_draw_tests(ref, new, rng, permutations, alpha=0.05):
    "Which of the five tests detect drift on this draw (MMD: one reference subsample for all three)."
    r = ref["embeddings"][
        rng.choice(len(ref["embeddings"]), len(new["probs"]), replace=False)
    ]
    seed = int(rng.integers(1 << 31))
    ks_alibi = KSDrift(ref["probs"], p_val=alpha, correction="bonferroni")
    mmd_alibi = MMDDrift(r, backend="pytorch", p_val=alpha, n_permutations=permutations)
    return {
        "KS ours": ks_test(ref["probs"], new["probs"])["p_value"] < alpha,
        "KS alibi": bool(ks_alibi.predict(new["probs"])["data"]["is_drift"]),
        "MMD ours": mmd_test(r, new["embeddings"], permutations, permutation_seed=seed)[
            "p_value"
        ]
        < alpha,
        "MMD fused": mmd_test(
            r, new["embeddings"], permutations, permutation_seed=seed, fuse=True
        )["p_value"]
        < alpha,
        "MMD alibi": bool(mmd_alibi.predict(new["embeddings"])["data"]["is_drift"]),
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--run", required=True, help="a run folder, e.g. the one bench/drift.py trained"
    )
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--null_draws", type=int, default=500)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--timing_only", action="store_true", help="only the MMD timing")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    if args.timing_only:
        return timing()
    root, t0 = unpack("cifar10_jpg"), time.perf_counter()
    ref, clean, shifted, labels = cifar_features(Path(args.run), root)
    print(f"features ready ({(time.perf_counter() - t0) / 60:.1f} min)")

    def run_once(new, rng):
        return same_draw_tests(ref, new, rng, args.permutations)

    detection_tables(
        run_once, TESTS, (clean, shifted, labels), CELLS, SIZES, NULL_SIZES, args
    )
    timing()


def timing():
    def alibi(x, y):
        detector = MMDDrift(x, backend="pytorch", p_val=0.05, n_permutations=100)
        return lambda: detector.predict(y)

    mmd_timings({"alibi-detect MMDDrift (pytorch)": alibi})


if __name__ == "__main__":
    main()
