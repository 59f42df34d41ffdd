#!/usr/bin/env python3
"""Where a mini-batch fit's time goes, phase by phase (one process, one run).

The task of bench/peers.py (784-100-10, dropout 0.5, batches of 100, alpha 0.1, default
mode) on one of its workloads, trained through the kernels directly so that each phase is
timed: the Dataset (counting the inputs, and for sparse rows the conversion; once per fit),
each phase of the training epochs (the kernels' PHASES, timed inside the compiled loop) and
the evaluation of the test set (every epoch). The next speed-up should start from the largest
row. --shuffle trains in a new random order every epoch, as fit(shuffle=True) does.

The shipped kernels carry no timing code: build a timing build first,

    GROKREG_TIMING=1 pip install --no-build-isolation -e .   (or build_ext --inplace)
    python bench/phases.py --data-dir ../shared/data/mnist [--workload mnist] [--epochs 3]
        [--dtype float32] [--threads 1] [--hidden 100] [--layout auto] [--shuffle]
"""
import argparse
import time

import numpy as np

import grokreg
from grokreg import _dispatch
from machine import describe
import workloads

BATCH, ALPHA, DROPOUT = 100, 0.1, 0.5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workloads.add_arguments(parser)
    parser.add_argument("--workload", choices=workloads.WORKLOADS, default="mnist")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--layout", choices=["auto", "sparse", "dense"], default="auto")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true",
                        help="a new random order every epoch, as fit(shuffle=True)")
    args = parser.parse_args(argv)
    kernels = _dispatch.kernels
    if not kernels.TIMING:
        parser.error("the kernels in use carry no timing code: build them with "
                     "GROKREG_TIMING=1 (see the docstring)")
    x, y, x_test, y_test = workloads.load(args.workload,
                                          workloads.directory(args.workload, args), args.dtype)
    net = grokreg.Network(args.hidden, dropout=DROPOUT, dtype=args.dtype, seed=0,
                          n_threads=args.threads)
    started = time.perf_counter()
    train = kernels.Dataset(x, y, layout=args.layout, n_threads=args.threads)
    test = kernels.Dataset(x_test, y_test, layout=args.layout, n_threads=args.threads)
    conversion = time.perf_counter() - started
    work = kernels.Workspace(train, *net._parameters, alpha=ALPHA, batch_size=BATCH,
                             keep=1 - DROPOUT, bit_generator=net._bit_generator,
                             loss=net._loss_code, n_threads=args.threads)
    phases = np.zeros(len(kernels.PHASES))
    waits = np.zeros(args.threads)
    evaluation = training = 0.0
    order = np.arange(len(x), dtype=np.int64)
    process_cpu, own_cpu = time.process_time(), time.thread_time()
    shuffler = np.random.default_rng(0)
    for _ in range(args.epochs):
        if args.shuffle:
            shuffler.shuffle(order)
        started = time.perf_counter()
        work.train_epoch(order, phases, waits)
        training += time.perf_counter() - started
        started = time.perf_counter()
        _, correct = kernels.evaluate(test, *net._parameters, net._loss_code,
                                      n_threads=args.threads)
        evaluation += time.perf_counter() - started
    others = (time.process_time() - process_cpu) - (time.thread_time() - own_cpu)
    rows = [(f"training: {name}", seconds / args.epochs) for name, seconds in
            zip(kernels.PHASES, phases)]
    rows.append(("training: the rest (between the timed phases)",
                 (training - phases.sum()) / args.epochs))
    rows += [("evaluation of 10,000 test images", evaluation / args.epochs),
             ("the data sets, once per fit (/ epochs)", conversion / args.epochs)]
    total = sum(seconds for _, seconds in rows)
    print(f"{args.workload}, 784-{args.hidden}-10, {train.layout} layout, {args.dtype}, "
          f"{args.threads} thread(s), the {_dispatch.BUILD} build of the kernels, "
          f"{args.epochs} epochs{', shuffled' if args.shuffle else ''}; "
          f"test accuracy {correct / len(y_test):.4f}; {describe()}\n")
    print("| phase | ms / epoch | share |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {1000 * seconds:.1f} | {seconds / total:.0%} |")
    print(f"| total | {1000 * total:.1f} | |")
    if args.threads > 1:  # work not shared out evenly, or a core slower than the other
        print("\nWaiting for the other threads at the barriers between a batch's steps "
              "(thread 0's counted in the phases above), ms / epoch: "
              + ", ".join(f"thread {member} {1000 * seconds / args.epochs:.1f}"
                          for member, seconds in enumerate(waits)))
    if args.threads == 1:  # nothing else should run: OpenBLAS's pool, say, spinning
        print(f"\nCPU time of threads other than this one during the epochs: {others:.3f} s")


if __name__ == "__main__":
    main()
