"""Figures of the chapter's story with matplotlib (an optional extra: ``pip install grokreg[plot]``)."""
import os

__all__ = ["plot_comparison", "MISSING_MATPLOTLIB"]

MISSING_MATPLOTLIB = ("plotting needs matplotlib, which is not installed: "
                      "pip install 'grokreg[plot]' (or pip install matplotlib)")


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _draw(axes, history, mode, unstopped=None):
    """Train/validation/test curves of one run; unstopped: the same run without early stopping."""
    top, bottom = axes
    for ax, metric, label in ((top, "accuracy", "accuracy"), (bottom, "error", "error")):
        if unstopped is not None:
            epochs, values = unstopped.evaluated(f"test_{metric}")
            ax.plot(epochs, values, color="tab:red", lw=1, ls="--", alpha=0.4,
                    label="test, not stopped")
        ax.plot(history.epoch, history.history[metric], color="tab:blue", lw=1,
                label="train (dropout on)" if history.params.get("dropout") else "train")
        for prefix, color, name in (("val", "tab:green", "validation"), ("test", "tab:red", "test")):
            key = f"{prefix}_{metric}"
            if key in history.history:
                epochs, values = history.evaluated(key)
                ax.plot(epochs, values, color=color, lw=1, marker="." if len(epochs) < 60 else None,
                        label=name)
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="black", ls="--", lw=1,
                       label=f"best epoch {history.best_epoch} (restored)")
        if history.stopped_epoch is not None:
            ax.axvline(history.stopped_epoch, color="gray", ls=":", lw=1,
                       label=f"stopped after epoch {history.stopped_epoch}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    top.set_title(f"{mode} mode")
    bottom.set_xlabel("epoch")
    top.legend(fontsize=8, loc="lower right")


def plot_comparison(runs, directory):
    """One PNG per experiment: accuracy and error per epoch, book and correct mode side by side.

    runs are the dicts of ``grokreg.recipes.compare``. Returns the paths written.
    """
    from .recipes import EXPERIMENTS

    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, experiment in EXPERIMENTS.items():
        mine = [run for run in runs if run["experiment"] == name]
        if not mine:
            continue
        figure, axes = plt.subplots(2, len(mine), figsize=(5.5 * len(mine), 7), sharex="col",
                                    sharey="row", squeeze=False)
        for column, run in enumerate(mine):
            unstopped = None
            if experiment.monitor:  # early stopping: show what it saved the network from
                unstopped = next((r["history"] for r in runs if r["experiment"] == "overfit"
                                  and r["mode"] == run["mode"]), None)
            _draw(axes[:, column], run["history"], run["mode"], unstopped)
        figure.suptitle(f"{name}: {experiment.summary}")
        figure.tight_layout()
        path = os.path.join(directory, f"{name}.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths
