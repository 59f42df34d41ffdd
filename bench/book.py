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
start wherever PYTHONDONTWRITEBYTECODE is set). Each timed run follows an untimed one-epoch
run of the same program (--no-warm-up to skip it), so that no program reads its files back
from disk: a machine that evicts files idle for a minute from its page cache would otherwise
make every grokreg run that follows a long NumPy run start cold. Each run's CPU seconds and
major page faults (files read from disk) are printed beside its wall time.

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
from typing import NamedTuple

from machine import compile_grokreg_bytecode, describe

HERE = Path(__file__).resolve().parent
EXPERIMENTS = ("overfit", "dropout", "batch")
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def shared_dir():
    configured = os.environ.get("GROKREG_SHARED")
    return Path(configured) if configured else HERE.parent.parent / "shared"


class Run(NamedTuple):
    seconds: float  # wall
    cpu_seconds: float  # user + system: well below wall when the machine kept it waiting
    major_faults: int  # pages read from disk
    stdout: str


def timed(command, kernels="auto"):
    """A Run of command, with one thread and that build of the kernels."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={**os.environ, **ONE_THREAD, "GROKREG_KERNELS": kernels})
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
               after.ru_majflt - before.ru_majflt, result.stdout)


def listed(runs):
    return ", ".join(f"{run.seconds:.2f}/{run.cpu_seconds:.2f} ({run.major_faults})"
                     for run in runs)


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
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                        help="an untimed one-epoch run of each program before each timed run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    compile_grokreg_bytecode()  # time grokreg as installed
    builds = {}  # build -> GROKREG_KERNELS value that selects it; each build once
    for kernels in args.kernels:
        builds.setdefault(build_for_this_cpu() if kernels == "auto" else kernels, kernels)
    if not args.reference.is_file():
        sys.exit(f"the book's reference program is not at {args.reference} (set GROKREG_SHARED)")

    def commands(experiment, epochs):
        extra = ["--epochs", str(epochs)] if epochs else []
        return ([sys.executable, "-m", "grokreg", "reproduce", experiment, "--book",
                 "--no-progress", *extra],
                [sys.executable, str(args.reference), experiment, "--data-dir",
                 str(args.data_dir), *extra])

    def warmed_and_timed(command, warm_up, kernels="auto"):
        if args.warm_up:
            timed(warm_up, kernels)
        return timed(command, kernels)

    rows = []
    for experiment in args.experiments:
        command, reference = commands(experiment, args.epochs)
        warm_command, warm_reference = commands(experiment, 1)
        # every program's runs alternate, so that a slow phase of a shared machine hits all
        ours = {build: [] for build in builds}
        theirs = []
        for _ in range(args.repeat):
            theirs.append(warmed_and_timed(reference, warm_reference))
            for build, kernels in builds.items():
                ours[build].append(warmed_and_timed(command, warm_command, kernels))
        numpy_seconds = statistics.median(run.seconds for run in theirs)
        numpy_cpu = statistics.median(run.cpu_seconds for run in theirs)
        for build, runs in ours.items():
            median = statistics.median(run.seconds for run in runs)
            median_cpu = statistics.median(run.cpu_seconds for run in runs)
            identical = all(run.stdout == theirs[0].stdout for run in runs + theirs)
            rows.append(dict(experiment=experiment, epochs=args.epochs or "book's", build=build,
                             numpy_seconds=round(numpy_seconds, 3),
                             grokreg_seconds=round(median, 3),
                             speedup=round(numpy_seconds / median, 1),
                             numpy_cpu_seconds=round(numpy_cpu, 3),
                             grokreg_cpu_seconds=round(median_cpu, 3),
                             identical_output=identical))
            print(f"{experiment}: numpy {numpy_seconds:.2f} s, grokreg ({build}) {median:.2f} s; "
                  f"every run, wall / CPU seconds (major page faults): numpy {listed(theirs)}; "
                  f"grokreg {listed(runs)}", file=sys.stderr)

    print("| experiment | epochs | NumPy reference | grokreg --book | kernels | speed-up "
          "| CPU seconds, NumPy / grokreg | same table |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['experiment']} | {row['epochs']} | {row['numpy_seconds']:.2f} s | "
              f"{row['grokreg_seconds']:.2f} s | {row['build']} | {row['speedup']}x | "
              f"{row['numpy_cpu_seconds']:.2f} / {row['grokreg_cpu_seconds']:.2f} | "
              f"{'yes' if row['identical_output'] else 'NO'} |")
    machine = describe()
    warmed = ", each after an untimed one-epoch run" if args.warm_up else ""
    print(f"\nWhole process, one thread each, medians of {args.repeat} alternating runs of "
          f"each{warmed}; {machine}.")
    if args.json:
        args.json.write_text(json.dumps(dict(machine=machine, rows=rows), indent=1) + "\n")
    return 0 if all(row["identical_output"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
