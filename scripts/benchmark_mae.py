#!/usr/bin/env python
"""Time one MAE training step against the same encoder run on every token.

    python scripts/benchmark_mae.py [--preset tiny] [--crop 224] [--frames 16] [--batch 4] \
        [--mask-ratio 0.9] [--steps 5] [--device cpu|cuda]

MAE's encoder sees only the visible tokens; the light decoder sees all of
them. This prints milliseconds per forward+backward for the ``mae_vit`` model
and for the encoder alone over the full token sequence (what fine-tuning, or a
BERT-style masked model, pays), and their ratio. No data is read: inputs are
random clips of the given size.
"""

import argparse
import sys
import time
from argparse import Namespace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssvp_plugin.models.mae_vit import MaeVitConfig, MaeVitModel  # noqa: E402


def time_steps(step, steps: int, device: str) -> float:
    step()  # warm-up (allocations, kernel selection)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", choices=["tiny", "base", "large"])
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="autocast dtype on cuda")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    task = Namespace(data_cfg=Namespace(num_frames=args.frames, crop_size=args.crop, mean=[0.45] * 3, std=[0.225] * 3))
    model = MaeVitModel.build_model(MaeVitConfig(preset=args.preset, mask_ratio=args.mask_ratio, encoder_drop_path=0.0), task)
    model.to(args.device).train()
    # uint8 frames (B, T, H, W, C), as the collater delivers them; the model normalises them
    x = torch.randint(0, 256, (args.batch, args.frames, args.crop, args.crop, 3), dtype=torch.uint8, device=args.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda" and args.dtype == "bfloat16")

    def mae_step():
        with autocast:
            out = model(x)
            loss = ((out["pred"].float() - out["target"].float()) ** 2).mean(-1)[out["loss_mask"]].mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    def full_encoder_step():
        with autocast:
            feats, _ = model.encoder(model.frames(x))
            loss = feats.float().pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    n_tokens = (args.frames // model.cfg.tubelet_size) * (args.crop // model.cfg.patch_size) ** 2
    with torch.no_grad():
        n_visible = model(x[:1])["keep"].shape[1]
    mae_ms = time_steps(mae_step, args.steps, args.device)
    full_ms = time_steps(full_encoder_step, args.steps, args.device)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; preset {args.preset}, batch {args.batch} x {args.frames} frames x {args.crop} px, "
          f"{n_tokens} tokens per clip, {n_visible} visible at mask ratio {args.mask_ratio}")
    print(f"MAE step (encoder on visible tokens + decoder on all): {mae_ms:8.1f} ms")
    print(f"encoder alone on all tokens:                           {full_ms:8.1f} ms")
    print(f"speed-up: {full_ms / mae_ms:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
