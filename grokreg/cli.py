"""Command line: ``grokreg reproduce overfit|dropout|batch|early-stopping|all [--book] ...``."""
import argparse
import sys

import hashlib
import os

import numpy as np

from ._version import __version__
from .data import load_idx_dataset
from .recipes import EXPERIMENTS, compare, comparison_table, reproduce


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="grokreg",
        description="Grokking Deep Learning, chapter 8: regularization and batching.",
    )
    parser.add_argument("--version", action="version", version=f"grokreg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "reproduce",
        help="run one of the book's experiments and print its table",
        description="Run one of the book's experiments, printing its table on stdout "
        "(progress goes to stderr). "
        + " ".join(f"{e.name}: {e.summary}." for e in EXPERIMENTS.values())
        + " all: every experiment in both modes, and one comparison table.",
    )
    run.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    run.add_argument("--book", action="store_true",
                     help="the book's arithmetic and random stream: prints the book's table exactly")
    run.add_argument("--seed", type=_non_negative_int, default=1, help="random seed (default 1)")
    run.add_argument("--hidden", type=_positive_int, help="hidden units (default: the book's)")
    run.add_argument("--alpha", type=float, help="learning rate (default: the book's, "
                     "or its batch-mean equivalent 0.1 for 'batch' without --book)")
    run.add_argument("--epochs", type=_non_negative_int, help="epochs (default: the book's)")
    run.add_argument("--n-train", type=_positive_int, default=1000,
                     help="training images, the first ones of the set (default 1000)")
    run.add_argument("--n-test", type=_positive_int, default=10000,
                     help="test images (default 10000)")
    run.add_argument("--eval-every", type=_positive_int, default=10,
                     help="print a line every this many epochs (default 10)")
    run.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                     "(default: $GROKREG_DATA, else the subset embedded in grokreg)")
    run.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                     help="precision (book mode: float64 only)")
    run.add_argument("--plot", metavar="DIR",
                     help="with 'all': write a PNG figure per experiment into DIR (matplotlib)")
    progress = run.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")

    data = commands.add_parser(
        "data", help="download, verify or describe a data directory",
        description="download: fetch the four MNIST files into the cache (or --data-dir), "
        "checking each before it is kept. verify: check the MNIST files of a directory. "
        "info: describe any IDX data set laid out like MNIST.")
    data.add_argument("action", choices=["download", "verify", "info"])
    data.add_argument("--data-dir", help="the directory (default: $GROKREG_DATA, else "
                      "$XDG_CACHE_HOME/grokreg/mnist or ~/.cache/grokreg/mnist)")
    data.add_argument("--timeout", type=float, default=30.0,
                      help="download: seconds a connection may wait (default 30)")
    data.add_argument("--prefix", default="", help="info: file name prefix (EMNIST: emnist-digits-)")
    data.add_argument("--test-name", default="t10k", help="info: name of the test split (EMNIST: test)")
    return parser


def _data(args):
    from .download import default_cache_dir, download_mnist, verify_mnist

    directory = args.data_dir or default_cache_dir()
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


def _reproduce_all(args, progress):
    ignored = [f"--{name.replace('_', '-')}" for name in ("book", "hidden", "alpha", "epochs")
               if getattr(args, name) not in (None, False)]
    if ignored or args.dtype != "float64":
        raise ValueError(f"'reproduce all' runs the book's settings in both modes; "
                         f"drop {', '.join(ignored) or '--dtype'}")
    if args.plot:  # fail before the long runs, not after
        from .plots import _pyplot

        _pyplot()
    runs = compare(seed=args.seed, n_train=args.n_train, n_test=args.n_test,
                   eval_every=args.eval_every, data_dir=args.data_dir, progress=progress)
    print(comparison_table(runs))
    if args.plot:
        from .plots import plot_comparison

        for path in plot_comparison(runs, args.plot):
            print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    args = build_parser().parse_args(argv)
    progress = sys.stderr.isatty() if getattr(args, "progress", None) is None else args.progress
    try:
        if args.command == "data":
            return _data(args)
        if args.experiment == "all":
            _reproduce_all(args, progress)
        else:
            if args.plot:
                raise ValueError("--plot goes with 'reproduce all'")
            reproduce(args.experiment, book=args.book, seed=args.seed, hidden=args.hidden,
                      alpha=args.alpha, epochs=args.epochs, n_train=args.n_train,
                      n_test=args.n_test, eval_every=args.eval_every, data_dir=args.data_dir,
                      dtype=args.dtype, progress=progress)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"grokreg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grokreg: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
