"""Tests for solutions/digits.py: the bundled digits split and the local MNIST idx reader."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from solutions import digits
from solutions.digits import (
    MNIST_ENV,
    MNIST_FILES,
    find_mnist_file,
    load_digits_data,
    load_mnist,
    load_sklearn_digits,
    read_idx,
)

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
          np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def write_idx(path, array, gz=False):
    """Write ``array`` in the idx format (big-endian), gzipped when ``gz``."""
    array = np.asarray(array)
    header = bytes([0, 0, _CODES[array.dtype], array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(folder, n_train=5, n_test=3, side=4, gz=False, seed=0):
    """A tiny fake MNIST folder; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for role, arr in arrays.items():
        write_idx(folder / MNIST_FILES[role], arr, gz=gz)
    return arrays


@pytest.fixture(scope="module")
def sk():
    return load_sklearn_digits()


def test_sklearn_split_shapes_and_ranges(sk):
    """The bundled digits split into 1,347 training and 450 test images of 64 pixels in [0, 1]."""
    assert sk.x_train.shape == (1347, 64) and sk.x_test.shape == (450, 64)
    assert sk.y_train.shape == (1347,) and sk.y_test.shape == (450,)
    assert sk.x_train.dtype == np.float32 and sk.y_train.dtype == np.int64
    assert sk.x_train.min() == 0.0 and sk.x_train.max() == 1.0
    assert set(np.unique(sk.y_train)) == set(range(10)) == set(np.unique(sk.y_test))
    assert sk.image_shape == (8, 8) and sk.n_features == 64 and sk.n_classes == 10


def test_sklearn_split_is_fixed(sk):
    """Loading twice gives exactly the same split."""
    again = load_sklearn_digits()
    np.testing.assert_array_equal(sk.x_train, again.x_train)
    np.testing.assert_array_equal(sk.y_test, again.y_test)


def test_default_source_is_sklearn_when_env_unset_or_empty(monkeypatch):
    """Without MNIST_DIR (or with it empty or blank) the chapter uses scikit-learn's digits."""
    monkeypatch.delenv(MNIST_ENV, raising=False)
    assert load_digits_data().source == "sklearn"
    for blank in ("", "  "):
        monkeypatch.setenv(MNIST_ENV, blank)
        d = load_digits_data()
        assert d.source == "sklearn" and d.image_shape == (8, 8)
        assert d.label == "8 × 8 scikit-learn digits"


@pytest.mark.parametrize("empty", ["", " ", b""])
def test_empty_mnist_dir_argument_is_refused(tmp_path, monkeypatch, empty):
    """An explicit empty folder name raises ValueError; it never reads the current directory.

    The current directory here holds a complete fake MNIST set, which Path("") would find.
    """
    write_mnist(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MNIST_ENV, raising=False)
    for call in (lambda: load_digits_data(mnist_dir=empty), lambda: load_mnist(empty),
                 lambda: find_mnist_file(empty, "train_images")):
        with pytest.raises(ValueError, match="folder name is empty.*mnist_dir=None"):
            call()
    # with MNIST_DIR set, an empty argument is still an error, not a silent fallback
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="folder name is empty"):
        load_digits_data(mnist_dir=empty)
    assert load_digits_data().source == "mnist"


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_ubyte(tmp_path, gz):
    """read_idx returns the array written, plain or gzipped."""
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3-ubyte", arr, gz=gz)
    out = read_idx(path)
    np.testing.assert_array_equal(out, arr)
    assert out.shape == (2, 3, 4)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_other_types_big_endian(tmp_path, dtype):
    """Multi-byte idx types are read big-endian into native-endian arrays."""
    arr = (np.arange(-3, 3).reshape(2, 3) * 7).astype(dtype)
    out = read_idx(write_idx(tmp_path / "b", arr))
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative


def test_read_idx_rejects_bad_magic(tmp_path):
    """A file that does not start with 00 00 <type> <ndim> is refused, naming the file."""
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x1f\x8bhello")
    with pytest.raises(ValueError, match="not-idx is not an idx file"):
        read_idx(path)


