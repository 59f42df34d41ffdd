#!/usr/bin/env python3
"""What each training option costs: an epoch with it against a plain epoch, in one process.

Two steps of the chapter, on full MNIST (uint8 pixels, as ``grokreg reproduce`` feeds them):

- per-example: 784-40-10 in float64, one step per image (the overfit experiment's step);
- mini-batch: 784-100-10 in float32, dropout 0.5, batches of 100 (bench/peers.py's step).

Each option is timed on its own beside the plain step: weight decay, momentum, Nesterov
momentum, max-norm, input dropout, sample weights (and dropout for the per-example step).
Rounds interleave the options (plain, each option, plain, ...), --rounds of them, each option
timed by its median epoch; one thread unless --threads. Prints one Markdown table of seconds
per epoch and ratios to the plain step.

    python bench/options.py --data-dir ../shared/data/mnist [--rounds 3] [--threads 1]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import workloads
from machine import describe

OPTIONS = {  # name: (Network options, fit options)
    "plain": ({}, {}),
    "weight decay": ({}, {"weight_decay": 1e-4}),
    "momentum 0.9": ({}, {"momentum": 0.9}),
    "Nesterov 0.9": ({}, {"momentum": 0.9, "nesterov": True}),
    "max-norm 2": ({}, {"max_norm": 2.0}),
    "input dropout 0.2": ({"input_dropout": 0.2}, {}),
    "sample weights": ({}, {"sample_weight": "random"}),
}
STEPS = {  # name: (Network options, fit options) of the plain step
    "per-example": (dict(hidden=40, dtype="float64"), dict(alpha=0.005, batch_size=1)),
    "mini-batch": (dict(hidden=100, dtype="float32", dropout=0.5),
                   dict(alpha=0.1, batch_size=100)),
}


def epoch_seconds(step, option, x, y, weights, threads):
    """One epoch's seconds of a fresh network with the option."""
    import grokreg

    network, fit = (dict(a) for a in STEPS[step])
    extra_network, extra_fit = (dict(a) for a in OPTIONS[option])
    if extra_fit.get("sample_weight") == "random":
        extra_fit["sample_weight"] = weights
    net = grokreg.Network(network.pop("hidden"), seed=1, n_threads=threads,
                          **network, **extra_network)
    started = time.perf_counter()
    net.fit(x, y, epochs=1, shuffle=True, **fit, **extra_fit)
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workloads.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import grokreg

    (x, y), _ = grokreg.load_mnist(workloads.directory("mnist", args))
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    times = {(step, option): [] for step in STEPS for option in OPTIONS}
    for step in STEPS:  # untimed: the first epoch of a process pays for its first touches
        epoch_seconds(step, "plain", x, y, weights, args.threads)
    for round_ in range(args.rounds):
        for step in STEPS:
            # untimed: the first epoch after the other step's pays for bringing this one's
            # data back into the caches (a quarter of a per-example epoch)
            epoch_seconds(step, "plain", x, y, weights, args.threads)
            for option in OPTIONS:
                seconds = epoch_seconds(step, option, x, y, weights, args.threads)
                times[step, option].append(seconds)
                print(f"round {round_ + 1}: {step}, {option}: {seconds:.3f} s", file=sys.stderr)
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"Seconds per epoch on full MNIST (60,000 images), the median of {args.rounds} "
          f"rounds, {args.threads} thread{'s' if args.threads > 1 else ''}; {describe()}; "
          f"kernels {grokreg._dispatch.BUILD}\n")
    print("| option | per-example, 784-40-10 float64 | vs plain | mini-batch, 784-100-10 "
          "float32 | vs plain |")
    print("|---|---|---|---|---|")
    for option in OPTIONS:
        cells = []
        for step in STEPS:
            seconds = median[step, option]
            cells += [f"{seconds:.3f}", f"{seconds / median[step, 'plain']:.2f}x"]
        print(f"| {option} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
