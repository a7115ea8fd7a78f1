"""`python -m train` through main([...]): smoke training with an accuracy bar, resume, skip, CLI errors."""

import csv
import json
import os
import re

import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from train import train as train_cli  # noqa: E402

QUICK = ["--model", "mlp300", "--limit", "5000", "--no-augment", "--batch-size", "100", "--seed", "1"]


def read_metrics(bundle):
    with open(os.path.join(bundle, "metrics.json")) as handle:
        return json.load(handle)


def read_history(bundle):
    with open(os.path.join(bundle, "history.csv")) as handle:
        return list(csv.DictReader(handle))


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Simulates Ctrl-C right after epoch ``k`` (1-based) has finished and been checkpointed."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.k:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("quick"))
    code = train_cli.main(QUICK + ["--epochs", "2", "--out", out], verbose=0)
    return code, out


def test_smoke_training_reaches_accuracy_and_writes_the_bundle(quick_run):
    code, out = quick_run
    assert code == 0
    bundle = os.path.join(out, "mlp300")
    metrics = read_metrics(bundle)
    assert metrics["test_accuracy"] >= 0.90  # 784-300-100-10 on 5000 digits, 2 epochs (measured ~0.93)
    assert metrics["test_size"] == 10000 and metrics["train_size"] == 5000
    assert abs(sum(sum(row) for row in metrics["confusion_matrix"]) - 10000) == 0
    assert metrics["params"] == 266610 and metrics["epochs"] == 2 and metrics["seed"] == 1
    check = metrics["camera_norm_check"]
    if check["available"]:  # the camera path's normalize_digit keeps MNIST digits recognisable
        assert check["accuracy"] >= metrics["test_accuracy"] - 0.05
    for name in ("model.keras", "curves.png", "confusion.png", "misclassified.png", "history.csv"):
        assert os.path.getsize(os.path.join(bundle, name)) > 1000 or name == "history.csv"
    assert [row["epoch"] for row in read_history(bundle)] == ["1", "2"]
    assert os.listdir(os.path.join(bundle, "tensorboard"))
    assert not [n for n in os.listdir(bundle) if n.endswith(".tmp") or ".tmp." in n]
    model = keras.models.load_model(os.path.join(bundle, "model.keras"))
    assert tuple(model.output.shape) == (None, 10)


def test_rerun_is_incremental_and_force_retrains(quick_run, capsys):
    _, out = quick_run
    model_file = os.path.join(out, "mlp300", "model.keras")
    before = os.stat(model_file).st_mtime_ns
    assert train_cli.main(QUICK + ["--epochs", "2", "--out", out], verbose=0) == 0
    assert "| mlp300 | up to date |" in capsys.readouterr().out
    assert os.stat(model_file).st_mtime_ns == before
    # a changed hyper-parameter is a different configuration: trained again
    assert train_cli.main(QUICK + ["--epochs", "1", "--out", out], verbose=0) == 0
    assert "| mlp300 | trained |" in capsys.readouterr().out
    assert read_metrics(os.path.join(out, "mlp300"))["epochs"] == 1


def test_config_hash_follows_augmentation_settings_and_the_architecture(monkeypatch):
    from train import data

    config = train_cli.TrainConfig("cnn", 10, 128, 2e-3, 0.75, 4, True, 0, "hub")
    before, plain = train_cli.config_hash(config), train_cli.config_hash(config._replace(augment=False))
    assert train_cli.config_hash(config._replace(model="cnn5")) != before
    assert plain != before
    changed = data.Augment()._replace(stroke_prob=0.0)
    monkeypatch.setattr(data, "Augment", lambda: changed)
    assert train_cli.config_hash(config) != before  # changed augmentation settings: trained again
    assert train_cli.config_hash(config._replace(augment=False)) == plain  # no augmentation: no change


def test_the_config_hash_covers_the_helpers_a_builder_calls():
    """build_cnn and build_cnn5 are one line calling _bn_cnn: editing _bn_cnn (or the conv block it
    uses) must change their hash, so `make train` retrains them."""
    import inspect

    from train import models

    source = train_cli.builder_source(models.build_cnn)
    for helper in (models._bn_cnn, models._conv_bn_relu, models._dense_bn_relu, models._classifier_head):
        assert inspect.getsource(helper) in source
    assert "def build_mlp" not in source and "def build_cnn5" not in source  # only what it calls
    assert inspect.getsource(models._bn_cnn) in train_cli.builder_source(models.build_cnn5)


def test_interrupted_run_resumes_from_the_last_finished_epoch(tmp_path, capsys):
    out = str(tmp_path)
    argv = QUICK + ["--epochs", "3", "--patience", "0", "--out", out]
    assert train_cli.main(argv, extra_callbacks=[InterruptAfterEpoch(2)], verbose=0) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err
    bundle = os.path.join(out, "mlp300")
    assert not os.path.exists(os.path.join(bundle, "model.keras"))  # no half-finished bundle
    first_two = read_history(bundle)
    assert [row["epoch"] for row in first_two] == ["1", "2"]

    assert train_cli.main(argv, verbose=0) == 0
    assert "| mlp300 | resumed |" in capsys.readouterr().out
    history = read_history(bundle)
    assert [row["epoch"] for row in history] == ["1", "2", "3"]
    assert history[:2] == first_two  # nothing lost
    # the third epoch continued from epoch 2's weights and optimizer: training loss keeps falling
    assert float(history[2]["loss"]) < float(history[1]["loss"])
    assert read_metrics(bundle)["epochs"] == 3
    # reports lost after training (e.g. Ctrl-C while writing them): rewritten without training again
    os.unlink(os.path.join(bundle, "metrics.json"))
    assert train_cli.main(argv, verbose=0) == 0
    assert "| mlp300 | reports only |" in capsys.readouterr().out
    assert read_history(bundle) == history and read_metrics(bundle)["epochs"] == 3


def test_list_prints_params_and_flops(capsys):
    assert train_cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^cnn +198,442 +19,675,904 +10 ep", out, re.M)
    assert re.search(r"^cnn5 +185,258 +7,739,904 +20 ep", out, re.M)
    assert len([line for line in out.splitlines() if line.strip()]) == 1 + 12


def test_unknown_model_suggests_the_closest(tmp_path, capsys):
    assert train_cli.main(["--model", "mpl", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train: error: unknown model 'mpl'") and "did you mean 'mlp'" in err


@pytest.mark.parametrize(
    "bad",
    [["--epochs", "-1"], ["--epochs", "0"], ["--lr", "0"], ["--lr", "-0.1"], ["--batch-size", "0"],
     ["--lr-decay", "1.5"], ["--patience", "-2"], ["--epochs", "ten"]],
)
def test_bad_hyper_parameters_exit_2(tmp_path, capsys, bad):
    assert train_cli.main(["--model", "softmax", "--out", str(tmp_path)] + bad) == 2
    err = capsys.readouterr().err
    assert "expected" in err and bad[0] in err


def test_unwritable_output_folder_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert train_cli.main(["--model", "softmax", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to output folder" in err and "--out" in err


@pytest.mark.slow
def test_full_training_meets_the_targets(tmp_path):
    """What `make train` does (about 11 minutes on a 2-core CPU): mlp >= 98.4 %, cnn >= 99.6 %."""
    out = str(tmp_path)
    assert train_cli.main(["--model", "mlp", "cnn", "--out", out], verbose=2) == 0
    assert read_metrics(os.path.join(out, "mlp"))["test_accuracy"] >= 0.984
    assert read_metrics(os.path.join(out, "cnn"))["test_accuracy"] >= 0.996
