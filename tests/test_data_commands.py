"""`transferlab data info` and `data get` (downloads served from 127.0.0.1, resumable, verified)."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data import download as dl

from .conftest import make_dataset

runner = CliRunner()


def test_data_info_reports_counts_sizes_duplicates_and_leakage(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    shutil.copy(root / "train" / "cats" / "img_000.png", root / "validation" / "cats" / "leak.png")
    shutil.copy(root / "train" / "cats" / "img_001.png", root / "train" / "dogs" / "mislabeled.png")
    (root / "train" / "cats" / "bad.jpg").write_bytes(b"nope")
    result = runner.invoke(app, ["data", "info", str(root), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["counts"]["train"] == {"cats": 6, "dogs": 7}
    assert info["image_size"]["width"] == {"min": 24, "median": 24, "max": 24, "mean": 24.0}
    assert info["leakage"] == 1 and len(info["duplicates"]) == 2
    assert any("both train and validation" in w for w in info["warnings"])
    assert any("different labels" in w for w in info["warnings"])
    assert info["skipped"][0]["path"].endswith("bad.jpg")
    table = runner.invoke(app, ["data", "info", str(root)])
    assert table.exit_code == 0 and "Warning" in table.output


def test_imbalance_warning(tmp_path):
    root = make_dataset(tmp_path / "d", n_train=3, n_val=2)
    for i in range(10):
        shutil.copy(root / "train" / "dogs" / "img_000.png", root / "train" / "dogs" / f"x{i}.png")
    info = json.loads(runner.invoke(app, ["data", "info", str(root), "--json"]).stdout)
    assert any("imbalance" in w for w in info["warnings"])


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (like real download servers) and records requests."""

    requests: list[str | None] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        type(self).requests.append(header)
        start = int(header.split("=")[1].split("-")[0]) if header else 0
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(served), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _RangeHandler.requests = []
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _archive(served: Path, tmp_path: Path) -> Path:
    src = make_dataset(tmp_path / "tiny_set", n_train=3, n_val=2)
    archive = served / "tiny_set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in src.rglob("*.png"):
            zf.write(f, f.relative_to(tmp_path))
    return archive


def test_data_get_downloads_verifies_and_extracts(server, tmp_path, monkeypatch):
    served, url = server
    archive = _archive(served, tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(dl.DATASETS, "tiny", dl.DatasetInfo("tiny", f"{url}/tiny_set.zip", "tiny_set.zip",
                                                             size=archive.stat().st_size, md5=md5))
    out = tmp_path / "data"
    result = runner.invoke(app, ["data", "get", "tiny", "--dir", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    folder = Path(result.output.strip().splitlines()[-1].split("tiny: ")[1])
    assert (folder / "train" / "cats").is_dir()
    recorded = (out / "tiny_set.zip.sha256").read_text().split()[0]  # the checksum of the verified archive
    assert recorded == hashlib.sha256(archive.read_bytes()).hexdigest()
    # a second call finds the verified file and makes no request
    assert runner.invoke(app, ["data", "get", "tiny", "--dir", str(out), "--quiet"]).exit_code == 0
    assert len(_RangeHandler.requests) == 1


def test_download_resumes_a_partial_file(server, tmp_path, monkeypatch):
    served, url = server
    archive = _archive(served, tmp_path)
    data = archive.read_bytes()
    info = dl.DatasetInfo("tiny", f"{url}/tiny_set.zip", "tiny_set.zip", size=len(data),
                          sha256=hashlib.sha256(data).hexdigest())
    out = tmp_path / "data"
    out.mkdir()
    (out / "tiny_set.zip.part").write_bytes(data[:1000])
    path = dl.download(info, out, quiet=True)
    assert path.read_bytes() == data
    assert _RangeHandler.requests == ["bytes=1000-"]


def test_bad_checksum_is_refused(server, tmp_path):
    served, url = server
    _archive(served, tmp_path)
    info = dl.DatasetInfo("tiny", f"{url}/tiny_set.zip", "tiny_set.zip", md5="0" * 32)
    with pytest.raises(dl.DownloadError, match="does not match the published md5"):
        dl.download(info, tmp_path / "data", quiet=True)
    assert not (tmp_path / "data" / "tiny_set.zip").exists()


def test_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setitem(dl.DATASETS, "gone", dl.DatasetInfo("gone", "http://127.0.0.1:9/x.zip", "x.zip"))
    result = runner.invoke(app, ["data", "get", "gone", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "download the file by hand" in text and str(tmp_path / "x.zip") in text


def test_known_data_sets_have_official_urls_and_checks():
    assert dl.DATASETS["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert dl.DATASETS["cats_and_dogs_filtered"].url.endswith("mledu-datasets/cats_and_dogs_filtered.zip")
    assert all(d.size for d in dl.DATASETS.values())


def test_data_info_names_the_identical_files(tmp_path):
    import shutil

    from .conftest import make_dataset

    data = make_dataset(tmp_path / "d", n_train=4, n_val=2)
    copy = data / "validation" / "cats" / "copy_of_train_0.png"
    shutil.copy(data / "train" / "cats" / "img_000.png", copy)
    result = runner.invoke(app, ["data", "info", str(data)], env={"COLUMNS": "400"})  # paths are long
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "groups of identical images: 1" in flat and "copy_of_train_0.png (validation, cats)" in flat
    assert "img_000.png (train, cats)" in flat and "appear in both train and validation" in flat


def test_data_info_on_cifar_batches_reads_cleanly(tmp_path):
    from .test_sources import _fake_cifar

    folder = _fake_cifar(tmp_path / "cifar-10-batches-py")
    result = runner.invoke(app, ["data", "info", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "))" not in flat and f"{folder} (cifar-batches: train batches, test batch as validation)" in flat
