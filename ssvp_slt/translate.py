"""Translate sign-language video (files, URLs, frames in memory; and landmark / feature sequences) with
trained checkpoints, from Python: the entry point for pipelines.

    from ssvp_slt.translate import SignTranslator
    translator = SignTranslator.from_checkpoint("checkpoints/checkpoint_best.pt")   # load once
    results = translator.translate(["clip1.mp4", "long_recording.mp4"])          # then call many times
    results[0].text, results[0].score, results[1].segments[0].start               # Translation objects
    translator.translate([frames], fps=25)                                        # (T, H, W, 3) uint8 RGB

    # an ensemble of a video model and a landmark model, 0.7 x video + 0.3 x landmarks (docs/ensembles.md)
    translator = SignTranslator.from_checkpoints(["video.pt", "landmarks.pt"], weights=[0.7, 0.3])
    translator.translate(["clip1.mp4"], features=["clip1_openpose/"])   # or .pose, .npy, (T, D) arrays

Frames go through the same sampling, windows, crop and normalisation as evaluation (the data config
of the checkpoint's data root; the signer crop its clips were cut with, if any), feature inputs
through what ``sign_features`` applies to its store (the keypoint transform a landmark checkpoint
records: :class:`FeatureReader`), and decoding uses fairseq's stock SequenceGenerator with the task
``sign_multimodal``'s weighted ensemble (one model: exactly that model's beam search). Long inputs
are cut into sentence-sized segments first (:mod:`ssvp_slt.inference.segmentation`). Inputs, segments
and batches: :mod:`ssvp_slt.inference`; the command line (``ssvp-slt-translate``):
:mod:`ssvp_slt.inference.cli`; docs/inference.md.
"""

import json
import logging
import math
import threading
import time
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .inference.lazy_imports import defer_unused_imports

with defer_unused_imports():  # fairseq imports scikit-learn and scipy.stats for parts never used here: 1.3-2 s of start-up
    from fairseq import checkpoint_utils, utils

from .corpus.video_io import VideoError
from .inference.clips import ClipJob, encoder_frames, plan_segment, read_clip
from .inference.crop import SignerCropper, recorded_signer_crop
from .inference.overlap import deduplicate
from .inference.results import InputError, Segment, Translation
from .inference.segmentation import SegmentationSettings, Segmentation, Span, motion_frames, segment
from .inference.sources import VideoFrames, open_source
from ssvp_plugin.data.joined_dataset import FEATURES, VIDEO, collate_features, join_net_inputs

logger = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "ssvp_plugin"  # the fairseq --user-dir

FeatureInput = Union[np.ndarray, torch.Tensor, str, Path]
VideoInput = Union[str, Path, np.ndarray, torch.Tensor, VideoFrames]
KEYPOINT_SUFFIXES = (".pose",)  # and OpenPose JSON folders (directories)
MIN_DURATION = 0.2  # seconds: shorter inputs are refused (preparation drops clips under this too)


def _is_keypoint_file(x) -> bool:
    return isinstance(x, (str, Path)) and (Path(x).is_dir() or Path(x).suffix in KEYPOINT_SUFFIXES)


def _read_array(x: FeatureInput, name: str) -> np.ndarray:
    """A (T, D) array from an array, a tensor or a ``.npy`` file."""
    if isinstance(x, (str, Path)):
        path = Path(x)
        if path.suffix != ".npy":
            raise ValueError(f"{path}: expected a .npy file of (T, D) features, an OpenPose JSON folder or a .pose file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: feature file not found")
        x = np.load(path, allow_pickle=False)
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a (T, D) sequence with T >= 1, got shape {tuple(array.shape)}")
    return array


