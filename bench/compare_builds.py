#!/usr/bin/env python3
"""Two or more builds of grokreg's kernels, timed side by side on the book's networks.

Each build is a compiled kernels module (a copy of grokreg/_kernels*.so, e.g. from another
commit) loaded under its own label. For the overfit, dropout and batch networks (book mode,
float64, 1,000 training images, the 10,000 test images of the embedded subset), times a training
epoch and an evaluation of the test set with every build in turn, --repeat times (the builds
interleaved, so that a slow phase of a shared machine hits them alike), and prints the best
time per training example and per evaluated example as a Markdown table. The builds must
agree on the number of test images each network classifies correctly (it is printed).

    git worktree add /tmp/old OLD_COMMIT && (cd /tmp/old && python setup.py build_ext --inplace)
    python bench/compare_builds.py old=/tmp/old/grokreg/_kernels_avx2.*.so \\
        new=grokreg/_kernels_avx2.*.so

--full-mnist DIR times instead the task of bench/full_mnist.py (60,000 images, 784-100-10,
dropout 0.5, batches of 100, default mode; --dtype, --threads, --shuffle for a new random
order every epoch), one epoch per build in turn, and prints each phase's median (PHASES,
timed inside the kernel), --repeat epochs per build.
"""
import argparse
import importlib.machinery
import importlib.util
import sys
import time

import numpy as np

import grokreg
from grokreg._dispatch import kernels as installed
from grokreg.network import PIXEL_VALUES
from grokreg.recipes import EXPERIMENTS

N_TRAIN = 1000


def load_build(path):
    """A compiled kernels module from path, under the name it was compiled with."""
    name = "grokreg._kernels_avx2" if "_kernels_avx2" in path else "grokreg._kernels"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location(name, path, loader=loader))
    loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", metavar="LABEL=PATH")
    parser.add_argument("--experiments", nargs="+", default=["overfit", "dropout", "batch"],
                        choices=["overfit", "dropout", "batch"])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per timing")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--full-mnist", metavar="DIR", help="the full MNIST files: time its "
                        "mini-batch epochs instead")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true")
    args = parser.parse_args(argv)
    if any("=" not in build for build in args.builds):
        parser.error("builds are given as LABEL=PATH")
    builds = {label: load_build(path)
              for label, path in (build.split("=", 1) for build in args.builds)}
    if args.full_mnist:
        return full_mnist_epochs(builds, args)

    best = best_book_timings({label: (kernels, installed.aligned_copy)
                              for label, kernels in builds.items()},
                             args.experiments, args.epochs, args.repeat)
    print_book_timings(best, "build")
    print(f"\nBest of {args.repeat}, builds interleaved; {args.epochs} epochs per timing.")
    agree = all(len({best[name, label][2] for label in builds}) == 1
                for name in args.experiments)
    return 0 if agree else 1


def best_book_timings(variants, experiments, epochs, repeat):
    """{(experiment, label): (best seconds per training example, per evaluated example, test
    images correct)} for variants = {label: (kernels module, place)}, interleaved: place
    copies each parameter array where that variant's kernels get it."""
    (x, y), (x_test, y_test) = grokreg.load_mnist(n_train=N_TRAIN)
    pixels = PIXEL_VALUES[np.dtype(np.float64)]
    x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    order = np.arange(N_TRAIN, dtype=np.int64)
    best = {}
    for _ in range(repeat):
        for name in experiments:
            experiment = EXPERIMENTS[name]
            for label, (kernels, place) in variants.items():
                # the book's network, fresh for each timing: every variant starts alike
                net = grokreg.Network(experiment.hidden, dropout=experiment.dropout, seed=1,
                                      book=True)
                parameters = [place(p) for p in net._parameters]  # rows padded
                train, test = kernels.sparse_pixels(x, pixels), kernels.sparse_pixels(x_test,
                                                                                      pixels)
                epoch = (*train, y, order, *parameters, experiment.book_alpha,
                         experiment.batch_size, True, 1 - experiment.dropout,
                         np.random.MT19937(1))
                started = time.perf_counter()
                for _ in range(epochs):
                    kernels.train_epoch(*epoch)
                trained = time.perf_counter()
                _, correct = kernels.evaluate(*test, y_test, *parameters)
                evaluated = time.perf_counter()
                step = (trained - started) / (epochs * N_TRAIN)
                per_test = (evaluated - trained) / len(y_test)
                old = best.get((name, label), (np.inf, np.inf, correct))
                best[name, label] = (min(old[0], step), min(old[1], per_test), correct)
    return best


def print_book_timings(best, variant):
    print(f"| experiment | {variant} | µs / training example | µs / evaluated example "
          "| test images correct |")
    print("|---|---|---|---|---|")
    for (name, label), (step, per_test, correct) in best.items():
        print(f"| {name} | {label} | {step * 1e6:.3f} | {per_test * 1e6:.3f} | {correct} |")


def full_mnist_epochs(builds, args):
    """Mini-batch epochs of full MNIST, one per build in turn: each phase's median."""
    full_mnist_phases({label: (kernels, installed.aligned_copy)
                       for label, kernels in builds.items()}, "build", args)
    return 0


def full_mnist_phases(variants, variant, args):
    """Prints each phase's median over args.repeat full-MNIST mini-batch epochs, one epoch
    per variant in turn, for variants = {label: (kernels module, place)} (place: as in
    best_book_timings); args: full_mnist, dtype, threads, shuffle, repeat."""
    (x, y), _ = grokreg.load_mnist(args.full_mnist)
    x, y = np.ascontiguousarray(x.reshape(len(x), -1)), y.astype(np.int64)
    dtype = np.dtype(args.dtype)
    start = grokreg.Network(100, dropout=0.5, dtype=dtype, seed=0)._parameters
    rows = {label: kernels.sparse_pixels(x, PIXEL_VALUES[dtype])
            for label, (kernels, _) in variants.items()}
    shuffler = np.random.default_rng(0)
    phases = {label: [] for label in variants}
    for _ in range(args.repeat):
        order = shuffler.permutation(len(x)) if args.shuffle else np.arange(len(x))
        order = order.astype(np.int64)
        for label, (kernels, place) in variants.items():
            parameters = [place(p) for p in start]  # every variant trains the same epoch
            seconds = np.zeros(len(kernels.PHASES))
            kernels.train_epoch(*rows[label], y, order, *parameters, 0.1, 100, False, 0.5,
                                np.random.PCG64(1), n_threads=args.threads, phases=seconds)
            phases[label].append(seconds)
    # one table per list of phases (builds from before and after a change to it differ)
    for names in dict.fromkeys(kernels.PHASES for kernels, _ in variants.values()):
        print(f"| {variant} | " + " | ".join(names) + " | training |")
        print("|---|" + "---|" * (len(names) + 1))
        for label, measured in phases.items():
            if variants[label][0].PHASES == names:
                medians = np.median(np.array(measured), axis=0) * 1e3
                print(f"| {label} | " + " | ".join(f"{m:.1f}" for m in medians)
                      + f" | {np.median(np.array(measured).sum(axis=1)) * 1e3:.1f} |")
        print()
    print(f"ms per epoch, medians of {args.repeat} epochs per {variant}, interleaved; "
          f"{args.dtype}, {args.threads} thread(s){', shuffled' if args.shuffle else ''}.")


if __name__ == "__main__":
    sys.exit(main())
