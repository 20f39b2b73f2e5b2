"""Builds the small Keras reference fixtures under test/fixtures/keras/<case>/.

Each case: model.h5 (Keras 3 legacy HDF5), model.keras (zip), optional tfjs/ (TF.js layers
model written by hand in the format tensorflowjs_converter produces), expected.json (seeded
inputs, batch 2, and Keras's own outputs, float32 base64 little-endian).

Deterministic: every case re-seeds Keras/NumPy. Never run by tests; outputs are committed.
  /work/.venv-keras/bin/python scripts/keras/make_fixtures.py [--cases a,b] [--out DIR]
"""
import argparse
import json
import os
import shutil
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (sets TF env vars before TF is imported)

import numpy as np  # noqa: E402

common.tf_threads(1)
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

import tfjs_writer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DEFAULT = os.path.join(ROOT, "test", "fixtures", "keras")

CASES = {}


def case(name, description, tfjs=None, inputs=None):
    """Register a builder. inputs: {input_name: (low, high)} ranges (default 0..1)."""

    def deco(fn):
        CASES[name] = dict(build=fn, description=description, tfjs=tfjs, ranges=inputs or {})
        return fn

    return deco


# ---------------------------------------------------------------- weight perturbation
def perturb(model, rng):
    """Non-trivial biases, BN stats, PReLU alphas, so folding/bias bugs show."""

    def walk(m):
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
                continue
            ws = layer.get_weights()
            if not ws:
                continue
            names = [v.path.split("/")[-1] for v in layer.weights]
            new = []
            for n, w in zip(names, ws):
                if isinstance(layer, L.BatchNormalization):
                    if n == "gamma":
                        w = rng.uniform(0.5, 1.5, w.shape)
                    elif n == "beta":
                        w = rng.normal(0, 0.3, w.shape)
                    elif n == "moving_mean":
                        w = rng.normal(0, 0.5, w.shape)
                    elif n == "moving_variance":
                        w = rng.uniform(0.2, 2.0, w.shape)
                elif isinstance(layer, L.LayerNormalization):
                    if n == "gamma":
                        w = rng.uniform(0.5, 1.5, w.shape)
                    elif n == "beta":
                        w = rng.normal(0, 0.3, w.shape)
                elif isinstance(layer, L.PReLU) and n == "alpha":
                    w = rng.uniform(0.05, 0.5, w.shape)
                elif n == "bias":
                    w = rng.normal(0, 0.2, w.shape)
                new.append(np.asarray(w, dtype=w.dtype if hasattr(w, "dtype") else "float32"))
            layer.set_weights(new)

    walk(model)


# ---------------------------------------------------------------- cases
def _lname(t):
    return t._keras_history[0].name


@case("conv2d", "Conv2D: valid/same on odd (9) and even (10) sizes, strides 2, even kernel, dilation, "
      "groups, use_bias off, in-layer activation; branches flattened and concatenated", tfjs="converter")
def conv2d():
    i = keras.Input((9, 10, 3), name="image")
    outs = [
        L.Conv2D(4, 3, padding="valid", name="k3_valid")(i),
        L.Conv2D(4, 3, padding="same", name="k3_same")(i),
        L.Conv2D(4, 3, strides=2, padding="same", name="k3_s2_same")(i),
        L.Conv2D(4, 3, strides=2, padding="valid", name="k3_s2_valid")(i),
        L.Conv2D(3, 4, padding="same", name="k4_same")(i),
        L.Conv2D(3, 4, strides=2, padding="same", name="k4_s2_same")(i),
        L.Conv2D(3, (1, 5), strides=(2, 1), padding="same", name="k1x5_s21_same")(i),
        L.Conv2D(3, 3, dilation_rate=2, padding="same", name="k3_d2_same")(i),
        L.Conv2D(3, 3, dilation_rate=(2, 1), padding="valid", name="k3_d21_valid")(i),
        L.Conv2D(6, 3, groups=3, padding="same", name="g3_same")(i),
        L.Conv2D(4, 1, use_bias=False, name="k1_nobias")(i),
        L.Conv2D(4, 3, padding="same", activation="relu", name="k3_relu")(i),
    ]
    x = L.Concatenate(name="concat")([L.Flatten(name="flat_" + _lname(o))(o) for o in outs])
    return keras.Model(i, x, name="conv2d_cases")


