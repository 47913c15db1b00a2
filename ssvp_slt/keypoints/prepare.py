"""Keypoint folders + captions -> a data root ``sign_features`` trains on.

For each split: the rows (SENTENCE_NAME + caption) come from How2Sign CSVs
(:mod:`ssvp_slt.prep.how2sign_csv`, the video preparation's reader) or from an existing data
root's manifests; each row's keypoints are looked up by SENTENCE_NAME, read, checked and written
raw (137 points x (x, y, confidence), pixels) into a feature store whose ``config.yaml`` records
the frame rate, frame size, layout and the normalisation/augmentation the task applies
(:mod:`ssvp_slt.keypoints.config`). Written:

    OUT/<split>.tsv                  manifest: id (SENTENCE_NAME), video (the keypoint folder or
                                     .pose file), n_frames (keypoint frames), fps, width, height, tgt_text
    OUT/prepare_report_<split>.json  every dropped row and every problem, counted (report.py)
    FEATURES/config.yaml, <split>/   the feature store (default FEATURES = OUT/features)

How2Sign's keypoints were computed on its *pre-cut* clips (original timestamps), so their frames
cover the original sentence boundaries, not the realigned ones; rows are matched by
SENTENCE_NAME only. The vocabulary and data config are the script's business
(scripts/prepare_keypoints.py).
"""

import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from ..corpus.manifest import ManifestError, read_manifest, write_manifest
from ..features.store import SplitWriter, StoreInfo, chunk_rows_for, new_part_name, open_store_for_writing
from ..prep.how2sign_csv import CLIP_COLUMNS, read_sentences
from . import report as R
from .clip import KeypointClip, KeypointError, frame_ranges
from .config import KeypointConfig
from .layout import RAW_DIM
from .normalize import ANCHOR_SHOULDERS, anchor, visibility
from .transform import read_keypoints, resample_frames

MANIFEST_COLUMNS = ("id", "video", "n_frames", "fps", "width", "height", "tgt_text")
# where a split's clips may lie under a --keypoints root: How2Sign's tar layout (openpose_output/json) and
# the shorter <split>/json, per split or for a root holding one split
SEARCH_SUBDIRS = ("{split}/openpose_output/json", "{split}/json", "openpose_output/json", "json", "{split}", "")
VIDEO_EXTENSION = ".mp4"


class PrepareError(Exception):
    """Stops the preparation of a split (or the run); the message names the file."""


@dataclass
class CaptionRow:
    name: str
    caption: str
    file: str  # the CSV or manifest it came from
    line: int
    expected_frames: Optional[float] = None  # keypoint frames the video implies (manifest rows), if known
    expected_from: Optional[str] = None


@dataclass
class RowSource:
    """One split's rows: read from How2Sign CSV(s) or a data root's manifest."""

    split: str
    rows: List[CaptionRow]
    files: List[str]
    dropped: List[R.Problem] = field(default_factory=list)  # rows the reader dropped, with their reasons
    dropped_counts: dict = field(default_factory=dict)  # reason -> rows, for readers that only count
    notes: List[str] = field(default_factory=list)


@dataclass
class PrepareSettings:
    keypoint_roots: List[Path]
    out: Path
    features: Optional[Path] = None  # default: OUT/features
    cfg: KeypointConfig = field(default_factory=KeypointConfig)
    max_missing: float = 0.5  # clips missing a larger share of their frames are dropped
    frame_tolerance: int = 2  # keypoint frames may differ from the video's by this many
    clips_dir: Optional[Path] = None  # How2Sign's pre-cut videos <SENTENCE_NAME>.mp4: compare frame counts
    workers: int = 1
    overwrite: bool = False

    @property
    def store(self) -> Path:
        return self.features or self.out / "features"


def rows_from_csv(split: str, paths: Sequence[Path], seen: Optional[dict] = None) -> RowSource:
    """How2Sign CSV rows (only SENTENCE_NAME and SENTENCE are needed). Bad rows are dropped with the CSV reader's reasons."""
    source = RowSource(split, [], [str(p) for p in paths])
    seen = {} if seen is None else seen
    for path in paths:
        contents = read_sentences(path, required=CLIP_COLUMNS, seen=seen)  # raises CsvFormatError for a bad file
        source.notes += contents.notes
        for problems in contents.dropped:
            p = problems[0]
            source.dropped.append(R.Problem(p.file, p.line, p.sentence, p.reason, "; ".join(q.message for q in problems)))
        for s in contents.sentences:
            source.rows.append(CaptionRow(s.name, s.caption, s.file, s.line))
    return source


