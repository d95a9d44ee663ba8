"""``jaxnets pack``: an image folder or a built-in data set into a packed record file."""

import numpy as np
import pytest

import jaxnets as jn
from jaxnets import cli

pytest.importorskip("grain", reason="grain is in jaxnets' dependencies")


def test_pack_a_folder_and_a_data_set(tmp_path, capsys):
    train, _ = jn.data.load_digits()
    jn.data.write_image_folder(tmp_path / "train", train.take(slice(0, 50)))
    out = tmp_path / "folder.array_record"
    assert (
        cli.main(
            [
                "pack",
                "--folder",
                str(tmp_path / "train"),
                "--size",
                "8,8",
                "--channels",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "packed 50 examples of shape (8, 8, 1)" in capsys.readouterr().out
    records = jn.data.RecordFile(out)
    folder = jn.data.ImageFolder(tmp_path / "train", size=(8, 8), channels=1)
    np.testing.assert_array_equal(records[7][0], folder[7][0])
    out2 = tmp_path / "digits_test.array_record"
    assert (
        cli.main(["pack", "--dataset", "digits", "--split", "test", "--out", str(out2), "--quiet"])
        == 0
    )
    packed = jn.data.RecordFile(out2)
    assert len(packed) == 899 and packed.shape == (8, 8, 1) and packed.dtype == np.uint8


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--size", "8,8"], ["--folder", "--dataset"]),
        (["--dataset", "digits", "--size", "8,8"], ["--size", "does nothing"]),
        (["--folder", "nowhere"], ["--size"]),
        (["--folder", "nowhere", "--size", "8,8"], ["--folder", "not a folder"]),
    ],
)
def test_bad_pack_commands_change_nothing(tmp_path, capsys, argv, words):
    out = tmp_path / "x.array_record"
    with pytest.raises(SystemExit) as info:
        cli.main(["pack", *argv, "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert list(tmp_path.iterdir()) == []


def test_pack_never_replaces_a_file(tmp_path, capsys):
    out = tmp_path / "x.array_record"
    out.write_bytes(b"keep me")
    with pytest.raises(SystemExit):
        cli.main(["pack", "--dataset", "digits", "--out", str(out)])
    assert out.read_bytes() == b"keep me" and "exists" in capsys.readouterr().err
