"""Preparing splits end to end: read the CSVs, cut (or probe) the clips, write manifests and reports.

Two modes, both writing ``<out>/<split>.tsv`` and ``<out>/prepare_report_<split>.json``:

* :func:`prepare_full_videos`: cut each sentence out of its full video
  (``<videos>/<VIDEO_NAME>.mp4``) at START_REALIGNED/END_REALIGNED into
  ``<out>/clips/<xx>/<SENTENCE_NAME>.mp4``, where ``xx`` is the first two hex
  digits of the SHA-1 of VIDEO_NAME: 256 folders of ~150 clips each for
  How2Sign, where one folder of 35k files would be slow to list on network
  filesystems, and a video's sentences stay together.
* :func:`prepare_precut_clips`: probe existing per-sentence clips
  ``<clips>/<SENTENCE_NAME>.mp4`` (How2Sign's pre-cut clips, which use the
  original, misaligned timestamps); the manifest points at them. With
  ``recode`` settings (a signer crop), each clip is re-encoded whole into
  ``<out>/clips/<xx>/<SENTENCE_NAME>.mp4`` as the cut path does, and the
  manifest points at those.

Manifests hold the columns ``PREPARED_COLUMNS``: besides frame count and rate,
each clip's frame size and the size in bytes of the file the manifest points
to, taken once the clip is final, so that loading a split can trust the
manifest instead of opening every video. Reports also say how the clips split
into encoder windows, with the window settings of ``<out>/config.yaml`` when it
exists (``scripts/build_vocab.py`` writes it, usually after preparation) or
the data config's defaults, and which of the two was used.

All CSVs are read and checked before any video is touched, so a missing
column stops the run at once. Rows are grouped by VIDEO_NAME and each group
(at most ``chunk_size`` sentences) is one task for a worker process, which
opens the video once. Results are small records; manifests list the rows in
CSV order, so a re-run writes the same manifest whatever order the workers
finished in.
"""

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from tqdm import tqdm

from ..corpus.data_config import DATA_CONFIG_NAME, DataConfigError, VideoDataConfig
from ..corpus.frame_sampling import WindowSettings, clip_layout
from ..corpus.manifest import PREPARED_COLUMNS, probed_fields, write_manifest
from ..corpus.video_io import VideoError, probe_video
from .cutting import DROPPED_STATUS, END_CLAMPED, ClipJob, ClipResult, CutSettings, cut_group_task
from .how2sign_csv import CLIP_COLUMNS, FULL_VIDEO_COLUMNS, CsvContents, Sentence, read_sentences
from .report import CENTRE_CROP, CLAMPED, DROPPED, PROBED, Problem, SplitReport

CLIPS_SUBDIR = "clips"
VIDEO_EXTENSION = ".mp4"

# --clips mode reasons (the pre-cut clips are probed, not cut)
MISSING_CLIP = "missing clip"
UNREADABLE_CLIP = "unreadable clip"
NO_VIDEO_STREAM = "no video stream"
ZERO_FRAMES = "zero frames"
# --signer-crop found no face in a clip (it is kept, cropped at the centre)
NO_FACE = "no face for the signer crop"


class PrepareError(Exception):
    """A problem that stops preparation; the message is meant for the user."""


@dataclass(frozen=True)
class SplitSource:
    split: str
    csv: Path


def clip_path(out_dir, video_name: str, sentence_name: str) -> Path:
    bucket = hashlib.sha1(video_name.encode("utf-8")).hexdigest()[:2]
    return Path(out_dir) / CLIPS_SUBDIR / bucket / f"{sentence_name}{VIDEO_EXTENSION}"


def load_data_config(out_dir) -> VideoDataConfig:
    """The data root's config.yaml (kept as it is) or the defaults; checked before any work."""
    if not (Path(out_dir) / DATA_CONFIG_NAME).is_file():
        return VideoDataConfig()
    try:
        return VideoDataConfig.load(out_dir, check_files=False)
    except DataConfigError as e:
        raise PrepareError(f"{e}. Fix or delete it; preparation keeps its settings and will not overwrite a broken file")


def window_settings_for(out_dir) -> Tuple[WindowSettings, str]:
    """The encoder's window settings for the report, and where they came from."""
    path = Path(out_dir) / DATA_CONFIG_NAME
    if path.is_file():
        return load_data_config(out_dir).window_settings(), str(path)
    return VideoDataConfig().window_settings(), (
        f"data config defaults: no {path} yet (scripts/build_vocab.py writes it; other settings there "
        "change these figures)"
    )


def save_text_settings(cfg: VideoDataConfig, out_dir, lowercase: Optional[bool], punctuation: Optional[str]) -> Path:
    """Record the caption normalisation in config.yaml (other settings unchanged)."""
    if lowercase is not None:
        cfg.lowercase = lowercase
    if punctuation is not None:
        cfg.punctuation = punctuation
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return cfg.save(out_dir)


def caption_punctuation(out_dir, punctuation: Optional[str]) -> str:
    """The punctuation setting captions will be normalised with: ``punctuation`` (what the run records
    in config.yaml), else the data root's config.yaml's, else the default."""
    return punctuation if punctuation is not None else load_data_config(out_dir).punctuation


