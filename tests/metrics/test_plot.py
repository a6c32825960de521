import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from skmedimg.metrics import plot_confusion_matrix, plot_training_curves  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes, len(data)
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # Not a blank canvas: the plot left marks of several colours.
    assert image[..., :3].std() > 0.05


Y_TRUE = ["glioma"] * 4 + ["meningioma"] * 4 + ["pituitary"] * 2
Y_PRED = [
    *["glioma", "glioma", "glioma", "meningioma"],
    *["glioma", "meningioma", "meningioma", "pituitary"],
    *["pituitary", "pituitary"],
]


def test_confusion_matrix_annotations_and_png(tmp_path):
    fig = plot_confusion_matrix(Y_TRUE, Y_PRED)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "glioma",
        "meningioma",
        "pituitary",
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "glioma",
        "meningioma",
        "pituitary",
    ]
    assert ax.get_xlabel() == "Predicted label"
    assert ax.get_ylabel() == "True label"
    texts = [t.get_text() for t in ax.texts]
    # Row-major cells: count, then percent of the true label's row.
    assert texts[:3] == ["3\n75.0%", "1\n25.0%", "0\n0.0%"]
    assert texts[3:6] == ["1\n25.0%", "2\n50.0%", "1\n25.0%"]
    assert texts[6:] == ["0\n0.0%", "0\n0.0%", "2\n100.0%"]
    np.testing.assert_allclose(
        ax.images[0].get_array(),
        [[0.75, 0.25, 0], [0.25, 0.5, 0.25], [0, 0, 1]],
    )
    path = tmp_path / "confusion.png"
    fig.savefig(path)
    assert_png(path)


def test_confusion_matrix_counts_only_pred_normalisation_and_given_ax(tmp_path):
    counts = plot_confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], normalize=None)
    assert [t.get_text() for t in counts.axes[0].texts] == ["1", "1", "0", "2"]
    assert counts.axes[0].get_title() == "Confusion matrix"

    fig, (left, right) = plt.subplots(1, 2)
    returned = plot_confusion_matrix(
        [0, 0, 1, 1], [0, 1, 1, 1], normalize="pred", ax=right, title="Fold 1"
    )
    assert returned is fig
    assert right.get_title() == "Fold 1"
    assert not left.texts
    # Column 1 holds 1 + 2 predictions.
    assert [t.get_text() for t in right.texts] == [
        "1\n100.0%",
        "1\n33.3%",
        "0\n0.0%",
        "2\n66.7%",
    ]
    path = tmp_path / "two.png"
    fig.savefig(path)
    assert_png(path)


def test_confusion_matrix_labels_order_and_absent_class():
    fig = plot_confusion_matrix([1, 1, 0], [1, 0, 0], labels=[1, 0, 2])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "0", "2"]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "1\n50.0%"  # true 1, predicted 1
    assert texts[6:] == ["0\n0.0%"] * 3  # no sample of class 2: no division by 0


@pytest.mark.parametrize("normalize", ["rows", ["true"], 1])
def test_confusion_matrix_bad_normalize(normalize):
    with pytest.raises(ValueError, match="normalize must be 'true', 'pred', 'all'"):
        plot_confusion_matrix([0, 1], [0, 1], normalize=normalize)


