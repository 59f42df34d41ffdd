"""The book's chapter 8 experiments, as data, and the function that runs one."""
import sys
from dataclasses import dataclass

from .data import load_mnist
from .history import book_line
from .network import Network

__all__ = ["Experiment", "EXPERIMENTS", "reproduce"]


@dataclass(frozen=True)
class Experiment:
    """One of the book's experiments: its hyper-parameters and how it prints its table."""

    name: str
    summary: str
    hidden: int
    book_alpha: float
    default_alpha: float  # the same step in default mode (batches average their gradient)
    epochs: int
    batch_size: int
    dropout: float
    test_first: bool  # the dropout/batch tables print test metrics before train metrics
    print_last: bool  # the overfit table also prints the last epoch

    def alpha(self, book):
        return self.book_alpha if book else self.default_alpha


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("overfit", "784-40-10, per-example SGD, 1,000 images: memorises, then overfits",
                   hidden=40, book_alpha=0.005, default_alpha=0.005, epochs=350, batch_size=1,
                   dropout=0.0, test_first=False, print_last=True),
        Experiment("dropout", "784-100-10 with 50% dropout, per-example SGD",
                   hidden=100, book_alpha=0.005, default_alpha=0.005, epochs=300, batch_size=1,
                   dropout=0.5, test_first=True, print_last=False),
        # The book's batch loop applies its 0.001 step 100 times per batch: an effective step
        # of 0.1 on the batch-mean gradient, which default mode takes once.
        Experiment("batch", "784-100-10, dropout, mini-batches of 100",
                   hidden=100, book_alpha=0.001, default_alpha=0.1, epochs=300, batch_size=100,
                   dropout=0.5, test_first=True, print_last=False),
    )
}


def reproduce(name, *, book=False, seed=1, hidden=None, alpha=None, epochs=None, n_train=1000,
              n_test=10000, eval_every=10, data_dir=None, dtype="float64", out=None,
              progress=False):
    """Run one of the book's experiments, printing its table to ``out`` as it trains.

    Parameters are those of the book's programs (``shared/reference/chapter8_numpy.py``);
    None takes the experiment's own value. Lines are printed at epochs where
    ``epoch % eval_every == 0`` (and the last epoch for ``overfit``), in the book's format.

    Returns
    -------
    (Network, History)
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    out = sys.stdout if out is None else out
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, n_train=n_train, n_test=n_test)
    net = Network(experiment.hidden if hidden is None else hidden, dropout=experiment.dropout,
                  seed=seed, book=book, dtype=dtype)
    epochs = experiment.epochs if epochs is None else epochs

    def print_line(record):
        last = record["epoch"] == epochs - 1
        if record["epoch"] % eval_every == 0 or (last and experiment.print_last):
            print(book_line(record, experiment.test_first), file=out, flush=True)

    history = net.fit(x_train, y_train, epochs=epochs,
                      alpha=experiment.alpha(book) if alpha is None else alpha,
                      batch_size=experiment.batch_size, test_data=(x_test, y_test),
                      eval_every=eval_every, progress=progress, on_epoch_end=print_line)
    return net, history
