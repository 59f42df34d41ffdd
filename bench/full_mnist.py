#!/usr/bin/env python3
"""grokreg against PyTorch, scikit-learn and plain NumPy on full MNIST, in the same run.

The task (the correct model, default mode): 784-100-10, ReLU, dropout 0.5, squared error,
mini-batches of 100 with alpha 0.1 on the batch-mean gradient, test accuracy every epoch; and
per-example SGD (batch 1). Every peer runs in its own process with OMP/OpenBLAS/MKL threads
(and torch.set_num_threads) set to the thread count, so settings never leak between runs.
A peer that is not installed is skipped with a note, never faked. The "default" rows run each
peer as a new user would, its thread count left to it (grokreg: every CPU this process may
use; PyTorch: its own default), the environment's thread variables unset.

    python bench/full_mnist.py --data-dir ../shared/data/mnist [--epochs 10] [--repeat 3]
        [--json out.json]

With --repeat N every run is made N times, in N rounds of the whole list (so that a slow
spell of a shared machine hits every peer alike), and each figure is the median of its N.

Peers: PyTorch (autograd forward/backward, in-place SGD updates; `pip install torch`),
scikit-learn (MLPClassifier, solver="sgd": cross-entropy and no dropout, so its accuracy is
not comparable), NumPy (the book's batch program with the correct gradient).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from machine import describe

HIDDEN, BATCH, ALPHA, DROPOUT = 100, 100, 0.1, 0.5


def load(data_dir, dtype):
    import numpy as np

    import grokreg

    (x, y), (xt, yt) = grokreg.load_mnist(data_dir)
    scale = lambda images: (images.reshape(len(images), -1) / 255).astype(dtype)  # noqa: E731
    return scale(x), y, scale(xt), yt, np


def run_grokreg(data_dir, dtype, epochs, batch, threads):
    import grokreg

    x, y, xt, yt, np = load(data_dir, dtype)
    options = {} if threads == 0 else dict(n_threads=threads)  # 0: grokreg's default
    net = grokreg.Network(HIDDEN, dropout=DROPOUT, dtype=dtype, seed=0, **options)
    if batch == 1:
        n = 20_000
        started = time.perf_counter()
        net.fit(x[:n], y[:n], epochs=1, alpha=0.005, batch_size=1)
        return dict(us_per_step=1e6 * (time.perf_counter() - started) / n)
    started = time.perf_counter()
    history = net.fit(x, y, epochs=epochs, alpha=ALPHA, batch_size=BATCH, test_data=(xt, yt))
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs,
                test_accuracy=history.history["test_accuracy"][-1])


def run_torch(data_dir, dtype, epochs, batch, threads):
    import torch

    if threads:  # 0: PyTorch's default
        torch.set_num_threads(threads)
    x, y, xt, yt, np = load(data_dir, dtype)
    torch_dtype = getattr(torch, dtype)
    X, Xt = torch.from_numpy(x), torch.from_numpy(xt)
    T = torch.nn.functional.one_hot(torch.from_numpy(y), 10).to(torch_dtype)
    generator = torch.Generator().manual_seed(0)
    w1 = (0.2 * torch.rand(784, HIDDEN, generator=generator, dtype=torch_dtype) - 0.1).requires_grad_()
    w2 = (0.2 * torch.rand(HIDDEN, 10, generator=generator, dtype=torch_dtype) - 0.1).requires_grad_()
    alpha = ALPHA if batch > 1 else 0.005

    def step(xb, tb):
        hidden = torch.nn.functional.dropout(torch.relu(xb @ w1), DROPOUT, training=True)
        loss = 0.5 * ((tb - hidden @ w2) ** 2).sum() / len(xb)
        loss.backward()
        with torch.no_grad():
            w1.sub_(alpha * w1.grad)
            w2.sub_(alpha * w2.grad)
        w1.grad = w2.grad = None

    if batch == 1:
        n = 3000
        started = time.perf_counter()
        for i in range(n):
            step(X[i:i + 1], T[i:i + 1])
        return dict(us_per_step=1e6 * (time.perf_counter() - started) / n)
    started = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(X), batch):
            step(X[i:i + batch], T[i:i + batch])
        with torch.inference_mode():
            accuracy = (torch.relu(Xt @ w1) @ w2).argmax(1).numpy()
        accuracy = float(np.mean(accuracy == yt))
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs, test_accuracy=accuracy)


def run_sklearn(data_dir, dtype, epochs, batch):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y, xt, yt, np = load(data_dir, dtype)
    model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="sgd", batch_size=batch,
                          learning_rate_init=ALPHA, momentum=0.0, alpha=0.0, shuffle=False,
                          max_iter=1, warm_start=True, random_state=0)
    started = time.perf_counter()
    for _ in range(epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        accuracy = model.score(xt, yt)
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs, test_accuracy=accuracy)


def run_numpy(data_dir, dtype, epochs, batch):
    x, y, xt, yt, np = load(data_dir, dtype)
    rng = np.random.default_rng(0)
    w1 = (0.2 * rng.random((784, HIDDEN)) - 0.1).astype(dtype)
    w2 = (0.2 * rng.random((HIDDEN, 10)) - 0.1).astype(dtype)
    targets = np.eye(10, dtype=dtype)[y]
    started = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            xb, tb = x[i:i + batch], targets[i:i + batch]
            z = xb @ w1
            mask = (rng.random(z.shape) < 1 - DROPOUT).astype(dtype) / (1 - DROPOUT)
            hidden = np.maximum(z, 0) * mask
            delta_2 = (tb - hidden @ w2) / len(xb)
            delta_1 = (delta_2 @ w2.T) * (z > 0) * mask
            w2 += ALPHA * hidden.T @ delta_2
            w1 += ALPHA * xb.T @ delta_1
        accuracy = float(np.mean((np.maximum(xt @ w1, 0) @ w2).argmax(1) == yt))
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs, test_accuracy=accuracy)


PEERS = {"grokreg": "grokreg", "pytorch": "torch", "scikit-learn": "sklearn", "numpy": "numpy"}


def worker(args):
    peer, dtype, batch, threads = args.worker.split(",")
    batch, threads = int(batch), int(threads)
    if peer in ("grokreg", "pytorch"):
        run = run_grokreg if peer == "grokreg" else run_torch
        result = run(args.data_dir, dtype, args.epochs, batch, threads)
    else:
        result = {"scikit-learn": run_sklearn, "numpy": run_numpy}[peer](args.data_dir, dtype, args.epochs, batch)
    print(json.dumps(result))


def kernels_built():
    """(OpenMP on, the build of the kernels in use) of the installed grokreg."""
    from grokreg import _dispatch

    return _dispatch.kernels.OPENMP, _dispatch.BUILD


def installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GROKREG_DATA"),
                        help="the full MNIST files (default: $GROKREG_DATA)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every run; figures are medians (default 1)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.data_dir:
        sys.exit("full MNIST is needed: pass --data-dir or set GROKREG_DATA")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.worker:
        return worker(args)

    runs = [(peer, dtype, BATCH, t) for t in args.threads for dtype in ("float32", "float64")
            for peer in ("grokreg", "pytorch", "scikit-learn", "numpy")
            if dtype == "float32" or peer in ("grokreg", "numpy")]
    runs += [("grokreg", "float32", BATCH, 0), ("pytorch", "float32", BATCH, 0)]
    runs += [("grokreg", "float32", 1, 1), ("pytorch", "float32", 1, 1)]
    notes, rounds = [], {}
    for peer in sorted({run[0] for run in runs}):
        if not installed(PEERS[peer]):
            notes.append(f"{peer} is not installed: skipped")
    runs = [run for run in runs if installed(PEERS[run[0]])]
    variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    for round_ in range(args.repeat):
        for peer, dtype, batch, threads in runs:
            env = {k: v for k, v in os.environ.items() if k not in variables}
            if threads:
                env.update({v: str(threads) for v in variables})
            output = subprocess.run(
                [sys.executable, __file__, "--worker", f"{peer},{dtype},{batch},{threads}",
                 "--data-dir", args.data_dir, "--epochs", str(args.epochs)],
                capture_output=True, text=True, env=env, check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            rounds.setdefault((peer, dtype, batch, threads), []).append(result)
            print(f"round {round_ + 1}: {peer}, {dtype}, batch {batch}, threads "
                  f"{threads or 'default'}: {result}", file=sys.stderr)
    results = []
    for (peer, dtype, batch, threads), measured in rounds.items():
        median = {key: statistics.median(m[key] for m in measured) for key in measured[0]}
        results.append(dict(peer=peer, dtype=dtype, batch=batch, threads=threads, **median,
                            rounds=measured))

    ours = {(r["dtype"], r["batch"], r["threads"]): r for r in results if r["peer"] == "grokreg"}
    medians = f", medians of {args.repeat} rounds" if args.repeat > 1 else ""
    print(f"Mini-batches of {BATCH}, {args.epochs} epochs, test accuracy every epoch"
          f"{medians}:\n")
    print("| peer | dtype | threads | s / epoch | test accuracy | grokreg (same dtype, same "
          "threads) is faster by |")
    print("|---|---|---|---|---|---|")
    for r in (r for r in results if r["batch"] == BATCH):
        reference = ours.get((r["dtype"], BATCH, r["threads"]))
        ratio = r["seconds_per_epoch"] / reference["seconds_per_epoch"] if reference else float("nan")
        print(f"| {r['peer']} | {r['dtype']} | {r['threads'] or 'default'} | "
              f"{r['seconds_per_epoch']:.3f} | {r['test_accuracy']:.4f} | {ratio:.2f}x |")
    one, two = ours.get(("float32", BATCH, 1)), ours.get(("float32", BATCH, 2))
    if one and two:
        print(f"\ngrokreg float32 at 2 threads: {one['seconds_per_epoch'] / two['seconds_per_epoch']:.2f}x "
              f"its 1-thread speed.")
    print("\nPer-example SGD (batch 1):\n")
    print("| peer | µs / step | grokreg is faster by |")
    print("|---|---|---|")
    single = ours.get(("float32", 1, 1))
    for r in (r for r in results if r["batch"] == 1):
        ratio = r["us_per_step"] / single["us_per_step"] if single else float("nan")
        print(f"| {r['peer']} | {r['us_per_step']:.1f} | {ratio:.1f}x |")
    machine = describe()
    openmp, build = kernels_built()
    print(f"\n{machine}. grokreg's kernels: the {build} build; its threads: "
          f"Network(n_threads=...), OpenMP {'on' if openmp else 'off (built without it)'}. "
          f"scikit-learn minimises "
          f"cross-entropy without dropout.")
    for note in notes:
        print(f"- {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, epochs=args.epochs, results=results, notes=notes), f,
                      indent=1)


if __name__ == "__main__":
    sys.exit(main())
