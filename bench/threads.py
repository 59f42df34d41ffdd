#!/usr/bin/env python3
"""Throughput of N networks trained in N Python threads (the kernels release the GIL).

Section 8.8 reads dropout as training an ensemble; separate networks are independent work, so
N threads should give about N times the throughput of one. Each network trains the book's
dropout experiment (784-100-10, 1,000 images) for --epochs epochs with its own seed; results are
checked bit-identical to training the same networks one after another.

    python bench/threads.py [--epochs 100] [--threads 1 2] [--repeat 3] [--json out.json]
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
    networks = [grokreg.Network(100, dropout=0.5, seed=seed) for seed in seeds]
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
          f"{machine}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, epochs=args.epochs, rows=rows), f, indent=1)
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
