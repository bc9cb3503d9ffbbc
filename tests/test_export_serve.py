"""Export (ONNX, int8, TorchScript) with parity checks, the torch-free reader, and the web service."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from transferlab.cli import app

from .browser import browser_page, chromium_or_skip
from .browser import running_server as _running

runner = CliRunner()
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tiny_run):
    """The shared 3-class run (conftest.tiny_run), as (run folder, data root)."""
    root, out = tiny_run
    return out, root


def _png(color=(200, 50, 40), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_onnx_export_is_parity_checked_and_read_without_torch(run, tmp_path):
    out, root = run
    target = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(out), "--format", "onnx", "--out", str(target), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["parity"]["top1_agreement"] == 1.0 and report["parity"]["max_abs_logit_diff"] <= 1e-3
    assert report["opset"] >= 17 and report["dynamic_batch"] and "validation images" in report["parity"]["inputs"]
    assert {p.name for p in target.iterdir()} >= {"model.onnx", "labels.json", "preprocessing.json",
                                                  "export_report.json", "predict_onnx.py"}
    import onnxruntime as ort

    session = ort.InferenceSession(str(target / "model.onnx"))
    assert session.run(None, {"input": np.zeros((5, 3, 32, 32), np.float32)})[0].shape == (5, 3)  # any batch size
    images = sorted((root / "validation").rglob("*.png"))
    plain = runner.invoke(app, ["predict", str(out), *map(str, images), "--json", "--engine", "fp32"])
    onnx = runner.invoke(app, ["predict", str(target), *map(str, images), "--json"])
    assert onnx.exit_code == 0, onnx.output
    top1 = lambda text: [r["top"][0]["label"] for r in json.loads(text)]  # noqa: E731
    assert top1(onnx.stdout) == top1(plain.stdout)
    # the export folder's own reader runs where torch cannot even be imported
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not available here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proc = subprocess.run([sys.executable, str(target / "predict_onnx.py"), str(images[0]), "--top-k", "2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["top"][0]["label"] == top1(plain.stdout)[0]


def test_int8_and_torchscript_exports(run, tmp_path):
    out, _ = run
    result = runner.invoke(app, ["export", str(out), "--int8", "--out", str(tmp_path / "q"), "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "q" / "model.int8.onnx").is_file()
    assert json.loads((tmp_path / "q" / "export_report.json").read_text())["parity"]["top1_agreement"] >= 0.9
    result = runner.invoke(app, ["export", str(out), "--format", "torchscript", "--out", str(tmp_path / "ts")])
    assert result.exit_code == 0, result.output
    import torch

    module = torch.jit.load(str(tmp_path / "ts" / "model.torchscript.pt"))
    assert module(torch.zeros(4, 3, 32, 32)).shape == (4, 3)
    bad = runner.invoke(app, ["export", str(out), "--format", "torchscript", "--int8"])
    assert bad.exit_code == 2 and "ONNX" in bad.output


def test_failed_parity_is_an_error(run, tmp_path, monkeypatch):
    import transferlab.deploy.export as export

    monkeypatch.setattr(export, "FP32_MAX_LOGIT_DIFF", -1.0)
    result = runner.invoke(app, ["export", str(run[0]), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "Parity check failed" in result.output
    assert (tmp_path / "x" / "export_report.json").is_file()  # kept for inspection


@pytest.fixture
def client_factory(run):
    from fastapi.testclient import TestClient

    from transferlab.serve.app import ServeConfig, create_app

    clients = []

    def make(source=None, **settings):
        client = TestClient(create_app(source or run[0], ServeConfig(**settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_api_predicts_like_the_cli(run, client_factory):
    out, root = run
    client = client_factory()
    assert client.get("/health").json()["status"] == "ok"
    model = client.get("/model").json()
    assert model["labels"] == ["birds", "cats", "dogs"] and model["input_size"] == 32
    assert model["training_metrics"]["best_epoch"] >= 1 and model["preprocessing"]["image_size"] == 32
    images = sorted((root / "validation").rglob("*.png"))[:4]
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in images]
    response = client.post("/predict?top_k=2", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    cli = json.loads(runner.invoke(app, ["predict", str(out), *map(str, images), "--json", "--top-k", "2"]).stdout)
    assert [r["path"] for r in body] == [p.name for p in images]
    assert [r["top"][0]["label"] for r in body] == [r["top"][0]["label"] for r in cli]
    for mine, theirs in zip(body, cli):
        assert mine["top"][0]["probability"] == pytest.approx(theirs["top"][0]["probability"], abs=0.02)
    assert client.get("/docs").status_code == 200 and "이미지" in client.get("/").text


@pytest.mark.parametrize(("payload", "settings", "status", "message"), [
    (b"this is plain text, not a picture", {}, 415, "not an image"),
    (_png()[:60], {}, 400, "corrupt or truncated"),
    (b"", {}, 400, "empty"),
    (_png(size=(400, 300)), {"max_pixels": 1000}, 413, "pixels"),
    (_png(size=(400, 300)), {"max_upload_mb": 0.0001}, 413, "MB"),
])
def test_api_refuses_bad_uploads_with_clear_codes(client_factory, payload, settings, status, message):
    client = client_factory(**settings)
    response = client.post("/predict", files=[("files", ("photo.jpg", payload, "image/jpeg"))])
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert client.get("/health").status_code == 200  # still serving


def test_one_bad_file_among_several_gets_its_own_answer(client_factory):
    client = client_factory()
    good = client.post("/predict", files=[("files", ("ok.png", _png(), "image/png"))]).json()[0]
    response = client.post("/predict", files=[("files", ("a.png", _png(), "image/png")),
                                              ("files", ("notes.txt", b"plain text", "image/png")),
                                              ("files", ("cut.png", _png()[:60], "image/png")),
                                              ("files", ("b.png", _png(), "image/png"))])
    assert response.status_code == 200
    body = response.json()
    assert [r["path"] for r in body] == ["a.png", "notes.txt", "cut.png", "b.png"]  # in the order sent
    assert (body[1]["status"], body[2]["status"]) == (415, 400) and "not an image" in body[1]["error"]
    assert body[0]["top"] == good["top"] and body[3]["top"] == good["top"]
    only_bad = client.post("/predict", files=[("files", ("x.txt", b"no", "image/png")),
                                              ("files", ("y.txt", b"no", "image/png"))])
    assert only_bad.status_code == 200 and [r["status"] for r in only_bad.json()] == [415, 415]


def test_api_key_checked_on_every_request_and_required_off_loopback(client_factory):
    from transferlab.serve.app import check_bind

    client = client_factory(api_key="s3cret")
    assert client.get("/health").status_code == 401
    assert client.get("/model", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/health", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    in_url = client.get("/health?api_key=s3cret")  # a key in the URL would be kept by access logs: refused
    assert in_url.status_code == 401 and "never in the URL" in in_url.json()["detail"]
    ok = client.post("/predict", headers={"X-API-Key": "s3cret"}, files=[("files", ("a.png", _png(), "image/png"))])
    assert ok.status_code == 200
    with pytest.raises(ValueError, match="--api-key"):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "key")
    result = runner.invoke(app, ["serve", "runs/x", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--api-key" in result.output


def test_slow_model_times_out_with_504(run, client_factory):
    from transferlab.inference import load_predictor as load_model

    class Slow:  # the same predictor, one second slower
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def batch_probabilities(self, batch):
            time.sleep(1.0)
            return self.inner.batch_probabilities(batch)

    from fastapi.testclient import TestClient

    from transferlab.serve.app import ServeConfig, create_app

    with TestClient(create_app(run[0], ServeConfig(timeout_s=0.2), predictor=Slow(load_model(run[0])))) as client:
        response = client.post("/predict", files=[("files", ("a.png", _png(), "image/png"))])
    assert response.status_code == 504 and "did not answer" in response.json()["detail"]


def test_concurrent_requests_are_micro_batched(run):
    import httpx

    from transferlab.serve.app import ServeConfig, create_app

    async def main(batching: bool) -> list[int]:
        application = create_app(run[0], ServeConfig(batching=batching, wait_ms=20))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = await asyncio.gather(*[
                    client.post("/predict", files=[("files", (f"{i}.png", _png((i * 20, 90, 40)), "image/png"))])
                    for i in range(12)])
            assert all(r.status_code == 200 for r in responses)
            return application.state.batcher.batches

    batched = asyncio.run(main(True))
    single = asyncio.run(main(False))
    assert sum(batched) == 12 and max(batched) > 1  # images of concurrent requests shared batches
    assert single == [1] * 12


def test_onnx_export_can_be_served(run, client_factory, tmp_path):
    from transferlab.deploy.export import export_model

    folder = export_model(run[0], "onnx", tmp_path / "onnx")["folder"]
    client = client_factory(source=folder)
    assert client.get("/model").json()["engine"] == "onnxruntime"
    response = client.post("/predict", files=[("files", ("a.png", _png(), "image/png"))])
    assert response.status_code == 200
    # the same answer as the PyTorch model on the same bytes (a second engine, a second code path)
    from transferlab.inference.predictor import Predictor

    torch_model = Predictor(run[0], engine="fp32")
    expected = torch_model.image_probabilities([torch_model.decode(_png())])[0]
    top = response.json()[0]["top"][0]
    assert top["label"] == torch_model.labels[int(expected.argmax())]
    assert abs(top["probability"] - float(expected.max())) <= 1e-4


@pytest.mark.heavy
def test_page_in_headless_chromium_classifies_an_upload(run, tmp_path):
    chromium = chromium_or_skip()

    from transferlab.serve.app import create_app

    out, root = run
    with _running(create_app(out)) as port:
        image = sorted((root / "validation" / "cats").glob("*.png"))[0]
        with browser_page(chromium) as (page, errors):
            page.goto(f"http://127.0.0.1:{port}/")
            assert "이미지 분류" in page.inner_text("h1")
            page.set_input_files("#files", str(image))
            page.wait_for_selector(".label", timeout=15_000)
            labels = page.eval_on_selector_all(".label", "els => els.map(e => e.textContent)")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        assert errors == []
        from transferlab.inference.predictor import Predictor

        expected = Predictor(out).predict([image], top_k=1)[0]["top"][0]["label"]
        assert labels and labels[0].split(" — ")[0] == expected and "%" in labels[0]
        assert Path(tmp_path / "page.png").stat().st_size > 5000


def _photo_folder(root: Path) -> list[Path]:
    """Real photos (scikit-image's) as JPEG and PNG files in the run's class folders, some odd-sized."""
    import skimage.data as sd

    photos = {"cats": [sd.chelsea(), sd.cat()], "dogs": [sd.astronaut(), sd.coffee()],
              "birds": [sd.rocket(), sd.immunohistochemistry()]}
    paths = []
    for label, arrays in photos.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, array in enumerate(arrays):
            image = Image.fromarray(array).convert("RGB")
            if i == 1:
                image = image.resize((image.width * 3 // 4, image.height))  # not square, not the camera's size
            path = root / label / f"photo{i}.{'jpg' if i == 0 else 'png'}"
            image.save(path, quality=90) if i == 0 else image.save(path)
            paths.append(path)
    return paths


def test_every_inference_path_gives_the_same_probabilities_from_the_same_files(run, tmp_path):
    """predict RUN, predict EXPORT, the exported predict_onnx.py, evaluate and serve decode and preprocess the same
    JPEG/PNG files alike: same top-1, probabilities within 1e-4 (fp32 engines)."""
    from fastapi.testclient import TestClient

    from transferlab.evaluation.metrics import evaluate
    from transferlab.inference.predictor import Predictor
    from transferlab.serve.app import create_app

    out, _ = run
    paths = _photo_folder(tmp_path / "photos")
    target = tmp_path / "onnx"
    exported = runner.invoke(app, ["export", str(out), "--out", str(target), "--json"])
    assert exported.exit_code == 0, exported.output

    def by_path(results):
        return {Path(r["path"]).name + Path(r["path"]).parent.name: {t["label"]: t["probability"] for t in r["top"]}
                for r in results}

    answers = {}
    for name, source in (("predict RUN", str(out)), ("predict EXPORT", str(target))):
        result = runner.invoke(app, ["predict", source, *map(str, paths), "--json", "--engine", "fp32",
                                     "--top-k", "3"])
        assert result.exit_code == 0, result.output
        answers[name] = by_path(json.loads(result.stdout[result.stdout.index("["):]))
    proc = subprocess.run([sys.executable, str(target / "predict_onnx.py"), *map(str, paths), "--top-k", "3"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answers["predict_onnx.py"] = by_path(json.loads(proc.stdout))
    predictor = Predictor(out, engine="fp32")
    evaluation = evaluate(predictor, tmp_path / "photos")
    answers["evaluate"] = {Path(s.path).name + Path(s.path).parent.name: dict(zip(evaluation.labels, map(float, row)))
                           for s, row in zip(evaluation.samples, evaluation.probabilities)}
    client = TestClient(create_app(out, predictor=predictor))
    with client:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        served = client.post("/predict?top_k=3", files=files).json()
    answers["serve"] = {r["path"] + p.parent.name: {t["label"]: t["probability"] for t in r["top"]}
                        for r, p in zip(served, paths)}
    reference = answers.pop("predict RUN")
    assert len(reference) == len(paths)
    for name, answer in answers.items():
        assert answer.keys() == reference.keys(), name
        for key, probs in reference.items():
            assert max(probs, key=probs.get) == max(answer[key], key=answer[key].get), (name, key)
            for label, p in probs.items():
                assert abs(answer[key][label] - p) <= 1e-4, (name, key, label, answer[key][label], p)
    report = json.loads((target / "export_report.json").read_text())
    assert report["file_parity"]["top1_agreement"] == 1.0
    assert report["file_parity"]["max_abs_probability_diff"] <= 1e-4

    ten_crop = {}  # test-time augmentation is cut and averaged by the same torch-free code on every engine
    for name, source in (("predict RUN", str(out)), ("predict EXPORT", str(target))):
        result = runner.invoke(app, ["predict", source, *map(str, paths), "--json", "--engine", "fp32",
                                     "--top-k", "3", "--tta", "ten-crop"])
        assert result.exit_code == 0, result.output
        ten_crop[name] = by_path(json.loads(result.stdout[result.stdout.index("["):]))
    proc = subprocess.run([sys.executable, str(target / "predict_onnx.py"), *map(str, paths), "--top-k", "3",
                           "--tta", "ten-crop"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ten_crop["predict_onnx.py"] = by_path(json.loads(proc.stdout))
    for name in ("predict EXPORT", "predict_onnx.py"):
        for key, probs in ten_crop["predict RUN"].items():
            for label, p in probs.items():
                assert abs(ten_crop[name][key][label] - p) <= 1e-4, (name, key, label)
    assert any(abs(ten_crop["predict RUN"][key][label] - reference[key][label]) > 1e-4
               for key in reference for label in reference[key])  # ten-crop answers are not the plain ones


def test_the_usual_upload_dialects_all_work_and_keep_their_order(run, client_factory):
    """`curl -F file=@x.jpg` (field 'file'), the field 'files', several files, and a raw image body all get the
    same answer as `predict` on the same bytes, in the order sent; anything else is a clear 415."""
    from transferlab.inference.predictor import Predictor

    client = client_factory()
    red, blue = _png((220, 60, 40)), _png((40, 80, 220))
    local = Predictor(run[0])
    expected = {name: local.predict_images([local.decode(data)], top_k=1)[0][0]["label"]
                for name, data in (("red.png", red), ("blue.png", blue))}
    one = client.post("/predict", files=[("file", ("red.png", red, "image/png"))])
    assert one.status_code == 200 and one.json()[0]["top"][0]["label"] == expected["red.png"]
    both = client.post("/predict", files=[("files", ("blue.png", blue, "image/png")),
                                          ("files", ("red.png", red, "image/png"))])
    assert [r["path"] for r in both.json()] == ["blue.png", "red.png"]
    assert [r["top"][0]["label"] for r in both.json()] == [expected["blue.png"], expected["red.png"]]
    raw = client.post("/predict?top_k=2", content=blue, headers={"Content-Type": "image/png"})
    assert raw.status_code == 200 and raw.json()[0]["top"][0]["label"] == expected["blue.png"]
    assert len(raw.json()[0]["top"]) == 2
    bad = client.post("/predict", content=b"{}", headers={"Content-Type": "application/json"})
    assert bad.status_code == 415 and "curl -F file=@" in bad.json()["detail"]
    empty = client.post("/predict", files={"note": (None, "no file here")})  # multipart with no image
    assert empty.status_code == 400
    page = client.get("/").text
    assert "Classes: birds, cats, dogs" in page or "클래스 / Classes: " + ", ".join(local.labels) in page
    schema = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= set(schema)


def test_chunked_uploads_are_cut_at_the_limit_as_they_arrive(run):
    """No Content-Length (a chunked body) to a real server on loopback: the bytes are counted as they arrive and
    the answer is 413 at the limit, while the client is still sending (the body is never read, or spooled, in
    full)."""
    import select

    from transferlab.serve.app import ServeConfig, create_app

    with _running(create_app(run[0], ServeConfig(max_upload_mb=1, max_files=1))) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 2**18 + b"\0" * 2**18 + b"\r\n"  # 256 KiB chunks, 64 MiB offered
        sent = 0
        answer = b""
        while sent < 256:
            if select.select([sock], [], [], 0.05)[0]:
                answer = sock.recv(65536)
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection after answering
                answer = sock.recv(65536)
                break
            sent += 1
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent * 2**18 < 16 * 2**20  # answered long before the 64 MiB were sent (limit: 2 MiB)


def _closed_by_server(sock, wait: float = 5.0) -> bool:
    sock.settimeout(wait)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True  # orderly close
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_stalled_and_idle_connections_are_cut_and_others_still_served(run, monkeypatch):
    """Half-sent headers, a stalled body and sockets that never send are closed after --client-timeout (uvicorn
    alone keeps them open); a normal client is served meanwhile."""
    import httpx

    from transferlab.serve.app import create_app
    from transferlab.serve.connections import CLIENT_TIMEOUT_ENV, uvicorn_limits

    limits = uvicorn_limits(client_timeout=1.0, max_connections=64)
    monkeypatch.setenv(CLIENT_TIMEOUT_ENV, "1.0")
    with _running(create_app(run[0]), **limits) as port:
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n")
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                        b"Content-Length: 100000\r\n\r\n" + _png()[:10])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        start = time.perf_counter()
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", content=_png(), headers={"Content-Type": "image/png"})
        assert answer.status_code == 200  # served while the others stall
        assert all(_closed_by_server(s) for s in [half, stalled, *idle])
        assert time.perf_counter() - start < 5
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        for s in [half, stalled, *idle]:
            s.close()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.heavy
def test_decompression_heavy_uploads_keep_memory_bounded_and_give_it_back(run):
    """Eight small PNGs that each decode to 23 million pixels, in one request and in two at once: the server never
    holds them all decoded (each is reduced to the model's input as it is decoded, two decodes at a time), and its
    memory returns to where it was after the burst."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc to read the resident memory")
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from transferlab.serve.app import create_app

    buf = io.BytesIO()
    Image.new("RGB", (4800, 4800), (90, 140, 200)).save(buf, format="PNG")
    big = buf.getvalue()
    assert len(big) < 200_000  # small on the wire, 69 MB decoded
    files = [("files", (f"{i}.png", big, "image/png")) for i in range(8)]
    held_all = 8 * 4800 * 4800 * 3 / 2**20
    with TestClient(create_app(run[0])) as client:
        assert client.post("/predict", files=files[:2]).status_code == 200  # the allocator settles
        base = _rss_mb()
        peak, running = [base], [True]

        def sample() -> None:
            while running[0]:
                peak.append(_rss_mb())
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: client.post("/predict", files=files), range(2)))
        running[0] = False
        sampler.join()
        after = _rss_mb()
    assert [a.status_code for a in answers] == [200, 200] and all(len(a.json()) == 8 for a in answers)
    assert max(peak) - base < held_all / 2, (base, max(peak), after)
    assert after - base < 100, (base, max(peak), after)


