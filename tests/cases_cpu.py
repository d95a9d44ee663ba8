"""Registry cases that run the CPU formulations of layers (see ``jaxnets.cpu``): on the CPU
backend these shapes take the tiled max-pool path."""

from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase("maxpool2d_tiled", lambda: jn.MaxPool(2), (2, 6, 6, 3)),
    LayerCase("maxpool2d_tiled_remainder", lambda: jn.MaxPool((2, 3)), (2, 7, 8, 3)),
    LayerCase("maxpool1d_tiled", lambda: jn.MaxPool((3,)), (2, 9, 2)),
]
