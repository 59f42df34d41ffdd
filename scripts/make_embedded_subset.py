#!/usr/bin/env python3
"""Write the MNIST subset that ships inside grokreg (grokreg/data/) from the full IDX files.

Training images and labels 0-1999 (0-999: the book's training set, 1000-1999: a validation set)
and all 10,000 test images and labels, each as a gzipped IDX file, plus SHA256SUMS of their
decompressed content, which grokreg checks on every load. The output is byte-for-byte
reproducible (gzip without timestamps).

Usage: python scripts/make_embedded_subset.py [--source DIR] [--dest grokreg/data]
"""
import argparse
import gzip
import hashlib
import os
import struct

import numpy as np

from grokreg.data import EMBEDDED_TRAIN_SIZE, MNIST_FILES, read_idx


def idx_bytes(array):
    """Serialise a uint8 array as IDX (type code 0x08)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(here, "..", "..", "shared", "data", "mnist"))
    parser.add_argument("--dest", default=os.path.join(here, "..", "grokreg", "data"))
    args = parser.parse_args(argv)
    os.makedirs(args.dest, exist_ok=True)
    sums = []
    for key, name in MNIST_FILES.items():
        array = read_idx(os.path.join(args.source, name + ".gz"))
        if key.startswith("train"):
            array = array[:EMBEDDED_TRAIN_SIZE]
        content = idx_bytes(array)
        with open(os.path.join(args.dest, name + ".gz"), "wb") as f:
            f.write(gzip.compress(content, compresslevel=9, mtime=0))
        sums.append(f"{hashlib.sha256(content).hexdigest()}  {name}\n")
        print(f"{name}: shape {array.shape}")
    with open(os.path.join(args.dest, "SHA256SUMS"), "w") as f:
        f.writelines(sums)


if __name__ == "__main__":
    main()
