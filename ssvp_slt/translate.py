"""Translate video files with a trained checkpoint, from Python: the entry point for pipelines.

    from ssvp_slt.translate import SignTranslator
    translator = SignTranslator.from_checkpoint("checkpoints/checkpoint_best.pt")
    translator.translate(["clip1.mp4", "clip2.mp4"])   # -> ["hello ...", "..."]

Frames go through the same sampling, crop and normalisation as evaluation
(the data config the checkpoint was trained with), and decoding uses fairseq's
stock SequenceGenerator.
"""

import logging
from argparse import Namespace
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
from fairseq import checkpoint_utils, utils

from .corpus.manifest import ManifestRow
from .corpus.video_io import probe_video
from ssvp_plugin.data.video_clip_dataset import VideoClipDataset

logger = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "ssvp_plugin"  # the fairseq --user-dir


class SignTranslator:
    def __init__(self, models, task, generator, device: torch.device):
        self.models, self.task, self.generator, self.device = models, task, generator, device

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Union[str, Path],
        data: Optional[Union[str, Path]] = None,
        beam: int = 5,
        max_len_b: int = 127,
        device: Optional[str] = None,
    ) -> "SignTranslator":
        """Load a checkpoint; ``data`` is the data root holding config.yaml, spm.model and dict.txt
        (default: the one recorded in the checkpoint)."""
        utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
        overrides = {"data": str(data)} if data is not None else {}
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], arg_overrides=overrides)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        for m in models:
            m.to(device).eval()
        generator = task.build_generator(models, Namespace(beam=beam, max_len_b=max_len_b))
        return cls(models, task, generator, device)

    def _dataset(self, paths: Sequence[Path]) -> VideoClipDataset:
        rows = []
        for i, p in enumerate(paths):
            info = probe_video(p)  # raises VideoError naming the file
            rows.append(ManifestRow(id=str(i), video=str(p), n_frames=info.n_frames, fps=info.fps, tgt_text=None, line=i + 1))
        d = self.task.target_dictionary
        return VideoClipDataset(
            "inference", rows, list(paths), self.task.data_cfg, targets=None, pad=d.pad(), eos=d.eos(),
            train=False, shuffle=False,
        )

    @torch.no_grad()
    def translate(self, videos: Sequence[Union[str, Path]], batch_size: int = 8) -> List[str]:
        """English text for each video file, in order."""
        paths = [Path(v) for v in videos]
        ds = self._dataset(paths)
        out: List[Optional[str]] = [None] * len(paths)
        for start in range(0, len(ds), batch_size):
            batch = ds.collater([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
            batch = utils.move_to_cuda(batch, self.device) if self.device.type == "cuda" else batch
            hyps = self.task.inference_step(self.generator, self.models, batch)
            for sample_id, h in zip(batch["id"].tolist(), hyps):
                out[sample_id] = self.task.decode_tokens(h[0]["tokens"])
        return out


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="Translate sign-language video files to English text.")
    p.add_argument("videos", nargs="+", help="video files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="data root with config.yaml/spm.model/dict.txt (default: the checkpoint's)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    translator = SignTranslator.from_checkpoint(args.checkpoint, args.data, beam=args.beam)
    for video, text in zip(args.videos, translator.translate(args.videos, args.batch_size)):
        print(f"{video}\t{text}")


if __name__ == "__main__":
    main()
