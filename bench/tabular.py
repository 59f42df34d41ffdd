#!/usr/bin/env python3
"""NetworkClassifier() against MLPClassifier(), with their defaults, on bundled data sets.

scikit-learn's bundled data sets stand for a user's own data, as a new user first tries it.

5-fold cross_val_score (StratifiedKFold, the same folds for both) of each estimator on
iris, wine, breast_cancer and digits, with a StandardScaler in front ("scaled") and on the
raw features ("raw"); the mean accuracy, the seconds each took in all, and whether
NetworkClassifier warned (a ConvergenceWarning or RuntimeWarning: inputs far from the
weights' scale, or a network that collapsed). Seeds 0 to --seeds - 1 (random_state), the
accuracy their mean.

    python bench/tabular.py [--seeds 3] [--json out.json] [--set learning_rate_init=0.05 ...]
"""
import argparse
import json
import re
import sys
import time
import warnings

import numpy as np

from machine import describe

DATA_SETS = ("iris", "wine", "breast_cancer", "digits")


def load(name):
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def score(make, x, y, seeds):
    """(mean accuracy over seeds and folds, seconds, warning messages)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    accuracies, messages = [], set()
    started = time.perf_counter()
    for seed in range(seeds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            accuracies.append(cross_val_score(make(seed), x, y, cv=StratifiedKFold(5)).mean())
        messages |= {f"{w.category.__name__}: {w.message}" for w in caught}
    return float(np.mean(accuracies)), time.perf_counter() - started, sorted(messages)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="NetworkClassifier hyper-parameters to try instead of defaults")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from grokreg.sklearn import NetworkClassifier

    given = {}
    for item in args.set:
        name, _, value = item.partition("=")
        given[name] = json.loads(value) if value[:1] in "-0123456789[{tfn\"" else value
    estimators = {
        "NetworkClassifier": lambda seed: NetworkClassifier(random_state=seed, n_threads=1,
                                                            **given),
        "MLPClassifier": lambda seed: MLPClassifier(random_state=seed),
    }
    rows, seconds = [], {name: 0.0 for name in estimators}
    for data in DATA_SETS:
        x, y = load(data)
        for scaled in (True, False):
            row = {"data": data, "scaled": scaled}
            for name, make in estimators.items():
                build = ((lambda seed, make=make: make_pipeline(StandardScaler(), make(seed)))
                         if scaled else make)
                accuracy, spent, messages = score(build, x, y, args.seeds)
                # MLPClassifier warns of every fit stopped at max_iter: not a collapse
                warned = [m for m in messages if name == "NetworkClassifier"
                          or not m.startswith(ConvergenceWarning.__name__)]
                row[name] = dict(accuracy=accuracy, seconds=spent, warnings=warned)
                seconds[name] += spent
            rows.append(row)
            print(f"{data}, {'scaled' if scaled else 'raw'}: " + ", ".join(
                f"{name} {row[name]['accuracy']:.3f} ({row[name]['seconds']:.1f} s)"
                for name in estimators), file=sys.stderr)

    print(f"5-fold cross-validated accuracy, the mean of {args.seeds} seeds; each estimator "
          f"with its defaults{' (NetworkClassifier: ' + ', '.join(args.set) + ')' if given else ''}; "
          f"{describe()}\n")
    print("| data set | features | NetworkClassifier() | MLPClassifier() | difference | "
          "NetworkClassifier warned |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ours, theirs = row["NetworkClassifier"], row["MLPClassifier"]
        warned = "yes" if ours["warnings"] else "no"
        print(f"| {row['data']} | {'scaled' if row['scaled'] else 'raw'} | "
              f"{ours['accuracy']:.3f} | {theirs['accuracy']:.3f} | "
              f"{ours['accuracy'] - theirs['accuracy']:+.3f} | {warned} |")
    print(f"\nSeconds in all: NetworkClassifier {seconds['NetworkClassifier']:.1f}, "
          f"MLPClassifier {seconds['MLPClassifier']:.1f} "
          f"({seconds['MLPClassifier'] / seconds['NetworkClassifier']:.1f}x).")
    warned = [row for row in rows if row["NetworkClassifier"]["warnings"]]
    if warned:
        print("\nNetworkClassifier's warnings, the first of each kind (every fit warns of its "
              "own figures):")
    for row in warned:
        first = {}
        for message in row["NetworkClassifier"]["warnings"]:
            first.setdefault(re.sub(r"\d[\d.e+]*", "#", message), message)  # figures aside
        print(f"- {row['data']}, {'scaled' if row['scaled'] else 'raw'}:")
        for message in first.values():
            print(f"  - {message}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=describe(), seeds=args.seeds, given=given, rows=rows,
                           seconds=seconds), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