@case("conv2d_channels_first", "data_format channels_first: Conv2D (same, stride 2), MaxPooling2D, "
      "BatchNormalization(axis=1), DepthwiseConv2D, GlobalAveragePooling2D. TF on CPU cannot run NCHW convs, "
      "so the reference comes from a channels_last twin with the same weights (outputs transposed back)")
def conv2d_channels_first():
    return _cf_model("channels_first")


def _cf_model(fmt):
    shape = (3, 9, 10) if fmt == "channels_first" else (9, 10, 3)
    ax = 1 if fmt == "channels_first" else -1
    i = keras.Input(shape, name="image")
    x = L.Conv2D(4, 3, strides=2, padding="same", data_format=fmt, name="conv")(i)
    x = L.BatchNormalization(axis=ax, name="bn")(x)
    x = L.MaxPooling2D(2, padding="same", data_format=fmt, name="pool")(x)
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, data_format=fmt, name="dw")(x)
    y = L.GlobalAveragePooling2D(data_format=fmt, name="gap")(x)
    return keras.Model(i, [x, y], name="cf_" + fmt)


@case("conv1d_pool1d", "Conv1D valid/same/causal, strides 2, dilation 2, no bias; MaxPooling1D & "
      "AveragePooling1D same/valid with strides; GlobalAverage/GlobalMax pooling 1D keepdims false/true",
      inputs={"sequence": (-1, 1)})
def conv1d_pool1d():
    i = keras.Input((11, 4), name="sequence")
    c = [
        L.Conv1D(3, 3, padding="valid", name="c_valid")(i),
        L.Conv1D(3, 4, padding="same", name="c_same_k4")(i),
        L.Conv1D(3, 3, strides=2, padding="same", name="c_s2_same")(i),
        L.Conv1D(3, 3, padding="causal", dilation_rate=2, name="c_causal_d2")(i),
        L.Conv1D(3, 3, dilation_rate=2, padding="same", use_bias=False, name="c_d2_nobias")(i),
        L.MaxPooling1D(2, name="mp_2")(i),
        L.MaxPooling1D(3, strides=2, padding="same", name="mp_3s2_same")(i),
        L.AveragePooling1D(2, padding="valid", name="ap_2")(i),
        L.AveragePooling1D(3, strides=2, padding="same", name="ap_3s2_same")(i),
        L.AveragePooling1D(2, strides=1, padding="same", name="ap_2s1_same")(i),
        L.GlobalAveragePooling1D(keepdims=True, name="gap_keep")(i),
        L.GlobalMaxPooling1D(keepdims=True, name="gmp_keep")(i),
    ]
    flat = [L.Flatten(name="f_" + _lname(t))(t) for t in c]
    flat += [L.GlobalAveragePooling1D(name="gap")(i), L.GlobalMaxPooling1D(name="gmp")(i)]
    return keras.Model(i, L.Concatenate(name="concat")(flat), name="conv1d_pool1d")


@case("depthwise_separable", "DepthwiseConv2D depth_multiplier 1/2, same/valid, strides 2 on even & odd "
      "sizes, no bias, dilation; SeparableConv2D same/valid, strides 2, depth_multiplier 2", tfjs="converter")
