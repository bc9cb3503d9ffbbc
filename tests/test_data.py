"""Data folders, splits, bad input, and image modes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transferlab.data import Preprocessing, eval_transform, load_image_folder, load_rgb
from transferlab.data.demo import write_digits

from .conftest import make_dataset, make_images


@pytest.mark.parametrize("val_name", ["validation", "val", "valid"])
def test_train_validation_layouts(tmp_path, val_name):
    root = make_dataset(tmp_path / "d", n_train=5, n_val=3, layout=f"train/{val_name}")
    make_images(root / "test" / "cats", (1, 2, 3), 2, seed=9)
    splits = load_image_folder(root)
    assert splits.classes == ["cats", "dogs"]
    assert splits.layout == f"train/{val_name}"
    assert len(splits.train) == 10 and len(splits.validation) == 6
    assert splits.test_dir == str(root / "test")
    assert not any("/test/" in s.path for s in splits.train + splits.validation)


def test_flat_layout_is_split_stratified_and_reproducibly(tmp_path):
    root = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=8, n_val=2, layout="flat")
    a = load_image_folder(root, val_split=0.2, seed=1)
    b = load_image_folder(root, val_split=0.2, seed=1)
    c = load_image_folder(root, val_split=0.2, seed=2)
    assert a.layout == "split"
    assert a.counts()["validation"] == {"birds": 2, "cats": 2, "dogs": 2}
    assert [s.path for s in a.validation] == [s.path for s in b.validation]
    assert [s.path for s in a.validation] != [s.path for s in c.validation]
    assert not {s.path for s in a.train} & {s.path for s in a.validation}


def test_train_without_validation_folder_is_split(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=10, n_val=1)
    import shutil

    shutil.rmtree(root / "validation")
    splits = load_image_folder(root, val_split=0.3)
    assert splits.layout == "split" and len(splits.validation) == 6


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")


def test_no_class_folders(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="No class folders"):
        load_image_folder(tmp_path / "d")


def test_empty_class_is_named(tmp_path):
    root = make_dataset(tmp_path / "d")
    (root / "train" / "birds").mkdir()
    (root / "validation" / "birds").mkdir()
    with pytest.raises(ValueError, match="birds.*no readable images"):
        load_image_folder(root)


def test_single_class(tmp_path):
    make_images(tmp_path / "d" / "cats", (1, 2, 3), 4, seed=0)
    with pytest.raises(ValueError, match="at least 2 class"):
        load_image_folder(tmp_path / "d")


def test_train_validation_classes_differ(tmp_path):
    root = make_dataset(tmp_path / "d")
    make_images(root / "train" / "birds", (0, 200, 0), 3, seed=5)
    with pytest.raises(ValueError, match=r"only in train: \['birds'\]"):
        load_image_folder(root)


def test_bad_val_split(tmp_path):
    root = make_dataset(tmp_path / "d", layout="flat")
    with pytest.raises(ValueError, match="val_split"):
        load_image_folder(root, val_split=1.5)


def test_corrupt_and_non_image_files_are_skipped_and_reported(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=4, n_val=2)
    (root / "train" / "cats" / "notes.txt").write_text("hello")
    (root / "train" / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = root / "train" / "dogs" / "img_000.png"
    (root / "train" / "dogs" / "truncated.png").write_bytes(good.read_bytes()[:60])
    splits = load_image_folder(root)
    reasons = {p.split("/")[-1]: r for p, r in ((s["path"], s["reason"]) for s in splits.skipped)}
    assert set(reasons) == {"notes.txt", "broken.jpg", "truncated.png"}
    assert "not an image file" in reasons["notes.txt"]
    assert len(splits.train) == 8
    assert splits.report()["skipped"] == splits.skipped


def _roundtrip(tmp_path, img, name):
    path = tmp_path / name
    img.save(path)
    return load_rgb(path)


def test_image_modes_become_rgb(tmp_path):
    gray = _roundtrip(tmp_path, Image.new("L", (4, 4), 128), "g.png")
    assert gray.mode == "RGB" and gray.getpixel((0, 0)) == (128, 128, 128)
    rgba = _roundtrip(tmp_path, Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "a.png")
    assert rgba.getpixel((0, 0)) == (255, 255, 255)  # fully transparent -> white background
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert _roundtrip(tmp_path, pal, "p.png").getpixel((0, 0)) == (10, 20, 30)
    cmyk = _roundtrip(tmp_path, Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "c.jpg")
    r, g, b = cmyk.getpixel((0, 0))
    assert cmyk.mode == "RGB" and r > 200 and g < 60 and b < 60
    sixteen = Image.fromarray(np.full((4, 4), 65535 // 2, dtype=np.uint16))
    assert _roundtrip(tmp_path, sixteen, "s.png").getpixel((0, 0))[0] in (127, 128)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "r.jpg"
    img.save(path, exif=exif)
    assert load_rgb(path).size == (10, 30)


def test_eval_transform_follows_preprocessing():
    pre = Preprocessing(32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic", 0.875, "center")
    x = eval_transform(pre)(Image.new("RGB", (64, 48), (255, 255, 255)))
    assert x.shape == (3, 32, 32)
    assert float(x.min()) == pytest.approx(1.0)  # white -> (1 - 0.5) / 0.5
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def test_demo_digits_folder(tmp_path):
    root = write_digits(tmp_path / "digits")
    splits = load_image_folder(root)
    assert splits.classes == [str(d) for d in range(10)]
    assert len(splits.train) + len(splits.validation) == 1797
    assert 355 <= len(splits.validation) <= 362
    # a second call reuses the folder, and the split is fixed
    assert write_digits(tmp_path / "digits") == root
    assert load_image_folder(root).counts() == splits.counts()


def test_large_jpegs_decode_at_reduced_scale_but_cover_the_resize(tmp_path):
    from transferlab.data.images import simplejpeg

    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1000), (200, 100, 50)).save(path, quality=90)
    assert load_rgb(path).size == (2000, 1000)
    # libjpeg-turbo's scales are n/8: 3/8 keeps the short side >= 256 (2/8 would make it 250); Pillow alone
    # only has 1/2, 1/4 and 1/8 and would decode 1000 x 500
    assert load_rgb(path, min_size=256).size == ((750, 375) if simplejpeg else (1000, 500))
    assert load_rgb(path, min_size=100).size == (250, 125)  # 1/8
    exif = tmp_path / "exif.jpg"  # photos with an EXIF block go through Pillow (orientation): same scale rule
    exif_data = Image.Exif()
    exif_data[0x0112] = 1
    Image.new("RGB", (2000, 1000), (200, 100, 50)).save(exif, quality=90, exif=exif_data)
    assert load_rgb(exif, min_size=256).size == (1000, 500)
    png = tmp_path / "big.png"
    Image.new("RGB", (600, 300)).save(png)
    assert load_rgb(png, min_size=100).size == (600, 300)  # only JPEG has reduced-scale decoding


def test_hostile_folder_contents(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=3, n_val=2)
    cats = root / "train" / "cats"
    (cats / "empty.jpg").write_bytes(b"")
    (cats / ".DS_Store").write_bytes(b"\x00\x01")
    (cats / "._img_000.png").write_bytes(b"resource fork")
    (root / "train" / "__MACOSX" / "cats").mkdir(parents=True)
    (root / "train" / "__MACOSX" / "cats" / "._x.png").write_bytes(b"junk")
    (cats / "Thumbs.db").write_bytes(b"junk")
    korean = root / "train" / "고양이"
    korean.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(korean / "001.jpg")
    (root / "validation" / "고양이").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(root / "validation" / "고양이" / "002.jpg")
    (cats / "loop").symlink_to(cats, target_is_directory=True)  # a symlink loop
    full = tmp_path / "full.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(full, quality=95)
    (cats / "truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    bomb = cats / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 Mpx: over PIL's decompression-bomb threshold
    splits = load_image_folder(root)
    assert splits.classes == ["cats", "dogs", "고양이"]
    reasons = {s["path"].split("/")[-1]: s["reason"] for s in splits.skipped}
    assert set(reasons) == {"empty.jpg", "bomb.png", "truncated.jpg"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "0 bytes" in reasons["empty.jpg"] and "too large" in reasons["bomb.png"]
    assert len([s for s in splits.train if s.label == 0]) == 3  # the loop is not followed twice


def test_decoded_cache_gives_the_same_tensors_and_is_shared(tmp_path):
    import torch
    from torch.utils.data import DataLoader

    from transferlab.data.datasets import ImageListDataset
    from transferlab.data.decoded import DecodedCache

    root = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    Image.new("RGB", (90, 40), (10, 120, 200)).save(root / "train" / "cats" / "wide.jpg")
    samples = load_image_folder(root).train
    for pre in (Preprocessing(32, (0.5,) * 3, (0.5,) * 3, "bicubic", 0.875, "center"),
                Preprocessing(32, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")):
        plain = ImageListDataset(samples, eval_transform(pre))
        cache = DecodedCache(samples, pre, tmp_path / "cache")
        cached = ImageListDataset(samples, eval_transform(pre, resized=True), cache=cache)
        loader = DataLoader(cached, batch_size=4, num_workers=2)  # workers fill the shared file
        first = torch.cat([x for x, _ in loader])
        assert cache.filled == len(samples)
        second = torch.cat([x for x, _ in loader])
        expected = torch.stack([plain[i][0] for i in range(len(samples))])
        assert torch.equal(first, second)
        assert torch.allclose(first, expected, atol=1e-6)


def test_image_loader_uses_workers_only_while_decoding(tmp_path):
    import torch

    from transferlab.data.datasets import ImageListDataset, ImageLoader
    from transferlab.data.decoded import DecodedCache
    from transferlab.data.transforms import BatchTransform, train_uint8_transform

    root = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    (root / "train" / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 100)  # unreadable
    samples = load_image_folder(root).train
    samples.append(type(samples[0])(str(root / "train" / "cats" / "broken.jpg"), 0))
    pre = Preprocessing(32, (0.5,) * 3, (0.5,) * 3, "bilinear", 1.0, "squash")
    cache = DecodedCache(samples, pre, tmp_path / "cache")
    dataset = ImageListDataset(samples, train_uint8_transform(pre, "course", resized=True), cache=cache)
    loader = ImageLoader(dataset, batch_size=4, shuffle=True, num_workers=2,
                         worker_transform=BatchTransform(pre, "course"))
    assert not loader.in_process
    first = [x for x, _ in loader]  # (the skip warning is printed by the worker that met the file)
    assert all(x.dtype == torch.float32 for x in first)  # the decoding epoch: workers augmented the batches
    assert cache.complete and loader.in_process  # the broken file is remembered, not retried every epoch
    second = [x for x, _ in loader]
    assert all(x.dtype == torch.uint8 for x in second) and sum(len(x) for x in second) == len(samples)


def test_palette_with_transparency(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 255, 0, 10, 20, 30] + [0] * 762)
    pal.info["transparency"] = 0
    path = tmp_path / "t.png"
    pal.save(path, transparency=0)
    assert load_rgb(path).getpixel((0, 0)) == (255, 255, 255)  # the transparent index shows the white background


def test_a_file_that_breaks_mid_run_is_skipped_not_fatal(tmp_path):
    from transferlab.data.datasets import ImageListDataset

    root = make_dataset(tmp_path / "d", n_train=3, n_val=1)
    samples = load_image_folder(root).train
    pre = Preprocessing(16, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")
    ds = ImageListDataset(samples, eval_transform(pre))
    open(samples[0].path, "wb").write(b"broken after the scan")
    with pytest.warns(UserWarning, match="Skipping image"):
        x, label = ds[0]
    assert x.shape == (3, 16, 16) and label == samples[1].label


def test_plain_jpeg_fast_path_matches_the_pillow_path_and_hands_odd_files_to_pillow(tmp_path):
    import numpy as np
    import torch

    from transferlab.data.images import decode_plain_jpeg
    from transferlab.data.transforms import load_rgb_tensor, pil_to_chw

    pytest.importorskip("simplejpeg")
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(photo, quality=90)
    data = photo.read_bytes()
    fast = decode_plain_jpeg(data, 150)
    assert fast is not None and fast.shape == (150, 200, 3)  # 1/2 scale
    with Image.open(photo) as im:  # Pillow at the same scale: the same libjpeg-turbo, within rounding
        im.draft("RGB", (150, 150))
        slow = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert slow.shape == fast.shape and np.abs(slow - fast).mean() < 2.0
    # the tensor loader and the PIL loader give the same pixels (cached == uncached relies on it)
    assert torch.equal(load_rgb_tensor(photo, 150), pil_to_chw(load_rgb(photo, min_size=150)))
    # a tar member or an upload (bytes, file object) decodes exactly like the file on disk
    with photo.open("rb") as f:
        for other in (load_rgb(data, min_size=150), load_rgb(f, min_size=150)):
            assert torch.equal(pil_to_chw(other), pil_to_chw(load_rgb(photo, min_size=150)))
    gray = tmp_path / "gray.jpg"
    Image.new("L", (40, 30), 77).save(gray)
    assert load_rgb(gray).mode == "RGB" and load_rgb(gray).getpixel((0, 0)) == (77, 77, 77)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(cmyk)
    assert decode_plain_jpeg(cmyk.read_bytes()) is None  # Pillow converts CMYK
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    assert decode_plain_jpeg(truncated.read_bytes()) is None  # corrupt: Pillow reports it
    with pytest.raises(OSError):
        load_rgb(truncated)


def test_link_class_folders_makes_a_training_tree_without_copies(tmp_path):
    from transferlab.data.folder import link_class_folders

    source = tmp_path / "cifar"
    for split in ("train", "test"):
        for name in ("cat", "dog", "ship"):
            make_images(source / split / name, (10, 20, 30), 2, seed=1)
    root = link_class_folders(source, tmp_path / "catdog", ["cat", "dog"])
    splits = load_image_folder(root)
    assert splits.classes == ["cat", "dog"] and len(splits.train) == 4 and len(splits.validation) == 4
    assert (root / "train" / "cat").is_symlink()
    assert sorted(p.name for p in (link_class_folders(source, tmp_path / "all") / "validation").iterdir()) == [
        "cat", "dog", "ship"]
    with pytest.raises(ValueError, match="does not exist"):
        link_class_folders(source, tmp_path / "bad", ["cow"])


def test_class_folders_named_alike_in_nfd_and_nfc_are_one_class(tmp_path):
    """macOS writes 'café' decomposed (NFD), other systems composed (NFC): copied together they are one class,
    and labels are NFC whatever the source (folder or index file)."""
    import unicodedata

    from transferlab.data.folder import load_csv, load_folders

    nfd, nfc = unicodedata.normalize("NFD", "café"), "café"
    assert nfd != nfc
    make_images(tmp_path / "flat" / nfd, (200, 30, 30), 3, seed=1)
    make_images(tmp_path / "flat" / nfc, (200, 30, 30), 3, seed=2)
    make_images(tmp_path / "flat" / "tea", (30, 30, 200), 6, seed=3)
    splits = load_folders(tmp_path / "flat", val_split=0.34)
    assert splits.classes == [nfc, "tea"]
    assert sum(1 for s in splits.train + splits.validation if s.label == 0) == 6
    index = tmp_path / "index.csv"
    paths = sorted((tmp_path / "flat").rglob("*.png"))
    rows = [f"{p},{'tea' if p.parent.name == 'tea' else nfd if i % 2 else nfc}" for i, p in enumerate(paths)]
    index.write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert load_csv(index, val_split=0.34).classes == [nfc, "tea"]
