"""WordNet 3.0 for NLTK's METEOR, installed offline from Debian's packages.

NLTK's ``meteor_score`` matches synonyms through WordNet, which NLTK downloads at run time from
its own server; that server is not a package registry, and no PyPI package ships the database
ready for NLTK. Debian does: ``wordnet-base`` (the Princeton WordNet 3.0 database files) and
``wordnet-sense-index`` (``index.sense``, ``cntlist``). NLTK's reader also opens a ``lexnames``
file (the 45 lexicographer file numbers, names and parts of speech), which neither package
ships; its exact content is the table in the packages' own man page ``lexnames.5WN``, so it is
generated from there, not typed in.

    python -m ssvp_slt.evaluation.wordnet install [--debs DIR] [--target DIR]
    python -m ssvp_slt.evaluation.wordnet check

``install`` runs ``apt-get download`` (no root needed once the package lists exist; as root it
runs ``apt-get update`` first if the packages are not found), unpacks the two ``.deb`` files with
the standard library, and writes ``<sys.prefix>/share/nltk_data/corpora/wordnet/``: a directory on
NLTK's default search path, so nothing has to set ``NLTK_DATA``. It then checks the result with
NLTK's own documented example (0.6944) and records where the files came from in
``PROVENANCE.json``. ``make install`` calls it.
"""

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
# what NLTK's WordNetCorpusReader opens (nltk/corpus/reader/wordnet.py, _FILES), lexnames excepted
DATABASE_FILES = (
    "cntlist.rev", "index.sense", "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
DEB_DATA_DIR = "usr/share/wordnet/"
LEXNAMES_MAN_PAGE = "usr/share/man/man5/lexnames.5WN.gz"
COPYRIGHT = "usr/share/doc/wordnet-base/copyright"
PROVENANCE = "PROVENANCE.json"

# NLTK's documented example (nltk/translate/meteor_score.py, meteor_score's docstring): 0.6944
NLTK_EXAMPLE_HYPOTHESIS = (
    "It is a guide to action which ensures that the military always obeys the commands of the party".split()
)
NLTK_EXAMPLE_REFERENCES = [
    "It is a guide to action that ensures that the military will forever heed Party commands".split(),
    "It is the guiding principle which guarantees the military forces always being under the command of the Party".split(),
    "It is the practical guide for the army always to heed the directions of the party".split(),
]
NLTK_EXAMPLE_SCORE = 0.6944
# That example scores 0.6944 without synonyms too, so it cannot tell a real WordNet from none. This pair can:
# "big"/"large" and "car"/"auto" match only through WordNet synsets (NLTK looks synonyms up after Porter
# stemming, so the hypothesis words are ones the stemmer leaves unchanged).
SYNONYM_REFERENCE = "the dog is large and the auto is fast".split()
SYNONYM_HYPOTHESIS = "the dog is big and the car is fast".split()

# lexnames' third column: the syntactic category code the man page defines (1 NOUN ... 4 ADVERB)
_POS_CODES = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetError(RuntimeError):
    """WordNet could not be installed or loaded; the message says why."""


def default_target() -> Path:
    """``<sys.prefix>/share/nltk_data/corpora/wordnet``: on NLTK's default search path for this interpreter."""
    return Path(sys.prefix) / "share" / "nltk_data" / "corpora" / "wordnet"


# -- unpacking a .deb with the standard library (ar archive holding data.tar.*) --


def _ar_members(blob: bytes, name: str) -> Dict[str, bytes]:
    if not blob.startswith(b"!<arch>\n"):
        raise WordNetError(f"{name}: not a Debian package (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        member = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[member] = blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are padded to an even offset
    return members


def _deb_files(deb: Path) -> Dict[str, bytes]:
    """``{path inside the package: content}`` of a .deb's regular files."""
    members = _ar_members(deb.read_bytes(), str(deb))
    data_name = next((m for m in members if m.startswith("data.tar")), None)
    if data_name is None:
        raise WordNetError(f"{deb}: no data.tar.* member")
    data = members[data_name]
    if data_name.endswith(".xz"):
        data = lzma.decompress(data)
    elif data_name.endswith(".gz"):
        data = gzip.decompress(data)
    elif data_name != "data.tar":
        raise WordNetError(f"{deb}: {data_name} is compressed in a way the standard library cannot read")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            if info.isfile():
                out[info.name.lstrip("./")] = tar.extractfile(info).read()
    return out


def _deb_version(deb: Path) -> str:
    # apt-get download names files <package>_<version, ':' escaped as %3a>_<arch>.deb
    parts = deb.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) == 3 else "unknown"


# -- lexnames from the man page --


def lexnames_from_man_page(man_page: str) -> str:
    """The ``lexnames`` file (``NN<TAB>name<TAB>pos code``, 45 lines) from the table in ``lexnames.5WN``."""
    rows = []
    for line in man_page.splitlines():
        m = re.match(r"^(\d\d)\t(\S+)\s*\t", line)
        if m:
            number, name = int(m.group(1)), m.group(2)
            pos = name.split(".")[0]
            if pos not in _POS_CODES:
                raise WordNetError(f"lexnames man page: unexpected lexicographer file {name!r}")
            rows.append((number, name, _POS_CODES[pos]))
    if [r[0] for r in rows] != list(range(len(rows))) or len(rows) != 45:
        raise WordNetError(f"lexnames man page: expected the 45 numbered lexicographer files 00-44, found {len(rows)}")
    return "".join(f"{n:02d}\t{name}\t{pos}\n" for n, name, pos in rows)


# -- install --


def _apt_download(workdir: Path) -> List[Path]:
    def download():
        return subprocess.run(
            ["apt-get", "download", *DEBIAN_PACKAGES], cwd=workdir, capture_output=True, text=True, timeout=600
        )

    if shutil.which("apt-get") is None:
        raise WordNetError("apt-get not found: pass --debs DIR holding the Debian packages " + ", ".join(DEBIAN_PACKAGES))
    res = download()
    if res.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, timeout=600)
        res = download()
    if res.returncode != 0:
        raise WordNetError(f"apt-get download {' '.join(DEBIAN_PACKAGES)} failed: {res.stderr.strip()[-500:]}")
    return sorted(workdir.glob("*.deb"))


