"""Scale-out on the loopback, as a user would run it on two machines: `torchrun --nnodes 2` with one process
each on gloo, each node in its own working folder, the embedded digits, one epoch. It must write one run
folder, on rank 0's node only, with the very numbers of the same run as two processes on one machine; and
when a process dies, the other must fail within seconds, in one clear line, not hang."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from image_classifier.data import write_digits

BIN = Path(sys.executable).parent
TRAIN = [str(BIN / "image_classifier_trainer"), "--run_name", "r", "--seed", "3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    cwd: Path, *launch, epochs: int = 1, flags: tuple = ()
) -> subprocess.Popen:
    "Start `torchrun LAUNCH image_classifier_trainer ... FLAGS` in `cwd` (a node's working folder)."
    cwd.mkdir(parents=True, exist_ok=True)
    env = os.environ | dict(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    command = [
        str(BIN / "torchrun"),
        *launch,
        *TRAIN,
        "--num_epochs",
        str(epochs),
        *flags,
    ]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def two_nodes(
    folder: Path, epochs: int = 1, flags: tuple = (), node1: tuple = None
) -> list:
    "Node 0 and node 1 of one run, on the loopback, each in its own folder; `node1`: node 1's flags, if others."
    port = free_port()
    return [
        torchrun(
            folder / f"node{i}",
            "--nnodes",
            "2",
            "--node_rank",
            str(i),
            "--nproc_per_node",
            "1",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            epochs=epochs,
            flags=flags if i == 0 or node1 is None else node1,
        )
        for i in (0, 1)
    ]


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    "The same run as two processes on one machine (`one/`) and as two machines (`node0/`, `node1/`)."
    folder = tmp_path_factory.mktemp("scale")
    code, out, err = finish(
        torchrun(
            folder / "one", "--nproc_per_node", "2", "--master_port", str(free_port())
        )
    )
    assert code == 0, err[-3000:]
    for node, (code, out, err) in enumerate(finish(p) for p in two_nodes(folder)):
        assert code == 0, (node, err[-3000:])
    return folder


def test_two_nodes_write_one_run_folder_on_rank_0(runs):
    run = runs / "node0" / "experiments" / "default" / "r"
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert {"model.pth", "metrics.json", "metrics.csv", "params.yaml"} <= {
        p.name for p in run.iterdir()
    }
    assert not (
        runs / "node1" / "experiments" / "default" / "r"
    ).exists()  # rank 1 wrote a scratch copy only
    assert (
        runs / "node1" / "data" / "digits"
    ).is_dir()  # each node reads the dataset where it is


def test_two_nodes_give_the_numbers_of_two_processes(runs):
    one, two = (runs / n / "experiments" / "default" / "r" for n in ("one", "node0"))
    assert json.loads((two / "metrics.json").read_text()) == json.loads(
        (one / "metrics.json").read_text()
    )
    rows = [
        [
            line.rsplit(",", 1)[0]
            for line in (r / "metrics.csv").read_text().splitlines()
        ]
        for r in (one, two)
    ]
    assert rows[0] == rows[1]  # every column but the seconds
    assert (two / "model.pth").read_bytes() == (one / "model.pth").read_bytes()
    recipe = (one / "params.yaml").read_text()
    assert "719 for each of 2 processes" in recipe, recipe  # each trained on its half
    assert (two / "params.yaml").read_text() == recipe


def test_a_dead_process_fails_the_other_at_once(tmp_path):
    node0, node1 = two_nodes(tmp_path, epochs=20)
    csv = tmp_path / "node0" / "experiments" / "default" / "r" / "metrics.csv"
    deadline = time.monotonic() + 300
    while (
        not csv.exists()
    ):  # the first epoch is done: the processes exchange gradients at every step
        assert (
            time.monotonic() < deadline and node0.poll() is None
        ), "the run did not start"
        time.sleep(0.5)
    workers = [
        p
        for p in psutil.process_iter(["cmdline", "cwd"])
        if p.info["cwd"] == str(tmp_path / "node1")
        and "torchrun" not in " ".join(p.info["cmdline"] or [])
        and any("image_classifier_trainer" in part for part in p.info["cmdline"] or [])
    ]
    assert len(workers) == 1, workers
    workers[0].send_signal(signal.SIGKILL)  # rank 1 dies, as on an out-of-memory kill
    killed = time.monotonic()
    code, out, err = finish(node0, timeout=120)
    finish(node1, timeout=60)
    assert time.monotonic() - killed < 60, time.monotonic() - killed
    assert code != 0
    line = (
        "error: rank 0 of 2: another process of this run stopped or became unreachable"
    )
    assert line in err and "internal error" not in err, err[-3000:]
    status = json.loads((csv.parent / "status.json").read_text())
    assert (
        status["status"] == "failed"
        and "another process of this run stopped" in status["reason"]
    ), status


def test_nodes_with_different_data_refuse_to_train(tmp_path):
    "Each node reads its own copy of the data: a copy that differs is refused on every node before anything is written."
    for node in (0, 1):
        write_digits(tmp_path / f"node{node}" / "mine")
    (
        tmp_path / "node1" / "mine" / "3" / "0003.png"
    ).unlink()  # one image fewer on node 1
    results = [
        finish(p, timeout=300)
        for p in two_nodes(tmp_path, flags=("--dataset_folder", "mine"))
    ]
    for code, out, err in results:
        assert (
            code != 0
            and "the processes of this run read different data (rank 0: " in err
        ), err[-3000:]
        assert "internal error" not in err, err[-3000:]
    assert not (tmp_path / "node0" / "experiments" / "default" / "r").exists()


def test_a_refusal_on_one_node_stops_every_node(tmp_path):
    "Node 1 cannot start (its dataset is missing, or its command differs): both nodes stop at once, in words."
    for flags, why in [
        (
            ("--dataset_folder", "nowhere"),
            "rank 1 of this run refused to start: nowhere: no such folder",
        ),
        (
            ("--num_epochs", "2"),
            "were given different settings (rank 0: num_epochs=1; rank 1: num_epochs=2)",
        ),
    ]:
        folder = tmp_path / flags[0].strip("-")
        start = time.monotonic()
        nodes = two_nodes(folder, node1=flags)
        results = [finish(p, timeout=300) for p in nodes]
        assert time.monotonic() - start < 120
        for node, (code, out, err) in enumerate(results):
            assert code != 0 and "internal error" not in err, (node, err[-3000:])
        assert why in results[0][2], results[0][2][-3000:]
        assert not (folder / "node0" / "experiments" / "default" / "r").exists()


def test_a_killed_run_resumes_under_torchrun(tmp_path):
    "Resumed as it ran, with rank 0 alone writing; resumed with another number of processes, refused."
    port = free_port()
    run = torchrun(
        tmp_path, "--nproc_per_node", "2", "--master_port", str(port), epochs=4
    )
    csv = tmp_path / "experiments" / "default" / "r" / "metrics.csv"
    deadline = time.monotonic() + 300
    while not csv.exists():
        assert (
            time.monotonic() < deadline and run.poll() is None
        ), "the run did not start"
        time.sleep(0.5)
    rank1 = [
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if (p.info["environ"] or {}).get("RANK") == "1"
        and any("image_classifier_trainer" in part for part in p.info["cmdline"] or [])
    ]
    assert len(rank1) == 1, rank1
    rank1[0].send_signal(signal.SIGKILL)
    assert finish(run, timeout=120)[0] != 0
    env = os.environ | dict(OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")
    alone = subprocess.run(
        TRAIN[:1] + ["--resume", "--run_name", "r"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (
        alone.returncode == 2
        and "trained with 2 process(es), and this resume has 1" in alone.stderr
    ), alone.stderr[-2000:]
    resume = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        TRAIN[0],
        "--resume",
        "--run_name",
        "r",
    ]
    code, out, err = finish(
        subprocess.Popen(
            resume,
            cwd=tmp_path,
            env=env | dict(OMP_NUM_THREADS="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    assert code == 0, err[-3000:]
    epochs = [line.split(",")[0] for line in csv.read_text().splitlines()[1:]]
    assert epochs == [
        "0",
        "1",
        "2",
        "3",
    ], epochs  # each epoch once: rank 1 wrote nothing here
    log = (csv.parent / "train.log").read_text()
    assert log.count("resuming") == 1, log
    assert json.loads((csv.parent / "status.json").read_text())["status"] == "finished"
