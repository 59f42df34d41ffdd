#!/usr/bin/env python3
"""What distortions cost: a distorted epoch of 784-800-10 against a plain one.

Each distortion's epoch against a plain epoch, and the distortion of MNIST's training images
on its own, in one process.

The network of ``grokreg reproduce distortions`` (784-800-10, softmax cross-entropy with
biases, float32, batches of 100, momentum 0.9) trains on full MNIST's 60,000 training
images plain, with ``Affine(15, 0.15, 0.15, 1.5)`` and with ``Elastic(34, 4)``, --epochs
epochs a fit; an epoch's seconds are the median of the fit's epochs after its first (the
first also pays the fit's set-up: what a long fit spends per epoch). ``Distortion.apply``
distorts the same 60,000 images alone. Rounds interleave the cases, --rounds of them, each
case timed by its median, at each --threads count. Prints one Markdown table of seconds and
ratios to the plain epoch.

    python bench/distortions.py --data-dir ../shared/data/mnist [--rounds 3] [--epochs 4]
                                 [--threads 1 2]
"""
import argparse
import os
import statistics
import sys
import time

import workloads
from machine import describe


def distortions():
    import grokreg

    return {"plain": None,
            "affine": grokreg.Affine(rotation=15, scale=0.15, shear=0.15, translation=1.5),
            "elastic": grokreg.Elastic(alpha=34, sigma=4)}


def epoch_seconds(distortion, x, y, threads, epochs):
    """The median seconds of the epochs after the first of a fit of a fresh 784-800-10
    network, distorting with distortion."""
    import grokreg

    net = grokreg.Network(800, seed=1, dtype="float32", loss="softmax_cross_entropy",
                          bias=True, n_threads=threads)
    ends = []
    net.fit(x, y, epochs=epochs, alpha=0.05, batch_size=100, momentum=0.9, augment=distortion,
            on_epoch_end=lambda record: ends.append(time.perf_counter()))
    return statistics.median(later - earlier for earlier, later in zip(ends, ends[1:]))


def apply_seconds(distortion, x, threads):
    started = time.perf_counter()
    distortion.apply(x, seed=1, dtype="float32", n_threads=threads)
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workloads.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs a fit (at least 2: the first is not timed)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: a fit's first epoch is not timed")
    import grokreg

    (x, y), _ = grokreg.load_mnist(workloads.directory("mnist", args))
    cases = distortions()
    times = {}
    for round_ in range(args.rounds):
        for threads in args.threads:
            for name, distortion in cases.items():
                seconds = epoch_seconds(distortion, x, y, threads, args.epochs)
                times.setdefault(("epoch", name, threads), []).append(seconds)
                print(f"round {round_ + 1}: epoch, {name}, {threads} thread(s): {seconds:.3f} s",
                      file=sys.stderr)
                if distortion is not None:
                    seconds = apply_seconds(distortion, x, threads)
                    times.setdefault(("apply", name, threads), []).append(seconds)
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"Seconds on full MNIST (60,000 training images), the median of {args.rounds} "
          f"rounds of {args.epochs}-epoch fits; {describe()}; kernels "
          f"{grokreg._dispatch.BUILD}\n")
    print("| distortion | threads | epoch of 784-800-10 | vs plain | distorting alone |")
    print("|---|---|---|---|---|")
    for threads in args.threads:
        plain = median["epoch", "plain", threads]
        for name in cases:
            epoch = median["epoch", name, threads]
            alone = median.get(("apply", name, threads))
            print(f"| {name} | {threads} | {epoch:.3f} | {epoch / plain:.2f}x | "
                  f"{'' if alone is None else f'{alone:.3f}'} |")


if __name__ == "__main__":
    sys.exit(main())
