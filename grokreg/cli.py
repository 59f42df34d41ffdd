"""Command line: ``grokreg reproduce|data|sweep ...`` (``grokreg --help``).

Tables go to stdout, progress and messages to stderr. A refusal exits with status 2 after a
short usage line and an error naming the flag and what it expects, as argparse does for the
arguments it checks itself; errors found later (a data directory without its files, more
images than the data hold) are reported the same way, under the flag that set the value.
"""
import argparse
import hashlib
import math
import os
import sys
import warnings

import numpy as np

from . import progress as _progress, sweep
from ._version import __version__
from .data import load_idx_dataset
from .recipes import (EXPERIMENTS, compare, comparison_table, reproduce, reproduce_distortions,
                      reproduce_ensemble, reproduce_regularizers)

EXPERIMENT_CHOICES = [*EXPERIMENTS, "ensemble", "regularizers", "distortions", "all"]


def _integer(minimum, maximum=None, why=""):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}{why}")
        return value
    return parse


def _learning_rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _subcommand(commands, name, arguments, **options):
    """A subcommand whose refusals show a one-line usage, not argparse's full list."""
    return commands.add_parser(name, usage=f"%(prog)s {arguments}", **options)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="grokreg",
        description="Grokking Deep Learning, chapter 8: regularization and batching.",
    )
    parser.add_argument("--version", action="version", version=f"grokreg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _subcommand(
        commands, "reproduce", "EXPERIMENT [options]",
        help="run one of the book's experiments and print its table",
        description="Run one of the book's experiments, printing its table on stdout "
        "(progress goes to stderr). "
        + " ".join(f"{e.name}: {e.summary}." for e in EXPERIMENTS.values())
        + " ensemble: the overfit network trained --networks times with independent seeds, "
        "and their average (section 8.8: dropout works because ensembling works)."
        " regularizers: the overfit experiment under each regularizer (early stopping, "
        "weight decay, max-norm, input dropout, dropout, dropout with max-norm, an ensemble), "
        "each one's strength chosen on validation images, default mode only."
        " distortions: Simard et al. (2003)'s 784-800-10 on full MNIST without, with affine "
        "and with elastic distortions (--data-dir; minutes)."
        + " all: every experiment in both modes, and the regularizers.",
    )
    run.add_argument("experiment", choices=EXPERIMENT_CHOICES, metavar="EXPERIMENT",
                     help=f"one of {', '.join(EXPERIMENT_CHOICES)}")
    run.add_argument("--book", action="store_true",
                     help="the book's arithmetic and random stream: prints the book's table exactly")
    run.add_argument("--seed", type=_integer(0, 2**32 - 1), default=1,
                     help="random seed (default 1)")
    run.add_argument("--hidden", type=_integer(1), help="hidden units (default: the book's)")
    run.add_argument("--alpha", type=_learning_rate, help="learning rate (default: the book's, "
                     "or its batch-mean equivalent 0.1 for 'batch' without --book)")
    run.add_argument("--epochs", type=_integer(1, why=" (0 would train nothing)"),
                     help="epochs (default: the book's)")
    run.add_argument("--n-train", type=_integer(1), default=1000,
                     help="training images, the first ones of the set (default 1000)")
    run.add_argument("--n-test", type=_integer(1), default=10000,
                     help="test images (default 10000)")
    run.add_argument("--eval-every", type=_integer(1), default=10,
                     help="print a line every this many epochs (default 10)")
    run.add_argument("--networks", type=_integer(2, 1000), default=5,
                     help="ensemble: how many networks (default 5)")
    run.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                     "(default: $GROKREG_DATA, else the subset embedded in grokreg)")
    run.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                     help="precision (book mode: float64 only)")
    run.add_argument("--plot", metavar="DIR",
                     help="with 'all', 'regularizers' or 'distortions': write a PNG figure per "
                     "experiment into DIR (matplotlib)")
    run.add_argument("--quick", action="store_true",
                     help="distortions: a short version (100 hidden units, 2 epochs)")
    progress = run.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")

    data = _subcommand(
        commands, "data", "ACTION [options]",
        help="download, verify or describe a data directory",
        description="download: fetch the four MNIST files into the cache (or --data-dir), "
        "checking each before it is kept. verify: check the MNIST files of a directory. "
        "info: describe any IDX data set laid out like MNIST.")
    data.add_argument("action", choices=["download", "verify", "info"], metavar="ACTION",
                      help="download, verify or info")
    data.add_argument("--data-dir", help="the directory (default: $GROKREG_DATA, else "
                      "$XDG_CACHE_HOME/grokreg/mnist or ~/.cache/grokreg/mnist)")
    data.add_argument("--timeout", type=_learning_rate, default=30.0,
                      help="download: seconds a connection may wait (default 30)")
    data.add_argument("--prefix", default="", help="info: file name prefix (EMNIST: emnist-digits-)")
    data.add_argument("--test-name", default="t10k", help="info: name of the test split (EMNIST: test)")

    _add_sweep_arguments(_subcommand(
        commands, "sweep", "[--grid NAME=V1,V2 ...] [--out FILE] [options]",
        help="train a grid of hyper-parameters with several seeds, locally or on Dask",
        description="Train every combination of the --grid values (the chapter's "
        "hyper-parameters) with --seeds seeds each, in local threads, on a local Dask cluster "
        "(--workers) or on an existing one (--scheduler), and print the mean and spread of "
        "the validation and test accuracy per setting. Each finished run is appended to "
        "--out as it arrives; --resume skips the runs already there."))
    parser.commands = commands.choices
    return parser


