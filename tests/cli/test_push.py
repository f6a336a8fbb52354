"""alexnet push: a run as the Hub's layout with a model card, written --to-folder or uploaded.

Nothing here reaches the network. The uploads go to huggingface_hub's HfApi with its two calls
recorded (what would be sent is checked), to a local server that refuses (HTTP 403), to a closed
port, and without a token; each failure is one line.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from alexnet.cli import main
from alexnet.config import VIEW_NAMES, make_config, read_yaml
from alexnet.inference.weights import load_weights

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "imagenet-sample"


@pytest.fixture()
def run_dir(trained_shapes: dict[str, Any]) -> Path:
    return Path(trained_shapes["path"]).parent


@pytest.fixture()
def pushed(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    out = tmp_path / "pushed"
    assert main(["push", str(run_dir), "someone/alexnet-shapes", "--to-folder", str(out)]) == 0
    assert "README.md" in capsys.readouterr().out
    return out


def card_parts(folder: Path) -> tuple[dict[str, Any], str]:
    """The card's YAML header (as the Hub parses it: between the first two `---` lines) and body."""
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_the_folder_holds_the_layout_card_curves_and_recipe(pushed: Path, run_dir: Path) -> None:
    assert sorted(p.name for p in pushed.iterdir()) == [
        "README.md", "config.json", "curves.png", "model.safetensors", "training.yaml"]
    # the suite's run was trained by the engine alone, which draws no pictures: the card's are drawn from metrics.jsonl
    assert not (run_dir / "curves.png").exists()
    from PIL import Image

    with Image.open(pushed / "curves.png") as picture:
        assert picture.format == "PNG" and picture.width > 600
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    recipe = read_yaml(str(pushed / "training.yaml"))
    assert recipe == {k: v for k, v in saved.items() if k not in ("out", "resume")}
    make_config(recipe)  # the recipe the card says to run is a valid config


def test_the_card_renders_the_runs_real_figures(pushed: Path, trained_shapes: dict[str, Any]) -> None:
    meta, body = card_parts(pushed)
    assert meta["license"] == "mit" and meta["pipeline_tag"] == "image-classification"
    assert "alexnet_mini" in meta["tags"]
    metrics = trained_shapes["metrics"]
    results = meta["model-index"][0]["results"][0]
    assert meta["model-index"][0]["name"] == "someone/alexnet-shapes"
    values = {m["name"]: m["value"] for m in results["metrics"]}
    view = VIEW_NAMES["center"]
    assert values == {f"top-1 accuracy ({view})": round(100 * metrics["val_top1"], 2),
                      f"top-5 accuracy ({view})": round(100 * metrics["val_top5"], 2)}
    assert f"| {100 * metrics['val_top1']:.2f}% | {100 * metrics['val_top5']:.2f}% |" in body
    assert f"held-out split after epoch {metrics['epoch']}" in body and view in body and "chose this checkpoint" in body
    params = sum(t.numel() for t in trained_shapes["model"].values())
    assert f"{params:,} parameters" in body
    assert f"data: {trained_shapes['data']}" in body  # the resolved config
    assert "![loss, top-1 and learning rate per epoch](curves.png)" in body
    assert "alexnet predict photo.jpg --weights hf-hub:someone/alexnet-shapes" in body
    assert "alexnet train --config training.yaml" in body


def test_predictions_from_the_folder_are_the_runs_own(pushed: Path, run_dir: Path) -> None:
    if not SAMPLE.is_dir():
        pytest.skip(f"needs the ImageNet sample photographs in {SAMPLE}")
    photos = [str(p) for p in sorted(SAMPLE.glob("*/*.JPEG"))[:8]]
    from alexnet.inference.predict import predict

    run, folder = predict(photos, str(run_dir)), predict(photos, str(pushed))
    assert [r["topk"] for r in run] == [r["topk"] for r in folder]  # probabilities equal as floats, not close
    ckpt, own = load_weights(pushed), load_weights(str(run_dir))
    assert all(torch.equal(ckpt["model"][k], v) for k, v in own["model"].items())


def test_eval_scores_the_folder_as_the_run(pushed: Path, run_dir: Path, trained_shapes: dict[str, Any],
                                          capsys: pytest.CaptureFixture) -> None:
    scores = []
    for net in (run_dir, pushed):  # the folder does not keep the data's name: it is given
        assert main(["eval", str(net), "--data", trained_shapes["data"], "--tta", "center", "--json",
                     "--out", str(pushed.parent / f"confusion-{net.name}.png")]) == 0
        scores.append(json.loads(capsys.readouterr().out.splitlines()[-1]))
    assert [s["top1"] for s in scores] == [scores[0]["top1"]] * 2 and scores[0]["n"] == scores[1]["n"] > 0
    assert [s["loss"] for s in scores] == [scores[0]["loss"]] * 2


