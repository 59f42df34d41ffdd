"""Write the default-mode tables the tests pin (tests/data/golden/), from this checkout's grokreg.

Default mode is deterministic for a seed and computes the same bits with either build of the
kernels and any number of threads, so its printed tables are facts the tests compare exactly
(tests/test_golden.py). Regenerate them only for an intended change of default mode's numbers
(say so in CHANGELOG.md):

    python scripts/make_golden.py
"""
import io
from pathlib import Path

import grokreg
from grokreg.recipes import reproduce_ensemble

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden"

#: (file name, how to print it): the four experiments in default mode, the early-stopping
#: experiment in book mode (the book prints no such table), a small ensemble in each mode
TABLES = {
    **{f"{name}.txt": (lambda out, name=name: grokreg.reproduce(name, out=out))
       for name in grokreg.EXPERIMENTS},
    "early-stopping-book.txt": lambda out: grokreg.reproduce("early-stopping", book=True, out=out),
    **{f"ensemble-{mode}.txt": (lambda out, book=(mode == "book"): reproduce_ensemble(
        networks=3, book=book, epochs=40, n_train=300, n_test=1000, out=out))
       for mode in ("book", "correct")},
}


def table(name):
    out = io.StringIO()
    TABLES[name](out)
    return out.getvalue()


if __name__ == "__main__":
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        (GOLDEN / name).write_text(table(name))
        print(f"wrote {GOLDEN / name}")
