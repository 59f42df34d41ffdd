"""The data sets the benches train on, by name, as float arrays in the bench's dtype.

- ``mnist``: full MNIST, pixels / 255 (19% of inputs non-zero);
- ``fashion``: Fashion-MNIST, the same files' layout (50% non-zero);
- ``standardised``: MNIST standardised per pixel as scikit-learn's ``StandardScaler`` does,
  times 0.1 so that the chapter's learning rate still trains it (every pixel but the
  constant ones non-zero: 91.5%).

MNIST is read from ``--data-dir`` or ``$GROKREG_DATA``; Fashion-MNIST from ``--fashion-dir``
or ``$GROKREG_FASHION_DATA`` (Debian's ``dataset-fashion-mnist`` puts it in
``/usr/share/datasets/fashion-mnist``).
"""
import os

WORKLOADS = ("mnist", "fashion", "standardised")
FASHION_ENV = "GROKREG_FASHION_DATA"


def add_arguments(parser):
    """The flags that say where each workload's files are."""
    parser.add_argument("--data-dir", default=os.environ.get("GROKREG_DATA"),
                        help="the full MNIST files (default: $GROKREG_DATA)")
    parser.add_argument("--fashion-dir", default=os.environ.get(FASHION_ENV),
                        help=f"the Fashion-MNIST files (default: ${FASHION_ENV})")


def directory(name, args):
    """Where the workload's files are, or exit with the flag that names them."""
    if name == "fashion":
        if not args.fashion_dir:
            raise SystemExit(f"the fashion workload needs Fashion-MNIST: pass --fashion-dir or "
                             f"set {FASHION_ENV}")
        return args.fashion_dir
    if not args.data_dir:
        raise SystemExit(f"the {name} workload needs full MNIST: pass --data-dir or set "
                         f"GROKREG_DATA")
    return args.data_dir


def load(name, folder, dtype):
    """(x_train, y_train, x_test, y_test) of a workload: float inputs of dtype (N, 784)."""
    import numpy as np

    import grokreg

    (x, y), (x_test, y_test) = grokreg.load_mnist(folder)
    x = x.reshape(len(x), -1) / 255
    x_test = x_test.reshape(len(x_test), -1) / 255
    if name == "standardised":
        mean, spread = x.mean(axis=0), x.std(axis=0)
        spread[spread == 0] = 1
        x, x_test = (x - mean) / spread * 0.1, (x_test - mean) / spread * 0.1
    return x.astype(dtype), y, x_test.astype(dtype), y_test