def _read_all(sources: Sequence[SplitSource], required, punctuation: str) -> List[CsvContents]:
    seen: Dict[str, tuple] = {}  # a SENTENCE_NAME is one clip file: used once across all splits
    return [read_sentences(s.csv, required, seen, punctuation=punctuation) for s in sources]


def _new_report(source: SplitSource, mode: str, contents: CsvContents, settings: dict, windows) -> SplitReport:
    report = SplitReport(source.split, mode, [source.csv], settings, windows=windows[0], windows_from=windows[1])
    report.rows_read = contents.rows_read
    report.notes.extend(contents.notes)
    for problems in contents.dropped:
        report.drop(problems)
    for p in contents.repairs:
        report.note(p)
    return report


def _finish(report: SplitReport, rows: List[dict], out_dir: Path) -> SplitReport:
    if rows:
        report.manifest = str(write_manifest(out_dir / f"{report.split}.tsv", rows, columns=PREPARED_COLUMNS))
    else:
        report.error = f"no usable rows in {', '.join(report.sources)}; {report.split}.tsv not written"
    report.write_json(out_dir / f"prepare_report_{report.split}.json")
    return report


def _relative(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))).as_posix()


def _keep(report: SplitReport, s: Sentence, r: ClipResult, out_dir: Path, path: Path) -> dict:
    """Record a finished clip (cut or re-encoded) in the report; its manifest row."""
    if r.clamped:
        report.note(Problem(s.file, s.line, END_CLAMPED, r.clamped, CLAMPED, s.name))
    if r.crop is not None and r.crop.get("fallback"):
        runs, found = r.crop.get("detector_runs", 0), r.crop.get("detections", 0)
        if found:
            what = f"a face on only {found} of the {runs} frames checked (too few to trust)"
        else:
            what = f"no face found in the {runs} frame(s) checked"
        message = f"signer crop: {what}; cropped the centred square of the short side"
        report.note(Problem(s.file, s.line, NO_FACE, message, CENTRE_CROP, s.name))
    windows = clip_layout(r.n_frames, r.fps, report.window_settings).windows
    report.keep(r.duration, s.caption, r.status, r.faces, windows=windows, name=s.name, crop=r.crop)
    # the cut result carries the probe of the written clip; the size is taken now that the clip is final
    return {"id": s.name, "video": _relative(path, out_dir), **probed_fields(path, r), "tgt_text": s.caption}


def _run_tasks(tasks: list, workers: int) -> Iterable[list]:
    if workers <= 1:  # in-process: simplest to debug, and what a 1-core machine wants anyway
        for task in tasks:
            yield cut_group_task(task)
        return
    pool = multiprocessing.Pool(workers)
    try:
        # unordered: a long video must not hold back the results of the others
        yield from pool.imap_unordered(cut_group_task, tasks, chunksize=1)
        pool.close()
    finally:
        pool.terminate()  # no-op after close(); stops the workers on Ctrl-C or an error
        pool.join()


def prepare_full_videos(
    sources: Sequence[SplitSource],
    videos_dir,
    out_dir,
    settings: CutSettings,
    workers: int = 2,
    chunk_size: int = 32,
    progress: Optional[bool] = None,
    punctuation: Optional[str] = None,
) -> List[SplitReport]:
    """Cut every sentence of every source CSV from the full videos; one report per split.

    ``punctuation``: the caption normalisation training will use (default: config.yaml's); captions it
    leaves without a word are dropped and reported."""
    t0 = time.perf_counter()
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    # raises CsvFormatError before any work
    contents = _read_all(sources, FULL_VIDEO_COLUMNS, caption_punctuation(out_dir, punctuation))
    if not videos_dir.is_dir():
        raise PrepareError(f"{videos_dir}: videos directory not found")
    run_settings = {**settings.content_key(), "min_duration": settings.min_duration, "workers": workers, "videos": str(videos_dir)}
    windows = window_settings_for(out_dir)
    reports = [_new_report(s, "full videos", c, run_settings, windows) for s, c in zip(sources, contents)]

    groups: Dict[str, List[ClipJob]] = {}  # VIDEO_NAME -> its sentences, in order of first appearance
    for si, c in enumerate(contents):
        for ri, s in enumerate(c.sentences):
            job = ClipJob(key=(si, ri), name=s.name, start=s.start, end=s.end, path=str(clip_path(out_dir, s.video_name, s.name)))
            groups.setdefault(s.video_name, []).append(job)
    tasks = []
    for video_name, jobs in groups.items():
        video = str(videos_dir / f"{video_name}{VIDEO_EXTENSION}")
        for i in range(0, len(jobs), max(1, chunk_size)):
            tasks.append((video, jobs[i : i + chunk_size], settings))

    results = _cut_all(tasks, workers, "cutting clips", progress)
    elapsed = time.perf_counter() - t0

    for si, (c, report) in enumerate(zip(contents, reports)):
        rows = []
        for ri, s in enumerate(c.sentences):
            r = results[(si, ri)]
            if r.status == DROPPED_STATUS:
                report.drop([Problem(s.file, s.line, r.reason, r.message, DROPPED, s.name)])
                continue
            rows.append(_keep(report, s, r, out_dir, clip_path(out_dir, s.video_name, s.name)))
        report.elapsed_s = elapsed
        _finish(report, rows, out_dir)
    return reports


