#!/usr/bin/env python
"""Render MAE reconstructions to a PNG: does pretraining work?

    python scripts/render_mae_reconstructions.py --checkpoint CKPT_DIR/checkpoint_last.pt --data DATA_ROOT \\
        [--split val] [--clips 4] [--frames 6] [--scale 4] [--seed 0] [--device cpu] --out recon.png

Takes the first --clips clips of DATA_ROOT/<split>.tsv as evaluation sees them
(centre window, centre crop), hides patches as the ``mae_vit`` or ``mae_hiera``
checkpoint was trained to (mask seed --seed; 0 gives the masks validation uses)
and draws, per clip, three rows of --frames evenly spaced frames (padded frames
skipped), upscaled --scale times (``mae_hiera`` predicts the first frame of each
2-frame time unit: its rows and errors are on those frames):

    input            the frames the model was given
    masked           what the encoder saw: hidden patches drawn grey
    reconstruction   the decoder's prediction for hidden patches, visible ones as given

It prints the output path and, per clip, the mean squared error over hidden
pixels of valid frames (in [0, 1] pixel units) of the reconstruction and of
two trivial baselines:

    frame mean   each hidden pixel = the mean colour of its frame's visible pixels
    patch mean   each hidden patch flat at its own true mean (norm_pix_loss models only)

With norm_pix_loss (the pretraining configs' default) the model predicts
per-patch normalised pixels and the reconstruction puts back each hidden
patch's TRUE mean and spread, as MAE's own visualisations do: the picture and
the error get information the model never saw, and a model that predicts
nothing (zeros) shows exactly the patch-mean baseline, already below the
frame-mean one. Learning shows as a reconstruction error clearly below the
patch-mean baseline (and as structure, not flat blocks, in the picture).
"""

import argparse
import logging
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.viz.mae_reconstructions import (  # noqa: E402
    GridLayout,
    ReconstructionError,
    check_output_path,
    load_mae_checkpoint,
    reconstruct_split,
    render_grid,
    use_mask_seed,
    write_png,
)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a mae_vit or mae_hiera checkpoint (fairseq-hydra-train ... pretrain_mae_*)")
    p.add_argument("--data", required=True, help="data root with config.yaml and <split>.tsv")
    p.add_argument("--split", default="val", help="manifest to take clips from (default: val)")
    p.add_argument("--clips", type=positive_int, default=4, help="clips to show (default: 4)")
    p.add_argument("--frames", type=positive_int, default=6, help="frames per row (default: 6)")
    p.add_argument("--scale", type=positive_int, default=4, help="nearest-neighbour upscaling (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0: the validation masks)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--out", required=True, help="PNG to write")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_output_path(args.out)
        model, task = load_mae_checkpoint(args.checkpoint, args.data, args.device)
        use_mask_seed(model, args.seed)
        clips = reconstruct_split(model, task, args.split, args.clips)
        image = render_grid(clips, args.frames, args.scale)
        out = write_png(args.out, image)
    except (ReconstructionError, ValueError, OSError) as e:  # ManifestError, DataConfigError, VideoError, ...
        print(f"error: {e}", file=sys.stderr)
        return 1
    _, fh, fw, _ = clips[0].input.shape
    layout = GridLayout(len(clips), args.frames, fh, fw, args.scale)
    print(
        f"wrote {out} ({layout.width}x{layout.height} px: {len(clips)} clip(s) of the {args.split!r} split, "
        f"input / masked / reconstruction rows of {args.frames} frames, {fw}x{fh} px frames upscaled {args.scale}x)"
    )
    has_patch = all(c.patch_mean_mse is not None for c in clips)
    print(
        "hidden-pixel MSE, [0, 1] pixel units; baselines: frame mean = each frame's mean visible colour"
        + (", patch mean = each hidden patch's true mean (what predicting nothing shows)" if has_patch else "")
    )

    def line(name, rec, frame, patch, extra=""):
        text = f"  {name}: reconstruction {rec:.5f}  frame-mean baseline {frame:.5f}"
        return text + (f"  patch-mean baseline {patch:.5f}" if has_patch else "") + extra

    for c in clips:
        hidden = float(c.hidden[c.valid].mean()) if c.n_valid else float("nan")
        extra = f"  ({c.n_valid} frames, {hidden:.0%} of pixels hidden)"
        print(line(f"clip {c.name or c.id}", c.mse, c.baseline_mse, c.patch_mean_mse, extra))

    def average(values):
        return sum(values) / len(values)

    rec = average([c.mse for c in clips])
    patch = average([c.patch_mean_mse for c in clips]) if has_patch else None
    ref = patch if has_patch else average([c.baseline_mse for c in clips])
    ratio = f"  (reconstruction / {'patch' if has_patch else 'frame'}-mean baseline: {rec / ref:.2f})" if ref > 0 else ""
    print(line("mean", rec, average([c.baseline_mse for c in clips]), patch, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
