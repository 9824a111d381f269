"""One process against several: the same trainer command on one process, on two processes of one machine
(`torchrun --nproc_per_node 2`) and on two "machines" on the loopback (`torchrun --nnodes 2`, one process
each, separate working folders), with the CPU cores shared out so that each configuration uses all of them.

    python bench/scale.py [--datasets digits,cifar10] [--epochs 2] [--cores 2] [-- more trainer flags]

digits is the embedded set; cifar10 is the layout bench/defaults.py makes in the cache (run that first, or
it is skipped). Prints, per dataset and configuration: the whole command's wall clock, the fitting time
(metrics.csv), images per second of fitting, validation and test accuracy, and the batch the recipe chose.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from image_classifier.core import cache_dir

BIN = Path(sys.executable).parent
LAYOUTS = cache_dir("datasets") / "bench_layouts"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(kind: str, cores: int) -> list:
    "(threads per process, [launch prefix per node]) of a configuration."
    if kind == "1 process":
        return cores, [[]]
    torchrun = [str(BIN / "torchrun")]
    if kind == "2 processes":
        return cores // 2, [
            torchrun + ["--nproc_per_node", "2", "--master_port", str(_port())]
        ]
    port = str(_port())
    return cores // 2, [
        torchrun
        + [
            "--nnodes",
            "2",
            "--node_rank",
            str(i),
            "--nproc_per_node",
            "1",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            port,
        ]
        for i in (0, 1)
    ]


def run(kind: str, dataset: str, epochs: int, cores: int, extra: list) -> dict:
    "Train once in fresh folders; the figures of node 0's run."
    threads, nodes = _launch(kind, cores)
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    env = os.environ | dict(OMP_NUM_THREADS=str(threads))
    trainer = [
        str(BIN / "image_classifier_trainer"),
        "--dataset_folder",
        dataset,
        "--num_epochs",
        str(epochs),
        "--run_name",
        "r",
        *extra,
    ]
    start = time.perf_counter()
    procs = []
    for i, prefix in enumerate(nodes):
        (work / f"node{i}").mkdir()
        command = prefix + trainer if prefix else trainer
        procs.append(
            subprocess.Popen(
                command,
                cwd=work / f"node{i}",
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        sys.exit(f"{kind} on {dataset} failed:\n{errors[0][-2000:]}")
    run_dir = work / "node0" / "experiments" / "default" / "r"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    fit = sum(int(r.rsplit(",", 1)[1]) for r in rows)
    env_info = json.loads((run_dir / "environment.json").read_text())
    n_train = env_info["data"]["counts"]["train"]
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    return dict(
        config=kind,
        wall_s=round(wall),
        fit_s=fit,
        images_per_s=round(n_train * len(rows) / max(fit, 1)),
        valid=metrics["valid"]["accuracy"],
        test=metrics.get("test", {}).get("accuracy"),
        batch=params["batch_size"],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,cifar10")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("extra", nargs="*", help="trainer flags, after --")
    args = parser.parse_args()
    print(
        f"{'dataset':9} {'configuration':13} {'wall s':>6} {'fit s':>6} {'img/s':>6} {'valid':>7} {'test':>7}  batch per process"
    )
    for name in args.datasets.split(","):
        dataset = "digits" if name == "digits" else str(LAYOUTS / name)
        if name != "digits" and not Path(dataset).is_dir():
            print(
                f"{name}: no layout in {LAYOUTS} (python bench/defaults.py --datasets {name} makes it): skipped"
            )
            continue
        for kind in ("1 process", "2 processes", "2 nodes"):
            r = run(kind, dataset, args.epochs, args.cores, args.extra)
            test = f"{r['test']:.4f}" if r["test"] is not None else "-"
            figures = f"{r['wall_s']:6} {r['fit_s']:6} {r['images_per_s']:6} {r['valid']:7.4f} {test:>7}"
            print(f"{name:9} {kind:13} {figures}  {r['batch']}", flush=True)


if __name__ == "__main__":
    main()
