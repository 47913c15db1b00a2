"""ssvp-slt-download against a local HTTP server: full download, checksum refusal, resume after a
dropped connection, servers that ignore Range, files changed on the server, files already present,
unknown names, the registry and the printed settings."""

import hashlib
import json
import random
import re
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ssvp_slt import download as dl

SIZE = 300_000
DROP_AT = 100_000


class _Handler(BaseHTTPRequestHandler):
    """GET with Range (bytes=N-) and If-Range support; can drop the connection part-way or
    ignore Range, as real servers and networks do."""

    def do_GET(self):
        srv = self.server
        range_header, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        srv.requests.append({"path": self.path, "range": range_header, "if_range": if_range})
        # decided on arrival: a handler of an earlier test may still be writing when the next test arms a drop
        drop_at = srv.drop_at if srv.drops_left > 0 else None
        srv.drops_left -= drop_at is not None
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, partial = 0, False
        if range_header and not srv.ignore_range and (if_range is None or if_range == srv.etag):
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            partial = True
        body = data[start:]
        self.send_response(206 if partial else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", srv.etag)
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if drop_at is not None and drop_at > start:
            self.wfile.write(body[: drop_at - start])  # then close: fewer bytes than announced
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(http_server):
    """The server reset to one file, /weights.pth, of SIZE random bytes."""
    s = http_server
    s.content = random.Random(0).randbytes(SIZE)
    s.files = {"/weights.pth": s.content}
    s.etag = '"v1"'
    s.requests, s.ignore_range, s.drops_left, s.drop_at = [], False, 0, DROP_AT
    s.url = f"http://127.0.0.1:{s.server_address[1]}/weights.pth"
    return s


def _registry(server, **file_fields):
    """A one-entry registry pointing at the local server (the registry is a plain argument)."""
    raw = {
        "description": "test weights", "licence": "test licence", "source": "tests/test_download.py",
        "files": [{"filename": "weights.pth", "url": server.url, **file_fields}],
        "model_settings": ["model.preset=tiny", "model.pretrained_encoder={encoder}"],
    }
    return {"test-weights": dl.parse_entry("test-weights", raw)}


def _fetch(server, tmp_path, retries=0, **file_fields):
    return dl.fetch("test-weights", tmp_path / "cache", _registry(server, **file_fields), retries=retries,
                    timeout=10, progress=False)


def _dest(tmp_path):
    return tmp_path / "cache" / "test-weights" / "weights.pth"


def test_full_download_with_checksum(server, tmp_path):
    sha = hashlib.sha256(server.content).hexdigest()
    entry, [result] = _fetch(server, tmp_path, sha256=sha, size=SIZE)
    assert result.path == _dest(tmp_path).resolve()
    assert result.path.read_bytes() == server.content
    assert result.action == "downloaded" and result.fetched_bytes == SIZE
    assert "sha256 = published sha256" in result.checks
    assert [r["range"] for r in server.requests] == [None]
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["weights.pth"]  # no .part / .part.json left


def test_without_checksum_size_is_checked_against_content_length(server, tmp_path):
    _, [result] = _fetch(server, tmp_path)
    assert result.path.read_bytes() == server.content
    assert f"size {SIZE} bytes = Content-Length" in result.checks
    assert "no published checksum" in result.checks


def test_interrupted_download_keeps_part_and_next_run_resumes(server, tmp_path):
    sha = hashlib.sha256(server.content).hexdigest()
    server.drops_left = 1
    with pytest.raises(dl.DownloadError, match="run the same command again to resume") as e:
        _fetch(server, tmp_path, sha256=sha)
    part = _dest(tmp_path).with_name("weights.pth.part")
    assert str(part.resolve()) in str(e.value)
    assert not _dest(tmp_path).exists()
    assert part.read_bytes() == server.content[:DROP_AT]

    _, [result] = _fetch(server, tmp_path, sha256=sha)
    assert server.requests[-1]["range"] == f"bytes={DROP_AT}-"
    assert server.requests[-1]["if_range"] == server.etag  # the validator of the first response
    assert result.action == "resumed" and result.fetched_bytes == SIZE - DROP_AT
    assert result.path.read_bytes() == server.content
    assert not part.exists()


def test_dropped_connection_is_resumed_within_one_run(server, tmp_path):
    server.drops_left = 1
    _, [result] = _fetch(server, tmp_path, retries=1, sha256=hashlib.sha256(server.content).hexdigest())
    assert [r["range"] for r in server.requests] == [None, f"bytes={DROP_AT}-"]
    assert result.path.read_bytes() == server.content


def test_wrong_sha256_is_refused_and_nothing_kept(server, tmp_path):
    published = hashlib.sha256(b"the published file").hexdigest()
    with pytest.raises(dl.DownloadError) as e:
        _fetch(server, tmp_path, sha256=published)
    message = str(e.value)
    assert "sha256" in message and published in message and hashlib.sha256(server.content).hexdigest() in message
    assert "deleted" in message
    folder = _dest(tmp_path).parent
    assert list(folder.iterdir()) == []  # neither the final name nor a .part to resume from


def test_wrong_published_size_is_refused_before_downloading(server, tmp_path):
    with pytest.raises(dl.DownloadError, match=f"server reports {SIZE} bytes, but the published size is {SIZE + 1}"):
        _fetch(server, tmp_path, size=SIZE + 1)
    assert list(_dest(tmp_path).parent.iterdir()) == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.drops_left = 1
    with pytest.raises(dl.DownloadError):
        _fetch(server, tmp_path)
    server.ignore_range = True
    _, [result] = _fetch(server, tmp_path)
    assert server.requests[-1]["range"] == f"bytes={DROP_AT}-"  # asked for the rest, got the whole file
    assert result.action == "downloaded" and result.fetched_bytes == SIZE
    assert result.path.read_bytes() == server.content  # overwritten, not appended to


def test_file_changed_on_server_is_fetched_anew(server, tmp_path):
    server.drops_left = 1
    with pytest.raises(dl.DownloadError):
        _fetch(server, tmp_path)
    new = random.Random(1).randbytes(SIZE)
    server.files["/weights.pth"], server.etag = new, '"v2"'
    _, [result] = _fetch(server, tmp_path)
    assert server.requests[-1]["if_range"] == '"v1"'  # If-Range did not match: the server sent all of v2
    assert result.path.read_bytes() == new


def test_complete_part_left_before_rename_is_used(server, tmp_path):
    part = _dest(tmp_path).with_name("weights.pth.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(server.content)
    _, [result] = _fetch(server, tmp_path, sha256=hashlib.sha256(server.content).hexdigest())
    assert server.requests[-1]["range"] == f"bytes={SIZE}-"  # answered 416: nothing left to fetch
    assert result.fetched_bytes == 0 and result.path.read_bytes() == server.content


def test_present_file_is_not_downloaded_again(server, tmp_path):
    sha = hashlib.sha256(server.content).hexdigest()
    _fetch(server, tmp_path, sha256=sha)
    server.requests.clear()
    _, [result] = _fetch(server, tmp_path, sha256=sha)
    assert server.requests == []
    assert result.action == "present" and "sha256 = published sha256" in result.checks


def test_present_file_that_fails_its_checksum_is_reported(server, tmp_path):
    _fetch(server, tmp_path)
    server.requests.clear()
    with pytest.raises(dl.DownloadError, match="already there but does not match"):
        _fetch(server, tmp_path, sha256=hashlib.sha256(b"other").hexdigest())
    assert server.requests == [] and _dest(tmp_path).read_bytes() == server.content  # the user's file is left alone


def test_http_error_is_reported(server, tmp_path):
    server.url = server.url.replace("weights.pth", "missing.pth")
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        _fetch(server, tmp_path)


def test_unknown_name_lists_known_names(server, tmp_path, capsys):
    registry = dl.load_registry()
    with pytest.raises(dl.DownloadError) as e:
        dl.fetch("no-such-weights", tmp_path, registry)
    for name in registry:
        assert name in str(e.value)
    assert dl.main(["no-such-weights", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown name 'no-such-weights'" in err and all(name in err for name in registry)


def _write_registry(tmp_path, server, entry_name="signhiera-dm70h"):
    """A registry file: the built-in entry ``entry_name`` with its files served locally."""
    raw = json.loads(json.dumps(dl.BUILTIN_REGISTRY[entry_name]))
    for f in raw["files"]:
        server.files[f"/{f['filename']}"] = server.content + f["filename"].encode()
        f["url"] = server.url.replace("weights.pth", f["filename"])
        f.pop("size", None), f.pop("sha256", None), f.pop("md5_prefix", None)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({entry_name: raw}))
    return path


def _data_config_block(out: str) -> dict:
    lines = out.splitlines()
    start = lines.index("data config ($DATA/config.yaml):") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("  ") or line.startswith("  (or:"):
            break
        block.append(line)
    return yaml.safe_load("\n".join(block))


def test_cli_downloads_into_cache_and_prints_settings(server, tmp_path, capsys, monkeypatch):
    import argparse

    from ssvp_plugin.models.hiera_presets import HIERA_PRESETS
    from ssvp_slt.corpus.data_config import VideoDataConfig, add_video_setting_arguments

    monkeypatch.setenv(dl.REGISTRY_ENV, str(_write_registry(tmp_path, server)))
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "env-cache"))
    assert dl.main(["signhiera-dm70h"]) == 0  # registry and cache from the environment, progress bar on
    out = capsys.readouterr().out
    path = (tmp_path / "env-cache" / "signhiera-dm70h" / "dm_70h_ub_signhiera.pth").resolve()
    assert path.read_bytes() == server.files["/dm_70h_ub_signhiera.pth"]

    entry = dl.BUILTIN_REGISTRY["signhiera-dm70h"]
    assert f"licence: {entry['licence']}" in out
    assert "no published checksum" in out
    settings = next(line for line in out.splitlines() if "model.pretrained_encoder=" in line).split()
    assert f"model.pretrained_encoder={path}" in settings
    preset = next(s.split("=", 1)[1] for s in settings if s.startswith("model.preset="))
    assert preset in HIERA_PRESETS

    # the printed data config is a valid config.yaml fragment, and the build_vocab flags parse
    block = _data_config_block(out)
    assert block == entry["data_config"]
    VideoDataConfig(**block).validate()
    flags = next(line for line in out.splitlines() if "build_vocab.py" in line)
    flags = shlex.split(flags.split("...", 1)[1].rstrip(")"))
    parser = argparse.ArgumentParser()
    add_video_setting_arguments(parser)
    parsed = vars(parser.parse_args(flags))
    assert {k: parsed[k] for k in block} == block

    # second run: found in the cache, nothing fetched
    server.requests.clear()
    assert dl.main(["signhiera-dm70h", "--no-progress"]) == 0
    assert server.requests == [] and f"present: {path}" in capsys.readouterr().out


def test_cli_prints_conversion_command_for_videomae(server, tmp_path, capsys):
    registry = _write_registry(tmp_path, server, "videomae-base")
    assert dl.main(["videomae-base", "--cache-dir", str(tmp_path / "c"), "--registry", str(registry), "--no-progress"]) == 0
    out = capsys.readouterr().out
    folder = (tmp_path / "c" / "videomae-base").resolve()
    command = shlex.split(next(line for line in out.splitlines() if "convert_video_mae_checkpoint.py" in line))
    assert Path(command[1]).is_file()
    weights = Path(command[command.index("--input") + 1])
    assert weights == folder / "pytorch_model.bin" and weights.is_file()
    assert (weights.parent / "config.json").is_file()  # the converter reads the geometry beside the weights
    encoder = command[command.index("--output") + 1]
    assert f"model.pretrained_encoder={encoder}" in out.split()
    assert _data_config_block(out) == dl.BUILTIN_REGISTRY["videomae-base"]["data_config"]


def test_cli_list_shows_every_entry(capsys):
    assert dl.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, entry in dl.load_registry().items():
        assert f"{name}: {entry.description}" in out
        assert all(f.url in out for f in entry.files)


def test_builtin_registry_is_well_formed(monkeypatch):
    from ssvp_slt.corpus.data_config import VideoDataConfig

    monkeypatch.delenv(dl.REGISTRY_ENV, raising=False)
    registry = dl.load_registry()
    assert set(registry) == set(dl.BUILTIN_REGISTRY)
    for entry in registry.values():
        assert all(f.url.startswith("https://") for f in entry.files)
        assert "CC BY-NC 4.0" in entry.licence
        assert any("{encoder}" in s for s in entry.model_settings)
        VideoDataConfig(**entry.data_config).validate()  # known keys, valid values


def test_converted_entries_print_the_converters_own_settings():
    """The model.* settings printed for VideoMAE / mae_st files are those the converter formats for
    the published geometry (Hugging Face config.json of MCG-NJU/videomae-*, mae_st's defaults)."""
    from ssvp_slt.convert.common import model_settings

    vit = dict(mlp_ratio=4.0, patch_size=16, tubelet_size=2)
    geometries = {
        "videomae-base": dict(vit, embed_dim=768, depth=12, num_heads=12, pos_embed_type="joint", cls_token=False),
        "videomae-base-finetuned-kinetics": dict(vit, embed_dim=768, depth=12, num_heads=12, pos_embed_type="joint", cls_token=False),
        "videomae-large": dict(vit, embed_dim=1024, depth=24, num_heads=16, pos_embed_type="joint", cls_token=False),
        **{f"mae_st-vit-large-{k}": dict(vit, embed_dim=1024, depth=24, num_heads=16, pos_embed_type="separable", cls_token=True)
           for k in ("k400", "k600", "k700")},
    }
    registry = dl.load_registry()
    assert {n for n, e in registry.items() if e.convert} == set(geometries)
    out = Path("/x/encoder.pt")
    for name, geometry in geometries.items():
        printed = [s.replace("{encoder}", str(out)) for s in registry[name].model_settings]
        assert printed == model_settings(geometry, out), name


def test_registry_file_errors_are_clear(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"x": {"description": "d", "licence": "l", "source": "s", "files": [{"filename": "a"}]}}))
    with pytest.raises(dl.RegistryError, match=r"r\.json: entry 'x': each file needs 'filename' and 'url'"):
        dl.load_registry(path)
    path.write_text("{not json")
    with pytest.raises(dl.RegistryError, match="not valid JSON"):
        dl.load_registry(path)
    path.write_text(json.dumps({"x": {"description": "d", "licence": "l", "source": "s",
                                      "files": [{"filename": "../a", "url": "https://e/a"}]}}))
    with pytest.raises(dl.RegistryError, match="plain file name"):
        dl.load_registry(path)


def test_the_downloader_imports_neither_torch_nor_fairseq():
    import subprocess
    import sys

    code = "import sys, ssvp_slt.download\nprint(','.join(m for m in ('torch', 'fairseq') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_printed_model_settings_are_options_of_the_model():
    import dataclasses

    from ssvp_plugin.models.mae_vit_slt import MaeVitSltConfig

    options = {f.name for f in dataclasses.fields(MaeVitSltConfig)}
    for name, entry in dl.load_registry().items():
        keys = [s.split("=", 1)[0] for s in entry.model_settings]
        assert all(k.startswith("model.") and k[len("model."):] in options for k in keys), (name, keys)