def test_the_upload_sends_the_folder(run_dir: Path, pushed: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kw: Any) -> None:
        calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, *, folder_path: str, repo_id: str, **kw: Any) -> Any:
        sent = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        calls.append(("upload_folder", {"repo_id": repo_id, "sent": sent, **kw}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    public: list[str] = []

    def model_info(self, repo_id: str, **kw: Any) -> Any:
        return type("Info", (), {"private": repo_id not in public})()

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert main(["push", str(run_dir), "someone/alexnet-shapes", "--private"]) == 0
    assert calls[0] == ("create_repo", {"repo_id": "someone/alexnet-shapes", "private": True, "exist_ok": True,
                                        "repo_type": "model"})
    sent = calls[1][1]["sent"]
    assert sorted(sent) == sorted(p.name for p in pushed.iterdir())
    assert sent["README.md"] == (pushed / "README.md").read_bytes()  # the same card as --to-folder writes
    assert sent["config.json"] == (pushed / "config.json").read_bytes()
    assert "commit/abc" in capsys.readouterr().out
    calls.clear()
    (pushed / "notes.txt").write_text("private")  # a Hub folder goes as it is, without strangers
    assert main(["push", str(pushed), "someone/alexnet-shapes"]) == 0
    assert sorted(calls[1][1]["sent"]) == sorted(p.name for p in pushed.iterdir() if p.name != "notes.txt")
    capsys.readouterr()
    calls.clear()
    public.append("someone/alexnet-shapes")  # an existing public repo stays public: --private is refused
    assert main(["push", str(pushed), "someone/alexnet-shapes", "--private"]) == 2
    assert "exists and is public" in capsys.readouterr().err and [c[0] for c in calls] == ["create_repo"]
    calls.clear()
    assert main(["push", str(pushed), "someone/other-name"]) == 2  # the card names someone/alexnet-shapes
    assert "written for someone/alexnet-shapes, not someone/other-name" in capsys.readouterr().err and not calls
    (pushed / "training.yaml").unlink()
    os.symlink("/etc/hostname", pushed / "training.yaml")  # a link could send what lies elsewhere
    assert main(["push", str(pushed), "someone/alexnet-shapes"]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert not calls  # refused before anything was sent


class Refuses(http.server.BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        body = json.dumps({"error": "You don't have the rights to create a model under this namespace"}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args: Any) -> None:
        pass


def push(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`alexnet push` as a user runs it, with huggingface_hub's settings from `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run([sys.executable, "-m", "alexnet", "push", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=120)


def test_a_refusing_hub_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    """As a user meets it: a process, a token, and a Hub (a local server) that answers 403."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = push([str(run_dir), "someone/x"], {"HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": "hf_x",
                                               "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"})
    finally:
        server.shutdown()
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "the Hub refused someone/x (HTTP 403)" in r.stderr, r.stderr


@pytest.mark.parametrize(("case", "words", "code"), [
    ("no token", "no Hugging Face token", 2),
    ("offline", "HF_HUB_OFFLINE is set", 2),
    ("closed port", "cannot reach the Hugging Face Hub", 1),
])
def test_hub_failures_are_one_line(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str,
                                   words: str, code: int, capsys: pytest.CaptureFixture) -> None:
    import huggingface_hub.constants as constants

    for key in [k for k in os.environ if k.startswith("HF_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    if case != "no token":
        monkeypatch.setenv("HF_TOKEN", "hf_x")
    if case == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if case == "closed port":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{s.getsockname()[1]}")
    assert main(["push", str(run_dir), "someone/x"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("repo", ["someone", "some one/x", "a/b/c", "../x", "a/b.git", "a/" + "b" * 97, "a/-b",
                                  "a/b--c"])
def test_odd_repo_ids_are_one_line(run_dir: Path, repo: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["push", str(run_dir), repo, "--to-folder", "never"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a Hub repo id" in err
    assert not Path("never").exists()


@pytest.mark.parametrize("target", ["not empty", "a file", "no parent"])
def test_to_folder_never_replaces_anything(run_dir: Path, tmp_path: Path, target: str,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    if target == "not empty":
        out.mkdir()
        (out / "mine.txt").write_text("keep")
    elif target == "a file":
        out.write_text("keep")
    else:
        out = tmp_path / "missing" / "out"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["push", str(run_dir), "someone/x", "--to-folder", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--to-folder" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no leftover either
    if target != "no parent":
        assert "keep" in (out.read_text() if out.is_file() else (out / "mine.txt").read_text())


def test_an_empty_folder_is_filled(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["push", str(run_dir), "someone/x", "--to-folder", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # the staging folder is gone


@pytest.mark.parametrize("license", ["MIT", "", "mit\nlicense: apache-2.0", "not a license"])
def test_an_odd_license_is_one_line(run_dir: Path, tmp_path: Path, license: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["push", str(run_dir), "someone/x", "--to-folder", str(tmp_path / "out"), "--license", license]) == 2
    assert "--license" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_card_keeps_local_paths_and_odd_class_names_out(trained_shapes: dict[str, Any]) -> None:
    from alexnet.inference.card import public, run_card

    assert public("folder:/home/me/secret/photos,val_fraction=0.2") == "folder:photos,val_fraction=0.2"
    assert public("/home/me/runs/tuned/best.pt") == "tuned/best.pt"
    assert public("hf-hub:org/name@v1") == "hf-hub:org/name@v1" and public("cifar10") == "cifar10"
    ckpt = {**trained_shapes, "data": "folder:/home/me/secret/photos", "classes": ["a`b <img src=x>", "c\nd", "e"],
            "config": {**trained_shapes["config"], "data": "folder:/home/me/secret/photos"}}
    card = run_card(ckpt, "someone/x")
    assert "/home/me" not in card and "folder:photos" in card
    assert "`a'b <img src=x>`" in card and "`c\\nd`" in card  # no backtick to end the code span, no line break
    meta = yaml.safe_load(card[4:].split("\n---\n", 1)[0])
    names = [m["name"] for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert names == [f"top-1 accuracy ({VIEW_NAMES['center']})"]  # three classes: no top-5 (always 100%)
