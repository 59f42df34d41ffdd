"""Distortions of images: a regularizer that shows the network a new version of every
training image every epoch (``Network.fit(..., augment=...)``).

Each distortion is a displacement field: every pixel of the distorted image takes the value
of the original at a displaced source point, by bilinear interpolation, zero outside the
image (Simard, Steinkraus and Platt, "Best practices for convolutional neural networks
applied to visual document analysis", ICDAR 2003, section 2). ``Affine`` draws a random
rotation, scaling, shear and shift per image; ``Elastic`` draws Simard's elastic field; their
sum (``Affine(...) + Elastic(...)``) adds the two fields and interpolates once.

The fields are drawn and applied in grokreg's kernels, the GIL released, images shared among
the threads; each image's random numbers come from its own place in the stream, so a seed
gives the same images whatever the number of threads.
"""
import math
import numbers

import numpy as np

from . import _validation
from ._dispatch import kernels as _kernels

__all__ = ["Distortion", "Affine", "Elastic", "image_shape"]


def _range(value, name, high=None):
    value = _validation.check_real(value, name, low=0.0, high=high)
    return float(value)


def image_shape(x_shape, shape=None, name="x"):
    """(height, width) of the images in an array of x_shape: (N, height, width) as given,
    (N, pixels) from shape, or square."""
    if shape is not None:
        if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape)):
            raise ValueError(f"shape must be (height, width), two positive integers, got "
                             f"{shape!r}")
        height, width = int(shape[0]), int(shape[1])
        pixels = int(np.prod(x_shape[1:]))
        if height * width != pixels:
            raise ValueError(f"shape={shape!r} holds {height * width} pixels, but {name}'s "
                             f"images have {pixels}")
        return height, width
    if len(x_shape) == 3:
        return int(x_shape[1]), int(x_shape[2])
    if len(x_shape) == 2:
        side = math.isqrt(int(x_shape[1]))
        if side * side == x_shape[1] and side > 0:
            return side, side
        raise ValueError(f"the rows of {name} ({x_shape[1]} pixels) are not square images: "
                         f"give shape=(height, width), or images of shape (N, height, width)")
    raise ValueError(f"{name} must be images, (N, height, width) or (N, pixels), got shape "
                     f"{tuple(x_shape)}")


def pixel_values(x, dtype):
    """What the distortion kernel reads for x's uint8 pixels (float64 copies of the values a
    network of dtype gives them), or None for floating-point images, used as they are."""
    if x.dtype != np.uint8:
        return None
    return _validation.PIXEL_VALUES[np.dtype(dtype)].astype(np.float64)


