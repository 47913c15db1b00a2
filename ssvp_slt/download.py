"""Fetch the known public pretrained files by name: ``ssvp-slt-download NAME``.

    ssvp-slt-download --list
    ssvp-slt-download signhiera-dm70h [--cache-dir DIR]

Each name in the registry (:data:`BUILTIN_REGISTRY`, extendable with a JSON file given by
``--registry`` or ``$SSVP_SLT_REGISTRY``) lists one or more files with the URL their authors
published, and the size / sha256 only where one was published. Files go to
``<cache>/<name>/<file>``; the cache is ``--cache-dir``, else ``$SSVP_SLT_CACHE``, else
``$XDG_CACHE_HOME/ssvp_slt``, else ``~/.cache/ssvp_slt``.

A download is written to ``<file>.part`` and renamed only once it is complete and checked, so
the final name never holds a partial or unverified file. An interrupted download resumes with
an HTTP Range request (``If-Range`` on the validator of the first response, so a file changed
on the server is fetched anew rather than spliced); a server that answers a Range request with
the whole file is simply read from the start. A size or sha256 mismatch deletes the partial
file and stops with an error. At the end the tool prints the settings that use the file.

Standard library (urllib) and tqdm only: no other dependency for a download.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tqdm import tqdm

CACHE_ENV = "SSVP_SLT_CACHE"
REGISTRY_ENV = "SSVP_SLT_REGISTRY"
CHUNK = 1 << 20
USER_AGENT = "ssvp-slt-download"
REPO_ROOT = Path(__file__).resolve().parents[1]
CONVERT_SCRIPT = "scripts/convert_video_mae_checkpoint.py"

CC_BY_NC = "CC BY-NC 4.0: research and non-commercial use only"
NO_CHECKSUM = "no published checksum; size checked against Content-Length"

# VideoMAE (Hugging Face) and mae_st encoders both need scripts/convert_video_mae_checkpoint.py.
# Their model.* settings are what the converter prints for the geometry of the published weights
# (tests/test_download.py checks them against ssvp_slt.convert's own formatting).
_VIDEOMAE_BASE_SETTINGS = [
    "model.encoder_pos_embed=joint", "model.encoder_cls_token=false", "model.preset=base",
    "model.patch_size=16", "model.tubelet_size=2", "model.pretrained_encoder={encoder}",
]
_VIDEOMAE_LARGE_SETTINGS = [s.replace("preset=base", "preset=large") for s in _VIDEOMAE_BASE_SETTINGS]
_IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
_MAE_ST_LARGE_SETTINGS = [
    "model.encoder_pos_embed=separable", "model.encoder_cls_token=true", "model.preset=large",
    "model.patch_size=16", "model.tubelet_size=2", "model.pretrained_encoder={encoder}",
]
_MAE_ST_NORM = {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}


def _hf(repo: str, filename: str, size: Optional[int] = None, sha256: Optional[str] = None) -> dict:
    return {"filename": filename, "url": f"https://huggingface.co/{repo}/resolve/main/{filename}", "size": size, "sha256": sha256}


def _videomae(name, description, weights: dict, config_size, settings, notes=()) -> dict:
    repo = f"MCG-NJU/{name}"
    return {
        "description": description,
        "licence": f"{CC_BY_NC} (model card of https://huggingface.co/{repo})",
        "source": f"https://huggingface.co/{repo} (file list and Git LFS details of the files)",
        "files": [
            weights,
            _hf(repo, "config.json", size=config_size),  # the converter reads the geometry from it
            _hf(repo, "preprocessor_config.json", size=271),  # ... and the normalisation
        ],
        "convert": {"input": weights["filename"]},
        "model_settings": settings,
        "data_config": _IMAGENET_NORM,
        "notes": list(notes),
    }


def _mae_st(dataset: str, md5_prefix: str) -> dict:
    filename = f"mae_pretrain_vit_large_{dataset}.pth"
    return {
        "description": f"mae_st ViT-L/16 MAE-pretrained on Kinetics-{dataset[1:]} (16 frames, 90% masking)",
        "licence": f"{CC_BY_NC} (facebookresearch/mae_st LICENSE)",
        "source": "https://github.com/facebookresearch/mae_st README.md, 'Fine-tuning with pre-trained checkpoints'",
        "files": [{
            "filename": filename, "url": f"https://dl.fbaipublicfiles.com/video-mae/pretrain/{filename}",
            "md5_prefix": md5_prefix,
        }],
        "convert": {"input": filename},
        "model_settings": _MAE_ST_LARGE_SETTINGS,
        "data_config": _MAE_ST_NORM,
        "notes": [
            "the model.* settings above assume mae_st's defaults (separable position tables, class token); "
            "the converter reads them from the weights: use the ones it prints",
            "facebookresearch/mae_st issue #17 reports that the K400 ViT-L file keeps its weights under "
            "'model_state' with PySlowFast's 'pred_head.*' names: the converter reads 'model_state' and sets "
            "'pred_head.*' aside (tested on a file built in that layout, not on the released file)",
        ],
    }


# The registry: every URL is as its authors published it (nothing can be downloaded in this
# project's build environment, so none was fetched here). size / sha256 appear only where a
# value was published; otherwise the size is checked against the server's Content-Length.
BUILTIN_REGISTRY: Dict[str, dict] = {
    "signhiera-dm70h": {
        "description": "SSVP-SLT's SignHiera-Base encoder (128 frames x 224 px) fine-tuned on DailyMoth-70h "
                       "(unblurred), the feature extractor of their SONAR ASL example",
        "licence": f"{CC_BY_NC} (facebookresearch/ssvp_slt LICENSE; trained on DailyMoth-70h, also CC BY-NC 4.0)",
        "source": "https://github.com/facebookresearch/ssvp_slt examples/sonar/demo.sh "
                  "(BASE_URL https://dl.fbaipublicfiles.com/SONAR/asl + FEATURE_EXTRACTOR dm_70h_ub_signhiera.pth)",
        "files": [{"filename": "dm_70h_ub_signhiera.pth",
                   "url": "https://dl.fbaipublicfiles.com/SONAR/asl/dm_70h_ub_signhiera.pth"}],
        "model_settings": ["model.encoder_arch=hiera", "model.preset=signhiera_base_128x224",
                           "model.pretrained_encoder={encoder}"],
        "data_config": {"target_fps": 25, "num_frames": 128, "sampling_rate": 2, "crop_size": 224,
                        "mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]},
        "notes": ["fine-tuned on DailyMoth-70h (one signer, news): it may not generalise to other signers or domains"],
    },
    "videomae-base": _videomae(
        "videomae-base", "VideoMAE ViT-B/16 MAE-pretrained on Kinetics-400, 1600 epochs (Hugging Face VideoMAEForPreTraining)",
        _hf("MCG-NJU/videomae-base", "pytorch_model.bin",
            sha256="2e0c3f4bc73c6d287b96c30975b43d60c9fc004c548150f252278f1becd89a7d"),
        725, _VIDEOMAE_BASE_SETTINGS,
    ),
    "videomae-large": _videomae(
        "videomae-large", "VideoMAE ViT-L/16 MAE-pretrained on Kinetics-400, 1600 epochs (Hugging Face VideoMAEForPreTraining)",
        _hf("MCG-NJU/videomae-large", "pytorch_model.bin", size=1372166773,
            sha256="c7549bea23c22ab1ab0433c2371e7c9060cf93d209ea1894a87c874a99334a60"),
        727, _VIDEOMAE_LARGE_SETTINGS,
    ),
    "videomae-base-finetuned-kinetics": _videomae(
        "videomae-base-finetuned-kinetics",
        "VideoMAE ViT-B/16 pretrained, then fine-tuned as a Kinetics-400 classifier (VideoMAEForVideoClassification)",
        _hf("MCG-NJU/videomae-base-finetuned-kinetics", "pytorch_model.bin"),
        None, _VIDEOMAE_BASE_SETTINGS,
        notes=["a mean-pooling classifier: it has no final per-token norm (the converter notes it)"],
    ),
    "mae_st-vit-large-k400": _mae_st("k400", "edf3a5"),
    "mae_st-vit-large-k600": _mae_st("k600", "9a9645"),
    "mae_st-vit-large-k700": _mae_st("k700", "cdbada"),
}


# --------------------------------------------------------------------------- registry


class DownloadError(Exception):
    """A download that cannot be completed; the message says what happened and what to do."""


class RegistryError(DownloadError):
    """A registry (JSON file or entry) that does not follow the schema."""


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    size: Optional[int] = None
    sha256: Optional[str] = None
    # mae_st's README publishes the first 6 hex digits of an md5, and FINETUNE.md repeats the same
    # values for different (.pyth) files, so which file they belong to is unsure: reported, not enforced
    md5_prefix: Optional[str] = None


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    licence: str
    source: str
    files: Tuple[RemoteFile, ...]
    model_settings: Tuple[str, ...] = ()
    data_config: Mapping[str, object] = field(default_factory=dict)
    convert: Optional[Mapping[str, object]] = None
    notes: Tuple[str, ...] = ()


_ENTRY_KEYS = {"description", "licence", "source", "files", "model_settings", "data_config", "convert", "notes"}
_FILE_KEYS = {"filename", "url", "size", "sha256", "md5_prefix"}


def parse_entry(name: str, raw: Mapping, where: str = "registry") -> Entry:
    """One registry entry from its JSON form, checked field by field."""
    def bad(msg):
        return RegistryError(f"{where}: entry {name!r}: {msg}")

    if not isinstance(raw, Mapping):
        raise bad(f"expected an object, got {type(raw).__name__}")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise bad(f"unknown field(s) {sorted(unknown)}; known: {sorted(_ENTRY_KEYS)}")
    for key in ("description", "licence", "source"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise bad(f"'{key}' must be a non-empty string")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise bad("names use letters, digits, '.', '_' and '-' only (they name a cache folder)")
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise bad("'files' must be a non-empty list")
    parsed = []
    for f in files:
        if not isinstance(f, Mapping) or not {"filename", "url"} <= set(f) or set(f) - _FILE_KEYS:
            raise bad(f"each file needs 'filename' and 'url' (optional: size, sha256, md5_prefix), got {f!r}")
        fname, url = f["filename"], f["url"]
        if not isinstance(fname, str) or not fname or Path(fname).name != fname or fname.startswith("."):
            raise bad(f"filename {fname!r} must be a plain file name")
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise bad(f"url {url!r} must be an http(s) URL")
        size, sha, md5 = f.get("size"), f.get("sha256"), f.get("md5_prefix")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise bad(f"{fname}: size must be a byte count, got {size!r}")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
            raise bad(f"{fname}: sha256 must be 64 hex digits, got {sha!r}")
        if md5 is not None and not (isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{1,32}", md5)):
            raise bad(f"{fname}: md5_prefix must be hex digits, got {md5!r}")
        parsed.append(RemoteFile(fname, url, size, sha.lower() if sha else None, md5.lower() if md5 else None))
    if len({f.filename for f in parsed}) != len(parsed):
        raise bad("two files with the same filename")
    settings = raw.get("model_settings", [])
    if not isinstance(settings, list) or not all(isinstance(s, str) for s in settings):
        raise bad("'model_settings' must be a list of strings")
    data_config = raw.get("data_config", {})
    if not isinstance(data_config, Mapping):
        raise bad("'data_config' must be an object")
    convert = raw.get("convert")
    if convert is not None:
        if not isinstance(convert, Mapping) or convert.get("input") not in {f.filename for f in parsed}:
            raise bad("'convert' must be an object whose 'input' names one of the entry's files")
        args = convert.get("args", [])
        if set(convert) - {"input", "args"} or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise bad("'convert' takes 'input' and optionally 'args' (a list of strings)")
    notes = raw.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise bad("'notes' must be a list of strings")
    return Entry(name, raw["description"], raw["licence"], raw["source"], tuple(parsed), tuple(settings),
                 dict(data_config), dict(convert) if convert is not None else None, tuple(notes))


def load_registry(path=None, include_builtin: bool = True) -> Dict[str, Entry]:
    """The built-in entries, then those of the JSON file ``path`` (default ``$SSVP_SLT_REGISTRY``),
    which add names or replace built-in ones of the same name (e.g. to point at a mirror)."""
    raw: Dict[str, Tuple[Mapping, str]] = {}
    if include_builtin:
        raw.update({name: (entry, "built-in registry") for name, entry in BUILTIN_REGISTRY.items()})
    if path is None and os.environ.get(REGISTRY_ENV):
        path = os.environ[REGISTRY_ENV]
    if path is not None:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise RegistryError(f"{path}: cannot read the registry file ({e.strerror or e})") from e
        except json.JSONDecodeError as e:
            raise RegistryError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise RegistryError(f"{path}: expected an object mapping names to entries")
        raw.update({name: (entry, str(path)) for name, entry in data.items()})
    return {name: parse_entry(name, entry, where) for name, (entry, where) in raw.items()}


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ssvp_slt"


def lookup(registry: Mapping[str, Entry], name: str) -> Entry:
    if name not in registry:
        raise DownloadError(f"unknown name {name!r}; known names: {', '.join(sorted(registry))}")
    return registry[name]


# --------------------------------------------------------------------------- downloading


class _Interrupted(Exception):
    """The transfer stopped part-way; what arrived is in the .part file and can be resumed."""


@dataclass
class FileResult:
    path: Path
    action: str  # "present" (already there, checked), "downloaded", "resumed"
    checks: List[str]  # what was verified, in words
    fetched_bytes: int = 0
    warnings: List[str] = field(default_factory=list)


def _hash_file(path: Path, with_md5: bool) -> Tuple[str, Optional[str]]:
    sha, md5 = hashlib.sha256(), hashlib.md5() if with_md5 else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha.update(block)
            if md5 is not None:
                md5.update(block)
    return sha.hexdigest(), md5.hexdigest() if md5 is not None else None


def _verify(f: RemoteFile, path: Path, server_size: Optional[int]) -> Tuple[List[str], List[str], Optional[str]]:
    """(checks passed, warnings, error or None) for the complete file at ``path``."""
    size = path.stat().st_size
    checks, warnings = [], []
    if f.size is not None:
        if size != f.size:
            return checks, warnings, f"size {size} bytes, but the published size is {f.size} bytes"
        checks.append(f"size {size} bytes = published size")
    elif server_size is not None:
        checks.append(f"size {size} bytes = Content-Length")
    elif f.sha256 is None:
        warnings.append("the server sent no length and no checksum is published: the file could not be checked")
    if f.sha256 or f.md5_prefix:
        sha, md5 = _hash_file(path, with_md5=f.md5_prefix is not None)
        if f.sha256:
            if sha != f.sha256:
                return checks, warnings, f"sha256 {sha}, but the published sha256 is {f.sha256}"
            checks.append("sha256 = published sha256")
        if f.md5_prefix:
            if md5.startswith(f.md5_prefix):
                checks.append(f"md5 {md5} starts with the published prefix {f.md5_prefix}")
            else:
                warnings.append(
                    f"md5 {md5} does not start with the published prefix {f.md5_prefix} (that table's attribution "
                    "is unsure, so the file is kept; compare with the project's README before relying on it)"
                )
    if not f.sha256:
        checks.append("no published checksum")
    return checks, warnings, None


def _content_range(value: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total size) of a Content-Range header: 'bytes 100-199/1000' or 'bytes */1000'."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    return start, int(m.group(2)) if m.group(2) != "*" else None


def _discard(*paths: Path):
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _transfer(f: RemoteFile, part: Path, meta: Path, timeout: float, progress: bool) -> Tuple[Optional[int], int, bool]:
    """Fetch the rest of ``f`` into ``part``: (total size or None, bytes fetched, resumed?).

    Raises _Interrupted when the connection drops (``part`` keeps what arrived), DownloadError when
    the server's answer rules the file out."""
    offset = part.stat().st_size if part.exists() else 0
    if offset and f.size is not None and offset > f.size:
        _discard(part, meta)  # longer than the file can be: not a prefix of it
        offset = 0
    request = urllib.request.Request(f.url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        # If-Range: the server sends the range only if the file is still the one the .part came
        # from, else the whole new file (a weak ETag is not allowed there; Last-Modified is)
        etag = saved.get("etag")
        validator = etag if etag and not etag.startswith("W/") else saved.get("last_modified")
        if validator:
            request.add_header("If-Range", validator)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == offset:  # the .part is already whole (stopped before the rename)
                return total, 0, True
            _discard(part, meta)  # the .part does not fit the file on the server: start again
            raise _Interrupted(f"the server refused to resume at byte {offset} (HTTP 416)") from e
        if e.code >= 500:  # the server's trouble, often passing
            raise _Interrupted(f"HTTP {e.code} {e.reason}") from e
        raise DownloadError(f"{f.url}: HTTP {e.code} {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:  # unreachable, refused, timed out: may pass
        raise _Interrupted(f"cannot reach the server ({getattr(e, 'reason', e)})") from e

    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                _discard(part, meta)
                raise _Interrupted(f"the server resumed at byte {start}, not {offset}")
            mode, resumed = "ab", True
        else:
            # 200: the whole file, from byte 0. The server ignored the Range request (or If-Range
            # said the file changed): the .part is overwritten, not appended to.
            if offset:
                print(f"{f.filename}: the server sent the whole file instead of the rest; starting again", file=sys.stderr)
            offset, total, mode, resumed = 0, length, "wb", False
            meta.write_text(json.dumps({
                "url": f.url, "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"), "size": total,
            }), encoding="utf-8")
        if f.size is not None and total is not None and total != f.size:
            _discard(part, meta)
            raise DownloadError(
                f"{f.url}: the server reports {total} bytes, but the published size is {f.size} bytes: "
                "not the published file; nothing was kept"
            )
        fetched = 0
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f.filename, disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as e:  # reset, timeout, IncompleteRead
                    raise _Interrupted(f"the connection dropped ({e})") from e
                if not block:
                    break
                out.write(block)
                fetched += len(block)
                bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
    got = part.stat().st_size
    # http.client returns b"" (no error) when the peer closes early: the length tells
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got} of {total} bytes")
    if total is not None and got > total:
        _discard(part, meta)
        raise DownloadError(f"{f.url}: received {got} bytes, more than the {total} announced; nothing was kept")
    return total, fetched, resumed


