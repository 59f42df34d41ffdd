#!/usr/bin/env python3
"""What the placement of the parameters in memory costs: the book's networks trained and
evaluated from copies of their parameter arrays that start 0, 16 or 48 bytes past a cache
line (one process, interleaved, best of --repeat, as bench/compare_builds.py times builds).

numpy starts an array wherever malloc does (a Network's arrays 16 or 48 bytes past a line,
before they were placed on one): then every other 32-byte vector of a row crosses a cache
line. Network places its arrays on a line (grokreg._kernels.aligned_empty).

    python bench/alignment.py [--experiments overfit dropout] [--repeat 7]

--full-mnist DIR times instead full-MNIST mini-batch epochs phase by phase, as
compare_builds.py --full-mnist does (--dtype, --threads; medians of --repeat epochs).
"""
import argparse

from compare_builds import best_book_timings, full_mnist_phases, print_book_timings
from grokreg._dispatch import BUILD, kernels


def placed(offset):
    """A copy of an array whose data start offset bytes past a cache line."""
    def place(array):
        buffer = kernels.aligned_empty(array.nbytes + kernels.ALIGNMENT, "uint8")
        copy = buffer[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
        copy[...] = array
        return copy
    return place


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["overfit", "dropout"],
                        choices=["overfit", "dropout", "batch"])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per timing")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 16, 48],
                        help="bytes past a cache line (multiples of 8)")
    parser.add_argument("--full-mnist", metavar="DIR", help="the full MNIST files: time its "
                        "mini-batch epochs instead")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    variants = {f"{offset} bytes": (kernels, placed(offset)) for offset in args.offsets}
    if args.full_mnist:
        args.shuffle = False
        full_mnist_phases(variants, "start past a cache line", args)
        return
    best = best_book_timings(variants, args.experiments, args.epochs, args.repeat)
    print_book_timings(best, "start of the arrays past a cache line")
    print(f"\nBest of {args.repeat}, placements interleaved; {args.epochs} epochs per timing; "
          f"the {BUILD} build of the kernels.")


if __name__ == "__main__":
    main()
