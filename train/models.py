"""The model zoo: one ``build_<name>()`` each, and one registry table driving the CLI.

Contract for every exportable model: explicit ``keras.Input`` of float32 [N, 28, 28, 1] in [0, 1]
(white digit on black), output softmax probabilities [N, 10], and only layers tf2onnx exports at
opset 13 to simple ops (Conv, Relu, MaxPool, BatchNormalization folded into Conv, MatMul/Gemm,
Add, Softmax, Reshape). Augmentation is never inside the model (see data.py).
"""

import difflib
from typing import NamedTuple

from edge_runtime.errors import UserError

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


class TrainDefaults(NamedTuple):
    """Per-model training defaults (each can be overridden on the command line)."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 0.9  # learning rate multiplied by this every epoch (exponential decay)
    patience: int = 6  # early stopping on validation accuracy
    augment: bool = True


class ZooEntry(NamedTuple):
    name: str
    build: object
    description: str
    defaults: TrainDefaults = TrainDefaults()
    exportable: bool = True  # exports to Nano-friendly opset-13 ONNX


def _keras():
    import keras

    return keras


def _classifier_head(x, keras, dropout=0.0, name="probabilities"):
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.layers.Dense(NUM_CLASSES, activation="softmax", name=name)(x)


def _conv_bn_relu(x, keras, filters, kernel, strides=1, padding="same", name=None):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def _dense_bn_relu(x, keras, units):
    x = keras.layers.Dense(units, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def _input(keras):
    return keras.Input(shape=INPUT_SHAPE, dtype="float32", name="image")


# --------------------------------------------------------------------------
# Multi-layer perceptrons
# --------------------------------------------------------------------------


def build_softmax():
    """Softmax regression: 784 -> 10 (about 92 % on MNIST)."""
    keras = _keras()
    inputs = _input(keras)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, _classifier_head(x, keras), name="softmax")


def _mlp(name, hidden, dropout, keras, batch_norm=False):
    inputs = _input(keras)
    x = keras.layers.Flatten()(inputs)
    for units in hidden:
        if batch_norm:
            x = _dense_bn_relu(x, keras, units)
        else:
            x = keras.layers.Dense(units, activation="relu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, _classifier_head(x, keras), name=name)


def build_mlp():
    """The default MLP: 784-512-256-10, ReLU, dropout 0.2."""
    return _mlp("mlp", (512, 256), 0.2, _keras())


def build_mlp300():
    """LeCun's MLP: 784-300-100-10, ReLU."""
    return _mlp("mlp300", (300, 100), 0.0, _keras())


def build_mlp1024():
    """The Jetson Nano tutorial's MLP: 784-1024-10, ReLU."""
    return _mlp("mlp1024", (1024,), 0.0, _keras())


def build_deep_mlp():
    """Deep MLP: 784-1024-512-256-128-10, ReLU, dropout 0.25 (train with LR decay)."""
    return _mlp("deep_mlp", (1024, 512, 256, 128), 0.25, _keras())


def build_mlp_bn():
    """MLP 784-512-256-10 with batch normalisation and dropout 0.2."""
    return _mlp("mlp_bn", (512, 256), 0.2, _keras(), batch_norm=True)


# --------------------------------------------------------------------------
# Convolutional networks
# --------------------------------------------------------------------------


def _bn_cnn(name, blocks, kernel, keras):
    """Blocks of valid kxk convolutions (BN + ReLU), each closed by 2x2 max pooling and dropout, then
    fc128 (BN + ReLU) and the softmax head with dropout 0.4. ``blocks``: ((filters, ...), dropout) each."""
    inputs = _input(keras)
    x = inputs
    for filters, dropout in blocks:
        for count in filters:
            x = _conv_bn_relu(x, keras, count, kernel, padding="valid")
        x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Flatten()(x)
    x = _dense_bn_relu(x, keras, 128)
    return keras.Model(inputs, _classifier_head(x, keras, dropout=0.4), name=name)


def build_cnn():
    """The default compact CNN (~200k params): conv32-conv32-pool-conv64-conv64-pool-dense128, BN + dropout."""
    return _bn_cnn("cnn", (((32, 32), 0.2), ((64, 64), 0.25)), 3, _keras())


def build_cnn5():
    """A fast CNN (185k params, 7.7 MFLOPs, 2.5x less than cnn): conv5x5x32-pool-conv5x5x64-pool-fc128,
    BN + dropout (28 -> 24 -> 12 -> 8 -> 4: 4x4x64 features).

    Measured against cnn (2026-11-23, same detection, side by side): 99.66 vs 99.61 % on the 10k test
    digits, inference of a frame's digits 0.77 vs 1.48 ms and p99 frame latency 7.1 vs 13.4 ms in the
    pipeline, but 98.59 vs 98.78 % on 5,401 synthetic camera digits (its thinner-stroke bias reads a
    thick camera "4" as 6): the default stays cnn, cnn5 is the choice where latency matters most.
    """
    return _bn_cnn("cnn5", (((32,), 0.2), ((64,), 0.25)), 5, _keras())


