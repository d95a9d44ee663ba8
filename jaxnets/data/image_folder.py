"""Images in class folders (``root/<split>/<class>/*.png``), read one at a time.

The layout of torchvision's ``ImageFolder`` and Keras's ``image_dataset_from_directory``:
one folder a class, named by it; the classes are the sorted folder names and their ids
count from 0. :class:`ImageFolder` is a random-access source (``len`` and ``[i]``), so a
grain pipeline (:class:`jaxnets.data.Pipeline`) can shuffle, shard and decode it in worker
processes; Pillow decodes the files.

Example:
    >>> import os, tempfile, numpy as np, jaxnets as jn
    >>> root = tempfile.mkdtemp()
    >>> data = jn.data.ArrayDataset(np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 0, 1]))
    >>> jn.data.write_image_folder(os.path.join(root, "train"), data, classes=["a", "b"])
    >>> images = jn.data.ImageFolder(os.path.join(root, "train"), size=(8, 8), channels=1)
    >>> len(images), images.classes, images[2][0].shape, int(images[2][1])
    (4, ['a', 'b'], (8, 8, 1), 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxnets.core.arguments import choice, count, received

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class ImageFolder:
    """The images under ``root``, one sub-folder a class, as ``(image, label)`` pairs.

    ``image`` is uint8 ``(height, width, channels)``: converted to grey or RGB, resized
    so its shorter side is the target's and centre-cropped (``resize="crop"``), or
    stretched to the size (``"stretch"``). ``label`` is the int32 class id.

    Args:
      root: the folder of class folders.
      size: ``(height, width)`` of every image.
      channels: 1 (grey) or 3 (RGB).
      resize: ``"crop"`` or ``"stretch"``.

    Raises:
      FileNotFoundError: ``root`` is not a folder.
      ValueError: no class folder or no image in it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: Sequence[int],
        *,
        channels: int = 3,
        resize: str = "crop",
    ) -> None:
        where = "ImageFolder"
        self.root = os.fspath(root)
        if not isinstance(size, Sequence) or len(size) != 2:
            raise TypeError(f"{where}: size must be (height, width), got {received(size)}")
        self.size = (count(where, "size[0]", size[0]), count(where, "size[1]", size[1]))
        if channels not in (1, 3):
            raise ValueError(f"{where}: channels must be 1 or 3, got {received(channels)}")
        self.channels = channels
        self.resize = choice(where, "resize", resize, ("crop", "stretch"))
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"{where}: {self.root} is not a folder")
        self.classes = sorted(
            d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d))
        )
        if not self.classes:
            raise ValueError(
                f"{where}: {self.root} has no class folders; the layout is root/<class>/<image>"
            )
        self.files: list[str] = []
        labels: list[int] = []
        for label, name in enumerate(self.classes):
            folder = os.path.join(self.root, name)
            found = sorted(f for f in os.listdir(folder) if f.lower().endswith(EXTENSIONS))
            self.files += [os.path.join(folder, f) for f in found]
            labels += [label] * len(found)
        if not self.files:
            raise ValueError(
                f"{where}: no images ({', '.join(EXTENSIONS)}) in the class folders of {self.root}"
            )
        self.labels = np.asarray(labels, np.int32)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int32]:
        return self.load(self.files[index]), self.labels[index]

    def load(self, path: str) -> np.ndarray:
        """One image file, decoded, converted and resized.

        Args:
          path: the file.

        Returns:
          uint8 ``(height, width, channels)``.
        """
        return decode_image(path, self.size, channels=self.channels, resize=self.resize)


def decode_image(
    path: str | os.PathLike, size: Sequence[int], *, channels: int = 3, resize: str = "crop"
) -> np.ndarray:
    """Decode an image file with Pillow, convert it and bring it to ``size``.

    Args:
      path: a PNG, JPEG, BMP, GIF or WebP file.
      size: ``(height, width)``.
      channels: 1 (grey) or 3 (RGB).
      resize: ``"crop"`` (shorter side to the size, centre crop) or ``"stretch"``.

    Returns:
      uint8 ``(height, width, channels)``.

    Raises:
      ValueError: the file is not an image Pillow can read (the path named).
    """
    from PIL import Image, UnidentifiedImageError

    height, width = size
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if channels == 1 else "RGB")
            if resize == "crop" and image.size != (width, height):
                scale = max(width / image.width, height / image.height)
                wide, tall = (
                    max(width, round(image.width * scale)),
                    max(height, round(image.height * scale)),
                )
                image = image.resize((wide, tall), Image.Resampling.BILINEAR)
                left, top = (wide - width) // 2, (tall - height) // 2
                image = image.crop((left, top, left + width, top + height))
            elif image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"decode_image: cannot read {os.fspath(path)} as an image: {e}") from None
    return pixels.reshape(height, width, channels)


def write_image_folder(
    root: str | os.PathLike, data: Any, *, classes: Sequence[str] | None = None
) -> None:
    """Write an in-memory image data set as PNG files in the class-folder layout.

    Images in ``[0, 1]`` (floats) or uint8 are written as 8-bit grey or RGB; file names
    are the examples' indices.

    Args:
      root: the folder to create (it must not hold class folders yet).
      data: an :class:`~jaxnets.data.ArrayDataset` of images ``(N, H, W, 1 or 3)`` and
        class ids.
      classes: the folder names by class id (None: ``"0"``, ``"1"``, ...).

    Raises:
      ValueError: images that are not ``(N, H, W, 1 or 3)``, or a non-empty ``root``.
    """
    from PIL import Image

    x, y = np.asarray(data.inputs), np.asarray(data.labels)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"write_image_folder: images must be (N, H, W, 1 or 3), got shape {x.shape}"
        )
    root = os.fspath(root)
    if os.path.isdir(root) and os.listdir(root):
        raise ValueError(f"write_image_folder: {root} is not empty; give a new folder")
    n_classes = int(y.max()) + 1
    names = [str(i) for i in range(n_classes)] if classes is None else list(classes)
    pixels = x if x.dtype == np.uint8 else np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    digits = len(str(len(x)))
    for i, (image, label) in enumerate(zip(pixels, y, strict=True)):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        picture.save(os.path.join(root, names[int(label)], f"{i:0{digits}d}.png"))
