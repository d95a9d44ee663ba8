"""Keras weights into jaxnets: keras.applications' files into the zoo models.

- :func:`load_weights` maps a Keras 2 ``.h5`` or Keras 3 ``.weights.h5`` file of
  ResNet-50/101/152, VGG-16/19, Inception v3 or Xception onto the jaxnets zoo model.
- :func:`preprocess_input` scales images as each Keras application expects.
- :func:`decode_predictions` turns ImageNet scores into ``(wnid, label, score)`` lists.
- :func:`load_model` builds a jaxnets network from a whole ``.keras`` archive.
- :mod:`jaxnets.interop.keras.h5` reads any Keras HDF5 weight file.
"""

from jaxnets.interop.keras.applications import load_weights
from jaxnets.interop.keras.model import load_model
from jaxnets.interop.keras.preprocess import decode_predictions, preprocess_input

__all__ = ["decode_predictions", "load_model", "load_weights", "preprocess_input"]
