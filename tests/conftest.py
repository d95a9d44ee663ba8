"""Strict test settings: rank promotion raises; a ``key`` fixture; Keras on JAX."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)