class FeatureReader:
    """What a ``feature_slt`` model reads for one input, made as ``sign_features`` makes it from its store.

    A model trained on a store without a transform (video-encoder features, pre-normalised vectors) reads
    the (T, D) rows as given. A model trained on a keypoint store records the store's transform
    (``model.feature_transform``); the rows such a store holds (raw keypoints: an array or ``.npy``) go
    through that transform, and an OpenPose JSON folder or ``.pose`` file is read with
    :func:`ssvp_slt.keypoints.load_keypoints`, exactly as evaluation reads stored clips (no augmentation).
    """

    def __init__(self, input_dim: int, transform: Optional[str] = None, checkpoint: str = "the feature model"):
        self.input_dim, self.transform, self.checkpoint = input_dim, transform or None, checkpoint
        self.keypoint_cfg = None
        if self.transform:
            from .keypoints import KeypointConfig

            self.keypoint_cfg = KeypointConfig.from_json(self.transform, where=f"{checkpoint}: model.feature_transform")

    def __call__(self, x: FeatureInput, name: str) -> torch.Tensor:
        if self.keypoint_cfg is not None:
            from .keypoints import KeypointTransform, load_keypoints

            if _is_keypoint_file(x):
                out = load_keypoints(x, self.keypoint_cfg)
            else:  # the rows a keypoint store holds, rounded through its dtype as the store would
                raw = _read_array(x, name).astype(self.keypoint_cfg.stored_dtype).astype(np.float32)
                out = KeypointTransform(self.keypoint_cfg)(raw)
        elif _is_keypoint_file(x):
            raise ValueError(
                f"{name}: {self.checkpoint} was trained on features used as stored (no keypoint transform recorded), "
                f"so keypoint files cannot be read for it: pass the (T, D) rows its feature store holds"
            )
        else:
            out = _read_array(x, name)
        if out.shape[1] != self.input_dim:
            after = " after its keypoint transform" if self.keypoint_cfg is not None else ""
            raise ValueError(f"{name}: D={out.shape[1]} features{after}, {self.checkpoint} reads D={self.input_dim}")
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))



def pick_device(name: Optional[str] = None) -> torch.device:
    """``auto`` (or None): CUDA, then Apple's MPS, then the CPU; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here (torch {torch.__version__})")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name}: Apple's MPS is not available here")
    return device


def pick_dtype(dtype: Optional[str], device: torch.device) -> torch.dtype:
    if dtype in (None, "fp32", "float32"):
        return torch.float32
    if dtype in ("fp16", "float16"):
        if device.type == "cpu":
            raise ValueError("fp16 needs a CUDA or MPS device (CPU kernels are missing or slow in half precision): use bf16 on a CPU")
        return torch.float16
    if dtype in ("bf16", "bfloat16"):
        return torch.bfloat16
    raise ValueError(f"dtype must be fp32, fp16 or bf16, got {dtype!r}")


def trained_clip_seconds(data_cfg) -> Optional[float]:
    """The longest training clip, from the data root's preparation report (None when it is not there)."""
    report = data_cfg.root / "prepare_report_train.json" if data_cfg.root is not None else None
    if report is None or not report.is_file():
        return None
    try:
        value = (json.loads(report.read_text(encoding="utf-8")).get("duration_seconds") or {}).get("max")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if value else None


class _Prepared:
    """One input after opening and segmentation (before its frames are read)."""

    def __init__(self, index: int, name: str):
        self.index, self.name = index, name
        self.source = None
        self.features: Optional[torch.Tensor] = None
        self.feature_rate: Optional[float] = None
        self.segmentation: Optional[Segmentation] = None
        self.jobs: List[ClipJob] = []
        self.fps = 0.0
        self.n_frames = 0
        self.error: Optional[str] = None
        self.timings: Dict[str, float] = {"decode": 0.0, "segmentation": 0.0, "encoder": 0.0, "search": 0.0}
        self.hyps: Dict[int, tuple] = {}  # segment index -> (text, score, tokens, timings)
        self.info: dict = {}
        self.lock = threading.Lock()  # its segments may be read by several reader threads at once