def _probe_clip(path: Path):
    """(VideoInfo, None) or (None, (reason, message))."""
    try:
        return probe_video(path), None
    except VideoError as e:
        message = str(e)
        if "not found" in message:
            return None, (MISSING_CLIP, message)
        if "no video stream" in message:
            return None, (NO_VIDEO_STREAM, message)
        if "zero frames" in message:
            return None, (ZERO_FRAMES, message)
        return None, (UNREADABLE_CLIP, message)
    except Exception as e:  # anything else from the decoder: report it, never crash the whole run
        return None, (UNREADABLE_CLIP, f"{path}: cannot probe ({type(e).__name__}: {e})")


def _cut_all(tasks: list, workers: int, desc: str, progress: Optional[bool]) -> dict:
    results = {}
    n_jobs = sum(len(t[1]) for t in tasks)
    with tqdm(total=n_jobs, desc=desc, unit="clip", disable=None if progress is None else not progress) as bar:
        for group_results in _run_tasks(tasks, workers):
            for r in group_results:
                results[r.key] = r
            bar.update(len(group_results))
    return results


def precut_output_path(out_dir, s: Sentence) -> Path:
    """Where a re-encoded pre-cut clip goes (the CSV's VIDEO_NAME, when it has one, picks the folder)."""
    return clip_path(out_dir, s.video_name or s.name, s.name)


def prepare_precut_clips(
    sources: Sequence[SplitSource],
    clips_dir,
    out_dir,
    workers: int = 2,
    progress: Optional[bool] = None,
    recode: Optional[CutSettings] = None,
    punctuation: Optional[str] = None,
) -> List[SplitReport]:
    """Probe the pre-cut clips named by the CSVs; one report per split.

    With ``recode`` (e.g. a signer crop), each clip is then re-encoded whole with those settings
    into ``<out>/clips/`` (resumable like the cut path; ``min_duration`` is not applied, as
    without ``recode``), and the manifest points at the new files. ``punctuation``: as for
    :func:`prepare_full_videos`."""
    t0 = time.perf_counter()
    clips_dir, out_dir = Path(clips_dir), Path(out_dir)
    contents = _read_all(sources, CLIP_COLUMNS, caption_punctuation(out_dir, punctuation))
    if not clips_dir.is_dir():
        raise PrepareError(f"{clips_dir}: clips directory not found")
    windows = window_settings_for(out_dir)
    run_settings = {"clips": str(clips_dir), "workers": workers}
    mode = "pre-cut clips"
    if recode is not None:
        recode = replace(recode, allow_copy=False, min_duration=0.0)
        run_settings.update(recode.content_key())
        mode = "pre-cut clips, re-encoded"
    reports = []
    for source, c in zip(sources, contents):
        report = _new_report(source, mode, c, run_settings, windows)
        clips = [clips_dir / f"{s.name}{VIDEO_EXTENSION}" for s in c.sentences]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # probing waits on I/O: threads suffice
            probes = list(
                tqdm(pool.map(_probe_clip, clips), total=len(clips), desc=f"probing {source.split} clips", unit="clip",
                     disable=None if progress is None else not progress)
            )
        results = {}
        if recode is not None:  # one task per clip: the whole clip, from its first frame to its last
            tasks = []
            for i, (s, clip, (info, problem)) in enumerate(zip(c.sentences, clips, probes)):
                if problem is None:
                    job = ClipJob(i, s.name, 0.0, info.n_frames / info.fps, str(precut_output_path(out_dir, s)))
                    tasks.append((str(clip), [job], recode))
            results = _cut_all(tasks, workers, f"re-encoding {source.split} clips", progress)
        rows = []
        for i, (s, clip, (info, problem)) in enumerate(zip(c.sentences, clips, probes)):
            if problem is not None:
                reason, message = problem
                if reason == MISSING_CLIP:
                    message = f"clip not found: {clip}"
                report.drop([Problem(s.file, s.line, reason, message, DROPPED, s.name)])
                continue
            if recode is not None:
                r = results[i]
                if r.status == DROPPED_STATUS:
                    report.drop([Problem(s.file, s.line, r.reason, r.message, DROPPED, s.name)])
                    continue
                rows.append(_keep(report, s, r, out_dir, precut_output_path(out_dir, s)))
                continue
            windows_needed = clip_layout(info.n_frames, info.fps, report.window_settings).windows
            report.keep(info.n_frames / info.fps, s.caption, PROBED, windows=windows_needed)
            rows.append({"id": s.name, "video": _relative(clip, out_dir), **probed_fields(clip, info), "tgt_text": s.caption})
        report.elapsed_s = time.perf_counter() - t0
        reports.append(_finish(report, rows, out_dir))
    return reports