def _skorch_like_history(n_epochs=6):
    history = []
    for epoch in range(1, n_epochs + 1):
        history.append(
            {
                "epoch": epoch,
                "batches": [{"train_loss": 1.0 / epoch, "train_batch_size": 8}],
                "train_loss": 1.0 / epoch,
                "train_loss_best": True,
                "valid_loss": 1.2 / epoch + 0.05,
                "valid_loss_best": epoch < 5,
                "train_acc": 0.5 + 0.07 * epoch,
                "valid_acc": 0.45 + 0.06 * epoch,
                "lr": 1e-3 * 0.5 ** (epoch // 3),
                "dur": 0.5,
            }
        )
    return history


def test_training_curves_panels_and_png(tmp_path):
    fig = plot_training_curves(_skorch_like_history(), title="ResNet50")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Loss", "Accuracy", "Learning rate"]
    loss, accuracy, lr = fig.axes
    assert [line.get_label() for line in loss.lines] == ["train_loss", "valid_loss"]
    assert [line.get_label() for line in accuracy.lines] == ["train_acc", "valid_acc"]
    assert [line.get_label() for line in lr.lines] == ["lr"]
    assert lr.get_yscale() == "log"
    np.testing.assert_allclose(loss.lines[0].get_xdata(), np.arange(1, 7))
    np.testing.assert_allclose(loss.lines[0].get_ydata(), 1.0 / np.arange(1, 7))
    assert fig.get_suptitle() == "ResNet50"
    path = tmp_path / "curves.png"
    fig.savefig(path)
    assert_png(path)


def test_training_curves_subset_gaps_and_keras_dict(tmp_path):
    history = [
        {"train_loss": 0.9},
        {"train_loss": 0.7, "valid_loss": 0.8},
        {"train_loss": 0.5, "valid_loss": 0.6},
    ]
    fig = plot_training_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["Loss"]
    valid = fig.axes[0].lines[1]
    assert np.isnan(valid.get_ydata()[0])
    np.testing.assert_allclose(valid.get_ydata()[1:], [0.8, 0.6])

    keras = {
        "loss": [0.9, 0.6, 0.5],
        "accuracy": [0.6, 0.7, 0.8],
        "val_loss": [1.0, 0.8, 0.7],
        "val_accuracy": [0.55, 0.65, 0.7],
    }
    fig = plot_training_curves(keras)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]
    assert [line.get_label() for line in fig.axes[1].lines] == [
        "accuracy",
        "val_accuracy",
    ]
    path = tmp_path / "keras.png"
    fig.savefig(path)
    assert_png(path)


def test_training_curves_given_axes():
    fig, axes = plt.subplots(2, 1)
    losses = [{"train_loss": 0.9, "valid_loss": 1.0}, {"train_loss": 0.5}]
    returned = plot_training_curves(losses, axes=axes[:1])
    assert returned is fig
    assert len(axes[0].lines) == 2 and not axes[1].lines
    with pytest.raises(ValueError, match=r"axes must hold 3 Axes"):
        plot_training_curves(_skorch_like_history(), axes=axes)


def test_training_curves_errors():
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_curves([])
    with pytest.raises(ValueError, match=r"no loss, accuracy .* keys are \['dur'"):
        plot_training_curves([{"dur": 1.0, "epoch": 1}])
    with pytest.raises(TypeError, match="list of per-epoch dicts"):
        plot_training_curves([0.5, 0.4])
    with pytest.raises(ValueError, match="same length"):
        plot_training_curves({"loss": [1, 2], "val_loss": [1]})


def test_training_curves_leave_out_a_constant_learning_rate():
    history = [
        {"train_loss": 0.9, "train_acc": 0.5, "lr": 1e-3},
        {"train_loss": 0.7, "train_acc": 0.6, "lr": 1e-3},
        {"train_loss": 0.6, "train_acc": 0.7, "lr": 1e-3},
    ]
    fig = plot_training_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]
    assert fig.get_supxlabel() == "constant over the epochs: lr = 0.001"
    # a constant accuracy is left out too; a single epoch is never "constant"
    flat = [{**row, "train_acc": 0.5} for row in history]
    assert [ax.get_title() for ax in plot_training_curves(flat).axes] == ["Loss"]
    one = plot_training_curves(history[:1])
    assert [ax.get_title() for ax in one.axes] == ["Loss", "Accuracy", "Learning rate"]
    # every panel flat: all are kept (nothing else to show)
    same = [{"train_loss": 0.5, "lr": 0.1}] * 2
    fig = plot_training_curves(same)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Learning rate"]
    assert fig.get_supxlabel() == ""
    plt.close("all")
