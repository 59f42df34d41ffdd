#!/usr/bin/env python3
"""grokreg's book mode against the book's NumPy programs, whole process, in the same run.

For each experiment, runs `grokreg reproduce EXPERIMENT --book` and
`chapter8_numpy.py EXPERIMENT` (shared/reference/) with the same arguments, one thread each
(OMP/OpenBLAS/MKL threads set to 1), checks that they print the same table, and reports wall
times and speed-ups as a Markdown table (stdout) and JSON (--json). grokreg runs once per
build of its kernels (--kernels; GROKREG_KERNELS): the one chosen for this CPU, and the
portable one a CPU without AVX2 gets. Every program runs --repeat times, their runs
alternating (NumPy, each build, NumPy, ...), and each is timed by its median: a slow phase
of a shared machine hits them all alike. grokreg's modules are compiled to bytecode first, as
pip does when it installs the wheel (a checkout's runs would otherwise compile them at every
start wherever PYTHONDONTWRITEBYTECODE is set).

    python bench/book.py                      # the full tables: minutes, the reference is slow
    python bench/book.py --epochs 20          # shorter runs, same comparison
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import compile_grokreg_bytecode, describe

HERE = Path(__file__).resolve().parent
EXPERIMENTS = ("overfit", "dropout", "batch")
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def shared_dir():
    configured = os.environ.get("GROKREG_SHARED")
    return Path(configured) if configured else HERE.parent.parent / "shared"


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, kernels="auto"):
    """(wall seconds, CPU seconds, stdout) of one run of command, with one thread and that
    build of the kernels. The CPU seconds (user + system) tell a slow program from a machine
    that kept it waiting (wall well above CPU)."""
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={**os.environ, **ONE_THREAD, "GROKREG_KERNELS": kernels})
    return time.perf_counter() - started, children_cpu_seconds() - cpu_before, result.stdout


def build_for_this_cpu():
    """The build of grokreg's kernels that GROKREG_KERNELS=auto chooses here ("avx2" or
    "baseline"), whatever this process was told."""
    from grokreg import _dispatch

    return _dispatch._choose("auto")[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="shorten every experiment to this many epochs")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=EXPERIMENTS)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each program per experiment (medians compared)")
    parser.add_argument("--reference", type=Path,
                        default=shared_dir() / "reference" / "chapter8_numpy.py")
    parser.add_argument("--data-dir", type=Path, default=shared_dir() / "data" / "mnist",
                        help="the MNIST files the reference reads")
    parser.add_argument("--kernels", nargs="+", choices=("auto", "baseline"),
                        default=("auto", "baseline"),
                        help="builds of grokreg's kernels to time (auto: the one for this CPU)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    compile_grokreg_bytecode()  # time grokreg as installed
    builds = {}  # build -> GROKREG_KERNELS value that selects it; each build once
    for kernels in args.kernels:
        builds.setdefault(build_for_this_cpu() if kernels == "auto" else kernels, kernels)
    if not args.reference.is_file():
        sys.exit(f"the book's reference program is not at {args.reference} (set GROKREG_SHARED)")

    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    rows = []
    for experiment in args.experiments:
        command = [sys.executable, "-m", "grokreg", "reproduce", experiment, "--book",
                   "--no-progress", *extra]
        reference = [sys.executable, str(args.reference), experiment, "--data-dir",
                     str(args.data_dir), *extra]
        # every program's runs alternate, so that a slow phase of a shared machine hits all
        ours = {build: [] for build in builds}
        theirs = []
        for _ in range(args.repeat):
            theirs.append(timed(reference))
            for build, kernels in builds.items():
                ours[build].append(timed(command, kernels))
        numpy_seconds = statistics.median(seconds for seconds, _, _ in theirs)
        numpy_cpu = statistics.median(cpu for _, cpu, _ in theirs)
        for build, runs in ours.items():
            median = statistics.median(seconds for seconds, _, _ in runs)
            median_cpu = statistics.median(cpu for _, cpu, _ in runs)
            identical = all(out == theirs[0][2] for _, _, out in runs + theirs)
            rows.append(dict(experiment=experiment, epochs=args.epochs or "book's", build=build,
                             numpy_seconds=round(numpy_seconds, 3),
                             grokreg_seconds=round(median, 3),
                             speedup=round(numpy_seconds / median, 1),
                             numpy_cpu_seconds=round(numpy_cpu, 3),
                             grokreg_cpu_seconds=round(median_cpu, 3),
                             identical_output=identical))
            print(f"{experiment}: numpy {numpy_seconds:.2f} s ({numpy_cpu:.2f} s CPU), grokreg "
                  f"({build}) {median:.2f} s ({median_cpu:.2f} s CPU); every run, wall / CPU: "
                  + ", ".join(f"{seconds:.2f}/{cpu:.2f}" for seconds, cpu, _ in runs),
                  file=sys.stderr)

    print("| experiment | epochs | NumPy reference | grokreg --book | kernels | speed-up "
          "| CPU seconds, NumPy / grokreg | same table |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['experiment']} | {row['epochs']} | {row['numpy_seconds']:.2f} s | "
              f"{row['grokreg_seconds']:.2f} s | {row['build']} | {row['speedup']}x | "
              f"{row['numpy_cpu_seconds']:.2f} / {row['grokreg_cpu_seconds']:.2f} | "
              f"{'yes' if row['identical_output'] else 'NO'} |")
    machine = describe()
    print(f"\nWhole process, one thread each, medians of {args.repeat} alternating runs of "
          f"each; {machine}.")
    if args.json:
        args.json.write_text(json.dumps(dict(machine=machine, rows=rows), indent=1) + "\n")
    return 0 if all(row["identical_output"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