def rows_from_manifest(split: str, data_root: Path, fps: float) -> RowSource:
    """An existing data root's ``<split>.tsv`` (ids, captions; n_frames/fps give the video's length)."""
    path = Path(data_root) / f"{split}.tsv"
    try:
        manifest = read_manifest(path, need_text=True, skip_invalid=True)  # each skipped row is logged with its line
    except ManifestError as e:
        raise PrepareError(str(e)) from e
    source = RowSource(split, [], [str(path)])
    for reason, n in manifest.skipped.items():
        source.dropped_counts[f"{R.INVALID_MANIFEST_ROW}: {reason}"] = n
    for row in manifest.rows:
        source.rows.append(CaptionRow(row.id, row.tgt_text, str(path), row.line, expected_frames=row.n_frames / row.fps * fps,
                                      expected_from=f"{row.video} ({row.n_frames} frames at {row.fps:g} fps, manifest line {row.line})"))
    return source


def search_dirs(roots: Iterable[Path], split: str) -> List[Path]:
    dirs: List[Path] = []
    for root in roots:
        for sub in SEARCH_SUBDIRS:
            d = Path(root) / sub.format(split=split) if sub else Path(root)
            if d.is_dir() and d not in dirs:
                dirs.append(d)
    return dirs


def find_keypoints(name: str, dirs: Sequence[Path]) -> Optional[Path]:
    """``<dir>/<name>/`` (OpenPose JSON folder) or ``<dir>/<name>.pose``, in the first dir that has one."""
    for d in dirs:
        if (d / name).is_dir():
            return d / name
        if (d / f"{name}.pose").is_file():
            return d / f"{name}.pose"
    return None


@dataclass
class ClipResult:
    clip: Optional[KeypointClip] = None
    error: Optional[str] = None
    video_frames: Optional[int] = None  # the pre-cut video's frame count (--clips)
    video_fps: Optional[float] = None
    video_error: Optional[str] = None
    anchor_kind: Optional[str] = None


def _read_job(job: Tuple[Path, Tuple[int, int], Optional[Path], KeypointConfig]) -> ClipResult:
    """Read one clip (and probe its video): runs in a worker process."""
    path, frame_size, video, cfg = job
    result = ClipResult()
    try:
        result.clip = read_keypoints(path, frame_size)
    except KeypointError as e:
        result.error = str(e)
        return result
    if video is not None:
        if video.is_file():
            from ..corpus.video_io import VideoError, probe_video

            try:
                info = probe_video(video)
                result.video_frames, result.video_fps = info.n_frames, info.fps
            except VideoError as e:
                result.video_error = str(e)
        else:
            result.video_error = f"{video}: not found"
    kp = result.clip.keypoints
    _, _, result.anchor_kind = anchor(kp, visibility(kp, cfg.min_confidence), cfg, result.clip.frame_size)
    return result


def _note_clip_issues(report: R.KeypointReport, row: CaptionRow, clip: KeypointClip) -> None:
    i, where = clip.issues, str(clip.path)

    def note(key, count, message, examples=()):
        report.note(key, count, R.Problem(where, None, row.name, key, message, examples=list(examples)[:5]))

    if i.no_person:
        note(R.NO_PERSON, len(i.no_person), f"{len(i.no_person)} of {clip.n_frames} frame(s) with no person: {frame_ranges(i.no_person)}")
    if i.missing_frames:
        note(R.MISSING, len(i.missing_frames), f"{len(i.missing_frames)} missing frame(s) (gaps in the numbering): {frame_ranges(i.missing_frames)}")
    if i.bad_points:
        what = ", ".join(f"{k}: {v}" for k, v in i.bad_points.items())
        note(R.BAD_POINTS, int(sum(i.bad_points.values())), f"{sum(i.bad_points.values())} point(s) masked in {len(i.bad_point_frames)} "
             f"frame(s) ({what})", i.bad_examples)
    if i.unreadable:
        note(R.UNREADABLE_FILES, len(i.unreadable), f"{len(i.unreadable)} unreadable frame file(s), e.g. {i.unreadable[0][0]}: {i.unreadable[0][1]}",
             [f"{f}: {why}" for f, why in i.unreadable])
    if i.multiple_people:
        note(R.MULTIPLE_PEOPLE, len(i.multiple_people), f"{len(i.multiple_people)} frame(s) with more than one person "
             f"(people[0] used): {frame_ranges(i.multiple_people)}")
    if i.absent_components:
        what = ", ".join(f"{k}: {v} frame(s)" for k, v in i.absent_components.items())
        note(R.ABSENT_COMPONENT, int(max(i.absent_components.values())), f"components absent or empty ({what}); masked")
    if i.ignored_files:
        note(R.IGNORED_FILES, len(i.ignored_files), f"{len(i.ignored_files)} file(s) that are not frame files ignored", i.ignored_files)
    if i.duplicate_frames:
        note(R.DUPLICATE_FILES, len(i.duplicate_frames), f"{len(i.duplicate_frames)} second file(s) for one frame number ignored", i.duplicate_frames)


