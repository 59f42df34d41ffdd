"""Figures of the chapter's story with matplotlib (an optional extra: grokreg[plot]).

One figure per experiment of ``grokreg.recipes.compare``: accuracy and error per epoch in book
mode, in correct mode, and both modes' test curves on the same axes; the best test epoch is
marked everywhere. The early-stopping figure is zoomed to the epochs trained, with a row for
the run it was stopped from; the ensemble figure shows its networks, their average and one
dropout network. ``plot_regularizers`` draws ``reproduce_regularizers``' test curves and
accuracies; ``plot_distortions``, distorted digits and ``reproduce_distortions``' test error.
"""
import os

__all__ = ["plot_comparison", "plot_regularizers", "plot_distortions", "MISSING_MATPLOTLIB"]

MISSING_MATPLOTLIB = ("plotting needs matplotlib, which is not installed: "
                      "pip install 'grokreg[plot]' (or pip install matplotlib)")

LABELS = {"accuracy": "accuracy (fraction of images right)",
          "error": "error: squared error per image\n(the book's Train-Err / Test-Err)"}
COLORS = {"train": "tab:blue", "val": "tab:green", "test": "tab:red"}
MODE_STYLE = {"book": "-", "correct": "--"}


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _best_test(history):
    epochs, values = history.evaluated("test_accuracy")
    best = max(range(len(values)), key=values.__getitem__)
    return epochs[best], values[best]


def _mark_best(ax, history, metric, color="black", label=None):
    """A star on the test curve at the best test accuracy's epoch (for reference only)."""
    epoch, _ = _best_test(history)
    value = history.history[f"test_{metric}"][history.epoch.index(epoch)]
    ax.plot([epoch], [value], marker="*", ms=11, color=color, ls="none", zorder=5,
            label=f"best test accuracy, epoch {epoch}" if label is None else label)


def _curves(ax, history, metric):
    """Train, validation and test curves of one run on ax."""
    ax.plot(history.epoch, history.history[metric], color=COLORS["train"], lw=1,
            label="train (dropout on)" if history.params.get("dropout") else "train")
    for prefix, name in (("val", "validation"), ("test", "test")):
        key = f"{prefix}_{metric}"
        if key in history.history:
            epochs, values = history.evaluated(key)
            ax.plot(epochs, values, color=COLORS[prefix], lw=1,
                    marker="." if len(epochs) < 60 else None, ms=4, label=name)
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="black", ls="--", lw=1,
                   label=f"best validation epoch {history.best_epoch} (restored)")
    if history.stopped_epoch is not None:
        ax.axvline(history.stopped_epoch, color="gray", ls=":", lw=1,
                   label=f"stopped after epoch {history.stopped_epoch}")
    _mark_best(ax, history, metric)


def _both_modes(ax, runs, metric, key="history"):
    for run in runs:
        epochs, values = run[key].evaluated(f"test_{metric}")
        ax.plot(epochs, values, color=COLORS["test"], ls=MODE_STYLE[run["mode"]], lw=1.2,
                label=f"test, {run['mode']} mode")
        _mark_best(ax, run[key], metric, color="black" if run["mode"] == "book" else "gray")


def _figure(plt, rows, columns):
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.4 * rows + 0.8),
                                squeeze=False)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return figure, axes