def _find_debs(debs_dir: Path) -> Dict[str, Path]:
    found = {}
    for package in DEBIAN_PACKAGES:
        matches = sorted(debs_dir.glob(f"{package}_*.deb"))
        if not matches:
            raise WordNetError(f"{debs_dir}: no {package}_*.deb")
        found[package] = matches[-1]
    return found


def install(target: Optional[Path] = None, debs_dir: Optional[Path] = None) -> Path:
    """Install WordNet 3.0 for NLTK into ``target`` (default :func:`default_target`; it must end in
    ``corpora/wordnet`` below a directory on NLTK's search path); returns it."""
    target = Path(target) if target else default_target()
    if target.parts[-2:] != ("corpora", "wordnet"):
        raise WordNetError(f"{target}: NLTK finds WordNet only in <nltk_data>/corpora/wordnet")
    with tempfile.TemporaryDirectory() as tmp:
        if debs_dir is None:
            debs_dir = Path(tmp) / "debs"
            debs_dir.mkdir()
            _apt_download(debs_dir)
        debs = _find_debs(Path(debs_dir))
        files: Dict[str, bytes] = {}
        packages = {}
        for package, deb in debs.items():
            files.update(_deb_files(deb))
            packages[package] = {
                "file": deb.name, "version": _deb_version(deb), "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
            }
        missing = [f for f in DATABASE_FILES if DEB_DATA_DIR + f not in files]
        if missing or LEXNAMES_MAN_PAGE not in files:
            raise WordNetError(f"the packages {', '.join(DEBIAN_PACKAGES)} lack {missing or [LEXNAMES_MAN_PAGE]}")
        # staged as <nltk_data>/corpora/wordnet: NLTK's reader looks itself up by that name (WordNetCorpusReader.map_wn)
        staging = Path(tmp) / "nltk_data" / "corpora" / "wordnet"
        staging.mkdir(parents=True)
        for f in DATABASE_FILES:
            (staging / f).write_bytes(files[DEB_DATA_DIR + f])
        man_page = gzip.decompress(files[LEXNAMES_MAN_PAGE]).decode("utf-8", errors="replace")
        (staging / "lexnames").write_text(lexnames_from_man_page(man_page), encoding="ascii")
        if COPYRIGHT in files:  # WordNet's licence, as Debian ships it
            (staging / "LICENSE").write_bytes(files[COPYRIGHT])
        provenance = {
            "wordnet": "Princeton WordNet 3.0",
            "source": "Debian packages, unpacked by ssvp_slt.evaluation.wordnet",
            "packages": packages,
            "lexnames": f"generated from {LEXNAMES_MAN_PAGE} (wordnet-base)",
        }
        (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        import nltk

        try:
            check(Path(tmp) / "nltk_data")  # never replace a working install by a broken one
        finally:
            nltk.data.path.remove(str(Path(tmp) / "nltk_data"))
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staging, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


# -- loading and checking --


def load(nltk_data: Optional[Path] = None):
    """NLTK's WordNet reader, found as NLTK finds it (``nltk.data.path``; ``nltk_data`` first if given).

    Raises :class:`WordNetError` naming where it looked when the database is missing or is not WordNet 3.0.
    """
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if nltk_data is not None and str(nltk_data) not in nltk.data.path:
        # kept there: the reader opens its files lazily, and NLTK refuses paths outside nltk.data.path
        nltk.data.path.insert(0, str(nltk_data))
    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError:
        raise WordNetError(
            "WordNet is not installed where NLTK looks (" + ", ".join(nltk.data.path) + "); run `make install` "
            "or `python -m ssvp_slt.evaluation.wordnet install` (Debian's wordnet-base + wordnet-sense-index)"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available": no Open Multilingual Wordnet
            reader = WordNetCorpusReader(root, None)
    except Exception as e:  # NLTK's parser fails in many ways on files that are not the WordNet database
        raise WordNetError(f"{root}: not a readable WordNet database ({type(e).__name__}: {e})") from e
    if reader.get_version() != "3.0":
        raise WordNetError(f"{root}: WordNet {reader.get_version()}, expected 3.0")
    return reader


def reader_root(reader) -> Path:
    return Path(str(reader.root))


def provenance(root: Path) -> Dict:
    path = Path(root) / PROVENANCE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def check(nltk_data: Optional[Path] = None) -> Tuple[Path, float]:
    """Load WordNet and reproduce NLTK's documented METEOR example; returns (database directory, score)."""
    from nltk.translate.meteor_score import meteor_score

    reader = load(nltk_data)
    value = meteor_score(NLTK_EXAMPLE_REFERENCES, NLTK_EXAMPLE_HYPOTHESIS, wordnet=reader)
    if round(value, 4) != NLTK_EXAMPLE_SCORE:
        raise WordNetError(f"{reader.root}: NLTK's METEOR example gives {value:.4f}, NLTK documents {NLTK_EXAMPLE_SCORE}")
    with_synonyms = meteor_score([SYNONYM_REFERENCE], SYNONYM_HYPOTHESIS, wordnet=reader)
    without = meteor_score([SYNONYM_REFERENCE], SYNONYM_HYPOTHESIS, wordnet=_NoSynonyms())
    if not with_synonyms > without:
        raise WordNetError(f"{reader.root}: WordNet matches no synonyms (big/large, car/auto)")
    return reader_root(reader), value


class _NoSynonyms:
    """A WordNet with no synsets: METEOR with exact and stem matches only (for the check above)."""

    def synsets(self, *args, **kwargs):
        return []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Install or check WordNet 3.0 for NLTK's METEOR (offline, from Debian's packages).")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("install", help="download wordnet-base + wordnet-sense-index with apt-get and install them for NLTK")
    i.add_argument("--debs", type=Path, help="a directory already holding the two .deb files (no download)")
    i.add_argument("--target", type=Path, help=f"default: {default_target()}")
    i.add_argument("--force", action="store_true", help="reinstall even if a working WordNet 3.0 is already there")
    c = sub.add_parser("check", help="load WordNet from NLTK's search path and reproduce NLTK's METEOR example")
    c.add_argument("--nltk-data", type=Path, help="an nltk_data directory to search first")
    args = p.parse_args(argv)
    try:
        if args.command == "install":
            target = args.target or default_target()
            if not args.force and (target / "lexnames").is_file():
                try:
                    root, value = check(target.parents[1])
                    print(f"{root}: WordNet 3.0 already installed; NLTK's METEOR example gives {value:.4f}")
                    return 0
                except WordNetError as e:
                    print(f"{target}: reinstalling ({e})")
            root = install(target, args.debs)
            print(f"WordNet 3.0 installed for NLTK in {root}")
        root, value = check(args.nltk_data if args.command == "check" else root.parents[1])
        print(f"{root}: WordNet 3.0; NLTK's METEOR example gives {value:.4f} (documented: {NLTK_EXAMPLE_SCORE})")
    except WordNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
