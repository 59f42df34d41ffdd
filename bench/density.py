#!/usr/bin/env python3
"""Seconds per epoch against the share of non-zero inputs: grokreg's two layouts, NumPy, PyTorch.

MNIST's training images (pixels / 255) thinned or filled at random to each density: below its
19% ink, non-zero pixels are zeroed at random; above it, zero pixels are given random values
in (0, 1]. At each density, one epoch of the task of bench/peers.py (784-H-10, dropout 0.5,
batches of 100, alpha 0.1, float32) is timed for grokreg's sparse rows and its dense tiles
(the layout forced; the Dataset made before the clock starts), for NumPy and for PyTorch,
all in this process at --threads threads, in --repeat rounds of the whole sweep; each figure
is the median of its rounds. The table marks the layout grokreg chooses at each density
(Dataset's "auto", kernels.DENSE_FROM) and the measured crossover; --plot writes the figure.

    python bench/density.py --data-dir ../shared/data/mnist [--hidden 100] [--threads 1]
        [--n-train 20000] [--repeat 3] [--plot docs/_static/density.png] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import textwrap
import time

from machine import describe
from peers import ALPHA, BATCH, DROPOUT

DENSITIES = (0.05, 0.1, 0.19, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def at_density(x, density, rng):
    """x (values in [0, 1]) with the share of non-zero entries made density, at random."""
    import numpy as np

    x = x.copy()
    nonzero = np.flatnonzero(x)
    target = int(round(density * x.size))
    if target < len(nonzero):
        x.flat[rng.choice(nonzero, len(nonzero) - target, replace=False)] = 0
    elif target > len(nonzero):
        zero = np.flatnonzero(x == 0)
        chosen = rng.choice(zero, target - len(nonzero), replace=False)
        x.flat[chosen] = 1 - rng.random(len(chosen))  # in (0, 1]
    return x


def time_grokreg(kernels, x, y, hidden, threads, layout):
    import numpy as np

    import grokreg

    net = grokreg.Network(hidden, dropout=DROPOUT, dtype="float32", seed=0, n_threads=threads)
    data = kernels.Dataset(x, y, layout=layout, n_threads=threads)
    work = kernels.Workspace(data, *net._parameters, alpha=ALPHA, batch_size=BATCH,
                             keep=1 - DROPOUT, bit_generator=net._bit_generator,
                             loss=net._loss_code, n_threads=threads)
    order = np.arange(len(y))
    started = time.perf_counter()
    work.train_epoch(order)
    return time.perf_counter() - started, data.layout


def time_numpy(x, y, hidden):
    import numpy as np

    rng = np.random.default_rng(0)
    w1 = (0.2 * rng.random((784, hidden)) - 0.1).astype(np.float32)
    w2 = (0.2 * rng.random((hidden, 10)) - 0.1).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[y]
    started = time.perf_counter()
    for i in range(0, len(x), BATCH):
        xb, tb = x[i:i + BATCH], targets[i:i + BATCH]
        z = xb @ w1
        mask = (rng.random(z.shape) < 1 - DROPOUT).astype(np.float32) / (1 - DROPOUT)
        layer = np.maximum(z, 0) * mask
        delta_2 = (tb - layer @ w2) / len(xb)
        delta_1 = (delta_2 @ w2.T) * (z > 0) * mask
        w2 += ALPHA * layer.T @ delta_2
        w1 += ALPHA * xb.T @ delta_1
    return time.perf_counter() - started


def time_torch(x, y, hidden):
    import torch

    X = torch.from_numpy(x)
    T = torch.nn.functional.one_hot(torch.from_numpy(y), 10).to(torch.float32)
    generator = torch.Generator().manual_seed(0)
    w1 = (0.2 * torch.rand(784, hidden, generator=generator) - 0.1).requires_grad_()
    w2 = (0.2 * torch.rand(hidden, 10, generator=generator) - 0.1).requires_grad_()
    started = time.perf_counter()
    for i in range(0, len(X), BATCH):
        layer = torch.nn.functional.dropout(torch.relu(X[i:i + BATCH] @ w1), DROPOUT, True)
        loss = 0.5 * ((T[i:i + BATCH] - layer @ w2) ** 2).sum() / BATCH
        loss.backward()
        with torch.no_grad():
            w1.sub_(ALPHA * w1.grad)
            w2.sub_(ALPHA * w2.grad)
        w1.grad = w2.grad = None
    return time.perf_counter() - started


def crossover(rows):
    """The density from which the dense tiles are faster than the sparse rows (interpolated
    between the densities measured), or None if one layout wins everywhere."""
    for before, after in zip(rows, rows[1:]):
        if before["sparse"] <= before["dense"] and after["sparse"] > after["dense"]:
            gap_before = before["dense"] - before["sparse"]
            gap_after = after["sparse"] - after["dense"]
            share = gap_before / (gap_before + gap_after)
            return before["density"] + share * (after["density"] - before["density"])
    return None


def plot(rows, path, title, dense_from, found=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7.5, 4.4))
    densities = [row["density"] for row in rows]
    styles = {"sparse": ("grokreg, sparse rows", "tab:blue", "-"),
              "dense": ("grokreg, dense tiles", "tab:orange", "-"),
              "numpy": ("NumPy (OpenBLAS)", "tab:gray", "--"),
              "pytorch": ("PyTorch", "tab:red", ":")}
    for key, (label, color, style) in styles.items():
        if key in rows[0]:
            ax.plot(densities, [row[key] for row in rows], style, color=color, marker=".",
                    label=label)
    chosen = [min(row["sparse"], row["dense"]) if row["auto"] == "sparse" and row["sparse"] <=
              row["dense"] else row[row["auto"]] for row in rows]
    ax.plot(densities, chosen, "o", mfc="none", color="black", ms=9,
            label="the layout grokreg chooses")
    ax.axvline(dense_from, color="black", lw=0.8, ls="-.",
               label=f"grokreg: dense from {dense_from:.0%} of inputs non-zero")
    if found is not None:
        ax.axvline(found, color="tab:green", lw=0.8, ls="--",
                   label=f"dense faster here from {found:.0%}")
    ax.set_xlabel("share of inputs non-zero")
    ax.set_ylabel("seconds per epoch")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("\n".join(textwrap.wrap(title, 100)), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GROKREG_DATA"),
                        help="the full MNIST files (default: $GROKREG_DATA)")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="time grokreg only")
    parser.add_argument("--plot", help="write the figure here (matplotlib)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("full MNIST is needed: pass --data-dir or set GROKREG_DATA")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(variable) != str(args.threads):
            # the BLAS pools are sized at import: start again with the thread count set
            os.environ.update({v: str(args.threads) for v in ("OMP_NUM_THREADS",
                              "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
            os.execv(sys.executable, [sys.executable, *sys.argv])
    import numpy as np

    import grokreg
    from grokreg import _dispatch

    kernels = _dispatch.kernels
    (x, y), _ = grokreg.load_mnist(args.data_dir, n_train=args.n_train)
    base = (x.reshape(len(x), -1) / 255).astype(np.float32)
    rng = np.random.default_rng(0)
    data = {d: at_density(base, d, rng) for d in DENSITIES}
    peers = [] if args.no_peers else ["numpy"] + (["pytorch"] if _installed("torch") else [])
    if "pytorch" in peers:
        import torch

        torch.set_num_threads(args.threads)
    measured = {}
    for round_ in range(args.repeat):
        for density, xd in data.items():
            times = measured.setdefault(density, {})
            for layout in ("sparse", "dense"):
                seconds, _ = time_grokreg(kernels, xd, y, args.hidden, args.threads, layout)
                times.setdefault(layout, []).append(seconds)
            for peer in peers:
                seconds = (time_numpy if peer == "numpy" else time_torch)(xd, y, args.hidden)
                times.setdefault(peer, []).append(seconds)
            print(f"round {round_ + 1}, density {density:.2f}: "
                  + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), file=sys.stderr)
    epoch = 60000 / args.n_train  # seconds per full-MNIST-sized epoch
    rows = []
    for density, times in measured.items():
        row = {"density": density, "auto": kernels.Dataset(data[density]).layout}
        row.update({k: epoch * statistics.median(v) for k, v in times.items()})
        rows.append(row)
    found = crossover(rows)
    title = (f"784-{args.hidden}-10, batches of {BATCH}, float32, {args.threads} thread(s), "
             f"{_dispatch.BUILD} build; {describe()}")
    print(f"Seconds per 60,000-image epoch ({args.n_train} images timed, medians of "
          f"{args.repeat} rounds); {title}\n")
    columns = ["sparse", "dense", *peers]
    print("| non-zero | " + " | ".join(columns) + " | grokreg chooses |")
    print("|---|" + "---|" * len(columns) + "---|")
    for row in rows:
        print(f"| {row['density']:.0%} | " + " | ".join(f"{row[c]:.3f}" for c in columns)
              + f" | {row['auto']} |")
    print(f"\nDense tiles faster from {found:.0%} of inputs non-zero" if found is not None
          else "\nOne layout is faster at every density")
    print(f"grokreg's threshold for this build (kernels.DENSE_FROM): {kernels.DENSE_FROM:.0%}")
    if args.plot:
        plot(rows, args.plot, title, kernels.DENSE_FROM, found)
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(title=title, rows=rows, crossover=found,
                           dense_from=kernels.DENSE_FROM), f, indent=1)


def _installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
