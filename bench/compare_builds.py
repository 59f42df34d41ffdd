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
"""
import argparse
import importlib.machinery
import importlib.util
import sys
import time

import numpy as np

import grokreg
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
    args = parser.parse_args(argv)
    if any("=" not in build for build in args.builds):
        parser.error("builds are given as LABEL=PATH")
    builds = {label: load_build(path)
              for label, path in (build.split("=", 1) for build in args.builds)}

    (x, y), (x_test, y_test) = grokreg.load_mnist(n_train=N_TRAIN)
    pixels = PIXEL_VALUES[np.dtype(np.float64)]
    x, x_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    order = np.arange(N_TRAIN, dtype=np.int64)
    best = {}
    for _ in range(args.repeat):
        for name in args.experiments:
            experiment = EXPERIMENTS[name]
            for label, kernels in builds.items():
                # the book's network, fresh for each timing: every build starts alike
                net = grokreg.Network(experiment.hidden, dropout=experiment.dropout, seed=1,
                                      book=True)
                # as the kernels get them (weights_0_1's rows padded)
                parameters = [p.copy() for p in net._parameters]
                train, test = kernels.sparse_pixels(x, pixels), kernels.sparse_pixels(x_test,
                                                                                      pixels)
                epoch = (*train, y, order, *parameters, experiment.book_alpha,
                         experiment.batch_size, True, 1 - experiment.dropout,
                         np.random.MT19937(1))
                started = time.perf_counter()
                for _ in range(args.epochs):
                    kernels.train_epoch(*epoch)
                trained = time.perf_counter()
                _, correct = kernels.evaluate(*test, y_test, *parameters)
                evaluated = time.perf_counter()
                step = (trained - started) / (args.epochs * N_TRAIN)
                per_test = (evaluated - trained) / len(y_test)
                old = best.get((name, label), (np.inf, np.inf, correct))
                best[name, label] = (min(old[0], step), min(old[1], per_test), correct)

    print("| experiment | build | µs / training example | µs / evaluated example "
          "| test images correct |")
    print("|---|---|---|---|---|")
    for (name, label), (step, per_test, correct) in best.items():
        print(f"| {name} | {label} | {step * 1e6:.3f} | {per_test * 1e6:.3f} | {correct} |")
    print(f"\nBest of {args.repeat}, builds interleaved; {args.epochs} epochs per timing.")
    agree = all(len({best[name, label][2] for label in builds}) == 1
                for name in args.experiments)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
