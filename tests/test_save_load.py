"""Network.save and grokreg.load: exact round trips, and refusals of bad files."""
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from grokreg import Network


# -- save and load ----------------------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(), dict(book=True, dropout=0.5),
                                     dict(dtype="float32", loss="softmax_cross_entropy", bias=True,
                                          dropout=0.3)])
def test_save_load_round_trip_is_exact(splits, tmp_path, options):
    x, y, _, _, xt, yt = splits
    net = Network(12, seed=2, **options)
    net.fit(x, y, epochs=2)
    path = net.save(tmp_path / "net.npz")
    loaded = Network.load(path)
    assert repr(loaded) == repr(net)
    for name in ("weights_0_1", "bias_1", "weights_1_2", "bias_2"):
        assert getattr(loaded, name).dtype == getattr(net, name).dtype
        assert np.array_equal(getattr(loaded, name), getattr(net, name))
    assert np.array_equal(loaded.decision_function(xt), net.decision_function(xt))
    # the random stream is saved too: both go on training identically
    net.fit(x, y, epochs=1)
    loaded.fit(x, y, epochs=1)
    assert np.array_equal(loaded.weights_0_1, net.weights_0_1)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left behind


def write_npz(path, **members):
    with open(path, "wb") as f:
        np.savez(f, **members)
    return path


@pytest.fixture
def saved(tmp_path):
    """A saved network's members, to tamper with."""
    path = Network(6, seed=0, n_inputs=10, n_outputs=3).save(tmp_path / "good.npz")
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.parametrize("tamper, message", [
    (lambda m: m.update(weights_0_1=np.zeros((10, 7))), "shape"),
    (lambda m: m.update(weights_0_1=m["weights_0_1"].astype(np.float32)), "dtype"),
    (lambda m: m.update(bias_2=np.full(3, np.nan)), "NaN"),
    (lambda m: m.pop("bias_1"), "missing"),
    (lambda m: m.update(extra=np.zeros(2)), "unexpected"),
    (lambda m: m.update(format_version=np.array(3)), "format version 3; this grokreg reads versions 1, 2"),
    (lambda m: m.update(format=np.array("something else")), "not a grokreg network"),
    (lambda m: m.update(config=np.array("{not json")), "damaged"),
    (lambda m: m.update(config=np.array(json.dumps({"hidden": 6}))), "config"),
    (lambda m: m.update(config=np.array(str(m["config"]).replace('"hidden": 6', '"hidden": -6'))),
     "hidden"),
    (lambda m: m.update(rng_state=np.array('{"bit_generator": "Evil"}')), "random stream"),
    (lambda m: m.update(weights_1_2=np.array([{"a": 1}], dtype=object)), "objects"),
])
def test_load_refuses_tampered_files(saved, tmp_path, tamper, message):
    tamper(saved)
    path = write_npz(tmp_path / "bad.npz", **saved)
    with pytest.raises(ValueError, match=message):
        Network.load(path)


def test_load_refuses_truncated_and_foreign_files(tmp_path):
    path = Network(6, seed=0).save(tmp_path / "net.npz")
    with open(path, "rb") as f:
        content = f.read()
    for size in (10, len(content) // 2, len(content) - 30):
        (tmp_path / "cut.npz").write_bytes(content[:size])
        with pytest.raises(ValueError):
            Network.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a grokreg network"):
        Network.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.npz")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_load_bounds_memory_of_a_lying_member(saved, tmp_path):
    """A member whose data is far larger than its network is refused before it is read."""
    saved["bias_2"] = np.zeros(3)
    path = write_npz(tmp_path / "big.npz", **saved)
    with zipfile.ZipFile(path, "a") as archive:  # a second, huge bias_2.npy entry shadows it
        archive.writestr("bias_2.npy", b"\x93NUMPY" + b"\x00" * 50_000_000)
    with pytest.raises(ValueError):
        Network.load(path)


def huge_claims(saved, tmp_path):
    """Small files that claim networks of 10**9 hidden units: in the config alone, and in the
    config and a member's header (the data too short for it)."""
    config = json.loads(str(saved["config"]))
    lying_config = dict(saved, config=np.array(json.dumps(dict(config, hidden=10**9))))
    first = write_npz(tmp_path / "config.npz", **lying_config)
    second = write_npz(tmp_path / "header.npz", **lying_config)
    header = np.lib.format.header_data_from_array_1_0(saved["weights_0_1"])
    header["shape"] = (10, 10**9)
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    with zipfile.ZipFile(second, "a") as archive:
        archive.writestr("weights_0_1.npy", stream.getvalue() + saved["weights_0_1"].tobytes())
    return first, second


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_load_refuses_a_huge_claim_before_allocating(saved, tmp_path):
    """Under a 1 GiB address-space limit, a 1 KB file claiming 10**9 hidden units (80 GB of
    weights) is refused with a ValueError, not a MemoryError or a crash."""
    pytest.importorskip("resource")
    paths = huge_claims(saved, tmp_path)
    assert all(os.path.getsize(p) < 10_000 for p in paths)
    code = ("import resource, sys\n"
            "import grokreg\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        grokreg.Network.load(path)\n"
            "    except ValueError as exc:\n"
            "        print(exc)\n")
    result = subprocess.run([sys.executable, "-P", "-c", code, *map(str, paths)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("config describes a network of more than 268435456 parameters "
                             "(10-1000000000-3)")
    assert lines[1] == lines[0].replace("config.npz", "header.npz")


def test_load_refuses_a_config_its_members_contradict(saved, tmp_path):
    config = json.loads(str(saved["config"]))
    path = write_npz(tmp_path / "bad.npz", **dict(
        saved, config=np.array(json.dumps(dict(config, hidden=7)))))
    with pytest.raises(ValueError, match=r"member 'weights_0_1' has shape \(10, 6\), but the "
                                         r"config describes \(10, 7\)"):
        Network.load(path)


def test_save_is_atomic(splits, tmp_path, monkeypatch):
    net = Network(6, seed=0)
    path = net.save(tmp_path / "net.npz")
    before = open(path, "rb").read()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        Network(6, seed=1).save(path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["net.npz"]
