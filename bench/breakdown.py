#!/usr/bin/env python3
"""Where the time of a book-mode run goes: start-up, training steps and evaluations.

For each of the book's experiments, times (in this process, one thread, best of --repeat)
the training epoch and the evaluation of the test set of the network `grokreg reproduce
EXPERIMENT --book` trains, and the start-up of a new process (import grokreg, read the
embedded MNIST subset). Their sum for the experiment's epochs and evaluations predicts the
whole-process time that bench/book.py measures. Given that script's JSON (--book-json), it
also prints the time each experiment may take for a --target speed-up over the NumPy program,
and what that leaves per training step and evaluated example once start-up is paid.

Evaluation is timed as fit evaluates (the test images' sparse rows built once, then
grokreg's kernel). The "rows in L1" column evaluates a synthetic data set with as many
inputs per example as MNIST (150) drawn from only 40 inputs, so that the weights rows read
all sit in the L1 cache: what an evaluated example costs when memory costs nothing.

    python bench/breakdown.py [--book-json book.json] [--target 50] [--json out.json]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import grokreg
from grokreg._dispatch import BUILD, kernels
from grokreg.network import sparse_rows
from grokreg.recipes import EXPERIMENTS
from machine import compile_grokreg_bytecode

N_TRAIN, EVAL_EVERY = 1000, 10
BOOK_EXPERIMENTS = ("overfit", "dropout", "batch")


def best_of(repeat, run):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def startup_seconds(repeat):
    """A new process that imports grokreg and reads the embedded MNIST subset."""
    command = [sys.executable, "-c", "import grokreg.cli; grokreg.load_mnist()"]
    return best_of(repeat, lambda: subprocess.run(command, check=True))


def evaluations(epochs):
    """Network.fit evaluates at every EVAL_EVERY-th epoch and at the last one."""
    return len([e for e in range(epochs) if e % EVAL_EVERY == 0 or e == epochs - 1])


def rows_in_l1_seconds(hidden, repeat, n=10000, per_example=150, inputs_used=40):
    """Seconds per example to evaluate sparse rows of per_example entries drawn (with
    repeats: only the kernels accept that) from the first inputs_used inputs."""
    rng = np.random.default_rng(0)
    columns = np.sort(rng.integers(0, inputs_used, size=(n, per_example)), axis=1)
    synthetic = (rng.random(n * per_example), columns.astype(np.int32).ravel(),
                 np.arange(0, n * per_example + 1, per_example, dtype=np.int64))
    labels = rng.integers(0, 10, n).astype(np.int64)
    net = grokreg.Network(hidden, seed=1, book=True)
    parameters = net._parameters  # as the kernels get them (weights_0_1's rows padded)
    return best_of(repeat, lambda: kernels.evaluate(*synthetic, labels, *parameters)) / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", choices=BOOK_EXPERIMENTS,
                        default=BOOK_EXPERIMENTS)
    parser.add_argument("--epochs", type=int, default=30,
                        help="training epochs per timed fit (a fit also builds its rows)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--book-json", help="bench/book.py's JSON: budgets from its NumPy times")
    parser.add_argument("--target", type=float, default=50.0, help="speed-up to budget for")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    reference = {}
    if args.book_json:
        with open(args.book_json) as f:
            reference = {row["experiment"]: row["numpy_seconds"] for row in json.load(f)["rows"]
                         if row["epochs"] == "book's"}
    (x, y), (x_test, y_test) = grokreg.load_mnist(n_train=N_TRAIN)
    labels = y_test.astype(np.int64)
    compile_grokreg_bytecode()  # start-up as installed
    startup = startup_seconds(args.repeat)
    rows = []
    for name in args.experiments:
        experiment = EXPERIMENTS[name]
        net = grokreg.Network(experiment.hidden, dropout=experiment.dropout, seed=1, book=True)
        fit = dict(epochs=args.epochs, alpha=experiment.book_alpha,
                   batch_size=experiment.batch_size)
        net.fit(x, y, **fit)  # warm-up
        step = best_of(args.repeat, lambda: net.fit(x, y, **fit)) / (args.epochs * N_TRAIN)
        # as fit evaluates: the test images' sparse rows built once, then the kernel
        test_rows = sparse_rows(x_test.reshape(len(x_test), -1), net.dtype)
        parameters = net._parameters  # as the kernels get them (weights_0_1's rows padded)
        evaluated = best_of(args.repeat, lambda: kernels.evaluate(
            *test_rows, labels, *parameters)) / len(y_test)
        steps = experiment.epochs * N_TRAIN
        evaluated_examples = evaluations(experiment.epochs) * len(y_test)
        row = dict(experiment=name, build=BUILD, startup_s=round(startup, 3),
                   step_us=round(step * 1e6, 3), eval_us=round(evaluated * 1e6, 3),
                   eval_rows_in_l1_us=round(rows_in_l1_seconds(experiment.hidden,
                                                               args.repeat) * 1e6, 3),
                   steps=steps, evaluated=evaluated_examples,
                   predicted_s=round(startup + steps * step + evaluated_examples * evaluated, 3))
        if name in reference:
            budget = reference[name] / args.target
            # the per-example time that fits the budget, if steps and evaluations kept
            # their present ratio
            scale = (budget - startup) / (steps * step + evaluated_examples * evaluated)
            row.update(numpy_s=reference[name], budget_s=round(budget, 3),
                       needed_step_us=round(max(scale, 0) * step * 1e6, 3),
                       needed_eval_us=round(max(scale, 0) * evaluated * 1e6, 3))
        rows.append(row)

    print(f"| experiment | start-up | µs / training step | µs / evaluated example "
          f"(rows in L1) | steps | evaluated | predicted | {args.target:g}× budget "
          f"| µs needed (step / evaluated) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        budget = (f"{row['budget_s']:.2f} s | {row['needed_step_us']:.2f} / "
                  f"{row['needed_eval_us']:.2f}" if "budget_s" in row else "– | –")
        print(f"| {row['experiment']} | {row['startup_s']:.2f} s | {row['step_us']:.2f} | "
              f"{row['eval_us']:.2f} ({row['eval_rows_in_l1_us']:.2f}) | {row['steps']:,} | "
              f"{row['evaluated']:,} | {row['predicted_s']:.2f} s | {budget} |")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}, kernels: {BUILD}")
    print(f"\nOne thread, best of {args.repeat}; {machine}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, rows=rows), f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