def _experiment_figure(plt, name, experiment, mine, unstopped_runs):
    stopped = experiment.monitor is not None
    figure, axes = _figure(plt, 3 if stopped else 2, len(mine) + 1)
    for row, metric in enumerate(("accuracy", "error")):
        for column, run in enumerate(mine):
            ax = axes[row, column]
            _curves(ax, run["history"], metric)
            if stopped:  # zoom to what was trained
                ax.set_xlim(-1, len(run["history"]) + 2)
            ax.set_title(f"{run['mode']} mode" if row == 0 else "")
        _both_modes(axes[row, -1], mine, metric)
        axes[0, -1].set_title("test curves of both modes")
        if stopped:
            axes[row, -1].set_xlim(-1, max(len(r["history"]) for r in mine) + 2)
        axes[row, 0].set_ylabel(LABELS[metric])
    axes[0, 0].legend(fontsize=7, loc="best")
    axes[0, -1].legend(fontsize=7, loc="best")
    if stopped:  # the run it saved the network from, over all its epochs
        for column, run in enumerate(mine):
            ax, full = axes[2, column], unstopped_runs.get(run["mode"])
            if full is None:
                ax.set_visible(False)
                continue
            epochs, values = full.evaluated("test_accuracy")
            ax.plot(epochs, values, color=COLORS["test"], lw=1, label="test, not stopped")
            _mark_best(ax, full, "accuracy")
            restored = run["history"].history["test_accuracy"][
                run["history"].epoch.index(run["history"].best_epoch)]
            ax.axvspan(0, len(run["history"]) - 1, color="tab:green", alpha=0.12,
                       label=f"trained with early stopping (0-{len(run['history']) - 1})")
            ax.axhline(restored, color="tab:green", lw=1,
                       label=f"restored network: {restored:.4f}")
            ax.set_title(f"{run['mode']} mode, not stopped: {values[-1]:.4f} after "
                         f"{len(full)} epochs", fontsize=9)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7, loc="lower center")
        axes[2, 0].set_ylabel("test accuracy")
        axes[2, -1].set_visible(False)
    for ax in axes[1 if not stopped else 1, :]:
        ax.set_xlabel("epoch")
    figure.suptitle(f"{name}: {experiment.summary}")
    return figure


def _ensemble_figure(plt, mine):
    figure, axes = _figure(plt, 1, len(mine))
    for ax, run in zip(axes[0], mine):
        for index, history in enumerate(run["histories"]):
            epochs, values = history.evaluated("test_accuracy")
            ax.plot(epochs, values, color="tab:gray", lw=0.8, alpha=0.8,
                    label="each network (no dropout)" if index == 0 else None)
            _mark_best(ax, history, "accuracy", color="tab:gray",
                       label="its best test accuracy" if index == 0 else "_")
        epochs, values = run["history"].evaluated("test_accuracy")
        ax.plot(epochs, values, color="tab:purple", lw=1.2, label="one network with dropout")
        _mark_best(ax, run["history"], "accuracy", color="tab:purple", label="its best")
        ax.axhline(run["final_test_accuracy"], color="tab:orange", lw=1.5,
                   label=f"their outputs averaged, at the end: {run['final_test_accuracy']:.4f}")
        mean = sum(h.history["test_accuracy"][-1] for h in run["histories"]) / len(run["histories"])
        ax.axhline(mean, color="tab:gray", ls=":", lw=1,
                   label=f"mean of the networks, at the end: {mean:.4f}")
        ax.set_title(f"{run['mode']} mode: {len(run['histories'])} networks")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, loc="lower left", framealpha=0.9)
    axes[0, 0].set_ylabel("test accuracy")
    figure.suptitle("ensemble: dropout works because ensembling works (section 8.8)")
    return figure