def test_read_idx_rejects_truncated_data(tmp_path):
    """A file shorter than its header promises is refused with both sizes."""
    path = write_idx(tmp_path / "short", np.zeros((3, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*10 bytes"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_folder(tmp_path, gz):
    """load_mnist flattens images, scales 0..255 to [0, 1] and keeps labels as int64."""
    arrays = write_mnist(tmp_path, gz=gz)
    d = load_mnist(tmp_path)
    assert d.x_train.shape == (5, 16) and d.x_test.shape == (3, 16)
    assert d.image_shape == (4, 4) and d.x_train.dtype == np.float32
    np.testing.assert_allclose(d.x_train, arrays["train_images"].reshape(5, 16) / 255.0)
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])
    assert d.y_test.dtype == np.int64
    assert d.source == "mnist" and d.label == "4 × 4 MNIST digits"


def test_env_var_selects_mnist(tmp_path, monkeypatch):
    """MNIST_DIR naming a folder with the four files makes load_digits_data read them."""
    write_mnist(tmp_path)
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    d = load_digits_data()
    assert d.x_train.shape == (5, 16) and "MNIST" in d.name


def write_fake_mnist(folder, n_train=240, n_test=80, gz=False, seed=0):
    """Four idx files of 28x28 uint8 images in MNIST's layout whose class is learnable.

    Image of class k: noise plus a bright bar across rows 2k+4 .. 2k+5, so a network that
    reads the pixels can tell the classes apart.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4:2 * k + 6, 3:25] = 255
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    for role, arr in arrays.items():
        write_idx(folder / MNIST_FILES[role], arr, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder_end_to_end_through_the_experiments(tmp_path, monkeypatch, gz):
    """MNIST_DIR -> load_digits_data -> the chapter's experiments, on fake 28x28 idx files.

    The loader, the 784-input networks, the probes and the batch-size experiment all run
    through MNIST-shaped data read from idx files, and the BN network learns the fake classes.
    """
    from solutions import experiments as ex

    arrays = write_fake_mnist(tmp_path, gz=gz)
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    d = load_digits_data()
    assert d.source == "mnist" and d.label == "28 × 28 MNIST digits"
    assert d.x_train.shape == (240, 784) and d.x_test.shape == (80, 784)
    np.testing.assert_array_equal(d.y_train, arrays["train_labels"])
    ex.clear_cache()
    e1 = ex.experiment_bn_vs_plain(d, (0, 1), steps=40, eval_every=20)
    relu = e1["relu"]
    assert relu["bn"]["test_acc"].shape == (2, 3)
    assert relu["bn"]["models"][0][0].weight.shape == (100, 784)
    assert (relu["bn"]["test_acc_final"] > 0.5).all()   # far above chance (0.1)
    e2 = ex.experiment_sigmoid_input(d, (0, 1), steps=40, eval_every=20)
    assert e2["bn"].shape == (2, 3, 3) and np.isfinite(e2["drift"]["bn"]).all()
    e7 = ex.experiment_batch_size(d, (0,), sizes=(2, 4), steps=6, eval_every=3,
                                  probe_batches=2)
    assert e7[2]["frac_unit"] > 0.9 and e7[4]["abs_xhat_max"] <= 3 ** 0.5 + 1e-4


def test_dotted_file_names_are_accepted(tmp_path):
    """The train-images.idx3-ubyte spelling some archives use is found too."""
    arrays = write_mnist(tmp_path)
    plain = tmp_path / MNIST_FILES["train_images"]
    plain.rename(tmp_path / "train-images.idx3-ubyte")
    np.testing.assert_array_equal(load_mnist(tmp_path).x_train * 255,
                                  arrays["train_images"].reshape(5, 16))


def test_missing_file_error_names_file_and_folder(tmp_path, monkeypatch):
    """A folder lacking a file raises FileNotFoundError naming the file, the folder and the fix."""
    write_mnist(tmp_path)
    (tmp_path / MNIST_FILES["test_labels"]).unlink()
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        load_digits_data()
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte" in msg and str(tmp_path) in msg and MNIST_ENV in msg
    assert "Nothing is downloaded" in msg


def test_missing_folder_error(tmp_path):
    """A folder that does not exist is named, with where the files should go."""
    with pytest.raises(FileNotFoundError, match="does not exist.*train-images-idx3-ubyte"):
        load_mnist(tmp_path / "nowhere")


def test_unknown_role_is_refused(tmp_path):
    """find_mnist_file refuses a role that is not one of the four files."""
    with pytest.raises(ValueError, match="unknown MNIST file role"):
        find_mnist_file(tmp_path, "validation_images")


def test_mismatched_counts_are_refused(tmp_path):
    """Images and labels of different lengths raise a ValueError naming both shapes."""
    write_mnist(tmp_path)
    write_idx(tmp_path / MNIST_FILES["train_labels"], np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train files .* \(5, 4, 4\).*\(4,\)"):
        load_mnist(tmp_path)


def test_labels_outside_range_are_refused(tmp_path):
    """Labels above 9 are refused."""
    write_mnist(tmp_path)
    write_idx(tmp_path / MNIST_FILES["test_labels"], np.array([1, 2, 12], dtype=np.uint8))
    with pytest.raises(ValueError, match="outside 0..9"):
        load_mnist(tmp_path)


def test_module_exports_exist():
    """Every name in __all__ is defined."""
    for name in digits.__all__:
        assert hasattr(digits, name)
