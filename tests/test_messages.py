"""Messages in the user's words: the command line's refusals name the flag, the Python API's
name the argument and what was passed; files are created as the user's umask allows."""
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

import grokreg
from grokreg import Network

CLI = [sys.executable, "-P", "-m", "grokreg"]


@pytest.mark.parametrize("arguments, flag, expected", [
    (["reproduce", "overfit", "--alpha", "-1"], "--alpha", "must be a positive number, got -1"),
    (["reproduce", "overfit", "--alpha", "fast"], "--alpha", "expected a number, got 'fast'"),
    (["reproduce", "overfit", "--epochs", "0"], "--epochs",
     "must be >= 1, got 0 (0 would train nothing)"),
    (["reproduce", "early-stopping", "--n-train", "1500"], "--n-train",
     "must be at most 1000, got 1500: that is what the MNIST subset embedded in grokreg holds, "
     "less the 1000 images the early-stopping experiment keeps for validation; for more, use "
     "the full MNIST files: give their directory with --data-dir DIR or $GROKREG_DATA "
     "(`grokreg data download` fetches them)"),
    (["reproduce", "overfit", "--data-dir", "/nonexistent"], "--data-dir",
     "'/nonexistent' is not a directory: it should hold train-images-idx3-ubyte, "
     "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or "
     ".gz); `grokreg data download --data-dir DIR` fetches MNIST's"),
    (["reproduce", "overfit", "--plot", "figures"], "--plot",
     "goes with 'reproduce all', 'regularizers' or 'distortions' (one figure per experiment)"),
    (["reproduce", "regularizers", "--book"], "--book",
     "the book's programs have none of these regularizers: 'reproduce regularizers' runs in "
     "default mode"),
    (["reproduce", "all", "--book", "--epochs", "3"], "--book",
     "'reproduce all' runs the book's settings in both modes; drop --book and --epochs"),
    (["reproduce", "all", "--hidden", "8", "--alpha", "0.1"], "--hidden",
     "'reproduce all' runs the book's settings in both modes; drop --hidden and --alpha"),
    (["reproduce", "all", "--dtype", "float32"], "--dtype",
     "'reproduce all' runs the book's settings in both modes; drop --dtype"),
    (["reproduce", "overfit", "--book", "--dtype", "float32"], "--dtype",
     "must be float64 in book mode: the book computes in float64"),
    (["reproduce", "ensemble", "--networks", "1"], "--networks", "must be in 2..1000, got 1"),
])
def test_a_refusal_names_the_flag_after_a_one_line_usage(arguments, flag, expected):
    result = subprocess.run(CLI + arguments, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    usage, error = result.stderr.splitlines()
    operand = "EXPERIMENT" if arguments[0] == "reproduce" else "ACTION"
    assert usage == f"usage: grokreg {arguments[0]} {operand} [options]"
    assert error == f"grokreg {arguments[0]}: error: argument {flag}: {expected}"


def test_an_existing_file_as_the_plot_folder_is_refused_before_training(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    result = subprocess.run(CLI + ["reproduce", "all", "--plot", str(notes)], capture_output=True,
                            text=True, timeout=20)  # refused at once, not after the runs
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == (
        f"grokreg reproduce: error: argument --plot: {notes} exists and is not a folder: name "
        f"a folder for the figures (it is created if missing)")
    assert notes.read_text() == "mine"


def test_data_commands_without_a_directory_say_how_to_get_one(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), GROKREG_DATA="")
    for action in ("info", "verify"):
        result = subprocess.run(CLI + ["data", action], capture_output=True, text=True, env=env)
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            f"grokreg data: error: argument --data-dir: {tmp_path}/grokreg/mnist does not "
            f"exist: run `grokreg data download` first (it fills it), or give --data-dir DIR")