class CommandLineError(Exception):
    """A refusal to report under a flag (or None: no single flag)."""

    def __init__(self, flag, message):
        super().__init__(message)
        self.flag = flag


# the parameters of grokreg's functions that a flag sets, where the names differ in more than
# '_' for '-'
FLAGS = {"test_name": "--test-name"}


def _as_command_line_error(exc):
    """An exception that names a parameter (grokreg._validation.argument_error) as a flag's."""
    argument = getattr(exc, "argument", None)
    if argument is None:
        return None
    # a message that points to another parameter names its flag
    problem = exc.problem.replace("as data_dir", "with --data-dir DIR")
    return CommandLineError(FLAGS.get(argument, "--" + argument.replace("_", "-")), problem)


def _data(args):
    from .download import default_cache_dir, download_mnist, verify_mnist

    directory = args.data_dir or default_cache_dir()
    if args.action != "download" and not os.path.isdir(directory):
        raise CommandLineError("--data-dir", f"{directory} does not exist: run `grokreg data "
                               f"download` first (it fills it), or give --data-dir DIR")
    if args.action == "download":
        download_mnist(directory, timeout=args.timeout)
        print(f"MNIST is in {directory}")
    if args.action in ("download", "verify"):
        results = verify_mnist(directory)
        for name, status in results.items():
            note = {"original": "ok (the original .gz)",
                    "recompressed": "ok (recompressed; content verified by SHA-256)",
                    "uncompressed": "ok (uncompressed; content verified by SHA-256)"}
            print(f"{name}: {note.get(status, 'FAILED: ' + status)}")
        return 0 if all(s in ("original", "recompressed", "uncompressed")
                        for s in results.values()) else 1
    (x_train, y_train), (x_test, y_test) = load_idx_dataset(directory, prefix=args.prefix,
                                                            test=args.test_name)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    print(f"directory: {directory}")
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        balance = np.bincount(y, minlength=n_classes)
        print(f"{split}: {len(y)} examples, images {x.shape[1:]} {x.dtype}, "
              f"{np.count_nonzero(x) / x.size:.1%} non-zero")
        print(f"  class counts: {' '.join(f'{c}:{n}' for c, n in enumerate(balance))}")
    print(f"classes: {n_classes}")
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and "idx" in name:
            with open(path, "rb") as f:
                print(f"sha256 {hashlib.sha256(f.read()).hexdigest()}  {name}")
    return 0


