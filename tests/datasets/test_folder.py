import os
import warnings

import numpy as np
import pytest
from PIL import Image

from skmedimg.datasets import load_image_folder
from skmedimg.utils import read_images


def _image(path, size=(10, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=128).save(path)


def _tree(root, files):
    for name in files:
        path = root / name
        if name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif")):
            _image(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not an image")
    return root


def test_basic_layout(tmp_path):
    # created out of order: the result is sorted anyway
    _tree(tmp_path, ["pneumonia/z.png", "normal/b.jpg", "normal/a.png", "covid/c.png"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_image_folder(tmp_path)
    assert data.target_names == ["covid", "normal", "pneumonia"]
    assert data.target.tolist() == [0, 1, 1, 2]
    assert data.target.dtype == np.int64
    # labels: each file's class folder, ready to be a classifier's y
    assert data.labels.tolist() == ["covid", "normal", "normal", "pneumonia"]
    assert [os.path.basename(os.path.dirname(f)) for f in data.filenames] == list(
        data.labels
    )
    names = [os.path.relpath(f, tmp_path) for f in data.filenames]
    assert names == [
        os.path.join("covid", "c.png"),
        os.path.join("normal", "a.png"),
        os.path.join("normal", "b.jpg"),
        os.path.join("pneumonia", "z.png"),
    ]
    assert all(os.path.isabs(f) for f in data.filenames)
    assert data.skipped.shape == (0,)
    assert "4 images in 3 classes" in data.DESCR
    assert "normal 2" in data.DESCR


def test_str_path_and_relative_path(tmp_path, monkeypatch):
    _tree(tmp_path, ["data/a/1.png", "data/b/2.png"])
    monkeypatch.chdir(tmp_path)
    data = load_image_folder("data")
    assert data.filenames[0] == str(tmp_path / "data" / "a" / "1.png")
    assert len(data.filenames) == 2


def test_filenames_feed_the_reader(tmp_path):
    _tree(tmp_path, ["a/1.png", "a/2.png", "b/3.png"])
    data = load_image_folder(tmp_path)
    X = read_images(data.filenames, image_size=16)
    assert X.shape == (3, 16, 16, 1)


def test_hidden_and_clutter_ignored_silently(tmp_path):
    _tree(
        tmp_path,
        [
            "a/1.png",
            "a/.DS_Store",
            "a/.hidden.png",
            "a/Thumbs.db",
            "a/.ipynb_checkpoints/1-checkpoint.png",
            "b/2.png",
            ".git/config",
            ".cache/x.png",
            "__MACOSX/a/._1.png",
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_image_folder(tmp_path)
    assert data.target_names == ["a", "b"]
    assert [os.path.basename(f) for f in data.filenames] == ["1.png", "2.png"]
    assert len(data.skipped) == 0


def test_non_image_files_are_reported(tmp_path):
    _tree(
        tmp_path,
        ["a/1.png", "a/notes.txt", "b/2.png", "b/labels.csv", "README.md"],
    )
    with pytest.warns(UserWarning, match=r"skipped 3 file\(s\)") as record:
        data = load_image_folder(tmp_path)
    message = str(record[0].message)
    for name in ["notes.txt", "labels.csv", "README.md"]:
        assert name in message
    assert sorted(os.path.basename(f) for f in data.skipped) == [
        "README.md",
        "labels.csv",
        "notes.txt",
    ]
    assert len(data.filenames) == 2


def test_warning_list_is_truncated(tmp_path):
    _tree(tmp_path, ["a/1.png", "b/2.png"] + [f"a/f{i:02d}.txt" for i in range(15)])
    with pytest.warns(UserWarning, match="and 5 more"):
        data = load_image_folder(tmp_path)
    assert len(data.skipped) == 15


def test_extension_matching_is_case_insensitive(tmp_path):
    _tree(tmp_path, ["a/1.PNG", "a/2.Jpeg", "b/3.TIF"])
    data = load_image_folder(tmp_path)
    assert len(data.filenames) == 3


@pytest.mark.parametrize("extensions", ["png", ".png", [".PNG"], ("png",)])
def test_extensions_argument(tmp_path, extensions):
    _tree(tmp_path, ["a/1.png", "a/2.jpg", "b/3.png"])
    with pytest.warns(UserWarning, match="2.jpg"):
        data = load_image_folder(tmp_path, extensions=extensions)
    assert [os.path.basename(f) for f in data.filenames] == ["1.png", "3.png"]
    assert [os.path.basename(f) for f in data.skipped] == ["2.jpg"]


@pytest.mark.parametrize("extensions", [[], [""], ["."], [3]])
def test_bad_extensions_argument(tmp_path, extensions):
    _tree(tmp_path, ["a/1.png"])
    with pytest.raises(ValueError, match="extensions must"):
        load_image_folder(tmp_path, extensions=extensions)


def test_nested_folders_belong_to_their_class(tmp_path):
    _tree(tmp_path, ["a/x/1.png", "a/0.png", "b/y/z/2.png"])
    data = load_image_folder(tmp_path)
    assert data.target.tolist() == [0, 0, 1]
    assert [os.path.relpath(f, tmp_path) for f in data.filenames] == [
        os.path.join("a", "0.png"),
        os.path.join("a", "x", "1.png"),
        os.path.join("b", "y", "z", "2.png"),
    ]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_symbolic_links_back_into_the_data_set_are_not_followed(tmp_path):
    data_root = _tree(tmp_path / "data", ["a/0.png", "b/1.png", "b/2.png"])
    outside = _tree(tmp_path / "scans", ["3.png"])
    os.symlink(data_root, data_root / "a" / "loop")  # the root: a loop
    os.symlink(data_root / "b", data_root / "a" / "other")  # another class
    os.symlink(data_root / "a", data_root / "a" / "self")  # itself
    os.symlink(outside, data_root / "b" / "more")  # elsewhere: followed
    with pytest.warns(UserWarning, match="did not follow 3 symbolic link"):
        data = load_image_folder(data_root)
    names = [os.path.relpath(f, data_root) for f in data.filenames]
    assert names == [
        os.path.join("a", "0.png"),
        os.path.join("b", "1.png"),
        os.path.join("b", "2.png"),
        os.path.join("b", "more", "3.png"),
    ]
    assert data.target.tolist() == [0, 1, 1, 1]


def test_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="image folder not found") as info:
        load_image_folder(missing)
    assert str(missing) in str(info.value)


def test_path_is_a_file(tmp_path):
    _image(tmp_path / "x.png")
    with pytest.raises(NotADirectoryError, match="got a file"):
        load_image_folder(tmp_path / "x.png")


def test_no_class_folders(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)


def test_images_directly_in_root(tmp_path):
    _tree(tmp_path, ["1.png", "2.png", "notes.txt"])
    with pytest.raises(ValueError, match=r"holds 2 image file\(s\) directly"):
        load_image_folder(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    _tree(tmp_path, ["a/1.png", "c/readme.txt"])
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match=r"2 class folder\(s\)") as info:
        load_image_folder(tmp_path)
    assert info.value.args[0].endswith(": b, c. Remove them or add images.")


def test_single_class_warns(tmp_path):
    _tree(tmp_path, ["only/1.png", "only/2.png"])
    with pytest.warns(UserWarning, match="single class folder"):
        data = load_image_folder(tmp_path)
    assert data.target_names == ["only"]
    assert data.target.tolist() == [0, 0]


def test_brain_tumor_training(brain_training):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_image_folder(brain_training)
    assert data.target_names == ["glioma", "meningioma", "notumor", "pituitary"]
    assert len(data.filenames) == 5708
    assert np.bincount(data.target).tolist() == [1321, 1339, 1591, 1457]
    assert len(data.skipped) == 0
    assert len(set(data.filenames)) == 5708
    # each file sits in the folder of its class
    parents = [os.path.basename(os.path.dirname(f)) for f in data.filenames]
    assert parents == [data.target_names[t] for t in data.target]
    # deterministic
    again = load_image_folder(brain_training)
    np.testing.assert_array_equal(again.filenames, data.filenames)


def test_brain_tumor_testing(brain_testing):
    data = load_image_folder(brain_testing)
    assert np.bincount(data.target).tolist() == [300, 306, 405, 300]