def depthwise_separable():
    i = keras.Input((10, 9, 4), name="image")
    outs = [
        L.DepthwiseConv2D(3, padding="same", name="dw_same")(i),
        L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, name="dw_valid_dm2")(i),
        L.DepthwiseConv2D(3, strides=2, padding="same", name="dw_s2_same")(i),
        L.DepthwiseConv2D(5, strides=2, padding="same", use_bias=False, name="dw_k5_s2_nobias")(i),
        L.DepthwiseConv2D(3, strides=2, padding="valid", name="dw_s2_valid")(i),
        L.DepthwiseConv2D(3, dilation_rate=2, padding="same", name="dw_d2")(i),
        L.SeparableConv2D(5, 3, padding="same", name="sep_same")(i),
        L.SeparableConv2D(5, 3, strides=2, padding="valid", depth_multiplier=2, name="sep_s2_valid_dm2")(i),
    ]
    x = L.Concatenate(name="concat")([L.Flatten(name="f_" + _lname(o))(o) for o in outs])
    return keras.Model(i, x, name="depthwise_separable")


@case("conv2d_transpose", "Conv2DTranspose same/valid, strides 1/2, kernel 3/4, no bias, output_padding")
def conv2d_transpose():
    i = keras.Input((5, 6, 3), name="image")
    outs = [
        L.Conv2DTranspose(4, 3, padding="same", name="t_k3_same")(i),
        L.Conv2DTranspose(4, 3, padding="valid", name="t_k3_valid")(i),
        L.Conv2DTranspose(4, 3, strides=2, padding="same", name="t_k3_s2_same")(i),
        L.Conv2DTranspose(4, 3, strides=2, padding="valid", name="t_k3_s2_valid")(i),
        L.Conv2DTranspose(2, 4, strides=2, padding="same", use_bias=False, name="t_k4_s2_same_nobias")(i),
        L.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=0, name="t_k3_s2_same_op0")(i),
    ]
    x = L.Concatenate(name="concat")([L.Flatten(name="f_" + _lname(o))(o) for o in outs])
    return keras.Model(i, x, name="conv2d_transpose")


@case("pool2d", "MaxPooling2D/AveragePooling2D pool 2/3, same/valid, strides 1/2/None on 9x10 input "
      "(same AveragePooling excludes padding from the count); GlobalAverage/GlobalMax 2D keepdims false/true")
def pool2d():
    i = keras.Input((9, 10, 3), name="image")
    p = [
        L.MaxPooling2D(2, name="mp2")(i),
        L.MaxPooling2D(2, padding="same", name="mp2_same")(i),
        L.MaxPooling2D(3, strides=2, padding="valid", name="mp3s2")(i),
        L.MaxPooling2D(3, strides=2, padding="same", name="mp3s2_same")(i),
        L.MaxPooling2D(3, strides=1, padding="same", name="mp3s1_same")(i),
        L.AveragePooling2D(2, name="ap2")(i),
        L.AveragePooling2D(2, padding="same", name="ap2_same")(i),
        L.AveragePooling2D(3, strides=2, padding="same", name="ap3s2_same")(i),
        L.AveragePooling2D((3, 2), strides=(1, 2), padding="same", name="ap32_s12_same")(i),
        L.AveragePooling2D(3, strides=2, padding="valid", name="ap3s2")(i),
        L.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(i),
        L.GlobalMaxPooling2D(keepdims=True, name="gmp_keep")(i),
    ]
    flat = [L.Flatten(name="f_" + _lname(t))(t) for t in p]
    flat += [L.GlobalAveragePooling2D(name="gap")(i), L.GlobalMaxPooling2D(name="gmp")(i)]
    return keras.Model(i, L.Concatenate(name="concat")(flat), name="pool2d")


@case("dense_reshape", "Dense on 2-D and 4-D input (applies to the last axis), Flatten, Reshape (with -1), "
      "Permute", tfjs="layers-js")