def build_cnn2():
    """The classic 2-conv CNN: 5x5x32, pool, 5x5x64, pool, fc1024, dropout 0.4 (3.3M params)."""
    keras = _keras()
    inputs = _input(keras)
    x = keras.layers.Conv2D(32, 5, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(1024, activation="relu")(x)
    return keras.Model(inputs, _classifier_head(x, keras, dropout=0.4), name="cnn2")


def _cnn3(name, keras, batch_norm):
    inputs = _input(keras)
    x = inputs
    for filters, kernel, strides in ((6, 5, 1), (12, 5, 2), (24, 4, 2)):  # 28 -> 28 -> 14 -> 7
        if batch_norm:
            x = _conv_bn_relu(x, keras, filters, kernel, strides)
        else:
            x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = _dense_bn_relu(x, keras, 200) if batch_norm else keras.layers.Dense(200, activation="relu")(x)
    return keras.Model(inputs, _classifier_head(x, keras, dropout=0.25), name=name)


def build_cnn3():
    """Martin Goerner's 3-conv CNN: 6/12/24 filters, strides 1/2/2, fc200, dropout 0.25."""
    return _cnn3("cnn3", _keras(), batch_norm=False)


def build_cnn3_bn():
    """The 3-conv CNN with batch normalisation after every conv and the fc layer."""
    return _cnn3("cnn3_bn", _keras(), batch_norm=True)


# --------------------------------------------------------------------------
# Recurrent (optional: not a Nano export target)
# --------------------------------------------------------------------------


def build_lstm():
    """Row-by-row LSTM: 28 steps of 28 pixels -> LSTM(128) -> 10. Optional; exports to an LSTM op."""
    keras = _keras()
    inputs = _input(keras)
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.LSTM(128)(x)
    return keras.Model(inputs, _classifier_head(x, keras), name="lstm")


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

# Sized for `make train` on a 2-core CPU (5-16 minutes of training for mlp + cnn, by VM); raise --epochs on a GPU.
_MLP = TrainDefaults(epochs=20, batch_size=256, lr=2e-3, lr_decay=0.85, patience=5, augment=True)
_CNN = TrainDefaults(epochs=10, batch_size=128, lr=2e-3, lr_decay=0.75, patience=4, augment=True)
# cnn5 learns for longer with a slower decay: 99.66 % in 20 epochs (99.50 % in 10 with _CNN's).
_CNN_LONG = _CNN._replace(epochs=20, lr_decay=0.85, patience=6)

ZOO = [
    ZooEntry("softmax", build_softmax, "softmax regression 784-10",
             TrainDefaults(epochs=10, batch_size=128, lr=5e-3, lr_decay=0.9, patience=3, augment=False)),
    ZooEntry("mlp", build_mlp, "MLP 784-512-256-10, dropout (default)", _MLP),
    ZooEntry("mlp300", build_mlp300, "MLP 784-300-100-10 (LeCun)", _MLP._replace(augment=False, epochs=20)),
    ZooEntry("mlp1024", build_mlp1024, "MLP 784-1024-10 (Jetson Nano tutorial)",
             _MLP._replace(augment=False, epochs=20)),
    ZooEntry("deep_mlp", build_deep_mlp, "deep MLP 784-1024-512-256-128-10, ReLU, LR decay, dropout", _MLP),
    ZooEntry("mlp_bn", build_mlp_bn, "MLP 784-512-256-10 with batch norm + dropout", _MLP),
    ZooEntry("cnn", build_cnn, "compact CNN conv32x2-pool-conv64x2-pool-fc128, BN + dropout (default)", _CNN),
    ZooEntry("cnn5", build_cnn5, "fast CNN conv5x5x32-pool-conv5x5x64-pool-fc128, BN + dropout", _CNN_LONG),
    ZooEntry("cnn2", build_cnn2, "2-conv CNN 5x5x32-pool-5x5x64-pool-fc1024, dropout", _CNN._replace(lr=1e-3)),
    ZooEntry("cnn3", build_cnn3, "3-conv CNN 6/12/24 filters, strides 1/2/2, fc200, dropout", _CNN),
    ZooEntry("cnn3_bn", build_cnn3_bn, "3-conv CNN with batch norm", _CNN),
    ZooEntry("lstm", build_lstm, "row-by-row LSTM(128) (optional, not a Nano export target)",
             _CNN._replace(augment=False, epochs=15), exportable=False),
]
REGISTRY = {entry.name: entry for entry in ZOO}
DEFAULT_MODELS = ("mlp", "cnn")


def model_names():
    return [entry.name for entry in ZOO]


def lookup(name):
    """The zoo entry for ``name``; an unknown name gets the closest match as a suggestion."""
    if name in REGISTRY:
        return REGISTRY[name]
    close = difflib.get_close_matches(name, model_names(), n=1, cutoff=0.4)
    hint = "did you mean %r? " % close[0] if close else ""
    raise UserError("unknown model %r; %schoose from: %s (see --list)" % (name, hint, ", ".join(model_names())))


def build(name, seed=None):
    """Build a fresh model, seeding Keras first when ``seed`` is given."""
    entry = lookup(name)
    if seed is not None:
        _keras().utils.set_random_seed(int(seed))
    return entry.build()


# --------------------------------------------------------------------------
# Size and cost
# --------------------------------------------------------------------------


def flops_per_image(model):
    """Multiply-adds x 2 of Conv2D, Dense and LSTM layers for one image (other layers are negligible)."""
    keras = _keras()
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * c_out * kh * kw * c_in
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
        elif isinstance(layer, keras.layers.LSTM):
            steps, features = layer.input.shape[1], layer.input.shape[2]
            total += 2 * steps * 4 * (features + layer.units) * layer.units
    return int(total)


def describe(model):
    return {"params": int(model.count_params()), "flops_per_image": flops_per_image(model)}