def prepare_split(source: RowSource, settings: PrepareSettings) -> R.KeypointReport:
    """Read, check and store one split's keypoints; write its manifest and report. Never raises for bad rows."""
    t0 = time.perf_counter()
    cfg = settings.cfg
    dirs = search_dirs(settings.keypoint_roots, source.split)
    report = R.KeypointReport(source.split, source.files, dirs, {
        "fps": cfg.fps, "frame_size": [cfg.frame_width, cfg.frame_height], "max_missing": settings.max_missing,
        "frame_tolerance": settings.frame_tolerance, "clips": str(settings.clips_dir) if settings.clips_dir else None,
        "store": str(settings.store), "store_dtype": cfg.stored_dtype,
    })
    report.notes += source.notes
    report.rows_read = len(source.rows) + len(source.dropped) + sum(source.dropped_counts.values())
    for p in source.dropped:
        report.drop(p)
    for reason, n in source.dropped_counts.items():
        report.drop_counted(reason, n)
    if not dirs:
        report.error = f"no keypoint folder found for split {source.split!r} under {[str(r) for r in settings.keypoint_roots]}"
        for row in source.rows:
            report.drop(R.Problem(row.file, row.line, row.name, R.NO_KEYPOINTS, f"no keypoints for {row.name!r} (no keypoint directory)"))
        return _finish(report, settings, t0)

    jobs, job_rows = [], []
    for row in source.rows:
        path = find_keypoints(row.name, dirs)
        if path is None:
            report.drop(R.Problem(row.file, row.line, row.name, R.NO_KEYPOINTS,
                                  f"no keypoint folder or .pose file named {row.name!r} in {', '.join(map(str, dirs))}"))
            continue
        video = settings.clips_dir / f"{row.name}{VIDEO_EXTENSION}" if settings.clips_dir else None
        jobs.append((path, (cfg.frame_width, cfg.frame_height), video, cfg))
        job_rows.append(row)

    store = settings.store
    info = open_store_for_writing(store, StoreInfo(
        dim=RAW_DIM, dtype=cfg.stored_dtype, feature_rate=float(cfg.fps),
        source={**cfg.source_dict(), "provenance": {"keypoints": [str(d) for d in dirs], "prepared": time.strftime("%Y-%m-%d %H:%M:%S")}},
        transform=cfg.transform_dict(),
    ))
    split_dir = store / source.split
    if split_dir.exists():
        if not settings.overwrite:
            raise PrepareError(f"{split_dir}: the store holds split {source.split!r} already; pass --overwrite to replace it")
        shutil.rmtree(split_dir)
    manifest_rows = []
    with SplitWriter(store, source.split, info, new_part_name("keypoints"), chunk_rows_for(RAW_DIM, cfg.stored_dtype)) as writer:
        for row, result in zip(job_rows, _results(jobs, settings.workers)):
            kept = _check_and_store(row, result, report, settings, writer)
            if kept is not None:
                manifest_rows.append(kept)
    if manifest_rows:
        report.manifest = str(write_manifest(settings.out / f"{source.split}.tsv", manifest_rows, MANIFEST_COLUMNS))
        report.store = str(split_dir)
    else:
        shutil.rmtree(split_dir, ignore_errors=True)
        report.error = f"no usable row in split {source.split!r}: manifest not written"
    return _finish(report, settings, t0)


def _finish(report: R.KeypointReport, settings: PrepareSettings, t0: float) -> R.KeypointReport:
    report.elapsed_s = round(time.perf_counter() - t0, 2)
    report.write(settings.out / f"prepare_report_{report.split}.json")
    return report


def _results(jobs, workers: int):
    if workers <= 1 or len(jobs) < 2:
        for job in jobs:
            yield _read_job(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_read_job, jobs, chunksize=8)