def _plot_directory(path):
    """Make the --plot folder now, so that a bad path fails before the long runs."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandLineError("--plot", f"{path} exists and is not a folder: name a folder "
                               f"for the figures (it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CommandLineError("--plot", f"cannot create the folder {path} ({exc.strerror})")
    if not os.access(path, os.W_OK):
        raise CommandLineError("--plot", f"the folder {path} is not writable")
    from .plots import _pyplot

    try:
        _pyplot()
    except ImportError as exc:
        raise CommandLineError("--plot", str(exc)) from None


def _refuse_fixed_settings(args, runs, **defaults):
    """Refuse the flags of the settings an experiment fixes itself that were given: --book,
    --hidden, --alpha, --epochs, then those of defaults whose value differs from its default;
    runs says what the experiment runs instead."""
    given = [name for name in ("book", "hidden", "alpha", "epochs")
             if getattr(args, name) not in (None, False)]
    given += [name for name, default in defaults.items() if getattr(args, name) != default]
    flags = [f"--{name.replace('_', '-')}" for name in given]
    if flags:
        raise CommandLineError(flags[0], f"{runs}; drop {' and '.join(flags)}")


def _reproduce_all(args, progress):
    _refuse_fixed_settings(args, "'reproduce all' runs the book's settings in both modes",
                           dtype="float64")
    if args.plot:
        _plot_directory(args.plot)
    runs = compare(seed=args.seed, n_train=args.n_train, n_test=args.n_test,
                   eval_every=args.eval_every, data_dir=args.data_dir, progress=progress,
                   networks=args.networks)
    print(comparison_table(runs))
    print()
    regularizers = _regularizers(args, progress)
    if args.plot:
        from .plots import plot_comparison, plot_regularizers

        for path in [*plot_comparison(runs, args.plot),
                     plot_regularizers(regularizers, args.plot)]:
            print(f"wrote {path}", file=sys.stderr)


def _regularizers(args, progress):
    return reproduce_regularizers(
        seed=args.seed, hidden=args.hidden, alpha=args.alpha, epochs=args.epochs,
        n_train=args.n_train, n_test=args.n_test, eval_every=args.eval_every,
        networks=args.networks, data_dir=args.data_dir, dtype=args.dtype, progress=progress)


def _reproduce(args, progress):
    if args.experiment == "all":
        return _reproduce_all(args, progress)
    if args.experiment == "regularizers":
        if args.book:
            raise CommandLineError("--book", "the book's programs have none of these "
                                   "regularizers: 'reproduce regularizers' runs in default mode")
        if args.plot:
            _plot_directory(args.plot)
        result = _regularizers(args, progress)
        if args.plot:
            from .plots import plot_regularizers

            print(f"wrote {plot_regularizers(result, args.plot)}", file=sys.stderr)
        return
    if args.experiment == "distortions":
        return _distortions(args, progress)
    if args.quick:
        raise CommandLineError("--quick", "goes with 'reproduce distortions'")
    if args.plot:
        raise CommandLineError("--plot", "goes with 'reproduce all', 'regularizers' or "
                               "'distortions' (one figure per experiment)")
    options = dict(book=args.book, seed=args.seed, hidden=args.hidden, alpha=args.alpha,
                   epochs=args.epochs, n_train=args.n_train, n_test=args.n_test,
                   eval_every=args.eval_every, data_dir=args.data_dir, dtype=args.dtype,
                   progress=progress)
    if args.experiment == "ensemble":
        reproduce_ensemble(networks=args.networks, **options)
    else:
        reproduce(args.experiment, **options)


def _distortions(args, progress):
    _refuse_fixed_settings(args, "'reproduce distortions' runs Simard et al.'s network with "
                           "its own settings", n_train=1000, n_test=10000, dtype="float64")
    if args.plot:
        _plot_directory(args.plot)
    result = reproduce_distortions(data_dir=args.data_dir, quick=args.quick, seed=args.seed,
                                   progress=progress)
    if args.plot:
        from .plots import plot_distortions

        print(f"wrote {plot_distortions(result, args.plot)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings in the command line's words: no source path, no code line."""
    _progress.write(f"grokreg: warning: {message}", sys.stderr)


