"""Distortions (grokreg.Affine, grokreg.Elastic): the warp against SciPy, determinism, training
on new images every epoch, refusals, and the command that reproduces Simard et al.'s table."""
import os
import subprocess
import sys

import numpy as np
import pytest

import grokreg
from grokreg import Affine, Elastic, Network
from grokreg._dispatch import kernels as _kernels
from grokreg._validation import PIXEL_VALUES

DISTORTIONS = {
    "elastic": Elastic(),
    "affine": Affine(rotation=15, scale=0.15, shear=0.2, translation=2),
    "both": Affine(rotation=10, scale=0.1) + Elastic(alpha=30, sigma=5),
    "far": Affine(translation=30),  # mostly outside the image: zeros
}


@pytest.fixture(scope="module")
def images(mnist):
    (x, y), _ = mnist
    return x[:300], y[:300]


def reference(distortion, image, affine, field):
    """One image distorted with SciPy and NumPy from the same uniform numbers: the affine map
    about the centre plus Simard's field (gaussian_filter, zero beyond the edges, times
    alpha), sampled by map_coordinates (bilinear, zero outside the image)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    height, width = image.shape
    rows, columns = np.mgrid[0:height, 0:width].astype(float)
    x, y = columns - (width - 1) / 2, rows - (height - 1) / 2
    source_x, source_y = columns.copy(), rows.copy()
    if distortion.affine is not None:
        a = distortion.affine
        angle = np.radians(a.rotation) * affine[0]
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        m = turn @ np.array([[1, a.shear * affine[3]], [0, 1]]) @ np.diag(
            [1 + a.scale * affine[1], 1 + a.scale * affine[2]])
        source_x = (width - 1) / 2 + m[0, 0] * x + m[0, 1] * y + a.translation * affine[4]
        source_y = (height - 1) / 2 + m[1, 0] * x + m[1, 1] * y + a.translation * affine[5]
    if distortion.elastic is not None:
        e = distortion.elastic
        for source, component in ((source_x, field[0]), (source_y, field[1])):
            source += e.alpha * ndimage.gaussian_filter(component.reshape(height, width),
                                                        e.sigma, mode="constant")
    return ndimage.map_coordinates(image, [source_y, source_x], order=1, mode="grid-constant")


@pytest.mark.parametrize("name", DISTORTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_warp_is_scipys(images, name, dtype):
    x, _ = images
    distortion = DISTORTIONS[name]
    out = distortion.apply(x[:6], seed=3, dtype=dtype)
    assert out.shape == (6, 28, 28) and out.dtype == dtype
    key = int(np.random.default_rng(3).integers(0, 2**64, dtype=np.uint64))
    for i in range(6):
        affine, field = _kernels.distortion_draws(key, i, 784)
        expected = reference(distortion, x[i] / 255.0, affine, field)
        np.testing.assert_allclose(out[i], expected, rtol=0, atol=1e-6)
    assert not np.allclose(out, x[:6] / 255.0, atol=0.05)  # it did distort


@pytest.mark.parametrize("rows, columns", [(slice(2, 26), slice(None)),  # 24 x 28
                                           (slice(None), slice(2, 26)),  # 28 x 24
                                           (slice(4, 23), slice(3, 24))])  # 19 x 21
def test_float_images_of_any_shape(images, rows, columns):
    x, _ = images
    rectangles = x[:4, rows, columns] / 255.0
    shape = rectangles.shape[1:]
    distortion = DISTORTIONS["both"]
    flat = distortion.apply(rectangles.reshape(4, -1), seed=5, shape=shape)
    assert flat.shape == (4, shape[0] * shape[1])
    key = int(np.random.default_rng(5).integers(0, 2**64, dtype=np.uint64))
    affine, field = _kernels.distortion_draws(key, 2, shape[0] * shape[1])
    np.testing.assert_allclose(flat[2].reshape(shape),
                               reference(distortion, rectangles[2], affine, field), atol=1e-6)
    assert np.array_equal(distortion.apply(rectangles, seed=5).reshape(4, -1), flat)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_distort_counts_each_images_non_zero_pixels(images, n_threads):
    x, _ = images
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    out = np.empty(flat.shape, np.float32)
    counts = np.full(len(x), -1, np.int64)
    DISTORTIONS["both"].distort_into(flat, out, 7, 28, 28, n_threads, PIXEL_VALUES[np.dtype(np.float32)],
                                     counts)
    assert np.array_equal(counts, np.count_nonzero(out, axis=1))
    with pytest.raises(ValueError, match="counts must have x's 300 entries, got 299"):
        DISTORTIONS["both"].distort_into(flat, out, 7, 28, 28, 1, PIXEL_VALUES[np.dtype(np.float32)],
                                         counts[1:])


def test_the_same_seed_gives_the_same_images_at_any_thread_count(images):
    x, _ = images
    distortion = DISTORTIONS["both"]
    one = distortion.apply(x, seed=11, n_threads=1)
    assert np.array_equal(one, distortion.apply(x, seed=11, n_threads=2))
    assert np.array_equal(one, distortion.apply(x, seed=np.random.default_rng(11)))
    assert not np.array_equal(one, distortion.apply(x, seed=12))
    # each image's numbers are its own: the first images of a longer set are the same
    assert np.array_equal(one[:50], distortion.apply(x[:50], seed=11))


def test_a_fits_epochs_of_distorted_images_share_one_storage(images, monkeypatch):
    """Nothing allocated per epoch: each epoch's data set takes over the previous one's rows
    (the first two may allocate, the second with room to spare)."""
    x, y = images
    net = Network(16, seed=2, loss="softmax_cross_entropy", bias=True)
    made = []
    dataset = net._kernels.Dataset

    def recorded(*args, **kwargs):  # the epochs' data sets (the others take no counts)
        data = dataset(*args, **kwargs)
        if "counts" in kwargs:
            made.append((kwargs.get("reuse"), data))
        return data

    monkeypatch.setattr(net._kernels, "Dataset", recorded)
    net.fit(x, y, epochs=5, alpha=0.05, batch_size=10, augment=DISTORTIONS["elastic"])
    assert len(made) == 5 and made[0][0] is None
    assert all(reuse is previous for (reuse, _), (_, previous) in zip(made[1:], made))
    assert all(previous.taken for _, previous in made[2:-1]) and not made[-1][1].taken


def test_fit_trains_on_the_images_the_kernels_distort_and_evaluates_on_the_originals(images):
    """The oracle: the same epoch trained on the images distorted by hand, with the key the
    network draws from its stream."""
    x, y = images
    distortion = DISTORTIONS["elastic"]
    net = Network(16, seed=2, loss="softmax_cross_entropy", bias=True)
    history = net.fit(x, y, epochs=1, alpha=0.05, batch_size=10, augment=distortion,
                      test_data=(x, y))
    by_hand = Network(16, seed=2, loss="softmax_cross_entropy", bias=True)
    key = int(by_hand._bit_generator.random_raw())
    distorted = np.empty((len(x), 784))
    distortion.distort_into(x.reshape(len(x), -1), distorted, key, 28, 28,
                            values=PIXEL_VALUES[np.dtype(np.float64)])
    by_hand.fit(distorted, y, epochs=1, alpha=0.05, batch_size=10)
    assert np.array_equal(net.weights_0_1, by_hand.weights_0_1)
    assert history.history["test_accuracy"] == [by_hand.score(x, y)]  # never distorted
    assert history.params["augment"] == "Elastic(alpha=34, sigma=4)"


@pytest.mark.parametrize("batch_size", [1, 20])
def test_training_with_distortions_is_the_same_at_any_thread_count(images, batch_size):
    x, y = images
    nets = [Network(12, seed=4, dropout=0.3, n_threads=n) for n in (1, 2)]
    for net in nets:
        net.fit(x, y, epochs=2, alpha=0.01, batch_size=batch_size, shuffle=True,
                augment=DISTORTIONS["both"])
    assert np.array_equal(nets[0].weights_0_1, nets[1].weights_0_1)
    again = Network(12, seed=4, dropout=0.3)
    again.fit(x, y, epochs=2, alpha=0.01, batch_size=batch_size, shuffle=True,
              augment=DISTORTIONS["both"])
    assert np.array_equal(again.weights_0_1, nets[0].weights_0_1)


@pytest.mark.parametrize("make, message", [
    (lambda: Elastic(sigma=-1), "sigma must be > 0, got -1"),
    (lambda: Elastic(alpha=float("inf")), "alpha must be finite, got inf"),
    (lambda: Affine(rotation=200), "rotation must be <= 180, got 200"),
    (lambda: Affine(scale=-0.1), "scale must be >= 0, got -0.1"),
    (lambda: Affine() + Affine(), "a distortion holds one Affine part"),
])
def test_bad_distortions_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_what_is_not_images_is_refused(images):
    x, y = images
    flat = x.reshape(len(x), -1)[:, :780] / 255.0  # 780 pixels: not a square
    with pytest.raises(ValueError, match=r"^augment needs images: the rows of x \(780 "
                                         r"pixels\) are not square images"):
        Network(4, seed=0, n_inputs=780).fit(flat, y, augment=Elastic())
    with pytest.raises(ValueError, match=r"the rows of images \(780 pixels\) are not square"):
        Elastic().apply(flat)
    with pytest.raises(ValueError, match=r"shape=\(20, 20\) holds 400 pixels"):
        Elastic().apply(flat, shape=(20, 20))
    with pytest.raises(TypeError, match="augment must be a grokreg.Affine"):
        Network(4, seed=0).fit(x, y, augment="elastic")
    with pytest.raises(ValueError, match="augment is not in book mode"):
        Network(4, seed=0, book=True).fit(x, y, augment=Elastic())
    with pytest.raises(TypeError, match="images must be uint8 pixels or floating point"):
        Elastic().apply(x.astype(np.int32))


def test_reproduce_distortions_quick_prints_the_papers_rows(mnist_dir, tmp_path):
    """--quick, as the command line runs it; the "none" row is a Network trained by hand
    with the row's settings, its best validation epoch restored."""
    pytest.importorskip("matplotlib")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "grokreg", "reproduce", "distortions", "--quick",
         "--data-dir", str(mnist_dir), "--plot", str(tmp_path)],
        capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[4:]}
    assert list(rows) == ["none", "affine", "elastic"]
    assert [rows[name].split()[2] for name in rows] == ["1.6%", "1.1%", "0.7%"]
    (x, y), (x_test, y_test) = grokreg.load_mnist(mnist_dir)
    net = Network(100, dropout=0.5, seed=1, dtype="float32", loss="softmax_cross_entropy",
                  bias=True)
    net.fit(x[:5000], y[:5000], epochs=2, batch_size=100, momentum=0.9, shuffle=True,
            alpha=grokreg.MultiStep(0.05, [1, 1], factor=1 / 3),
            validation_data=(x[5000:6000], y[5000:6000]),
            early_stopping=grokreg.EarlyStopping("val_accuracy", patience=2))
    error = 100 * (1 - net.score(x_test[:2000], y_test[:2000]))
    assert rows["none"].split()[1] == f"{error:.2f}%"
    figure = tmp_path / "distortions.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000


def test_reproduce_distortions_needs_full_mnist():
    env = {k: v for k, v in os.environ.items() if k != "GROKREG_DATA"}
    result = subprocess.run([sys.executable, "-P", "-m", "grokreg", "reproduce", "distortions",
                             "--quick"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "grokreg reproduce: error: argument --data-dir: reproduce distortions trains on full "
        "MNIST (60,000 training images), which grokreg does not embed: give its folder "
        "(--data-dir DIR, or $GROKREG_DATA); `grokreg data download` fetches the files")