def test_predict_run_uses_its_current_onnx_export_and_never_a_stale_one(run, tmp_path, monkeypatch):
    """`predict RUN` answers through RUN/export-onnx (no torch imported: the fast start) only while that export
    was made from the bundle as it is now and passed its parity check; the answers equal PyTorch fp32's."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    import transferlab.deploy.export as export
    from transferlab.inference.loading import load_predictor

    out = tmp_path / "run"  # a copy: the shared run must not gain an export
    shutil.copytree(run[0], out)
    images = [str(p) for p in sorted((run[1] / "validation").rglob("*.png"))]
    assert load_predictor(out).engine_name.startswith("pytorch")
    refused = runner.invoke(app, ["predict", str(out), images[0], "--engine", "onnx"])
    assert refused.exit_code == 2 and "transferlab export" in refused.output

    assert runner.invoke(app, ["export", str(out)]).exit_code == 0
    assert load_predictor(out).engine_name == "onnxruntime"
    assert load_predictor(out, engine="pytorch").engine_name.startswith("pytorch")

    def probabilities(*options):
        result = runner.invoke(app, ["predict", str(out), *images, "--json", "--top-k", "3", *options])
        assert result.exit_code == 0, result.output
        return {r["path"]: {t["label"]: t["probability"] for t in r["top"]} for r in json.loads(result.stdout)}

    fast, exact = probabilities(), probabilities("--engine", "fp32")
    assert fast.keys() == exact.keys() and len(fast) == len(images)
    for path, probs in exact.items():
        assert all(abs(fast[path][label] - p) <= 1e-4 for label, p in probs.items()), (path, fast[path], probs)
    blocker = tmp_path / "block"  # the command itself runs where torch cannot be imported
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not available here')\n")
    proc = subprocess.run([sys.executable, "-m", "transferlab", "predict", str(out), images[0], "--json"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(blocker)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["top"][0]["label"] == max(exact[images[0]], key=exact[images[0]].get)

    weights = out / "model.safetensors"  # training on (or resuming) rewrites the bundle: the export is stale
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    tensors = {k: v + 0.01 if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata=metadata)
    assert load_predictor(out).engine_name.startswith("pytorch")
    monkeypatch.setattr(export, "FP32_MAX_LOGIT_DIFF", -1.0)  # an export that failed its parity check: unused
    assert runner.invoke(app, ["export", str(out)]).exit_code == 1
    assert load_predictor(out).engine_name.startswith("pytorch")


def _ztxt_png(chunks: int = 8, size: int = 2**20) -> bytes:
    """A 1x1 PNG carrying `chunks` zTXt chunks that each decompress to `size` bytes (a few KB on the wire)."""
    import struct
    import zlib

    png = _png(size=(1, 1))
    extra = b""
    for i in range(chunks):
        body = f"k{i}".encode() + b"\0\0" + zlib.compress(b"x" * size, 9)
        extra += struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    return png[:33] + extra + png[33:]  # after IHDR (8 + 25 bytes)


def test_png_text_chunks_are_bounded(client_factory):
    """Decompressed PNG text is bounded per image (Pillow would hold up to 64 MB of it): an upload that carries
    more is refused as unreadable, one within the bound is classified."""
    from PIL import PngImagePlugin

    client = client_factory()
    assert PngImagePlugin.MAX_TEXT_MEMORY <= 4 * 2**20
    small = client.post("/predict", files={"file": ("ok.png", _ztxt_png(chunks=2, size=2**19), "image/png")})
    assert small.status_code == 200, small.text
    bomb = _ztxt_png(chunks=60)
    assert len(bomb) < 200_000  # 60 MB of text in a small file
    answer = client.post("/predict", files={"file": ("bomb.png", bomb, "image/png")})
    assert answer.status_code == 400 and "text chunks" in answer.json()["detail"]


def test_uploads_held_at_once_are_bounded_across_requests(run):
    """With --max-total-upload-mb 2, two requests of 1.5 MB at once cannot both be held: one is answered 503 with
    Retry-After, and once it is done the budget is free again."""
    import asyncio

    import httpx

    from transferlab.serve.app import ServeConfig, create_app

    body = _png() + b"\0" * (1536 * 1024)  # a PNG padded to 1.5 MB: the padding is read, then ignored by Pillow
    app = create_app(run[0], ServeConfig(max_total_upload_mb=2, max_upload_mb=4))

    async def both() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with app.router.lifespan_context(app):
                answers = await asyncio.gather(*[client.post("/predict", content=body,
                                                             headers={"Content-Type": "image/png"})
                                                 for _ in range(2)])
                again = await client.post("/predict", content=body, headers={"Content-Type": "image/png"})
        return sorted(a.status_code for a in answers) + [again.status_code], answers

    codes, answers = asyncio.run(both())
    assert codes == [200, 503, 200], codes
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] and "--max-total-upload-mb" in busy.json()["detail"]


def test_connections_that_send_nothing_do_not_count_against_requests(run, monkeypatch):
    """--max-connections counts requests in progress: 40 sockets that sent nothing leave a server capped at 8
    requests answering a real one (uvicorn's own cap counted them, and answered 503)."""
    import httpx

    from transferlab.serve.app import ServeConfig, create_app
    from transferlab.serve.connections import CLIENT_TIMEOUT_ENV, uvicorn_limits

    config = ServeConfig(max_connections=8, client_timeout=5)
    limits = uvicorn_limits(client_timeout=5, max_connections=8)
    monkeypatch.setenv(CLIENT_TIMEOUT_ENV, "5")
    with _running(create_app(run[0], config), **limits) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/predict", content=_png(),
                                headers={"Content-Type": "image/png"}, timeout=30)
            assert answer.status_code == 200, answer.text
        finally:
            for s in idle:
                s.close()


