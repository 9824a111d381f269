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


def two_nodes(folder: Path, epochs: int = 1, flags: tuple = ()) -> list:
    "Node 0 and node 1 of one run, on the loopback, each in its own folder."
    port = free_port()
    return [
        torchrun(folder / f"node{i}", "--nnodes", "2", "--node_rank", str(i), "--nproc_per_node", "1",
                 "--master_addr", "127.0.0.1", "--master_port", str(port), epochs=epochs, flags=flags)
        for i in (0, 1)
    ]  # fmt: skip


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
        p for p in psutil.process_iter(["cmdline", "cwd"])
        if p.info["cwd"] == str(tmp_path / "node1") and "torchrun" not in " ".join(p.info["cmdline"] or [])
        and any("image_classifier_trainer" in part for part in p.info["cmdline"] or [])
    ]  # fmt: skip
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
