#!/usr/bin/env python3
"""Where a mini-batch fit's time goes, phase by phase, on full MNIST (one process, one run).

The task of bench/full_mnist.py (784-100-10, dropout 0.5, batches of 100, alpha 0.1, default
mode), trained through the kernels directly so that each phase is timed: the conversion of
the images to sparse rows (once per fit), each phase of the training epochs (the kernels'
PHASES, timed inside the compiled loop) and the evaluation of the test set (every epoch).
The next speed-up should start from the largest row. --shuffle trains in a new random order
every epoch, as fit(shuffle=True) does (the default and the book keep data order).

    python bench/phases.py --data-dir ../shared/data/mnist [--epochs 3] [--dtype float32]
        [--threads 1] [--shuffle]
"""
import argparse
import os
import time

import numpy as np

import grokreg
from grokreg import _dispatch
from machine import describe

HIDDEN, BATCH, ALPHA, DROPOUT = 100, 100, 0.1, 0.5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GROKREG_DATA"),
                        help="the full MNIST files (default: $GROKREG_DATA)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true",
                        help="a new random order every epoch, as fit(shuffle=True)")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("full MNIST is needed: pass --data-dir or set GROKREG_DATA")
    kernels = _dispatch.kernels
    (x, y), (x_test, y_test) = grokreg.load_mnist(args.data_dir)
    net = grokreg.Network(HIDDEN, dropout=DROPOUT, dtype=args.dtype, seed=0,
                          n_threads=args.threads)
    flat = lambda images: np.ascontiguousarray(images.reshape(len(images), -1))  # noqa: E731
    started = time.perf_counter()
    train = net._sparse_rows(flat(x))
    test = net._sparse_rows(flat(x_test))
    conversion = time.perf_counter() - started
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
        kernels.train_epoch(*train, y, order, *net._parameters, ALPHA, BATCH, False,
                            1 - DROPOUT, net._bit_generator, net._loss_code, False, False,
                            args.threads, phases, waits)
        training += time.perf_counter() - started
        started = time.perf_counter()
        _, correct = kernels.evaluate(*test, y_test, *net._parameters, net._loss_code,
                                      n_threads=args.threads)
        evaluation += time.perf_counter() - started
    others = (time.process_time() - process_cpu) - (time.thread_time() - own_cpu)
    rows = [(f"training: {name}", seconds / args.epochs) for name, seconds in
            zip(kernels.PHASES, phases)]
    rows.append(("training: the rest (between the timed phases)",
                 (training - phases.sum()) / args.epochs))
    rows += [("evaluation of 10,000 test images", evaluation / args.epochs),
             ("conversion to sparse rows, once per fit (/ epochs)", conversion / args.epochs)]
    total = sum(seconds for _, seconds in rows)
    print(f"{args.dtype}, {args.threads} thread(s), the {_dispatch.BUILD} build of the kernels, "
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
