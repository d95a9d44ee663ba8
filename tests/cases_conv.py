"""Registry cases for the convolution, pooling, padding and group-normalisation layers."""

from layer_cases import LayerCase

import jaxnets as jn

IMG = (2, 6, 6, 3)

CASES = [
    LayerCase("conv2d_same", lambda: jn.Conv(4, 3), IMG),
    LayerCase("conv2d_valid_stride", lambda: jn.Conv(4, (3, 2), strides=2, padding="VALID"), IMG),
    LayerCase(
        "conv2d_explicit_dilated",
        lambda: jn.Conv(5, 3, padding=((1, 2), (0, 1)), dilation=(2, 1), activation="tanh"),
        IMG,
    ),
    LayerCase("conv2d_groups", lambda: jn.Conv(6, 3, groups=3, use_bias=False), (2, 5, 5, 6)),
    LayerCase(
        "conv1d_causal_strided",
        lambda: jn.Conv(3, (3,), strides=2, padding="CAUSAL", dilation=2),
        (2, 9, 2),
    ),
    LayerCase("conv3d", lambda: jn.Conv(3, (2, 3, 2), strides=(1, 2, 1)), (2, 3, 5, 4, 2)),
    LayerCase("conv_transpose2d", lambda: jn.ConvTranspose(4, 3, strides=2), (2, 4, 4, 3)),
    LayerCase(
        "conv_transpose1d_valid",
        lambda: jn.ConvTranspose(3, (4,), strides=3, padding="VALID"),
        (2, 5, 2),
    ),
    LayerCase("depthwise_conv", lambda: jn.DepthwiseConv(3, depth_multiplier=2, strides=2), IMG),
    LayerCase(
        "separable_conv_dm2",
        lambda: jn.SeparableConv(4, 3, depth_multiplier=2, dilation=2),
        IMG,
    ),
    LayerCase("maxpool2d_same_overlap", lambda: jn.MaxPool(3, strides=2, padding="SAME"), IMG),
    LayerCase("maxpool1d", lambda: jn.MaxPool((3,), strides=1), (2, 7, 3)),
    LayerCase("avgpool2d_same", lambda: jn.AvgPool(3, strides=2, padding="SAME"), (2, 5, 5, 3)),
    LayerCase(
        "avgpool2d_include_pad",
        lambda: jn.AvgPool((2, 3), strides=1, padding=1, count_include_pad=True),
        IMG,
    ),
    LayerCase("avgpool3d", lambda: jn.AvgPool((2, 2, 2)), (2, 4, 4, 4, 2)),
    LayerCase("global_avg_pool", lambda: jn.GlobalAvgPool(), IMG),
    LayerCase("global_max_pool_keepdims", lambda: jn.GlobalMaxPool(keepdims=True), IMG),
    LayerCase("zero_padding", lambda: jn.ZeroPadding(((1, 0), (2, 1))), IMG),
    LayerCase("groupnorm", lambda: jn.GroupNorm(num_groups=2), (2, 4, 4, 6), grad_atol=1e-3),
]