def download_file(f: RemoteFile, dest: Path, retries: int = 3, timeout: float = 60.0, progress: bool = True) -> FileResult:
    """``f`` at ``dest``, downloaded (or resumed from ``dest``.part) and checked; the file name
    ``dest`` appears only once the content has passed every known check."""
    dest = Path(dest)
    if dest.exists():
        checks, warnings, error = _verify(f, dest, server_size=None)
        if error:
            raise DownloadError(f"{dest} is already there but does not match: {error}. Delete it to download it again")
        if f.size is None and not f.sha256:
            checks = ["complete when it was downloaded (only complete, checked files get the final name)"]
        return FileResult(dest, "present", checks, warnings=warnings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, meta = dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")
    failures, fetched, resumed = 0, 0, False
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            total, n, was_resumed = _transfer(f, part, meta, timeout, progress)
            fetched += n
            resumed = resumed or was_resumed
            break
        except _Interrupted as e:
            failures += 1
            have = part.stat().st_size if part.exists() else 0
            if failures > retries:
                kept = f"the {have} bytes received are kept in {part}; run the same command again to resume" if have else "nothing was kept"
                raise DownloadError(f"{f.url}: {e}; gave up after {failures} attempt(s): {kept}") from e
            print(f"{f.filename}: {e}; retrying ({failures}/{retries}) from byte {have}", file=sys.stderr)
            if have <= before:  # no progress (unreachable, refused, HTTP 5xx): wait before asking again
                time.sleep(min(2 ** failures, 30))
    checks, warnings, error = _verify(f, part, server_size=total)
    if error:
        _discard(part, meta)  # a wrong file must not be resumed from or renamed into place
        raise DownloadError(
            f"{f.url}: {error}. The download was deleted and {dest.name} was not written; the server's file "
            "differs from the published one (or was damaged on the way): try again, or check the source"
        )
    os.replace(part, dest)  # atomic on one file system: dest is whole or absent
    _discard(meta)
    return FileResult(dest, "resumed" if resumed else "downloaded", checks, fetched, warnings)


def fetch(name: str, cache_dir=None, registry: Optional[Mapping[str, Entry]] = None, retries: int = 3,
          timeout: float = 60.0, progress: bool = True) -> Tuple[Entry, List[FileResult]]:
    """Download (or find) every file of registry entry ``name`` under ``<cache_dir>/<name>/``."""
    registry = load_registry() if registry is None else registry
    entry = lookup(registry, name)
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser().resolve() / entry.name
    results = [download_file(f, folder / f.filename, retries, timeout, progress) for f in entry.files]
    return entry, results


# --------------------------------------------------------------------------- what to do with it


def _yaml_value(v) -> str:
    return json.dumps(v)  # numbers and [a, b, c] lists: JSON is valid YAML


def usage_lines(entry: Entry, results: Sequence[FileResult]) -> List[str]:
    """The lines that say how to use the downloaded files: conversion command (if any), model
    settings, data config."""
    paths = {r.path.name: r.path for r in results}
    folder = results[0].path.parent
    lines = []
    if entry.convert:
        encoder = folder.parent / "encoders" / f"{entry.name}.pt"
        script = REPO_ROOT / CONVERT_SCRIPT
        script = script if script.is_file() else Path(CONVERT_SCRIPT)
        command = ["python", str(script), "--input", str(paths[entry.convert["input"]]), "--output", str(encoder)]
        lines += ["convert it into an encoder file (from the ssvp-slt checkout):",
                  "  " + " ".join(command + list(entry.convert.get("args", [])))]
        heading = "then fine-tune with (hydra overrides; the converter prints the same, read from the weights):"
    else:
        encoder = results[0].path
        heading = "fine-tune with (hydra overrides):"
    if entry.model_settings:
        lines += [heading, "  " + " ".join(s.replace("{encoder}", str(encoder)) for s in entry.model_settings)]
    if entry.data_config:
        lines.append("data config ($DATA/config.yaml):")
        lines += [f"  {key}: {_yaml_value(value)}" for key, value in entry.data_config.items()]
        flags = []
        for key, value in entry.data_config.items():
            values = value if isinstance(value, list) else [value]
            flags.append(f"--{key.replace('_', '-')} " + " ".join(str(v) for v in values))
        lines.append("  (or: python scripts/build_vocab.py --data $DATA ... " + " ".join(flags) + ")")
    lines += [f"note: {n}" for n in entry.notes]
    return lines


def report_lines(entry: Entry, results: Sequence[FileResult]) -> List[str]:
    lines = [f"{entry.name}: {entry.description}"]
    for r in results:
        f = next(f for f in entry.files if f.filename == r.path.name)
        lines.append(f"  {r.action}: {r.path}")
        lines.append(f"    checks: {'; '.join(r.checks)}")
        lines += [f"    WARNING: {w}" for w in r.warnings]
    lines.append(f"licence: {entry.licence}")
    return lines + usage_lines(entry, results)


def list_lines(registry: Mapping[str, Entry]) -> List[str]:
    lines = []
    for name in sorted(registry):
        e = registry[name]
        lines.append(f"{name}: {e.description}")
        lines.append(f"  licence: {e.licence}")
        for f in e.files:
            check = f"sha256 {f.sha256}" if f.sha256 else NO_CHECKSUM
            if f.size is not None:
                check = f"{f.size} bytes, " + check
            if f.md5_prefix:
                check += f"; published md5 prefix {f.md5_prefix}, reported, not enforced"
            lines.append(f"  {f.url}  ({check})")
        lines.append(f"  source: {e.source}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="ssvp-slt-download",
        description="Fetch known public pretrained files by name into a cache and print the settings that use them.",
    )
    parser.add_argument("name", nargs="?", help="registry name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the known names, URLs and licences")
    parser.add_argument("--cache-dir", type=Path,
                        help=f"where files go (default: ${CACHE_ENV}, else $XDG_CACHE_HOME/ssvp_slt or ~/.cache/ssvp_slt)")
    parser.add_argument("--registry", type=Path,
                        help=f"JSON file of extra or replacement entries (default: ${REGISTRY_ENV}, if set)")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts after a dropped connection (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a connection counts as dropped")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.list and not args.name:
        parser.error("give a NAME to download, or --list")
    try:
        registry = load_registry(args.registry)
        if args.list:
            print("\n".join(list_lines(registry)))
            return 0
        entry, results = fetch(args.name, args.cache_dir, registry, max(0, args.retries), args.timeout,
                               progress=not args.no_progress)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the cache cannot be written (permissions, disk full)
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what was received is kept in the .part file; run the same command again to resume",
              file=sys.stderr)
        return 130
    print("\n".join(report_lines(entry, results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