def dense_reshape():
    i = keras.Input((4, 5, 3), name="x")
    a = L.Dense(6, activation="tanh", name="dense_4d")(i)          # (4,5,6)
    p = L.Permute((3, 1, 2), name="permute")(a)                     # (6,4,5)
    r = L.Reshape((6, -1), name="reshape")(p)                        # (6,20)
    b = L.Dense(3, name="dense_3d")(r)                               # (6,3)
    f = L.Flatten(name="flatten")(b)                                 # 18
    o = L.Dense(5, activation="softmax", name="dense_2d")(f)
    return keras.Model(i, o, name="dense_reshape")


@case("merge", "Two inputs, several outputs: Concatenate on axes 1, 2, -1; Add, Subtract, Multiply, Average, "
      "Maximum, Minimum (incl. 3 operands)", inputs={"a": (-1, 1), "b": (-1, 1)})
def merge():
    a = keras.Input((3, 4), name="a")
    b = keras.Input((3, 4), name="b")
    c = L.Dense(4, name="c")(a)
    outs = [
        L.Concatenate(axis=1, name="cat_axis1")([a, b]),
        L.Concatenate(axis=2, name="cat_axis2")([a, b, c]),
        L.Concatenate(axis=-1, name="cat_axis_last")([b, a]),
        L.Add(name="add3")([a, b, c]),
        L.Subtract(name="sub")([a, b]),
        L.Multiply(name="mul")([a, b]),
        L.Average(name="avg")([a, b, c]),
        L.Maximum(name="max")([a, b]),
        L.Minimum(name="min")([a, b, c]),
    ]
    return keras.Model([a, b], outs, name="merge")


ACTIVATIONS = [
    "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu", "gelu",
    "hard_sigmoid", "hard_swish", "hard_silu", "exponential", "linear", "leaky_relu", "relu6", "mish",
    "log_softmax", "celu", "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus",
    "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink",
]


@case("activations", "Activation layer with every built-in Keras 3.15 activation taking only x (one output per "
      "activation, input uniform -4..4). Not covered: 'threshold' (needs extra args), gelu approximate=True "
      "(no serialisable layer for it in Keras 3.15: Activation('gelu') is the exact erf form)",
      inputs={"x": (-4, 4)})
def activations():
    i = keras.Input((3, 8), name="x")
    outs = [L.Activation(a, name="act_" + a)(i) for a in ACTIVATIONS]
    return keras.Model(i, outs, name="activations")


@case("activation_layers", "ReLU(max_value, threshold, negative_slope), LeakyReLU, PReLU (per-element and "
      "shared_axes), ELU(alpha), Softmax(axis=-1 and axis=1)", inputs={"x": (-3, 3)})
def activation_layers():
    i = keras.Input((4, 6), name="x")
    outs = [
        L.ReLU(name="relu")(i),
        L.ReLU(max_value=1.5, name="relu_max")(i),
        L.ReLU(threshold=0.5, name="relu_thr")(i),
        L.ReLU(negative_slope=0.1, name="relu_slope")(i),
        L.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5, name="relu_all")(i),
        L.LeakyReLU(negative_slope=0.2, name="leaky")(i),
        L.LeakyReLU(name="leaky_default")(i),
        L.PReLU(name="prelu")(i),
        L.PReLU(shared_axes=[1], name="prelu_shared")(i),
        L.ELU(alpha=0.7, name="elu")(i),
        L.Softmax(name="softmax_last")(i),
        L.Softmax(axis=1, name="softmax_axis1")(i),
    ]
    return keras.Model(i, outs, name="activation_layers")


@case("batchnorm", "BatchNormalization with random moving stats/gamma/beta: epsilon 1.001e-5 and default, "
      "center=False, scale=False, both off, after Conv2D (4-D) and Dense (2-D), axis -1")
