"""Registry cases for the Augment layer (random in training, identity in inference)."""

from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase("augment_crop", lambda: jn.data.Augment(crop_padding=1), (3, 5, 6, 2)),
    LayerCase(
        "augment_all",
        lambda: jn.data.Augment(
            (2, 1), pad_mode="reflect", flip=True, brightness=0.1, contrast=0.2
        ),
        (3, 5, 6, 2),
        grad_atol=1e-3,
    ),
]
