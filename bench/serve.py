"""The server under abusive and heavy requests, on 127.0.0.1: does /health stay responsive, does memory stay flat?

    python bench/serve.py [--requests 600] [--clients 4]

Trains a tiny run (test_airnet, 16 px, synthetic images) in a temporary folder, starts
`image_classifier_serve` on a free loopback port, then:

1. sends 16 PNGs of 6000×6000 (36 MP each, one colour: 120 KB each, 1.9 MB of body) in one request while
   polling /health every 10 ms: the request's status and seconds, /health's worst and median latency;
2. the same with an allowed heavy request, 16 JPEGs of 2000×2000 (4 MP each), decoded and predicted;
3. a bounded load test, `--requests` small predictions from `--clients` threads: requests/s, failures,
   and the server's resident memory before, at peak and after.
"""

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from image_classifier.data import synth_images
from image_classifier.params import TrainParams
from image_classifier.train import train


def make_run(folder: Path) -> Path:
    root = synth_images(folder / "ds", classes=("red", "green", "blue"), n=20)
    params = TrainParams(
        str(root), arch="test_airnet", img_size=16, num_epochs=1, batch_size=8
    )
    return train(params, folder / "exp", "e", "r", quiet=True)


def encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, quality=90) if fmt == "JPEG" else im.save(buf, fmt)
    return buf.getvalue()


def photo(side: int) -> Image.Image:
    "An RGB image with smooth gradients and some noise, compressing like a photo."
    gradient = Image.linear_gradient("L").resize((side, side))
    noise = Image.effect_noise((side // 32, side // 32), 64).resize((side, side))
    return Image.merge("RGB", (gradient, noise, gradient.rotate(90)))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024


def start_server(run: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"from image_classifier.serve import image_classifier_serve as s; s(run={str(run)!r}, port={port})"
    server = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


def heavy_request(url: str, label: str, body: bytes, name: str, n: int = 16):
    "POST `n` copies of `body` while polling /health every 10 ms; print what each saw."
    files = [("files", (f"{i}.{name}", body, "image/*")) for i in range(n)]
    answer, done = [], threading.Event()

    def post():
        t = time.perf_counter()
        r = httpx.post(url + "/predict", files=files, timeout=120)
        answer.append((r, time.perf_counter() - t))
        done.set()

    latencies = []
    with httpx.Client() as health:
        poster = threading.Thread(target=post)
        poster.start()
        while not done.is_set():
            t = time.perf_counter()
            health.get(url + "/health", timeout=60)
            latencies.append(time.perf_counter() - t)
            time.sleep(0.01)
        poster.join()
    r, seconds = answer[0]
    ms = np.array(latencies) * 1000
    print(f"{label}: {n} × {len(body) / 1e3:.0f} KB, {n * len(body) / 1e6:.1f} MB body")
    print(f"  /predict: {r.status_code} in {seconds:.2f} s: {r.text[:100]}")
    print(
        f"  /health during it: {len(ms)} polls, median {np.median(ms):.1f} ms, worst {ms.max():.1f} ms"
    )


def load_test(url: str, pid: int, n_requests: int, clients: int):
    bodies = [encode(photo(64).rotate(i), "JPEG") for i in range(20)]

    def post(body: bytes, client: httpx.Client):
        t = time.perf_counter()
        try:
            files = [("files", ("x.jpg", body, "image/jpeg"))]
            ok = client.post(url + "/predict", files=files, timeout=30).status_code
        except httpx.HTTPError:
            ok = 0
        return time.perf_counter() - t, ok == 200

    with httpx.Client() as warm:
        for b in bodies:
            post(b, warm)
    before, results, peak, stop = rss_mb(pid), [], [], threading.Event()

    def client(k: int):
        with httpx.Client() as c:
            results.extend(
                post(bodies[i % len(bodies)], c) for i in range(k, n_requests, clients)
            )

    def watch():
        while not stop.wait(0.1):
            peak.append(rss_mb(pid))

    watcher = threading.Thread(target=watch)
    watcher.start()
    t = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    ms = np.array([r[0] for r in results]) * 1000
    print(f"load: {len(results)} requests of one 64 px JPEG from {clients} clients in {wall:.1f} s: "
          f"{len(results) / wall:.0f} requests/s, p50 {np.percentile(ms, 50):.1f} ms, "
          f"p99 {np.percentile(ms, 99):.1f} ms, {sum(not ok for _, ok in results)} failed")  # fmt: skip
    print(f"  server RSS: {before:.0f} MB before, {max(peak, default=before):.0f} MB peak, "
          f"{rss_mb(pid):.0f} MB after")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        server, url = start_server(make_run(Path(d)))
        try:
            print(f"server RSS at start: {rss_mb(server.pid):.0f} MB")
            big = encode(Image.new("RGB", (6000, 6000), (90, 140, 200)), "PNG")
            heavy_request(url, "16 × 36 MP PNG (over the pixel budget)", big, "png")
            heavy_request(
                url, "16 × 4 MP JPEG (allowed)", encode(photo(2000), "JPEG"), "jpg"
            )
            load_test(url, server.pid, args.requests, args.clients)
            print(f"server RSS at the end: {rss_mb(server.pid):.0f} MB")
            metrics = httpx.get(url + "/metrics").text.splitlines()
            print(
                "\n".join(
                    m for m in metrics if "errors_total{" in m or "requests_total{" in m
                )
            )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
