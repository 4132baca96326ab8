"""Handwritten digits for the experiments chapter, from local files only (nothing is downloaded).

Two sources, one return type (:class:`Digits`):

* ``"sklearn"`` (the default): scikit-learn's ``load_digits``, 1,797 grey 8x8 images that ship
  with the package. A fixed, stratified split (:data:`SKLEARN_TEST_SIZE` of the images,
  ``random_state=`` :data:`SKLEARN_SPLIT_SEED`) gives 1,347 training and 450 test images. Pixel
  values 0..16 are scaled to [0, 1].
* full MNIST (60,000 + 10,000 grey 28x28 images) from the four standard idx files in a local
  folder, gzipped or not (:data:`MNIST_FILES`). Pixel values 0..255 are scaled to [0, 1].

:func:`load_digits_data` picks the source: an explicit ``mnist_dir`` argument, else the
environment variable ``MNIST_DIR`` (:data:`MNIST_ENV`), else scikit-learn. An empty or blank
``MNIST_DIR`` counts as unset; an empty ``mnist_dir`` argument (or folder passed to
:func:`load_mnist`) raises ``ValueError`` rather than reading the current directory. A named
folder that lacks a file raises :class:`FileNotFoundError` naming the missing file and where to
put it.

Images are flattened: ``x_*`` has shape (N, H*W), dtype float32; labels ``y_*`` are int64 in 0..9.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Digits", "load_digits_data", "load_sklearn_digits", "load_mnist", "read_idx",
           "find_mnist_file", "MNIST_ENV", "MNIST_FILES", "SKLEARN_TEST_SIZE",
           "SKLEARN_SPLIT_SEED"]

MNIST_ENV = "MNIST_DIR"
SKLEARN_TEST_SIZE = 0.25
SKLEARN_SPLIT_SEED = 0

#: role -> the standard file name (LeCun's site and its mirrors). ``.gz`` is also accepted, and
#: the variant with a dot before ``idx`` (``train-images.idx3-ubyte``) some archives use.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# idx type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class Digits:
    """A train/test split of flattened digit images.

    ``x_train`` (N, H*W) float32 in [0, 1], ``y_train`` (N,) int64 in 0..9; likewise the test
    arrays. ``image_shape`` is (H, W); ``name`` says where the data came from; ``source`` is
    ``"sklearn"`` or ``"mnist"`` for the two loaders and ``"custom"`` for arrays put together
    by hand.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    name: str
    source: str = "custom"

    @property
    def n_features(self) -> int:
        """Number of inputs per image, H*W."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (10 for both sources)."""
        return 10

    @property
    def label(self) -> str:
        """A short description for running text, e.g. ``8 × 8 scikit-learn digits``."""
        h, w = self.image_shape
        kind = {"sklearn": "scikit-learn digits", "mnist": "MNIST digits"}.get(self.source,
                                                                             self.name)
        return f"{h} × {w} {kind}"


def read_idx(path) -> np.ndarray:
    """Read one idx file (gzipped when the name ends in ``.gz``) into a native-endian array.

    The format: two zero bytes, a type code (0x08 unsigned byte ... 0x0E float64), the number of
    dimensions d, then d big-endian uint32 sizes and the data, big-endian, row-major.
    Raises ``ValueError`` naming the file when the header or the length is wrong.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file: its first bytes {raw[:4]!r} are not "
                         "00 00 <type code 08/09/0B/0C/0D/0E> <number of dimensions>")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: idx header promises {ndim} dimensions but the file ends "
                         f"after {len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: idx header gives shape {shape} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header} bytes after the header")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _mnist_folder(directory) -> Path:
    """``directory`` as a Path; an empty or blank name is refused (Path("") is the current dir)."""
    name = os.fspath(directory)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name.strip():
        raise ValueError(
            f"the MNIST folder name is empty ({name!r}); it would mean the current directory. "
            f"Name the folder that holds the four idx files ({', '.join(MNIST_FILES.values())}, "
            "gzipped or not), or pass mnist_dir=None to use the "
            f"{MNIST_ENV} environment variable or, when that is unset, scikit-learn's digits.")
    return Path(name)


def find_mnist_file(directory, role: str) -> Path:
    """The path of one MNIST file (``role`` a key of :data:`MNIST_FILES`) in ``directory``.

    Accepts ``name``, ``name.gz`` and the ``train-images.idx3-ubyte`` spelling. Raises
    ``FileNotFoundError`` naming the expected file and the folder when none is there.
    """
    if role not in MNIST_FILES:
        raise ValueError(f"unknown MNIST file role {role!r}; expected one of {list(MNIST_FILES)}")
    directory = _mnist_folder(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"MNIST folder {directory} does not exist. Put the four idx files "
            f"({', '.join(MNIST_FILES.values())}, gzipped or not) in one folder and name it "
            f"with mnist_dir=... or the {MNIST_ENV} environment variable; unset {MNIST_ENV} to "
            "use scikit-learn's bundled 8x8 digits instead.")
    name = MNIST_FILES[role]
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(
        f"MNIST file {name} (or {name}.gz) is missing from {directory}. Put the four standard "
        f"MNIST idx files there ({', '.join(MNIST_FILES.values())}; gzipped or not), or unset "
        f"{MNIST_ENV} to use scikit-learn's bundled 8x8 digits. Nothing is downloaded.")


def load_mnist(directory) -> Digits:
    """Full MNIST from the four idx files in ``directory`` (see :func:`find_mnist_file`).

    An empty folder name raises ``ValueError`` (it is not taken as the current directory).
    """
    directory = _mnist_folder(directory)
    arrays = {role: read_idx(find_mnist_file(directory, role)) for role in MNIST_FILES}
    split = {}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {part} files in {directory} disagree: images of shape {images.shape} "
                f"(expected (N, H, W)) and labels of shape {labels.shape} (expected (N,))")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"MNIST {part} labels in {directory} fall outside 0..9")
        split[f"x_{part}"] = (images.reshape(len(images), -1).astype(np.float32) / 255.0)
        split[f"y_{part}"] = labels.astype(np.int64)
    shape = arrays["train_images"].shape[1:]
    if arrays["test_images"].shape[1:] != shape:
        raise ValueError(f"MNIST train images are {shape} but test images are "
                         f"{arrays['test_images'].shape[1:]}")
    return Digits(image_shape=(int(shape[0]), int(shape[1])), name=f"MNIST ({directory})",
                  source="mnist", **split)


def load_sklearn_digits(test_size: float = SKLEARN_TEST_SIZE,
                        seed: int = SKLEARN_SPLIT_SEED) -> Digits:
    """scikit-learn's 1,797 bundled 8x8 digits, split once, stratified, with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return Digits(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                  image_shape=(8, 8), name="scikit-learn digits (8x8)", source="sklearn")


def load_digits_data(mnist_dir=None) -> Digits:
    """The chapter's data: MNIST from ``mnist_dir`` or ``$MNIST_DIR`` if given, else sklearn's.

    ``mnist_dir=None`` (the default) consults ``$MNIST_DIR``; an empty or blank ``MNIST_DIR``
    counts as unset, the shell's convention. An explicit empty ``mnist_dir`` is a mistake, not a
    request for the default, and raises ``ValueError`` (see :func:`load_mnist`).
    """
    if mnist_dir is None:
        env = os.environ.get(MNIST_ENV, "")
        mnist_dir = env if env.strip() else None
    if mnist_dir is not None:
        return load_mnist(mnist_dir)
    return load_sklearn_digits()