def plot_comparison(runs, directory):
    """One PNG per experiment of ``grokreg.recipes.compare``'s runs; returns the paths written."""
    from .recipes import EXPERIMENTS

    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    unstopped = {r["mode"]: r["history"] for r in runs if r["experiment"] == "overfit"}
    paths = []
    for name in [*EXPERIMENTS, "ensemble"]:
        mine = [run for run in runs if run["experiment"] == name]
        if not mine:
            continue
        figure = (_ensemble_figure(plt, mine) if name == "ensemble" else
                  _experiment_figure(plt, name, EXPERIMENTS[name], mine, unstopped))
        figure.tight_layout()
        path = os.path.join(directory, f"{name}.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def plot_regularizers(result, directory):
    """regularizers.png from ``grokreg.recipes.reproduce_regularizers``' result: each chosen
    run's test accuracy per epoch, and every model's validation and test accuracy as it ended
    training; returns the path written."""
    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw=dict(width_ratios=[3, 2]))
    curves, bars = axes
    colors = plt.get_cmap("tab10").colors
    rows = result["rows"]
    for color, row in zip(colors, rows):
        label = f"{row['regularizer']} {row['strength']}".strip()
        if row["history"] is None:  # the ensemble: its averaged outputs, at the end
            curves.axhline(row["test_accuracy"], color=color, ls="--", lw=1.2,
                           label=f"{label} (at the end)")
            continue
        epochs, values = row["history"].evaluated("test_accuracy")
        curves.plot(epochs, values, color=color, lw=1.2, label=label)
    ends = [a for r in rows for a in (r["validation_accuracy"], r["test_accuracy"])]
    low, high = min(ends), max(ends)
    curves.set_ylim(low - 0.04, high + 0.015)  # the first epochs start below: the ends matter
    curves.set_xlabel("epoch")
    curves.set_ylabel("test accuracy")
    curves.set_title("test accuracy while training (the network chosen for each)")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    positions = range(len(rows))
    height = 0.38
    bars.barh([p - height / 2 for p in positions], [r["validation_accuracy"] for r in rows],
              height, color="tab:green", label="validation (chooses the strength)")
    bars.barh([p + height / 2 for p in positions], [r["test_accuracy"] for r in rows],
              height, color="tab:red", label="test")
    for position, row in zip(positions, rows):
        bars.text(row["test_accuracy"] + 0.002, position + height / 2,
                  f"{row['test_accuracy']:.4f}", va="center", fontsize=7)
    bars.set_yticks(list(positions))
    bars.set_yticklabels([f"{r['regularizer']}\n{r['strength']}".strip() for r in rows],
                         fontsize=8)
    bars.invert_yaxis()
    bars.set_xlim(max(0.0, low - 0.03), min(1.0, high + 0.02))
    bars.set_xlabel("accuracy as training ended")
    bars.set_title("accuracy of each model")
    bars.grid(alpha=0.3, axis="x")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.suptitle("Regularizers on the overfit experiment (1,000 images), default mode")
    figure.tight_layout()
    path = os.path.join(directory, "regularizers.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_distortions(result, directory, copies=3, digits=6):
    """distortions.png from ``grokreg.recipes.reproduce_distortions``' result: a grid of
    training digits, each beside ``copies`` affine and elastic distortions of it, and each
    run's test error per epoch beside the paper's; returns the path written."""
    import numpy as np

    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    rows = result["rows"]
    distorted = [row for row in rows if row["distortion"] is not None]
    columns = 1 + copies * len(distorted)
    figure = plt.figure(figsize=(13, 5.2))
    grid = figure.add_gridspec(digits, columns + 2 + 9, wspace=0.08, hspace=0.08)
    images = result["images"][:digits].reshape(digits, 28, 28)
    for i in range(digits):
        panels = [images[i] / 255.0]
        for row in distorted:
            # copy k of every digit from seed k: new images each column, as each epoch
            panels += [row["distortion"].apply(images[i:i + 1], seed=k)[0]
                       for k in range(copies)]
        for j, panel in enumerate(panels):
            ax = figure.add_subplot(grid[i, j])
            ax.imshow(panel, cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                title = "original" if j == 0 else distorted[(j - 1) // copies]["name"]
                ax.set_title(title if j == 0 or (j - 1) % copies == 0 else "", fontsize=9,
                             loc="left")
    curves = figure.add_subplot(grid[:, columns + 2:])
    colors = {"none": "tab:gray", "affine": "tab:blue", "elastic": "tab:red"}
    for row in rows:
        epochs, accuracies = row["history"].evaluated("test_accuracy")
        color = colors.get(row["name"], None)
        curves.plot(epochs, 100 * (1 - np.asarray(accuracies)), color=color, lw=1,
                    label=f"{row['name']}: {row['test_error']:.2f}% (best validation epoch "
                          f"{row['best_epoch']})")
        curves.axhline(row["paper"], color=color, ls=":", lw=1.2)
    from matplotlib.ticker import NullFormatter

    errors = [100 * (1 - a) for row in rows for a in row["history"].evaluated("test_accuracy")[1]]
    low = min(min(errors), min(row["paper"] for row in rows)) * 0.85
    high = min(max(errors) * 1.1, 100)
    curves.set_yscale("log")
    curves.set_ylim(low, high)
    ticks = [t for t in (0.5, 0.7, 1, 1.1, 1.6, 2, 3, 5, 10, 20, 50) if low <= t <= high]
    curves.set_yticks(ticks)
    curves.set_yticklabels([f"{t:g}" for t in ticks])
    curves.yaxis.set_minor_formatter(NullFormatter())
    curves.set_xlabel("epoch")
    curves.set_ylabel("test error, % (dotted: Simard et al. 2003)")
    curves.grid(alpha=0.3, which="both")
    curves.legend(fontsize=8, loc="upper right")
    curves.set_title("test error while training")
    figure.suptitle(f"Distortions as a regularizer: 784-{result['hidden']}-10 on MNIST")
    path = os.path.join(directory, "distortions.png")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
