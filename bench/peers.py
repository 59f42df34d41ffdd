#!/usr/bin/env python3
"""grokreg against PyTorch, NumPy and scikit-learn, in the same run, on each workload.

The task (the correct model, default mode): 784-H-10, ReLU, dropout 0.5, squared error,
mini-batches of 100 with alpha 0.1 on the batch-mean gradient, float32, test accuracy every
epoch; and per-example SGD (batch 1). Every peer runs in its own process with OMP/OpenBLAS/MKL
threads (and torch.set_num_threads) set to the thread count, so settings never leak between
runs; a peer that is not installed is skipped with a note, never faked. Each run is made
--repeat times, in rounds of the whole list (so that a slow spell of a shared machine hits
every peer alike), and each figure is the median of its rounds.

    python bench/peers.py --data-dir ../shared/data/mnist --fashion-dir DIR
        [--workloads mnist fashion standardised] [--hidden 100 800] [--threads 1 2]
        [--peers grokreg pytorch numpy scikit-learn] [--epochs 3] [--repeat 3]
        [--per-example] [--json out.json]

Workloads (bench/workloads.py): MNIST (19% of inputs non-zero), Fashion-MNIST (50%), MNIST
standardised (91.5%). Peers: PyTorch (autograd forward/backward, in-place SGD updates; `pip
install torch`), NumPy (the book's batch program with the correct gradient), scikit-learn
(MLPClassifier, solver="sgd": cross-entropy and no dropout, so its accuracy is not
comparable). Time per epoch covers the epoch's training and its test evaluation; grokreg's
includes its fit's one-off set-up (the Dataset) spread over the epochs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from machine import describe
import workloads

BATCH, ALPHA, DROPOUT = 100, 0.1, 0.5
PEERS = {"grokreg": "grokreg", "pytorch": "torch", "numpy": "numpy", "scikit-learn": "sklearn"}


def run_grokreg(data, hidden, epochs, batch, threads):
    import grokreg

    x, y, xt, yt = data
    net = grokreg.Network(hidden, dropout=DROPOUT, dtype="float32", seed=0, n_threads=threads)
    if batch == 1:
        n = 20_000
        started = time.perf_counter()
        net.fit(x[:n], y[:n], epochs=1, alpha=0.005, batch_size=1)
        return dict(us_per_step=1e6 * (time.perf_counter() - started) / n)
    started = time.perf_counter()
    history = net.fit(x, y, epochs=epochs, alpha=ALPHA, batch_size=BATCH, test_data=(xt, yt))
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs,
                test_accuracy=history.history["test_accuracy"][-1])


def run_torch(data, hidden, epochs, batch, threads):
    import torch

    torch.set_num_threads(threads)
    x, y, xt, yt = data
    X, Xt = torch.from_numpy(x), torch.from_numpy(xt)
    T = torch.nn.functional.one_hot(torch.from_numpy(y), 10).to(torch.float32)
    generator = torch.Generator().manual_seed(0)
    w1 = (0.2 * torch.rand(784, hidden, generator=generator) - 0.1).requires_grad_()
    w2 = (0.2 * torch.rand(hidden, 10, generator=generator) - 0.1).requires_grad_()
    alpha = ALPHA if batch > 1 else 0.005

    def step(xb, tb):
        layer = torch.nn.functional.dropout(torch.relu(xb @ w1), DROPOUT, training=True)
        loss = 0.5 * ((tb - layer @ w2) ** 2).sum() / len(xb)
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
            predicted = (torch.relu(Xt @ w1) @ w2).argmax(1).numpy()
        accuracy = float((predicted == yt).mean())
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs,
                test_accuracy=accuracy)


def run_numpy(data, hidden, epochs, batch, threads):
    import numpy as np

    x, y, xt, yt = data
    rng = np.random.default_rng(0)
    w1 = (0.2 * rng.random((784, hidden)) - 0.1).astype(np.float32)
    w2 = (0.2 * rng.random((hidden, 10)) - 0.1).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[y]
    started = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            xb, tb = x[i:i + batch], targets[i:i + batch]
            z = xb @ w1
            mask = (rng.random(z.shape) < 1 - DROPOUT).astype(np.float32) / (1 - DROPOUT)
            layer = np.maximum(z, 0) * mask
            delta_2 = (tb - layer @ w2) / len(xb)
            delta_1 = (delta_2 @ w2.T) * (z > 0) * mask
            w2 += ALPHA * layer.T @ delta_2
            w1 += ALPHA * xb.T @ delta_1
        accuracy = float(np.mean((np.maximum(xt @ w1, 0) @ w2).argmax(1) == yt))
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs,
                test_accuracy=accuracy)


def run_sklearn(data, hidden, epochs, batch, threads):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y, xt, yt = data
    model = MLPClassifier(hidden_layer_sizes=(hidden,), solver="sgd", batch_size=batch,
                          learning_rate_init=ALPHA, momentum=0.0, alpha=0.0, shuffle=False,
                          max_iter=1, warm_start=True, random_state=0)
    started = time.perf_counter()
    for _ in range(epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        accuracy = model.score(xt, yt)
    return dict(seconds_per_epoch=(time.perf_counter() - started) / epochs,
                test_accuracy=accuracy)


RUNS = {"grokreg": run_grokreg, "pytorch": run_torch, "numpy": run_numpy,
        "scikit-learn": run_sklearn}


def worker(args):
    peer, workload, hidden, batch, threads = args.worker.split(",")
    data = workloads.load(workload, workloads.directory(workload, args), "float32")
    result = RUNS[peer](data, int(hidden), args.epochs, int(batch), int(threads))
    print(json.dumps(result))


def installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def kernels_built():
    """(OpenMP on, the build of the kernels in use) of the installed grokreg."""
    from grokreg import _dispatch

    return _dispatch.kernels.OPENMP, _dispatch.BUILD


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workloads.add_arguments(parser)
    parser.add_argument("--workloads", nargs="+", choices=workloads.WORKLOADS,
                        default=list(workloads.WORKLOADS))
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 800])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--peers", nargs="+", choices=list(PEERS),
                        default=["grokreg", "pytorch", "numpy"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every run; figures are medians (default 3)")
    parser.add_argument("--per-example", action="store_true",
                        help="also per-example SGD (batch 1, MNIST, 1 thread)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.worker:
        return worker(args)
    for workload in args.workloads:
        workloads.directory(workload, args)  # refuse a missing folder before any run

    notes = [f"{peer} is not installed: skipped" for peer in args.peers
             if not installed(PEERS[peer])]
    peers = [peer for peer in args.peers if installed(PEERS[peer])]
    runs = [(peer, workload, hidden, BATCH, threads) for workload in args.workloads
            for hidden in args.hidden for threads in args.threads for peer in peers]
    if args.per_example:
        runs += [(peer, "mnist", 100, 1, 1) for peer in ("grokreg", "pytorch") if peer in peers]
    variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    rounds = {}
    for round_ in range(args.repeat):
        for run in runs:
            peer, workload, hidden, batch, threads = run
            env = {**os.environ, **{v: str(threads) for v in variables}}
            command = [sys.executable, __file__, "--worker", ",".join(map(str, run)),
                       "--epochs", str(args.epochs)]
            for flag in ("data_dir", "fashion_dir"):
                if getattr(args, flag):
                    command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
            output = subprocess.run(command, capture_output=True, text=True, env=env,
                                    check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            rounds.setdefault(run, []).append(result)
            print(f"round {round_ + 1}: {peer}, {workload}, hidden {hidden}, batch {batch}, "
                  f"{threads} thread(s): {result}", file=sys.stderr)
    results = {run: {key: statistics.median(m[key] for m in measured) for key in measured[0]}
               for run, measured in rounds.items()}

    print(f"784-H-10, dropout 0.5, mini-batches of {BATCH}, float32, {args.epochs} epochs each "
          f"with test accuracy, medians of {args.repeat} rounds; the ratio is the peer's time "
          f"over grokreg's (same workload, width and threads).\n")
    for workload in args.workloads:
        print(f"{workload}:\n")
        print("| hidden | threads | peer | s / epoch | test accuracy | grokreg faster by |")
        print("|---|---|---|---|---|---|")
        for hidden in args.hidden:
            for threads in args.threads:
                ours = results.get(("grokreg", workload, hidden, BATCH, threads))
                for peer in peers:
                    r = results[(peer, workload, hidden, BATCH, threads)]
                    ratio = (r["seconds_per_epoch"] / ours["seconds_per_epoch"] if ours
                             else float("nan"))
                    print(f"| {hidden} | {threads} | {peer} | {r['seconds_per_epoch']:.3f} | "
                          f"{r['test_accuracy']:.4f} | {ratio:.2f}x |")
        print()
    if args.per_example:
        single = results.get(("grokreg", "mnist", 100, 1, 1))
        print("Per-example SGD (batch 1, MNIST, 784-100-10, 1 thread):\n")
        print("| peer | µs / step | grokreg faster by |")
        print("|---|---|---|")
        for peer in ("grokreg", "pytorch"):
            r = results.get((peer, "mnist", 100, 1, 1))
            if r:
                ratio = r["us_per_step"] / single["us_per_step"] if single else float("nan")
                print(f"| {peer} | {r['us_per_step']:.1f} | {ratio:.1f}x |")
        print()
    machine = describe()
    openmp, build = kernels_built()
    print(f"{machine}. grokreg's kernels: the {build} build, OpenMP "
          f"{'on' if openmp else 'off (built without it)'}.")
    for note in notes:
        print(f"- {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, epochs=args.epochs, build=build,
                           results=[dict(zip(("peer", "workload", "hidden", "batch", "threads"),
                                             run), **value, rounds=rounds[run])
                                    for run, value in results.items()], notes=notes), f,
                      indent=1)


if __name__ == "__main__":
    sys.exit(main())