# -- grokreg sweep -------------------------------------------------------------------------

def _add_sweep_arguments(parser):
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help=f"values of one parameter ({', '.join(sweep.GRID)}); repeat the "
                        f"flag for each parameter varied (defaults: "
                        f"{', '.join(f'{k}={v[1]:g}' for k, v in sweep.GRID.items())})")
    parser.add_argument("--seeds", type=_integer(1), default=3,
                        help="seeds per setting (default 3)")
    parser.add_argument("--seed", type=_integer(0, 2**32 - 1), default=1,
                        help="the first seed (default 1)")
    parser.add_argument("--book", action="store_true", help="the book's arithmetic")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--n-train", type=_integer(1), default=1000,
                        help="training images, the first ones (default 1000)")
    parser.add_argument("--n-validation", type=_integer(1), default=1000,
                        help="validation images, the next ones (default 1000)")
    parser.add_argument("--n-test", type=_integer(1), default=10000,
                        help="test images (default 10000)")
    parser.add_argument("--data-dir", help="directory with the MNIST files (on a cluster: a "
                        "path every worker can read; default: $GROKREG_DATA or the embedded "
                        "subset)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--threads", type=_integer(1),
                       help="local threads (default: every CPU this process may use)")
    where.add_argument("--workers", type=_integer(1),
                       help="start a local Dask cluster of this many worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS "
                       "(e.g. tcp://host:8786)")
    parser.add_argument("--out", help="append each finished run to this file (.csv, or .jsonl)")
    parser.add_argument("--resume", action="store_true",
                        help="with --out: skip the runs the file already holds")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def _parse_grid(items):
    grid = {}
    for item in items:
        name, equals, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not equals:
            raise CommandLineError("--grid", f"expected NAME=V1,V2,..., got {item!r}")
        if name in grid:
            raise CommandLineError("--grid", f"gives {name} twice: list all its values in one")
        grid[name] = [v.strip() for v in values.split(",") if v.strip()]
    return grid


def _dask_client(args):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CommandLineError("--workers" if args.workers else "--scheduler",
                               "needs Dask: pip install 'grokreg[dask]'") from None
    if args.workers:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return Client(cluster), cluster
    try:
        return Client(args.scheduler, timeout="5s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise CommandLineError("--scheduler", f"cannot reach a Dask scheduler at "
                               f"{args.scheduler} ({exc}); start one (`dask scheduler` and "
                               f"`dask worker ADDRESS`) or use --workers N for a local "
                               f"cluster") from None


def _sweep(args, progress):
    grid = _parse_grid(args.grid)
    if args.resume and not args.out:
        raise CommandLineError("--resume", "goes with --out FILE (the sweep to continue)")
    # every setting, and the output file, is checked before a cluster is started
    plan = sweep.plan_sweep(grid, seeds=args.seeds, seed=args.seed, book=args.book,
                            dtype=args.dtype, n_train=args.n_train,
                            n_validation=args.n_validation, n_test=args.n_test,
                            data_dir=args.data_dir, out=args.out, resume=args.resume)
    client = cluster = None
    if args.workers or args.scheduler:
        client, cluster = _dask_client(args)
    try:
        rows = sweep.execute(plan, client=client, threads=args.threads, progress=progress)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    _progress.write(sweep.summary_table(rows))
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    command = parser.commands[args.command]
    progress = sys.stderr.isatty() if getattr(args, "progress", None) is None else args.progress
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            if args.command == "data":
                return _data(args)
            if args.command == "sweep":
                return _sweep(args, progress)
            _reproduce(args, progress)
    except CommandLineError as exc:
        command.error(f"argument {exc.flag}: {exc}" if exc.flag else str(exc))
    except (ValueError, TypeError, OSError, ImportError) as exc:
        error = _as_command_line_error(exc)
        if error is not None:
            command.error(f"argument {error.flag}: {error}")
        command.print_usage(sys.stderr)
        print(f"grokreg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grokreg: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