def _check_and_store(row: CaptionRow, result: ClipResult, report: R.KeypointReport, settings: PrepareSettings, writer) -> Optional[dict]:
    cfg = settings.cfg
    if result.error is not None:
        report.drop(R.Problem(row.file, row.line, row.name, R.UNREADABLE, result.error))
        return None
    clip = result.clip
    if clip.frames_with_person() == 0:
        report.drop(R.Problem(row.file, row.line, row.name, R.NO_PERSON_ANYWHERE,
                              f"{clip.path}: no person detected in any of its {clip.n_frames} frame(s)", count=clip.n_frames))
        return None
    missing = len(clip.issues.missing_frames)
    if missing > settings.max_missing * clip.n_frames:
        report.drop(R.Problem(row.file, row.line, row.name, R.TOO_MANY_MISSING,
                              f"{clip.path}: {missing} of {clip.n_frames} frames missing (more than --max-missing {settings.max_missing:g}): "
                              f"{frame_ranges(clip.issues.missing_frames)}", count=missing))
        return None
    _note_clip_issues(report, row, clip)
    keypoints = clip.keypoints
    where = str(clip.path)
    if clip.fps is not None and abs(clip.fps - cfg.fps) > 1e-6 * cfg.fps:
        keypoints = resample_frames(keypoints, clip.fps, cfg.fps)
        report.note(R.RESAMPLED, 1, R.Problem(where, None, row.name, R.RESAMPLED,
                                              f"{clip.fps:g} fps resampled to {cfg.fps:g} fps: {clip.n_frames} -> {len(keypoints)} frames"))
    n = len(keypoints)
    _compare_frames(row, result, n, report, settings, where)
    if result.anchor_kind != ANCHOR_SHOULDERS:
        report.note(R.NO_SHOULDERS, 1, R.Problem(where, None, row.name, R.NO_SHOULDERS,
                                                 f"no frame shows both shoulders: normalised around the {result.anchor_kind} "
                                                 f"with scale {cfg.fallback_scale:g} x frame height"))
    writer.add(row.name, keypoints.reshape(n, RAW_DIM))
    report.keep(n)
    return {"id": row.name, "video": str(Path(clip.path).resolve()), "n_frames": n, "fps": float(cfg.fps),
            "width": (clip.frame_size or (cfg.frame_width, cfg.frame_height))[0],
            "height": (clip.frame_size or (cfg.frame_width, cfg.frame_height))[1], "tgt_text": row.caption}


def _compare_frames(row: CaptionRow, result: ClipResult, n: int, report: R.KeypointReport, settings: PrepareSettings, where: str) -> None:
    """Keypoint frames against the pre-cut video's (--clips), else against the manifest's clip length."""
    fps = settings.cfg.fps
    if settings.clips_dir is not None:
        if result.video_frames is None:
            report.note(R.NO_VIDEO, 1, R.Problem(where, None, row.name, R.NO_VIDEO, f"frame count not checked: {result.video_error}"))
            return
        if abs(result.video_fps - fps) > 0.01:
            report.note(R.VIDEO_FPS, 1, R.Problem(where, None, row.name, R.VIDEO_FPS,
                                                  f"video at {result.video_fps:g} fps, keypoints prepared at --fps {fps:g}"))
        # one OpenPose frame per video frame; at another --fps the counts compare as durations
        expected = result.video_frames / result.video_fps * fps
        source = f"the pre-cut video ({result.video_frames} frames at {result.video_fps:g} fps)"
    elif row.expected_frames is not None:
        expected, source = row.expected_frames, row.expected_from
    else:
        return
    if abs(n - expected) > settings.frame_tolerance:
        report.note(R.FRAME_MISMATCH, 1, R.Problem(where, None, row.name, R.FRAME_MISMATCH,
                                                   f"{n} keypoint frames, {expected:.0f} expected from {source} "
                                                   f"(difference {n - expected:+.0f}, tolerance {settings.frame_tolerance})"))


def copy_vocabulary(src_root: Path, out: Path) -> Path:
    """Use the video data root's vocabulary and caption settings: copy spm.model and dict.txt, write OUT/config.yaml."""
    from ..corpus.data_config import DataConfigError, VideoDataConfig

    try:
        src = VideoDataConfig.load(src_root)  # checks the vocabulary files exist
    except DataConfigError as e:
        raise PrepareError(str(e)) from e
    out.mkdir(parents=True, exist_ok=True)
    pieces = src.sentencepiece_path.with_suffix(".vocab")  # sentencepiece's readable piece list, if there
    if pieces.is_file() and pieces.resolve() != (out / "spm.vocab").resolve():
        shutil.copyfile(pieces, out / "spm.vocab")
    for key, name in (("sentencepiece_model", "spm.model"), ("dictionary", "dict.txt")):
        source = src.resolve(getattr(src, key))
        target = out / name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        setattr(src, key, name)
    return src.save(out)

