"""The tables grokreg prints, pinned: the book's three published tables (tests/data/book/, the
book's own text), and default mode's tables (tests/data/golden/, written by
scripts/make_golden.py). Both run from the installed package alone: no shared/ needed.

The two differ in kind. The book's tables are an independent oracle: text grokreg did not
write. The golden tables were written by grokreg itself, so they are change detectors only:
they say that a change moved default mode's numbers, not that either set is right. Default
mode's correctness rests on the checks against independent references: the kernels against
NumPy models (test_kernels, test_regularizers), gradients against central differences, the
estimator and the sweep against networks trained by hand."""
import importlib.util
import io
from pathlib import Path

import pytest

import grokreg

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("experiment", ["overfit", "dropout", "batch"])
def test_the_books_tables_exactly(experiment):
    out = io.StringIO()
    grokreg.reproduce(experiment, book=True, out=out)
    assert out.getvalue() == (DATA / "book" / f"{experiment}.txt").read_text()


def golden_tables():
    spec = importlib.util.spec_from_file_location(
        "make_golden", DATA.parent.parent / "scripts" / "make_golden.py")
    if spec is None:  # tests run without the checkout's scripts/ (never so far)
        pytest.skip("scripts/make_golden.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "golden").glob("*.txt")))
def test_default_modes_tables_are_pinned(name):
    """Same seed, same table, whichever build of the kernels runs: a change here is a change of
    default mode's numbers, to be made deliberately (scripts/make_golden.py, CHANGELOG.md)."""
    assert golden_tables().table(name) == (DATA / "golden" / name).read_text()


def test_every_golden_table_is_pinned():
    assert sorted(golden_tables().TABLES) == sorted(p.name for p in (DATA / "golden").glob("*.txt"))