class SignTranslator:
    """Loaded models plus everything needed to turn inputs into text; load once, call :meth:`translate` many times.

    Safe to call from several threads: inputs are read and segmented in the calling threads (and a
    pool of ``workers`` threads per call), while the model runs one batch at a time under a lock, so
    concurrent calls give exactly the results serial ones give."""

    def __init__(
        self,
        models,
        task,
        generator,
        device: torch.device,
        feature_reader: Optional["FeatureReader"] = None,
        dtype: torch.dtype = torch.float32,
        signer_crop: Optional[dict] = None,
        signer_crop_source: str = "",
    ):
        self.models, self.task, self.generator, self.device = models, task, generator, device
        self.feature_reader = feature_reader
        self.dtype = dtype
        self.data_cfg = task.data_cfg
        self.signer_crop = signer_crop
        self.signer_crop_source = signer_crop_source
        self.cropper = SignerCropper(signer_crop) if signer_crop and VIDEO in self.modalities else None
        self._lock = threading.Lock()  # the models and the generator: one batch at a time
        self._timing = threading.local()
        self._time_encoder()
        w = self.data_cfg.window_settings()
        n_sampled = w.num_frames if w.long_clips == "truncate" else w.num_frames + (w.max_windows - 1) * w.window_stride
        self.reach_seconds = n_sampled * w.sampling_rate / w.target_fps  # longest clip read at the normal rate
        self.trained_seconds = trained_clip_seconds(self.data_cfg)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Union[str, Path],
        data: Optional[Union[str, Path]] = None,
        beam: int = 5,
        max_len_b: int = 127,
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        threads: Optional[int] = None,
    ) -> "SignTranslator":
        """Load a checkpoint; ``data`` is the data root holding config.yaml, spm.model and dict.txt
        (default: the one recorded in the checkpoint). ``device``: ``auto`` (CUDA, MPS, CPU) or a torch
        device name; ``dtype``: fp32 (default), fp16 (GPU) or bf16; ``threads``: torch's CPU threads."""
        return cls.from_checkpoints(
            [checkpoint], data=data, beam=beam, max_len_b=max_len_b, device=device, dtype=dtype, threads=threads
        )

    @classmethod
    def from_checkpoints(
        cls,
        checkpoints: Sequence[Union[str, Path]],
        weights: Optional[Union[Sequence[float], str]] = None,
        data: Optional[Union[str, Path]] = None,
        beam: int = 5,
        max_len_b: int = 127,
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        threads: Optional[int] = None,
    ) -> "SignTranslator":
        """Load an ensemble: ``mae_vit_slt`` (video) and ``feature_slt`` (landmarks / features) checkpoints
        trained with the same vocabulary; ``weights`` one per checkpoint (normalised; default equal).
        ``data``: the data root with config.yaml, spm.model and dict.txt (default: the first checkpoint's)."""
        if threads:
            torch.set_num_threads(int(threads))  # process-wide: torch has one CPU thread pool
        utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
        from ssvp_plugin.models.ensemble_checkpoints import read_checkpoint_summary
        from ssvp_plugin.tasks.multimodal import SignMultimodalConfig, SignMultimodalTask

        paths = [Path(c) for c in checkpoints]
        if not paths:
            raise ValueError("no checkpoint given")
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{p}: checkpoint not found")
        if data is None:
            data = read_checkpoint_summary(paths[0]).data_root
        if weights is not None and not isinstance(weights, str):
            weights = ",".join(repr(float(w)) for w in weights)
        cfg = SignMultimodalConfig(data=str(data), ensemble_weights=weights, checkpoint_paths=None, seed=1, train_subset="train")
        task = SignMultimodalTask.setup_task(cfg)
        task.read_feature_store = False  # features come with each input (translate(features=...))
        task.check_checkpoints(paths)  # vocabularies, number of weights: before any model is built
        models, _ = checkpoint_utils.load_model_ensemble([str(p) for p in paths], task=task)
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(dtype, torch_device)
        for m in models:
            m.to(device=torch_device, dtype=torch_dtype).eval()
        generator = task.build_generator(models, Namespace(beam=beam, max_len_b=max_len_b))
        crop, where = recorded_signer_crop(task.data_cfg)
        return cls(
            models, task, generator, torch_device, _feature_reader(models, task.checkpoints), torch_dtype, crop, where
        )

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.models for p in m.parameters())

    @property
    def modalities(self) -> List[str]:
        """What the models read, in checkpoint order ('video', 'features')."""
        return list(self.task.model_modalities)

    def describe(self) -> dict:
        """What the outputs record about the model and the frame pipeline."""
        w = self.data_cfg.window_settings()
        return {
            "checkpoints": [str(s.path) for s in self.task.checkpoints],
            "modalities": self.modalities,
            "data_config": str(self.data_cfg.path),
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "frames": {
                "target_fps": w.target_fps, "num_frames": w.num_frames, "sampling_rate": w.sampling_rate,
                "window_stride": w.window_stride, "max_windows": w.max_windows, "long_clips": w.long_clips,
                "resize_short_side": self.data_cfg.resize_short_side, "crop_size": self.data_cfg.crop_size,
            },
            "signer_crop": self.signer_crop,
            "signer_crop_from": self.signer_crop_source,
        }

    def segmentation_settings(self, settings: Optional[Union[SegmentationSettings, str]] = None) -> SegmentationSettings:
        """``settings`` (a method name or settings) with the model's defaults filled in
        (:meth:`SegmentationSettings.resolve`)."""
        if settings is None:
            settings = SegmentationSettings()
        elif isinstance(settings, str):
            settings = SegmentationSettings(method=settings)
        sentence = self.trained_seconds or self.reach_seconds
        return settings.resolve(sentence, self.reach_seconds)

    # ------------------------------------------------------------------------------------------ timing

    def _time_encoder(self):
        """Wrap the ensemble's forward_encoder so each batch's encoder time can be told from beam search's."""
        model = self.generator.model
        inner = model.forward_encoder
        local = self._timing
        sync = self._sync

        def forward_encoder(net_input):
            t0 = time.perf_counter()
            out = inner(net_input)
            sync()
            local.encoder = getattr(local, "encoder", 0.0) + time.perf_counter() - t0
            return out

        model.forward_encoder = forward_encoder

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    # ------------------------------------------------------------------------------------------ inputs

    def _prepare(self, p: _Prepared, video, feature, keypoints, fps, settings: SegmentationSettings,
                 max_stream_seconds: float, min_duration: float, spans=None) -> None:
        """Open the input, read its features, cut it into segments (jobs); errors are recorded on ``p``."""
        from .keypoints import KeypointError

        t0 = time.perf_counter()
        try:
            if video is not None:
                p.source = open_source(video, fps=fps, name=p.name, max_stream_seconds=max_stream_seconds)
                p.fps, p.n_frames = p.source.fps, p.source.n_frames
                p.info.update(fps=round(p.fps, 6), frames=p.n_frames, width=p.source.width, height=p.source.height)
            if feature is not None:
                p.features = self.feature_reader(feature, p.name if isinstance(feature, (str, Path)) else f"features[{p.index}]")
                cfg = self.feature_reader.keypoint_cfg
                p.feature_rate = float(cfg.fps) if cfg is not None else None
            if p.source is None:  # features only: one segment, the whole sequence
                rows = len(p.features)
                p.fps, p.n_frames = p.feature_rate or 1.0, rows
                p.segmentation = Segmentation([Span(0, rows)], "none", {"method": "none", "reason": "feature input"})
            else:
                duration = p.n_frames / p.fps
                if duration < min_duration:
                    raise InputError(
                        f"{p.name}: too short: {duration:.2f} s ({p.n_frames} frame(s) at {p.fps:g} fps); "
                        f"inputs must last at least {min_duration:g} s"
                    )
                t1 = time.perf_counter()
                p.timings["decode"] += t1 - t0
                if spans is not None:
                    p.segmentation = given_segmentation(spans, p.fps, p.n_frames, p.name)
                else:
                    kp, kp_fps = self._keypoints_for(keypoints, feature, p)
                    p.segmentation = segment(p.n_frames, p.fps, settings, grey_reader=lambda: motion_frames(p.source),
                                             keypoints=kp, keypoint_fps=kp_fps)
                p.timings["segmentation"] += time.perf_counter() - t1
                t0 = time.perf_counter()
                if len(p.segmentation.spans) > 1 and p.features is not None and p.feature_rate is None:
                    raise InputError(
                        f"{p.name}: cut into {len(p.segmentation.spans)} segments, but the feature model's input "
                        f"has no known frame rate to cut its features alike: pass pre-cut inputs or segmentation='none'"
                    )
            for k, span in enumerate(p.segmentation.spans):
                if p.source is not None:
                    plan = plan_segment(span.n_frames, p.fps, self.data_cfg)
                    size = encoder_frames(plan, self.data_cfg.num_frames)
                else:
                    plan, size = None, span.n_frames
                p.jobs.append(ClipJob(p.index, k, span.start, span.end, plan, size))
        except (VideoError, InputError, KeypointError, ValueError, OSError) as e:
            p.error = str(e) if p.name in str(e) else f"{p.name}: {e}"
        p.timings["decode"] += time.perf_counter() - t0

    def _keypoints_for(self, keypoints, feature, p: _Prepared):
        """Keypoints for pause segmentation: given for the input, or its keypoint file given as features."""
        from .keypoints import read_keypoints

        if keypoints is None and feature is not None and _is_keypoint_file(feature):
            keypoints = feature
        if keypoints is None:
            return None, None
        if isinstance(keypoints, (str, Path)):
            clip = read_keypoints(keypoints)
            return clip.keypoints, clip.fps or p.fps  # an OpenPose folder records no rate: the video's
        arr = keypoints.detach().cpu().numpy() if isinstance(keypoints, torch.Tensor) else np.asarray(keypoints)
        return arr, p.fps

    def _features_of(self, p: _Prepared, job: ClipJob) -> torch.Tensor:
        if len(p.jobs) == 1:
            return p.features
        r = p.feature_rate / p.fps  # feature rows per video frame
        a = int(math.floor(job.start * r))
        b = max(a + 1, int(math.ceil(job.end * r)))
        return p.features[a:b]

    def _read(self, p: _Prepared, job: ClipJob):
        """A job's model input: (frames tensor or None, starts tensor or None, features or None)."""
        t0 = time.perf_counter()
        frames = starts = feats = None
        try:
            if job.plan is not None:
                x, st, n_decoded, box = read_clip(p.source, job, self.data_cfg, self.cropper)
                if n_decoded < len(job.plan.source_indices):
                    logger.warning(
                        f"{p.name}: the video ended after {n_decoded} of {len(job.plan.source_indices)} sampled frames "
                        f"of segment {job.segment_index}; the last frame was repeated"
                    )
                    with p.lock:
                        p.info["short_decodes"] = p.info.get("short_decodes", 0) + 1
                if box is not None:
                    with p.lock:
                        p.info.setdefault("signer_boxes", {})[job.segment_index] = box
                frames, starts = torch.from_numpy(x), torch.from_numpy(st)
            if p.features is not None:
                feats = self._features_of(p, job)
            return frames, starts, feats
        finally:
            with p.lock:
                p.timings["decode"] += time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------ model

    @staticmethod
    def _collate_video(frames: List[torch.Tensor], starts: List[torch.Tensor]) -> dict:
        """``VideoClipDataset.collater``'s net_input: uint8 (B, T, H, W, C) padded, its mask, window starts."""
        lengths = torch.tensor([f.shape[0] for f in frames], dtype=torch.long)
        out = frames[0].new_zeros((len(frames), int(lengths.max())) + tuple(frames[0].shape[1:]))
        for i, f in enumerate(frames):
            out[i, : f.shape[0]] = f
        padding_mask = torch.arange(out.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        window_starts = torch.full((len(frames), max(len(s) for s in starts)), -1, dtype=torch.long)
        for i, s in enumerate(starts):
            window_starts[i, : len(s)] = s
        return {"source": out, "padding_mask": padding_mask, "window_starts": window_starts}

    def _move(self, batch):
        if self.device.type == "cpu":
            return batch
        return utils.apply_to_sample(lambda t: t.to(self.device, non_blocking=True), batch)

    @torch.no_grad()
    def _run_batch(self, items) -> List[tuple]:
        """items: [(job, frames, starts, features)] -> [(text, score, tokens, encoder s, search s)] per item."""
        parts: Dict[str, dict] = {}
        if items[0][1] is not None:
            parts[VIDEO] = self._collate_video([it[1] for it in items], [it[2] for it in items])
        if items[0][3] is not None:
            parts[FEATURES] = collate_features([it[3] for it in items])
        primary = VIDEO if VIDEO in parts else FEATURES
        batch = {"id": torch.arange(len(items)), "nsentences": len(items), "net_input": join_net_inputs(parts, primary)}
        with self._lock:
            t0 = time.perf_counter()
            self._timing.encoder = 0.0
            batch = self._move(batch)
            hyps = self.task.inference_step(self.generator, self.models, batch)
            self._sync()
            total = time.perf_counter() - t0
            enc = self._timing.encoder
            out = [(self.task.decode_tokens(h[0]["tokens"]), float(h[0]["score"]), int(len(h[0]["tokens"]))) for h in hyps]
        # batch times shared out: the encoder's by encoder frames, beam search's equally
        sizes = np.array([it[0].encoder_frames for it in items], dtype=np.float64)
        shares = sizes / sizes.sum()
        search = max(0.0, total - enc) / len(items)
        return [(t, s, n, enc * float(w), search) for (t, s, n), w in zip(out, shares)]

    # ------------------------------------------------------------------------------------------ API

    def translate(
        self,
        inputs: Optional[Sequence[VideoInput]] = None,
        batch_size: int = 8,
        features: Optional[Sequence[FeatureInput]] = None,
        *,
        fps: Optional[float] = None,
        segmentation: Optional[Union[SegmentationSettings, str]] = None,
        keypoints: Optional[Sequence] = None,
        spans: Optional[Sequence[Sequence[tuple]]] = None,
        max_frames: Optional[int] = None,
        workers: Optional[int] = None,
        errors: str = "raise",
        min_duration: float = MIN_DURATION,
        max_stream_seconds: float = 60.0,
        progress: bool = False,
        on_result: Optional[Callable[[Translation], None]] = None,
    ) -> List[Translation]:
        """A :class:`Translation` per input, in order.

        ``inputs``: video files, URLs / ``webcam:N``, :class:`VideoFrames`, or (T, H, W, 3) uint8 RGB
        arrays / tensors (then ``fps`` gives their frame rate). ``features``: for landmark / feature
        models, one per input (the (T, D) rows its feature store holds, array or ``.npy``, or for a
        keypoint model an OpenPose JSON folder or ``.pose`` file: :class:`FeatureReader`).
        ``segmentation``: ``"auto"`` (default), ``"none"``, ``"fixed"``, ``"pause"`` or
        :class:`SegmentationSettings`; ``keypoints``: per input, keypoints of the whole input (OpenPose
        folder, ``.pose``, (T, 137, 3) array) to find pauses from hands at rest; ``spans``: per input, the
        segments to translate as (start, end) seconds, instead of finding them (e.g. from another tool).
        ``batch_size`` clips (segments) per model call, at most ``max_frames`` encoder frames;
        ``workers``: threads reading frames while the model runs (default: 2, or 1 for one input).
        ``errors="raise"`` raises :class:`InputError` for the first input that cannot be translated;
        ``"return"`` gives it a result with ``error`` set and goes on with the others.
        ``on_result`` is called with each result as soon as its input is done."""
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        if isinstance(inputs, (np.ndarray, torch.Tensor, VideoFrames, str, Path)):
            raise TypeError("translate() takes a list of inputs: use translate_one() for a single one")
        needed = set(self.modalities)
        given = {VIDEO: inputs, FEATURES: features}
        for m, what in ((VIDEO, "videos=[video files]"), (FEATURES, "features=[one (T, D) array, .npy or keypoint file per input]")):
            if m in needed and given[m] is None:
                raise ValueError(f"the ensemble has a {m} model: pass {what}")
        for m in set(given) - needed:
            if given[m] is not None:
                logger.warning(f"no model of this ensemble reads {m} input: the {m} given are not used")
        counts = {m: len(given[m]) for m in needed}
        if len(set(counts.values())) > 1:
            raise ValueError(f"the inputs must be the same clips: got {counts}")
        n = next(iter(counts.values()))
        for name, value in (("keypoints", keypoints), ("spans", spans)):
            if value is not None and len(value) != n:
                raise ValueError(f"{name}: one per input, got {len(value)} for {n} input(s)")
        settings = self.segmentation_settings(segmentation)
        videos = list(inputs) if VIDEO in needed else [None] * n
        feats = list(features) if FEATURES in needed else [None] * n
        kps = list(keypoints) if keypoints is not None else [None] * n
        given = list(spans) if spans is not None else [None] * n
        prepared = [_Prepared(i, _name(videos[i], feats[i], i)) for i in range(n)]
        workers = workers if workers is not None else (1 if n == 1 else 2)
        pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        bar = _progress(progress, n)
        results: List[Optional[Translation]] = [None] * n
        emitted = [0]

        def finish(p: _Prepared):
            results[p.index] = self._result(p)
            if errors == "raise" and p.error:
                raise InputError(p.error)
            # results are handed on in input order, as soon as every earlier one is done
            while emitted[0] < n and results[emitted[0]] is not None:
                if on_result is not None:
                    on_result(results[emitted[0]])
                emitted[0] += 1

        try:
            run = pool.map if pool is not None else map
            list(run(lambda p: self._prepare(p, videos[p.index], feats[p.index], kps[p.index], fps, settings,
                                             max_stream_seconds, min_duration, given[p.index]), prepared))
            pending = {p.index: len(p.jobs) for p in prepared}
            if bar is not None:  # seconds of video: shows progress through one long recording as through many clips
                bar.total = round(sum((j.end - j.start) / p.fps for p in prepared if not p.error for j in p.jobs), 1)
                bar.refresh()
            for p in prepared:
                if p.error or not p.jobs:
                    finish(p)
            jobs = [j for p in prepared if not p.error for j in p.jobs]
            # like fairseq-generate: similar lengths together (less padding), in a stable order
            jobs.sort(key=lambda j: j.encoder_frames)
            batches, current, frames_in = [], [], 0
            for j in jobs:
                if current and (len(current) >= batch_size or (max_frames and frames_in + j.encoder_frames > max_frames)):
                    batches.append(current)
                    current, frames_in = [], 0
                current.append(j)
                frames_in += j.encoder_frames
            if current:
                batches.append(current)

            def read_one(job):
                p = prepared[job.input_index]
                try:
                    return job, *self._read(p, job)
                except (VideoError, ValueError, OSError) as e:
                    p.error = p.error or (str(e) if p.name in str(e) else f"{p.name}: {e}")
                    return None

            # the reader threads read batch k + 1 while the model runs batch k
            ahead = [pool.submit(read_one, j) for j in batches[0]] if pool is not None and batches else None
            for k, batch in enumerate(batches):
                items = [f.result() for f in ahead] if ahead is not None else [read_one(j) for j in batch]
                if pool is not None and k + 1 < len(batches):
                    ahead = [pool.submit(read_one, j) for j in batches[k + 1]]
                items = [it for it in items if it is not None and not prepared[it[0].input_index].error]
                if items:
                    for it, (text, score, tokens, enc, search) in zip(items, self._run_batch(items)):
                        p = prepared[it[0].input_index]
                        p.hyps[it[0].segment_index] = (text, score, tokens, {"encoder": enc, "search": search})
                        p.timings["encoder"] += enc
                        p.timings["search"] += search
                if bar is not None:
                    bar.update(round(sum((j.end - j.start) / prepared[j.input_index].fps for j in batch), 1))
                for job in batch:
                    pending[job.input_index] -= 1
                    p = prepared[job.input_index]
                    if pending[job.input_index] == 0 or (p.error and results[p.index] is None):
                        if results[p.index] is None:
                            finish(p)
            for p in prepared:  # inputs whose every job failed to read
                if results[p.index] is None:
                    finish(p)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            if bar is not None:
                bar.close()
        return results

    def translate_one(self, x: VideoInput, **kwargs) -> Translation:
        """The :class:`Translation` of a single input (a path, URL, :class:`VideoFrames`, or frames with ``fps=``);
        ``features``, ``keypoints`` and ``spans`` are that input's own (not lists of one)."""
        one = {k: [kwargs.pop(k)] for k in ("features", "keypoints", "spans") if kwargs.get(k) is not None}
        return self.translate([x] if VIDEO in self.modalities else None, **one, **kwargs)[0]

    def _result(self, p: _Prepared) -> Translation:
        end = p.n_frames / p.fps if p.fps else 0.0
        t = Translation(input=p.name, start=0.0, end=end, timings=dict(p.timings), info=dict(p.info))
        if p.segmentation is not None:
            t.segmentation = dict(p.segmentation.settings)
        if p.error:
            t.error = p.error
            return t
        spans = p.segmentation.spans
        raw = [p.hyps[k][0] for k in range(len(spans))]
        texts = deduplicate(raw) if p.segmentation.method == "fixed" else raw
        tokens = 0
        weighted = 0.0
        for k, span in enumerate(spans):
            _, score, n_tok, timings = p.hyps[k]
            shown = span.shown or (span.start, span.end)
            t.segments.append(Segment(
                start=shown[0] / p.fps, end=shown[1] / p.fps, text=texts[k], score=score,
                read_start=span.start / p.fps, read_end=span.end / p.fps, tokens=n_tok, text_raw=raw[k], timings=timings,
            ))
            tokens += n_tok
            weighted += score * n_tok
        t.text = " ".join(s.text for s in t.segments if s.text)
        t.score = weighted / tokens if tokens else None
        return t


def given_segmentation(spans, fps: float, n_frames: int, name: str) -> Segmentation:
    """Segments given as (start, end) seconds -> frame spans, checked against the input's length."""
    out = []
    for a, b in spans:
        start, end = max(0, int(round(a * fps))), min(n_frames, int(round(b * fps)))
        if end <= start:
            raise InputError(f"{name}: segment ({a}, {b}) s is empty or outside the input (0 to {n_frames / fps:.2f} s)")
        out.append(Span(start, end))
    if not out:
        raise InputError(f"{name}: no segment given")
    return Segmentation(out, "given", {"method": "given", "segments": len(out)})


def _name(video, feature, i: int) -> str:
    for x in (video, feature):
        if isinstance(x, (str, Path)):
            return str(x)
        if isinstance(x, VideoFrames) and x.name:
            return x.name
    return f"input[{i}]"


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="s", desc="translating (seconds of video)", dynamic_ncols=True, leave=False)


def _feature_reader(models, summaries) -> Optional[FeatureReader]:
    """One reader for the ensemble's feature models: they all receive the same sequence per clip, so they must
    read features alike (same D, same store transform), as they must in fairseq-generate (one store)."""
    readers = {}
    for model, s in zip(models, summaries):
        if s.modality == FEATURES:
            readers.setdefault((model.encoder.input_dim, s.feature_transform or ""), []).append(s.path)
    if len(readers) > 1:
        (a, paths_a), (b, paths_b) = list(readers.items())[:2]
        raise ValueError(
            f"{paths_a[0]} (D={a[0]}, transform {a[1] or 'none'}) and {paths_b[0]} (D={b[0]}, transform {b[1] or 'none'}) "
            f"read different features; an ensemble passes one feature sequence per clip to all its feature models"
        )
    if not readers:
        return None
    (dim, transform), paths = next(iter(readers.items()))
    return FeatureReader(dim, transform, str(paths[0]))


def main(argv=None):
    """``ssvp-slt-translate``: :func:`ssvp_slt.inference.cli.main`."""
    from .inference.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
