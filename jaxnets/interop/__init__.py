"""Weights in and out of jaxnets at the edges: Keras and PyTorch files into the zoo.

``jaxnets.interop.keras`` reads Keras ``.h5`` / ``.weights.h5`` files (h5py) and
``jaxnets.interop.torch`` PyTorch state dicts (``.pth`` through torch, ``.safetensors``
through safetensors' NumPy API). Neither keras nor torch is imported by the core library;
these modules import their readers only when a file is read. Install the readers with
``pip install jaxnets[interop]``.
"""