def batchnorm():
    i = keras.Input((6, 6, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(i)
    x = L.BatchNormalization(epsilon=1.001e-5, name="bn_eps")(x)
    x = L.BatchNormalization(name="bn_default")(x)
    x = L.BatchNormalization(center=False, name="bn_nocenter")(x)
    x = L.BatchNormalization(scale=False, name="bn_noscale")(x)
    x = L.BatchNormalization(center=False, scale=False, axis=-1, name="bn_none")(x)
    y = L.Dense(5, name="dense")(L.Flatten(name="flat")(x))
    y = L.BatchNormalization(name="bn_dense")(y)
    return keras.Model(i, [x, y], name="batchnorm")


@case("normalization_layers", "LayerNormalization (with and without center/scale, epsilon), Rescaling scalar "
      "(1/255) and per-channel with offset, Normalization adapted to data (mean/variance/count weights)",
      inputs={"image": (0, 255)})
def normalization_layers():
    i = keras.Input((5, 4, 3), name="image")
    r1 = L.Rescaling(1.0 / 255, name="rescale")(i)
    r2 = L.Rescaling(scale=[1 / 58.4, 1 / 57.1, 1 / 57.4], offset=[-2.1, -2.0, -1.8], name="rescale_pc")(i)
    norm = L.Normalization(axis=-1, name="normalization")
    rng = np.random.default_rng(7)
    norm.adapt(rng.uniform(0, 1, (64, 5, 4, 3)).astype("float32") * [1.0, 0.5, 2.0] + [0.0, 0.2, -0.3])
    n = norm(r1)
    ln1 = L.LayerNormalization(name="ln")(n)
    ln2 = L.LayerNormalization(center=False, scale=False, epsilon=1e-5, name="ln_plain")(r2)
    return keras.Model(i, [r1, r2, n, ln1, ln2], name="normalization_layers")


@case("spatial", "ZeroPadding2D asymmetric ((0,1),(0,1)) (EfficientNet) and symmetric; Cropping2D; "
      "UpSampling2D nearest (2 and (2,3)) and bilinear; Dropout, SpatialDropout2D, GaussianNoise, "
      "GaussianDropout, RandomFlip (all identity at inference)")
def spatial():
    i = keras.Input((5, 6, 2), name="image")
    x = L.RandomFlip(name="random_flip")(i)
    x = L.GaussianNoise(0.5, name="noise")(x)
    x = L.Dropout(0.5, name="dropout")(x)
    x = L.SpatialDropout2D(0.5, name="spatial_dropout")(x)
    x = L.GaussianDropout(0.3, name="gaussian_dropout")(x)
    outs = [
        L.ZeroPadding2D(((0, 1), (0, 1)), name="zpad_asym")(x),
        L.ZeroPadding2D(2, name="zpad_2")(x),
        L.ZeroPadding2D(((1, 2), (0, 3)), name="zpad_mixed")(x),
        L.Cropping2D(((1, 0), (2, 1)), name="crop")(x),
        L.UpSampling2D(2, name="up_nearest")(x),
        L.UpSampling2D((2, 3), name="up_nearest_23")(x),
        L.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(x),
    ]
    return keras.Model(i, outs, name="spatial")


def _se_block(x, filters, prefix, ratio=4):
    se = L.GlobalAveragePooling2D(keepdims=True, name=prefix + "se_squeeze")(x)
    se = L.Reshape((1, 1, filters), name=prefix + "se_reshape")(se)
    se = L.Conv2D(max(1, filters // ratio), 1, activation="swish", name=prefix + "se_reduce")(se)
    se = L.Conv2D(filters, 1, activation="sigmoid", name=prefix + "se_expand")(se)
    return L.Multiply(name=prefix + "se_excite")([x, se])


def mini_efficientnet(shape, name="mini_efficientnet"):
    i = keras.Input(shape)
    x = L.Rescaling(1.0 / 255.0, name="rescaling")(i)
    norm = L.Normalization(axis=-1, mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2],
                           name="normalization")
    x = norm(x)
    x = L.Rescaling([1.0 / 0.229, 1.0 / 0.224, 1.0 / 0.225], name="rescaling_1")(x)  # as EfficientNet does
    x = L.ZeroPadding2D(((0, 1), (0, 1)), name="stem_conv_pad")(x)
    x = L.Conv2D(8, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("swish", name="stem_activation")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block1a_dwconv")(x)
    x = L.BatchNormalization(name="block1a_bn")(x)
    x = L.Activation("swish", name="block1a_activation")(x)
    x = _se_block(x, 8, "block1a_")
    x = L.Conv2D(8, 1, use_bias=False, name="block1a_project_conv")(x)
    x = L.BatchNormalization(name="block1a_project_bn")(x)
    y = L.Conv2D(16, 1, use_bias=False, name="block2a_expand_conv")(x)
    y = L.BatchNormalization(name="block2a_expand_bn")(y)
    y = L.Activation("swish", name="block2a_expand_activation")(y)
    y = L.ZeroPadding2D(((0, 1), (0, 1)), name="block2a_dwconv_pad")(y)
    y = L.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False, name="block2a_dwconv")(y)
    y = L.BatchNormalization(name="block2a_bn")(y)
    y = L.Activation("swish", name="block2a_activation")(y)
    y = _se_block(y, 16, "block2a_")
    y = L.Conv2D(8, 1, use_bias=False, name="block2a_project_conv")(y)
    y = L.BatchNormalization(name="block2a_project_bn")(y)
    z = L.Conv2D(16, 1, use_bias=False, name="block2b_expand_conv")(y)
    z = L.BatchNormalization(name="block2b_expand_bn")(z)
    z = L.Activation("swish", name="block2b_expand_activation")(z)
    z = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block2b_dwconv")(z)
    z = L.BatchNormalization(name="block2b_bn")(z)
    z = L.Activation("swish", name="block2b_activation")(z)
    z = _se_block(z, 16, "block2b_")
    z = L.Conv2D(8, 1, use_bias=False, name="block2b_project_conv")(z)
    z = L.BatchNormalization(name="block2b_project_bn")(z)
    z = L.Dropout(0.2, noise_shape=(None, 1, 1, 1), name="block2b_drop")(z)
    z = L.Add(name="block2b_add")([z, y])
    z = L.Conv2D(20, 1, use_bias=False, name="top_conv")(z)
    z = L.BatchNormalization(name="top_bn")(z)
    z = L.Activation("swish", name="top_activation")(z)
    return keras.Model(i, z, name=name)


def mini_resnet(shape, name="mini_resnet"):
    i = keras.Input(shape)
    x = L.ZeroPadding2D(3, name="conv1_pad")(i)
    x = L.Conv2D(8, 7, strides=2, name="conv1_conv")(x)
    x = L.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    x = L.ZeroPadding2D(1, name="pool1_pad")(x)
    x = L.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for b, stride in (("conv2_block1", 1), ("conv3_block1", 2)):
        sc = L.Conv2D(16, 1, strides=stride, name=b + "_0_conv")(x)
        sc = L.BatchNormalization(epsilon=1.001e-5, name=b + "_0_bn")(sc)
        y = L.Conv2D(4, 1, strides=stride, name=b + "_1_conv")(x)
        y = L.BatchNormalization(epsilon=1.001e-5, name=b + "_1_bn")(y)
        y = L.Activation("relu", name=b + "_1_relu")(y)
        y = L.Conv2D(4, 3, padding="same", name=b + "_2_conv")(y)
        y = L.BatchNormalization(epsilon=1.001e-5, name=b + "_2_bn")(y)
        y = L.Activation("relu", name=b + "_2_relu")(y)
        y = L.Conv2D(16, 1, name=b + "_3_conv")(y)
        y = L.BatchNormalization(epsilon=1.001e-5, name=b + "_3_bn")(y)
        x = L.Add(name=b + "_add")([sc, y])
        x = L.Activation("relu", name=b + "_out")(x)
    return keras.Model(i, x, name=name)


@case("se_block", "EfficientNet-style stem and MBConv blocks: Rescaling, Normalization, Rescaling per-channel, "
      "ZeroPadding2D((0,1),(0,1)) + valid stride-2 conv, swish, DepthwiseConv2D, squeeze-and-excitation "
      "(GAP keepdims -> Reshape -> 1x1 conv swish -> 1x1 conv sigmoid -> Multiply), residual Add",
      inputs={"image": (0, 255)})
def se_block():
    return mini_efficientnet((16, 16, 3), name="se_block")


@case("nested_shared", "A Functional model used as a layer (called twice on two inputs, so its node 1 is used), "
      "a Dense layer shared between two branches, a nested model inside a nested model",
      inputs={"left": (0, 1), "right": (0, 1)})
def nested_shared():
    ii = keras.Input((4,))
    inner = keras.Model(ii, L.Dense(3, activation="relu", name="inner_dense")(ii), name="inner")
    bi = keras.Input((6, 6, 2))
    t = L.Conv2D(4, 3, name="tower_conv")(bi)
    t = L.BatchNormalization(name="tower_bn")(t)
    t = L.GlobalAveragePooling2D(name="tower_gap")(t)
    t = inner(t)
    tower = keras.Model(bi, t, name="tower")
    a = keras.Input((6, 6, 2), name="left")
    b = keras.Input((6, 6, 2), name="right")
    ta, tb = tower(a), tower(b)
    shared = L.Dense(2, name="shared_dense")
    sa, sb = shared(ta), shared(tb)
    out = L.Concatenate(name="concat")([sa, sb, L.Subtract(name="diff")([ta, tb])])
    return keras.Model([a, b], out, name="nested_shared")


@case("multi_io", "Two inputs of different ranks, three outputs (softmax head, sigmoid head, regression)",
      inputs={"image": (0, 1), "meta": (-1, 1)})
def multi_io():
    img = keras.Input((8, 8, 1), name="image")
    meta = keras.Input((5,), name="meta")
    x = L.Conv2D(4, 3, activation="relu", name="conv")(img)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    m = L.Dense(4, activation="relu", name="meta_dense")(meta)
    h = L.Concatenate(name="concat")([x, m])
    h = L.Dense(8, activation="relu", name="hidden")(h)
    return keras.Model([img, meta], [L.Dense(3, activation="softmax", name="class_probs")(h),
                                     L.Dense(2, activation="sigmoid", name="flags")(h),
                                     L.Dense(1, name="score")(h)], name="multi_io")


@case("sequential_cnn", "Sequential: Conv2D relu, MaxPooling2D, BatchNormalization, Conv2D same, "
      "AveragePooling2D, Flatten, Dropout, Dense relu, Dense softmax", tfjs="converter")
def sequential_cnn():
    return keras.Sequential([
        keras.Input((12, 12, 3), name="image"),
        L.Conv2D(6, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.BatchNormalization(name="bn1"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
        L.AveragePooling2D(2, name="pool2"),
        L.Flatten(name="flatten"),
        L.Dropout(0.3, name="dropout"),
        L.Dense(10, activation="relu", name="fc1"),
        L.Dense(4, activation="softmax", name="predictions"),
    ], name="sequential_cnn")


@case("mini_ensemble", "The team's model in miniature: one Input(32,32,3) -> two nested, frozen backbones "
      "(EfficientNet-like with Rescaling/Normalization/SE/swish/asymmetric ZeroPadding; ResNet-like with "
      "ZeroPadding/MaxPooling/Add/BN eps 1.001e-5) -> GlobalAveragePooling2D each -> Concatenate -> "
      "Dense relu -> Dropout -> Dense relu -> Dropout -> Dense(8, softmax)", tfjs="converter")
def mini_ensemble():
    inp = keras.Input((32, 32, 3), name="input_layer")
    eff = mini_efficientnet((32, 32, 3), name="efficientnetb0")
    res = mini_resnet((32, 32, 3), name="resnet50")
    eff.trainable = False
    res.trainable = False
    a = L.GlobalAveragePooling2D(name="global_average_pooling2d")(eff(inp))
    b = L.GlobalAveragePooling2D(name="global_average_pooling2d_1")(res(inp))
    x = L.Concatenate(name="concatenate")([a, b])
    x = L.Dense(12, activation="relu", name="dense")(x)
    x = L.Dropout(0.4, name="dropout")(x)
    x = L.Dense(10, activation="relu", name="dense_1")(x)
    x = L.Dropout(0.4, name="dropout_1")(x)
    x = L.Dense(8, activation="softmax", name="dense_2")(x)
    return keras.Model(inp, x, name="mini_ensemble")


# ---------------------------------------------------------------- driver
def make_inputs(model, ranges, seed):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        name = t.name
        lo, hi = ranges.get(name, (0.0, 1.0))
        shape = (2,) + tuple(t.shape[1:])
        xs.append((name, rng.uniform(lo, hi, shape).astype("float32")))
    return xs


def run(model, xs):
    feed = [x for _, x in xs]
    ys = model(feed if len(feed) > 1 else feed[0], training=False)
    if not isinstance(ys, (list, tuple)):
        ys = [ys]
    return [np.asarray(y, dtype="float32") for y in ys]


def reference_outputs(name, model, xs):
    if name != "conv2d_channels_first":
        return run(model, xs)
    # NCHW conv is unavailable on TF CPU: a channels_last twin with identical weights
    twin = _cf_model("channels_last")
    twin.set_weights(model.get_weights())
    (iname, x), = xs
    y4, y2 = run(twin, [(iname, np.transpose(x, (0, 2, 3, 1)))])
    return [np.transpose(y4, (0, 3, 1, 2)).copy(), y2]


def build_case(name, spec, out_root, seed):
    keras.utils.set_random_seed(seed)
    keras.backend.clear_session()
    model = spec["build"]()
    perturb(model, np.random.default_rng(seed + 1))
    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model.save(os.path.join(d, "model.h5"))
    model.save(os.path.join(d, "model.keras"))
    xs = make_inputs(model, spec["ranges"], seed + 2)
    ys = reference_outputs(name, model, xs)
    # the saved files must give the same answer (catches our own mistakes)
    for fn in ("model.h5", "model.keras"):
        if name == "conv2d_channels_first":
            break
        m2 = keras.models.load_model(os.path.join(d, fn), compile=False)
        for a, b in zip(ys, run(m2, xs)):
            assert np.allclose(a, b, atol=1e-6), (name, fn)
    out_names = list(model.output_names) if hasattr(model, "output_names") else []
    if len(out_names) != len(ys):
        out_names = ["output_%d" % k for k in range(len(ys))]
    exp = dict(common.versions())
    exp.update({
        "case": name,
        "description": spec["description"],
        "layers": common.layer_classes(model),
        "inputs": [common.tensor_entry(n, x) for n, x in xs],
        "outputs": [common.tensor_entry(n, y) for n, y in zip(out_names, ys)],
    })
    if spec["tfjs"]:
        tfjs_writer.write_tfjs(model, os.path.join(d, "model.h5"), os.path.join(d, "tfjs"), style=spec["tfjs"])
        exp["tfjs_style"] = spec["tfjs"]
    common.write_json(os.path.join(d, "expected.json"), exp)
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in ("model.h5", "model.keras")}
    print(f"{name:24s} params={model.count_params():6d} h5={sizes['model.h5']:7d} keras={sizes['model.keras']:7d}"
          f" outputs={[tuple(y.shape) for y in ys]}", flush=True)
    return exp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT_DEFAULT)
    ap.add_argument("--cases", default="")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c] or list(CASES)
    for name in CASES:
        if name in names:
            build_case(name, CASES[name], args.out, seed=zlib.crc32(name.encode()) % 100000)


if __name__ == "__main__":
    main()