def test_a_directory_without_the_files_lists_them(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        grokreg.load_mnist(tmp_path)
    assert str(caught.value) == (
        f"data_dir {str(tmp_path)!r} has no train-images-idx3-ubyte (nor "
        f"train-images-idx3-ubyte.gz): it should hold train-images-idx3-ubyte, "
        f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw "
        f"or .gz); `grokreg data download --data-dir DIR` fetches MNIST's")


# -- the Python API ---------------------------------------------------------------------------

def test_a_list_of_ints_is_refused_as_a_list():
    net = Network(4, seed=0, n_inputs=3, n_outputs=2)
    with pytest.raises(TypeError) as caught:
        net.fit([[0, 10, 255], [3, 4, 5]], [0, 1])
    assert str(caught.value) == (
        "x must be uint8 pixels (0-255, scaled by 1/255) or floating point, got a list of ints "
        f"(numpy makes it {np.asarray([1]).dtype}): pass np.asarray(x, dtype=np.uint8) for "
        "pixels, or floats used as given")


def test_whole_number_float_labels_are_labels():
    x = np.random.default_rng(0).random((6, 3))
    a, b = (Network(4, seed=0, n_inputs=3, n_outputs=3) for _ in range(2))
    a.fit(x, np.array([0.0, 1.0, 2.0, 2.0, 1.0, 0.0]))
    b.fit(x, np.array([0, 1, 2, 2, 1, 0]))
    assert np.array_equal(a.weights_0_1, b.weights_0_1)
    with pytest.raises(TypeError, match="non-integer values"):
        a.fit(x, np.array([0.5, 1.0, 2.0, 2.0, 1.0, 0.0]))


@pytest.mark.warning_location
def test_unscaled_float_pixels_are_warned_about(mnist):
    (x_train, y_train), _ = mnist
    raw = x_train[:50].reshape(50, -1).astype(np.float64)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        Network(4, seed=0).fit(raw, y_train[:50])
    assert [(w.category, str(w.message)) for w in record] == [
        (UserWarning, "x holds whole numbers up to 255: raw pixels? Floating-point inputs are "
         "used as given (uint8 pixels are scaled by 1/255); pass uint8 images or x / 255, or "
         "the network will hardly learn"),
        (grokreg.CollapseWarning, "the training error blew up to 8.3e+05 in epoch 0 (a "
         "network that outputs nothing has 1): scale the inputs "
         "(sklearn.preprocessing.StandardScaler) or lower the learning rate (alpha=0.005)")]
    assert record[0].filename == __file__  # attributed to the caller, not to grokreg
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scaled floats and uint8 pixels: no warning
        Network(4, seed=0).fit(raw / 255, y_train[:50])
        Network(4, seed=0).fit(x_train[:50], y_train[:50])


def test_inputs_far_from_the_weights_scale_warn_before_training():
    """Raw tabular features (|x| in the hundreds): a RuntimeWarning before the first epoch,
    with the inputs' root mean square and reach; not when predicting, nor for scaled data."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (40, 3)) * [1.0, 300.0, 40.0] + [0.0, 500.0, 0.0]
    y = np.arange(40) % 2
    net = Network(4, seed=0, n_inputs=3, n_outputs=2)
    with pytest.warns(RuntimeWarning) as record:
        net.fit(x, y, epochs=0)
    rms, reach = np.sqrt(np.mean(x ** 2)), np.abs(x).max()
    assert [str(w.message) for w in record] == [
        f"x's values have a root mean square of {rms:.3g} (up to {reach:.4g}), far from the "
        f"scale the weights start for (-0.1 to 0.1, for inputs of about 1): the first steps "
        f"may kill every hidden unit or blow up. Scale the inputs "
        f"(sklearn.preprocessing.StandardScaler, or to [0, 1])"]
    scaled = (x - x.mean(axis=0)) / x.std(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.predict(x)
        Network(4, seed=0, n_inputs=3, n_outputs=2).fit(scaled * 20, y, epochs=0)


def test_a_network_whose_hidden_units_all_died_warns():
    """Every hidden unit inactive for every training example after the fit: it can no longer
    learn (a collapse that leaves every number finite)."""
    x = np.random.default_rng(1).random((30, 5))
    y = np.arange(30) % 3
    net = Network(6, seed=0, n_inputs=5, n_outputs=3)
    net.weights_0_1 = -np.abs(net.weights_0_1)  # positive inputs: every unit below zero
    message = ("no hidden unit was active for any training example in epoch 1: the network "
               "can no longer learn, and every prediction is the same: scale the inputs "
               "(sklearn.preprocessing.StandardScaler) or lower the learning rate "
               "(alpha=0.005)")
    with pytest.warns(grokreg.CollapseWarning) as record:
        history = net.fit(x, y, epochs=2)
    assert [str(w.message) for w in record] == [message] and history.collapse == message
    assert issubclass(grokreg.CollapseWarning, RuntimeWarning)
    assert len(np.unique(net.decision_function(x), axis=0)) == 1
    # one live unit is enough not to warn
    net = Network(6, seed=0, n_inputs=5, n_outputs=3)
    dead = -np.abs(net.weights_0_1)
    dead[:, 2] *= -1
    net.weights_0_1 = dead
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net.fit(x, y, epochs=2).collapse is None


def test_saving_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "missing" / "net.npz"
    with pytest.raises(FileNotFoundError) as caught:
        Network(4, seed=0).save(path)
    assert str(caught.value) == (f"cannot write {path}: the folder {path.parent} does not exist")


@pytest.mark.skipif(os.name != "posix", reason="file modes from a umask are POSIX-only")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_are_as_the_umask_allows(tmp_path, umask, mode):
    from grokreg.download import _install

    previous = os.umask(umask)
    try:
        saved = Network(4, seed=0).save(tmp_path / "net.npz")
        _install(str(tmp_path), "t10k-labels-idx1-ubyte", b"data")
        ensemble = grokreg.Ensemble(2, 4, seed=0).save(tmp_path / "ensemble.zip")
    finally:
        os.umask(previous)
    for path in (saved, tmp_path / "t10k-labels-idx1-ubyte.gz", ensemble):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