def gaussian_matrix(sigma, size):
    """The (size, size) matrix of a Gaussian filter of standard deviation sigma along one
    axis, zero beyond the edges, and its radius: scipy.ndimage.gaussian_filter1d's weights
    (truncated at 4 sigma, summing to 1), row i the weights of pixel i's neighbours."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / sigma ** 2 * offsets ** 2)
    weights /= weights.sum()
    matrix = np.zeros((size, size))
    for i in range(size):
        for k in range(max(0, i - radius), min(size, i + radius + 1)):
            matrix[i, k] = weights[k - i + radius]
    return matrix, radius


class Distortion:
    """A random displacement field per image (see the module's docstring). Add two
    distortions (an ``Affine`` and an ``Elastic``) to apply both at once."""

    affine = None  # the Affine part, if any
    elastic = None  # the Elastic part, if any

    def __add__(self, other):
        if not isinstance(other, Distortion):
            return NotImplemented
        parts = {}
        for part in (self.affine, self.elastic, other.affine, other.elastic):
            if part is None:
                continue
            kind = type(part).__name__
            if kind in parts:
                raise ValueError(f"a distortion holds one {kind} part: combine an Affine and "
                                 f"an Elastic")
            parts[kind] = part
        return _Combined(parts.get("Affine"), parts.get("Elastic"))

    def kernel_options(self, height, width):
        """distort's keywords for images of height x width."""
        options = {}
        if self.affine is not None:
            options.update(rotation=math.radians(self.affine.rotation),
                           scale=self.affine.scale, shear=self.affine.shear,
                           translation=self.affine.translation)
        if self.elastic is not None:
            rows, radius = gaussian_matrix(self.elastic.sigma, height)
            columns, _ = gaussian_matrix(self.elastic.sigma, width)
            options.update(alpha=self.elastic.alpha, smooth_rows=rows, smooth_columns=columns,
                           radius=radius)
        return options

    def distort_into(self, x, out, key, height, width, n_threads=1, values=None, counts=None):
        """x's images (rows of height * width) distorted into out from key (the kernels'
        entry; x and out already checked); each image's non-zero pixels counted into counts,
        if given."""
        _kernels.distort(x, out, key, height=height, width=width, values=values,
                         n_threads=n_threads, counts=counts,
                         **self.kernel_options(height, width))

    def apply(self, images, *, seed=None, shape=None, dtype="float64", n_threads=1):
        """Distorted copies of images, in images' shape, as floats of dtype.

        images: (N, height, width), or (N, pixels) with shape=(height, width) or square
        images; uint8 pixels are scaled by 1/255 as Network reads them, floats used as given.
        seed: an int, a numpy Generator or None (fresh numbers); the same seed gives the
        same images, whatever n_threads.
        """

        dtype = _validation.check_dtype(dtype)
        array = np.asarray(images)
        height, width = image_shape(array.shape, shape, "images")
        if array.dtype == np.uint8:
            flat = np.ascontiguousarray(array.reshape(len(array), height * width))
        elif array.dtype.kind == "f":
            flat = np.ascontiguousarray(array.reshape(len(array), height * width),
                                        dtype=dtype)
            if not np.isfinite(flat).all():
                raise ValueError("images must be finite")
        else:
            raise TypeError(f"images must be uint8 pixels or floating point, got "
                            f"{array.dtype}")
        generator = seed if isinstance(seed, np.random.Generator) else \
            np.random.default_rng(seed)
        key = int(generator.integers(0, 2**64, dtype=np.uint64))
        out = np.empty((len(flat), height * width), dtype=dtype)
        n_threads = _validation.check_int(n_threads, "n_threads", minimum=1)
        values = pixel_values(flat, dtype)
        self.distort_into(flat, out, key, height, width, n_threads, values)
        return out.reshape(array.shape)


class Affine(Distortion):
    """A random affine map per image about its centre: rotation, scaling, shear and shift,
    each drawn uniformly within its range.

    Parameters
    ----------
    rotation : float
        Largest rotation, degrees (0 to 180): each image turns by a uniform angle in
        [-rotation, rotation].
    scale : float
        Largest relative scaling (0 to 1), drawn for each axis: 0.15 scales by 0.85 to 1.15.
    shear : float
        Largest shear factor (0 to 1): x shifts by up to shear * y.
    translation : float
        Largest shift in pixels, drawn for each axis.

    Simard et al. (2003) report 1.1% test error for 784-800-10 trained on affine distortions
    without giving their ranges; Cireşan et al. (2010) used rotations of up to 15 degrees and
    scalings of up to 15% (with elastic distortions).
    """

    def __init__(self, rotation=0.0, scale=0.0, shear=0.0, translation=0.0):
        self.rotation = _range(rotation, "rotation", high=180.0)
        self.scale = _range(scale, "scale", high=1.0)
        self.shear = _range(shear, "shear", high=1.0)
        self.translation = _range(translation, "translation")
        self.affine = self

    def __repr__(self):
        return (f"Affine(rotation={self.rotation:g}, scale={self.scale:g}, "
                f"shear={self.shear:g}, translation={self.translation:g})")


class Elastic(Distortion):
    """Simard's elastic distortion: per image, a field of uniform random displacements in
    [-1, 1] per pixel for x and for y, smoothed by a Gaussian of standard deviation sigma
    (zero beyond the image, truncated at 4 sigma), scaled by alpha pixels.

    Simard et al. (2003, section 2) found sigma = 4 and alpha = 34 to work for MNIST: the
    defaults. Small sigma gives nearly random displacements; large sigma, nearly affine ones.
    """

    def __init__(self, alpha=34.0, sigma=4.0):
        self.alpha = _range(alpha, "alpha")
        self.sigma = _validation.check_real(sigma, "sigma", low=0.0, low_open=True)
        self.elastic = self

    def __repr__(self):
        return f"Elastic(alpha={self.alpha:g}, sigma={self.sigma:g})"


class _Combined(Distortion):
    def __init__(self, affine, elastic):
        self.affine, self.elastic = affine, elastic

    def __repr__(self):
        return " + ".join(repr(part) for part in (self.affine, self.elastic)
                          if part is not None)
