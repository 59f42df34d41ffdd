#!/usr/bin/env python3
"""Threads two ways: N networks in N Python threads, and one network on N OpenMP threads.

1. Section 8.8 reads dropout as training an ensemble; separate networks are independent work,
   and the kernels release the GIL, so N threads should give about N times the throughput of
   one. Each network trains the book's dropout experiment (784-100-10, 1,000 images) for
   --epochs epochs with its own seed; results are checked bit-identical to training the same
   networks one after another.
2. One network, Network(n_threads=N): mini-batches of 100 (dropout 0.5, float32, 784-100-10,
   test accuracy every epoch) for --batch-epochs epochs on the full training set (--data-dir
   or $GROKREG_DATA; the embedded 2,000 images otherwise); checked bit-identical to n_threads=1.

    python bench/threads.py [--epochs 100] [--threads 1 2] [--repeat 3] [--data-dir DIR]
"""
import argparse
import json
import os
import platform
import sys
import threading
import time

import numpy as np

import grokreg


def train(seeds, x, y, epochs, parallel):
    # one thread each: the networks are the parallel work
    networks = [grokreg.Network(100, dropout=0.5, seed=seed, n_threads=1) for seed in seeds]
    jobs = [lambda net=net: net.fit(x, y, epochs=epochs, alpha=0.005) for net in networks]
    started = time.perf_counter()
    if parallel:
        threads = [threading.Thread(target=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for job in jobs:
            job()
    return time.perf_counter() - started, networks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3,
                        help="timings per configuration; the best is kept (shared machines are noisy)")
    parser.add_argument("--batch-epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("GROKREG_DATA"),
                        help="full MNIST for part 2 (default: $GROKREG_DATA, else embedded)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    (x, y), _ = grokreg.load_mnist(n_train=1000)
    rows = []
    for count in args.threads:
        seeds = list(range(count))
        alone = together = float("inf")
        for _ in range(args.repeat):  # interleaved, so drifting load hits both alike
            seconds, sequential = train(seeds, x, y, args.epochs, parallel=False)
            alone = min(alone, seconds)
            seconds, parallel = train(seeds, x, y, args.epochs, parallel=True)
            together = min(together, seconds)
        identical = all(np.array_equal(a.weights_0_1, b.weights_0_1)
                        for a, b in zip(sequential, parallel))
        rows.append(dict(threads=count, sequential_seconds=round(alone, 3),
                         parallel_seconds=round(together, 3),
                         speedup=round(alone / together, 2), identical=identical))
        print(rows[-1], file=sys.stderr)
    print("| networks = threads | one after another | in parallel threads | speed-up | identical |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['threads']} | {r['sequential_seconds']:.2f} s | {r['parallel_seconds']:.2f} s | "
              f"{r['speedup']:.2f}x | {'yes' if r['identical'] else 'NO'} |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\n{args.epochs} epochs of the dropout experiment per network, best of {args.repeat}; "
          f"{machine}.\n")

    (x, y), test = grokreg.load_mnist(args.data_dir)
    inner = []
    timings = {count: float("inf") for count in args.threads}
    for _ in range(args.repeat):  # interleaved, as above
        weights = {}
        for count in args.threads:
            net = grokreg.Network(100, dropout=0.5, dtype="float32", seed=0, n_threads=count)
            started = time.perf_counter()
            net.fit(x, y, epochs=args.batch_epochs, alpha=0.1, batch_size=100, test_data=test)
            timings[count] = min(timings[count], time.perf_counter() - started)
            weights[count] = net.weights_0_1
    one = timings[args.threads[0]]
    for count in args.threads:
        inner.append(dict(n_threads=count,
                          seconds_per_epoch=round(timings[count] / args.batch_epochs, 3),
                          speedup=round(one / timings[count], 2),
                          identical=np.array_equal(weights[count], weights[args.threads[0]])))
        print(inner[-1], file=sys.stderr)
    print("| Network(n_threads=) | s / epoch | speed-up | same weights |")
    print("|---|---|---|---|")
    for r in inner:
        print(f"| {r['n_threads']} | {r['seconds_per_epoch']:.3f} | {r['speedup']:.2f}x | "
              f"{'yes' if r['identical'] else 'NO'} |")
    from grokreg import _dispatch

    print(f"\nMini-batches of 100 on {len(x):,} images, {args.batch_epochs} epochs, best of "
          f"{args.repeat}; the {_dispatch.BUILD} build of the kernels, OpenMP "
          f"{'on' if _dispatch.kernels.OPENMP else 'off (built without it)'}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, epochs=args.epochs, rows=rows, n_threads=inner), f,
                      indent=1)
    return 0 if all(r["identical"] for r in rows + inner) else 1


if __name__ == "__main__":
    sys.exit(main())