def test_the_access_log_never_shows_a_query_string(run):
    """A key sent as ?api_key= (refused) must not reach the log, nor any other query string."""
    import logging

    from transferlab.serve.app import NoQueryString

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/predict?api_key=secret123&x=1", "1.1", 401), None)
    assert NoQueryString().filter(record)
    assert "secret123" not in record.getMessage() and "/predict?" in record.getMessage()


def test_docs_page_loads_nothing_from_elsewhere(client_factory):
    page = client_factory().get("/docs")
    assert page.status_code == 200 and "/predict" in page.text
    assert "http://" not in page.text.replace("http://HOST", "") and "https://" not in page.text
    assert "<script" not in page.text


def test_serve_refuses_a_busy_port_with_the_fix(run):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        result = runner.invoke(app, ["serve", str(run[0]), "--port", str(port)])
    finally:
        listener.close()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Cannot serve on 127.0.0.1:{port}" in result.output and f"--port {port + 1}" in result.output


@pytest.mark.parametrize("fmt", __import__("transferlab.deploy.export", fromlist=["FORMATS"]).FORMATS)
def test_every_format_exports_a_checked_folder_and_refuses_to_mix(run, tmp_path, fmt):
    """Each format of the registry (deploy.export.FORMATS) writes its folder with a passed parity report and the
    marker of what it wrote; exporting again replaces only that; a folder of other files is refused."""
    target = tmp_path / fmt
    result = runner.invoke(app, ["export", str(run[0]), "--format", fmt, "--out", str(target)])
    assert result.exit_code == 0, result.output
    report = json.loads((target / "export_report.json").read_text())
    assert report["parity"]["max_abs_logit_diff"] <= report["parity"]["tolerance"]["max_abs_logit_diff"]
    written = set(json.loads((target / ".transferlab-export").read_text())["files"])
    assert written == {p.name for p in target.iterdir()} - {".transferlab-export", ".transferlab-lock"}
    assert runner.invoke(app, ["export", str(run[0]), "--format", fmt, "--out", str(target)]).exit_code == 0
    mine = tmp_path / f"mine-{fmt}"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    refused = runner.invoke(app, ["export", str(run[0]), "--format", fmt, "--out", str(mine)])
    assert refused.exit_code == 2 and "'README.md'" in refused.output
    assert (mine / "README.md").read_text() == "my notes" and len(list(mine.iterdir())) == 1
