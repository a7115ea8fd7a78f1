"""The model zoo: every entry builds, has the input/output contract and the expected size."""

import numpy as np
import pytest

from edge_runtime.errors import UserError

pytest.importorskip("tensorflow")

from train import models  # noqa: E402

# name -> (params, FLOPs per image); counted by hand for the defaults, e.g. cnn:
# conv 3x3 26x26x32 (no bias, BN) ... dense 1024->128 (BN) -> 10; cnn5: conv 5x5 24x24x32
# 2*25*32*576 = 921,600, conv 5x5x32 8x8x64 2*800*64*64 = 6,553,600, dense 1024->128 262,144,
# 128->10 2,560: 7,739,904 FLOPs.
EXPECTED_SIZES = {
    "softmax": (7850, 15680),
    "mlp": (535818, 1070080),
    "mlp300": (266610, 532400),
    "mlp1024": (814090, 1626112),
    "deep_mlp": (1494154, 2984448),
    "mlp_bn": (538122, 1070080),
    "cnn": (198442, 19675904),
    "cnn5": (185258, 7739904),
    "cnn2": (3274634, 27767808),
    "cnn3": (244010, 1866784),
    "cnn3_bn": (244736, 1866784),
    "lstm": (81674, 4475392),
}


def test_registry_lists_every_model_once():
    assert models.model_names() == list(EXPECTED_SIZES)
    assert set(models.DEFAULT_MODELS) <= set(models.REGISTRY)


@pytest.mark.parametrize("name", list(EXPECTED_SIZES))
def test_model_builds_with_contract_and_size(name):
    model = models.build(name, seed=0)
    assert tuple(model.input.shape) == (None, 28, 28, 1)
    assert model.input.dtype == "float32"
    assert tuple(model.output.shape) == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "softmax"
    assert (model.count_params(), models.flops_per_image(model)) == EXPECTED_SIZES[name]
    probs = np.asarray(model(np.random.RandomState(0).rand(3, 28, 28, 1).astype(np.float32), training=False))
    assert probs.shape == (3, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_default_cnn_is_compact():
    params, flops = EXPECTED_SIZES["cnn"]
    assert params <= 300000  # its ONNX (~0.8 MB) is small enough to commit as a fixture
    assert flops < 25e6


def test_exportable_models_use_only_simple_layers():
    allowed = {"InputLayer", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Dropout", "Flatten", "Dense"}
    for entry in models.ZOO:
        if entry.exportable:
            used = {type(layer).__name__ for layer in entry.build().layers}
            assert used <= allowed, (entry.name, used - allowed)


@pytest.mark.parametrize("typo, suggestion", [("mpl", "mlp"), ("cnn_bn", "cnn3_bn"), ("softmx", "softmax")])
def test_unknown_model_suggests_the_closest(typo, suggestion):
    with pytest.raises(UserError, match="did you mean %r" % suggestion):
        models.lookup(typo)
