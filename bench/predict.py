"""Prediction, ONNX and serving figures on CIFAR-10 test JPEGs from ../shared/datasets.

    python bench/predict.py [--images 2000] [--requests 1000]

1. Batch prediction images/s: `image_classifier_predict`'s path (predict_rows, PyTorch backend, fp32 and bf16) against
   fastai's per-image `learn.predict`, fastai's `get_preds` on a `test_dl`, and a bare decode-and-forward
   loop at batch 256, on the same model (resnet18 at 32 px) and images.
2. PyTorch against ONNX Runtime: latency per image at batch 1, throughput at batch 64.
3. The server under a bounded load test on 127.0.0.1: requests/s, p50/p95/p99 latency, failures, and the
   server's resident memory before and after.
"""

import argparse
import os
import tempfile
import threading
import time
import urllib.request

import numpy as np
import torch
from serve import rss_mb, start_server  # bench/serve.py

from data import SHARED, unpack  # bench/data.py
from image_classifier.data import fit_square, normalise_batch, read_image, scan_dataset
from image_classifier.experiments import new_run_dir, write_json
from image_classifier.inference import (
    export_onnx,
    onnx_backend,
    predict_rows,
    torch_backend,
)
from image_classifier.models import create_model


def make_run(arch="resnet18"):
    "A run folder holding an (untrained) model: throughput does not depend on the weights."
    run = new_run_dir(tempfile.mkdtemp(), "bench", "predict")
    torch.manual_seed(0)
    torch.save(create_model(arch, 10).state_dict(), run / "model.pth")
    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    norm = dict(mean=[0.49, 0.48, 0.45], std=[0.25, 0.24, 0.26])
    write_json(
        run / "model.json",
        dict(arch=arch, classes=classes, img_size=32, in_chans=3, normalize=norm),
    )
    return run


def timed(fn, n):
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def prediction(run, files, n_slow):
    def ours_rate(precision):
        "(images/s of image_classifier_predict's path, its predict function, model info)"
        predict, info = torch_backend(run, precision=precision)
        predict(
            normalise_batch([fit_square(read_image(f), 32) for f in files[:256]], info)
        )  # warm up
        rate = timed(
            lambda: list(predict_rows(predict, info, files, batch_size=256)), len(files)
        )
        return rate, predict, info

    (ours, predict, info), (ours16, _, _) = ours_rate("fp32"), ours_rate("bf16")

    def bare():
        for i in range(0, len(files), 256):
            predict(
                normalise_batch(
                    [fit_square(read_image(f), 32) for f in files[i : i + 256]], info
                )
            )

    bare_rate = timed(bare, len(files))
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        Learner,
        Normalize,
        Resize,
        parent_label,
    )

    from image_classifier.experiments import load_run

    block = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=info["classes"])), get_y=parent_label, item_tfms=Resize(32),
                      batch_tfms=Normalize.from_stats(info["normalize"]["mean"], info["normalize"]["std"]))  # fmt: skip
    dls = block.dataloaders(files[:512], bs=256, num_workers=0, device="cpu")
    learn = Learner(dls, load_run(run)[0])
    learn.remove_cbs(
        learn.cbs.filter(lambda cb: type(cb).__name__ == "ProgressCallback")
    )
    per_image = timed(lambda: [learn.predict(f) for f in files[:n_slow]], n_slow)
    get_preds = timed(
        lambda: learn.get_preds(dl=dls.test_dl(files, bs=256, num_workers=0)),
        len(files),
    )
    print(f"{'batch prediction (resnet18, 32 px)':42} {'images/s':>9}")
    for label, r in [("fastai learn.predict, one by one", per_image), ("fastai get_preds on a test_dl", get_preds),
                     ("bare decode + forward, batch 256", bare_rate), ("image_classifier_predict path", ours),
                     ("image_classifier_predict --precision bf16", ours16)]:  # fmt: skip
        print(f"{label:42} {r:9.0f}")
    print(f"ours / learn.predict {ours / per_image:.0f}× (bf16: {ours16 / per_image:.0f}×), "
          f"bare / ours {bare_rate / ours:.2f}×")  # fmt: skip


def onnx_vs_torch(run, files):
    export_onnx(run, files[:64])
    info_images = [fit_square(read_image(f), 32) for f in files[:64]]
    print(f"\n{'backend':12} {'batch 1 ms/image':>17} {'batch 64 images/s':>18}")
    for name, backend in (("pytorch", torch_backend), ("onnxruntime", onnx_backend)):
        predict, info = backend(run)
        one, many = normalise_batch(info_images[:1], info), normalise_batch(
            info_images, info
        )
        predict(one)
        t = time.perf_counter()
        for _ in range(100):
            predict(one)
        latency = (time.perf_counter() - t) / 100 * 1000
        rate = timed(lambda: [predict(many) for _ in range(20)], 20 * 64)
        print(f"{name:12} {latency:17.2f} {rate:18.0f}")


def load_test(run, files, n_requests, clients):
    server, url = start_server(run)
    try:
        bodies = [f.read_bytes() for f in files[:50]]
        boundary = "bench-boundary"

        def post(data):
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="x.jpg"\r\n'
            head += "Content-Type: image/jpeg\r\n\r\n"
            body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
            req = urllib.request.Request(
                url + "/predict",
                data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            t = time.perf_counter()
            try:
                ok = urllib.request.urlopen(req, timeout=30).status == 200
            except OSError:
                ok = False
            return time.perf_counter() - t, ok

        for b in bodies[:20]:
            post(b)  # warm up
        before = rss_mb(server.pid)
        results, lock = [], threading.Lock()

        def client(k):
            for i in range(k, n_requests, clients):
                r = post(bodies[i % len(bodies)])
                with lock:
                    results.append(r)

        peak, done = [before], threading.Event()

        def watch():  # the server's resident memory, sampled while the clients run
            while not done.wait(0.2):
                peak.append(rss_mb(server.pid))

        t = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        threads.append(threading.Thread(target=watch))
        [th.start() for th in threads]
        [th.join() for th in threads[:-1]]
        wall = time.perf_counter() - t
        done.set()
        threads[-1].join()
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    lat = np.array([r[0] for r in results]) * 1000
    failed = sum(not r[1] for r in results)
    rate = len(results) / wall
    print(f"\nserver: {len(results)} requests from {clients} clients on 127.0.0.1 in {wall:.1f} s: {rate:.0f} requests/s, "
          f"p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
          f"{failed} failed; server RSS {before:.0f} MB before, {max(peak):.0f} MB peak, {after:.0f} MB after")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument(
        "--slow_images",
        type=int,
        default=200,
        help="images for the one-by-one learn.predict loop",
    )
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the benchmark reads the shared datasets)")
        return
    torch.set_num_threads(os.cpu_count())
    files = [s.path for s in scan_dataset(unpack("cifar10_jpg")) if s.split == "test"]
    files = [
        files[i]
        for i in np.random.default_rng(0).choice(len(files), args.images, replace=False)
    ]
    run = make_run()
    prediction(run, files, args.slow_images)
    onnx_vs_torch(run, files)
    load_test(run, files, args.requests, args.clients)


if __name__ == "__main__":
    main()
