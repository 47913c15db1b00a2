#!/usr/bin/env python
"""Training-step cost of mae_vit_slt per batch size, next to transformers' VideoMAE encoder, and the
activation memory per encoder window.

    python scripts/benchmark_train.py [--preset base] [--frames 128] [--crop 224] [--batch-sizes 1 2 4 8] \
        [--steps 3] [--device cpu|cuda] [--what train,videomae,memory]
    # on a CPU, at sizes it can run in minutes:
    python scripts/benchmark_train.py --preset base --frames 16 --crop 112 --batch-sizes 1 2

Sections (--what):

  train     parameters, and per batch size (in encoder windows of --frames
            frames): step time (forward + backward + optimizer step of
            mae_vit_slt on random uint8 frames and random ~20-token captions,
            label-free cross-entropy, Adam), windows/s and peak memory. On
            CUDA: bf16 as fairseq's common.bf16 runs it (model in bf16, fp32
            master weights and Adam state), with and without
            encoder_activation_checkpointing; peak from
            torch.cuda.max_memory_allocated. On CPU: fp32 (--cpu-dtype), and
            "peak" is parameters + Adam state plus the growth of torch's CPU
            allocator during the step as its profiler records it (RSS is not
            used: the C allocator keeps freed pages).
  videomae  the encoder alone, forward + backward, against transformers'
            VideoMAEModel of the same size (tiny: our tiny preset's sizes;
            base: 768 wide, 12 layers, 12 heads; large: 1024/24/16) on the
            same input (frames, crop, tubelet 2, patch 16), drop path off in
            both; the ratio is measured in the same run.
  memory    activation memory per window for --memory-presets (base, large):
            measured on CPU in fp32 at --memory-frames (small) frame counts,
            with and without activation checkpointing, fitted linearly in
            tokens and EXTRAPOLATED to --frames frames in bf16 (fp32 / 2),
            then for --config-windows windows (the configs' batches: 8
            windows of 128 frames), to check the configs' estimates.
"""

import argparse
import statistics
import sys
import time
from argparse import Namespace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmark_common import host_line  # noqa: E402

VOCAB = 5000  # the recipe's vocabulary size
PAD, EOS = 1, 2
GB = 1e9


# -- building -----------------------------------------------------------------------------------------

def make_task(frames: int, crop: int, vocab: int = VOCAB) -> Namespace:
    """What build_model reads from a task: the data config (frames, crop) and the target dictionary."""
    from fairseq.data import Dictionary

    from ssvp_slt.corpus.data_config import VideoDataConfig

    dictionary = Dictionary()
    for i in range(vocab - len(dictionary)):
        dictionary.add_symbol(f"w{i}")
    data_cfg = VideoDataConfig(num_frames=frames, crop_size=crop, resize_short_side=crop)
    return Namespace(data_cfg=data_cfg, target_dictionary=dictionary)


def build_model(preset: str, task: Namespace, checkpointing: bool = False, drop_path=None):
    from ssvp_plugin.models.mae_vit_slt import MaeVitSltConfig, MaeVitSltModel

    extra = {} if drop_path is None else {"encoder_drop_path": drop_path}
    cfg = MaeVitSltConfig(preset=preset, max_target_positions=128, encoder_activation_checkpointing=checkpointing, **extra)
    torch.manual_seed(0)
    return MaeVitSltModel.build_model(cfg, task)


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def random_batch(windows: int, frames: int, crop: int, tokens: int, device: str, seed: int = 0) -> dict:
    """A collater-shaped batch: one full window per clip, random pixels, random captions of ``tokens`` tokens."""
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(0, 256, (windows, frames, crop, crop, 3), dtype=torch.uint8, generator=g)
    target = torch.randint(4, VOCAB, (windows, tokens), generator=g)
    target[:, -1] = EOS
    prev = torch.cat([torch.full((windows, 1), EOS), target[:, :-1]], 1)
    net = {"source": source, "padding_mask": torch.zeros(windows, frames, dtype=torch.bool),
           "window_starts": None, "prev_output_tokens": prev}
    return {"net_input": {k: (v.to(device) if v is not None else None) for k, v in net.items()},
            "target": target.to(device)}


class Trainer:
    """One optimizer step as fairseq takes it: fp32, or (bf16) a bf16 model with fp32 master weights and
    fp32 Adam state, grads copied to the masters (fairseq's FP16Optimizer with common.bf16)."""

    def __init__(self, model, dtype: torch.dtype, lr: float = 1e-4):
        self.model = model.train()
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.master = None
        if dtype != torch.float32:
            model.to(dtype)
            self.master = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        self.opt = torch.optim.Adam(self.master or self.params, lr=lr)

    def forward_loss(self, batch):
        logits, _ = self.model(**batch["net_input"])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch["target"].reshape(-1),
                               ignore_index=PAD)

    def step(self, batch):
        for p in self.params:
            p.grad = None
        loss = self.forward_loss(batch)
        loss.backward()
        if self.master is not None:
            for m, p in zip(self.master, self.params):
                m.grad = None if p.grad is None else p.grad.float()
        self.opt.step()
        if self.master is not None:
            with torch.no_grad():
                for m, p in zip(self.master, self.params):
                    p.copy_(m)
        return loss.detach()

    def static_bytes(self) -> int:
        """Parameters, fp32 masters and Adam state: what stays allocated between steps (grads excluded)."""
        tensors = list(self.model.parameters()) + (self.master or [])
        tensors += [t for s in self.opt.state.values() for t in s.values() if torch.is_tensor(t)]
        return sum(t.numel() * t.element_size() for t in tensors)


# -- measuring ----------------------------------------------------------------------------------------

def sync(device: str):
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn, steps: int, device: str) -> list:
    """Wall seconds of each of ``steps`` calls after one warm-up call (allocations, Adam state, kernels)."""
    fn()
    sync(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def alternating_seconds(fn_a, fn_b, steps: int, device: str) -> tuple:
    """Seconds per call of two functions, each warmed up once, then timed in turn (a, b, a, b, ...):
    on a shared machine a burst of load from elsewhere then hits both sides of the comparison."""
    fn_a(), fn_b()
    sync(device)
    a, b = [], []
    for _ in range(steps):
        for fn, times in ((fn_a, a), (fn_b, b)):
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
    return a, b


def cpu_allocator_growth(fn):
    """(peak, final) bytes allocated by torch's CPU allocator during ``fn()`` and fn's result.

    From the profiler's allocation records: a running sum of the blocks allocated while profiling,
    less those of them freed (frees of older blocks are left out, and the records' own running total
    is not used: it keeps blocks freed while the profiler was off)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    records, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            records.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.ptr))
    live, current, peak = {}, 0, 0
    for _, size, ptr in sorted(records, key=lambda r: r[0]):
        if size > 0:
            live[ptr] = size
            current += size
            peak = max(peak, current)
        elif ptr in live:
            current -= live.pop(ptr)
    return peak, current, out


def step_peak_bytes(trainer: Trainer, batch, device: str) -> tuple:
    """(peak bytes of a training step, how it was measured)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        trainer.step(batch)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated"
    peak, _, _ = cpu_allocator_growth(lambda: trainer.step(batch))
    return trainer.static_bytes() + peak, "params + Adam state + CPU allocator growth during the step (profiler)"


def is_oom(e: Exception) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


# -- sections -----------------------------------------------------------------------------------------

def train_section(args, device: str):
    task = make_task(args.frames, args.crop)
    model = build_model(args.preset, task)
    enc, dec = count_params(model.encoder), count_params(model.decoder)
    tokens_per_window = (args.frames // 2) * (args.crop // 16) ** 2
    print(f"\n[train] mae_vit_slt preset {args.preset}: {(enc + dec) / 1e6:.1f}M parameters "
          f"(encoder {enc / 1e6:.1f}M, decoder {dec / 1e6:.1f}M); window {args.frames} frames x {args.crop} px "
          f"= {tokens_per_window} tokens; captions of {args.tokens} tokens, vocabulary {VOCAB}")
    del model
    dtype = torch.bfloat16 if device == "cuda" else getattr(torch, args.cpu_dtype)
    settings = [False, True] if device == "cuda" or args.cpu_checkpointing else [False]
    if device == "cpu":
        print(f"  CPU figures ({torch.get_num_threads()} threads, {args.cpu_dtype}): NOT GPU figures; "
              f"memory = params + Adam state + the CPU allocator's growth during one step (profiler)")
    print(f"  {'ckpt':5s} {'windows':>7s} {'step s (median)':>16s} {'windows/s':>10s} {'peak GB':>8s}")
    for ckpt in settings:
        model = build_model(args.preset, task, checkpointing=ckpt).to(device)
        trainer = Trainer(model, dtype)
        for b in args.batch_sizes:
            batch = random_batch(b, args.frames, args.crop, args.tokens, device)
            try:
                times = seconds_per_call(lambda: trainer.step(batch), args.steps, device)
                peak, how = step_peak_bytes(trainer, batch, device)
            except RuntimeError as e:
                if not is_oom(e):
                    raise
                print(f"  {str(ckpt):5s} {b:7d} {'out of memory':>16s}")
                del batch
                if device == "cuda":
                    torch.cuda.empty_cache()
                break  # larger batches will not fit either
            med = statistics.median(times)
            print(f"  {str(ckpt):5s} {b:7d} {med:16.3f} {b / med:10.2f} {peak / GB:8.2f}")
            del batch
        del model, trainer
        if device == "cuda":
            torch.cuda.empty_cache()


def videomae_sizes(preset: str) -> dict:
    from ssvp_plugin.models.video_encoder_config import ENCODER_PRESETS

    p = ENCODER_PRESETS[preset]
    return dict(hidden_size=p["encoder_embed_dim"], num_hidden_layers=p["encoder_layers"],
                num_attention_heads=p["encoder_attention_heads"], intermediate_size=4 * p["encoder_embed_dim"])


def build_videomae(preset: str, frames: int, crop: int):
    """transformers' VideoMAEModel of the preset's size, built from a config (nothing downloaded)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    cfg = VideoMAEConfig(image_size=crop, patch_size=16, num_channels=3, num_frames=frames, tubelet_size=2,
                         qkv_bias=True, use_mean_pooling=False, attn_implementation="sdpa", **videomae_sizes(preset))
    torch.manual_seed(0)
    return VideoMAEModel(cfg)


def encoder_step(encoder, x):
    """Forward + backward of an encoder with a stand-in loss, then drop the grads."""
    out = encoder(x)
    feats = out[0] if isinstance(out, tuple) else out.last_hidden_state
    feats.float().pow(2).mean().backward()
    for p in encoder.parameters():
        p.grad = None


def videomae_section(args, device: str):
    dtype = torch.bfloat16 if device == "cuda" else getattr(torch, args.cpu_dtype)
    b = args.videomae_batch
    ours = build_model(args.preset, make_task(args.frames, args.crop), drop_path=0.0).encoder.vit
    theirs = build_videomae(args.preset, args.frames, args.crop)
    ours.to(device=device, dtype=dtype).train()
    theirs.to(device=device, dtype=dtype).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 3, args.frames, args.crop, args.crop, generator=g).to(device=device, dtype=dtype)
    x_theirs = x.transpose(1, 2).contiguous()  # VideoMAE reads (B, T, C, H, W)
    t_ours, t_theirs = alternating_seconds(lambda: encoder_step(ours, x), lambda: encoder_step(theirs, x_theirs),
                                           args.steps, device)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    where = f"CUDA bf16" if device == "cuda" else f"CPU {args.cpu_dtype}, {torch.get_num_threads()} threads"
    print(f"\n[videomae] encoder only, forward + backward, {b} window(s) of {args.frames} frames x {args.crop} px, "
          f"{where}, median of {args.steps}:")
    print(f"  ours (VideoViT, {args.preset}, {count_params(ours) / 1e6:.1f}M)            {mo:8.3f} s")
    print(f"  transformers VideoMAEModel ({theirs.config._attn_implementation} attention, "
          f"{count_params(theirs) / 1e6:.1f}M) {mt:8.3f} s")
    print(f"  ratio VideoMAE / ours: {mt / mo:.2f}x (above 1: ours is faster)")


def activation_bytes(model, batch) -> tuple:
    """(kept after forward, peak during forward + backward) bytes above what was live before, on CPU.

    "Kept" is what the forward pass leaves for the backward pass (saved activations, the loss graph):
    the activation memory. "Peak" adds the backward pass's temporaries (with checkpointing: one block's
    recomputed activations)."""
    for p in model.parameters():
        p.grad = None

    def forward():
        logits, _ = model(**batch["net_input"])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch["target"].reshape(-1))

    forward().backward()  # warm-up: lazily built buffers (decoder positions, masks) are not activations
    for p in model.parameters():
        p.grad = None
    _, retained, loss = cpu_allocator_growth(forward)
    del loss
    # gradients allocated beforehand (as after the first step): the peak is then activations and
    # temporaries only, not the parameters' gradient buffers (a constant, counted in the training state)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    peak, _, _ = cpu_allocator_growth(lambda: forward().backward())
    for p in model.parameters():
        p.grad = None
    return retained, peak


def fit_line(xs, ys):
    """Least-squares a + b x through the points (two points: the line through them)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def memory_section(args):
    target_tokens = (args.frames // 2) * (args.crop // 16) ** 2
    print(f"\n[memory] activation memory per window: MEASURED on CPU in fp32 at {args.memory_frames} frames x "
          f"{args.crop} px (1 window, {args.tokens}-token caption), EXTRAPOLATED linearly in tokens to "
          f"{args.frames} frames ({target_tokens} tokens) and halved for bf16. Extrapolations, not measurements.")
    for preset in args.memory_presets:
        rows = {}
        for frames in args.memory_frames:
            model = build_model(preset, make_task(frames, args.crop)).train()
            n_params = count_params(model)
            batch = random_batch(1, frames, args.crop, args.tokens, "cpu")
            tokens = (frames // 2) * (args.crop // 16) ** 2
            for ckpt in (False, True):
                model.encoder.vit.activation_checkpointing = ckpt
                rows.setdefault(ckpt, []).append((tokens,) + activation_bytes(model, batch))
            del model
        static = 20 * n_params  # bf16 weights + grads (2 + 2), fp32 masters + their grads (4 + 4), Adam (8)
        print(f"  {preset} ({n_params / 1e6:.0f}M parameters; bf16 training state ~{static / GB:.1f} GB "
              f"at 20 bytes/parameter):")
        for ckpt, points in rows.items():
            name = "with checkpointing" if ckpt else "without checkpointing"
            measured = ", ".join(f"{t} tokens: kept {r / 1e6:.0f} MB, peak {p / 1e6:.0f} MB" for t, r, p in points)
            a_r, b_r = fit_line([t for t, _, _ in points], [r for _, r, _ in points])
            a_p, b_p = fit_line([t for t, _, _ in points], [p for _, _, p in points])
            kept = (a_r + b_r * target_tokens) / 2
            peak = (a_p + b_p * target_tokens) / 2
            w = args.config_windows
            print(f"    {name}: measured fp32 {measured}; {b_r / 1e3:.1f} KB kept per token (fp32)")
            print(f"      EXTRAPOLATED bf16, {args.frames} frames: kept after forward {kept / GB:.2f} GB/window, "
                  f"peak in backward {peak / GB:.2f} GB/window; x{w} windows: kept {w * kept / GB:.1f} GB, "
                  f"peak {w * peak / GB:.1f} GB (+ {static / GB:.1f} GB training state)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--preset", default="base", choices=["tiny", "base", "large", "signhiera_tiny", "signhiera_base_128x224"],
                   help="mae_vit_slt preset; the signhiera_* ones have no VideoMAE peer (transformers' Hiera is image-only)")
    p.add_argument("--frames", type=int, default=128, help="frames per window")
    p.add_argument("--crop", type=int, default=224, help="crop size in pixels (multiple of 16)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8], help="windows per batch")
    p.add_argument("--tokens", type=int, default=20, help="caption length in tokens")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--cpu-dtype", default="float32", choices=["float32", "bfloat16"], help="model dtype on CPU")
    p.add_argument("--cpu-checkpointing", action="store_true", help="on CPU, also time with activation checkpointing")
    p.add_argument("--videomae-batch", type=int, default=1, help="windows per batch in the VideoMAE comparison")
    p.add_argument("--what", default="train,videomae", help="comma-separated sections: train, videomae, memory")
    p.add_argument("--memory-presets", nargs="+", default=["base", "large"], choices=["tiny", "base", "large"])
    p.add_argument("--memory-frames", type=int, nargs="+", default=[4, 8], help="frame counts measured for memory")
    p.add_argument("--config-windows", type=int, default=8, help="windows per batch in the configs (max_tokens 1024)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = {s.strip() for s in args.what.split(",") if s.strip()}
    unknown = sections - {"train", "videomae", "memory"}
    if unknown:
        p.error(f"unknown section(s) {sorted(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.crop % 16 or args.frames % 2:
        p.error("--crop must be a multiple of 16 and --frames even (patch 16, tubelet 2)")
    if len(set(args.memory_frames)) < 2 and "memory" in sections:
        p.error("--memory-frames needs two different frame counts to fit a line")

    print(host_line())
    if args.device == "cpu":
        print("device: CPU. Step times and memory below are CPU figures at the sizes given; GPU step times and "
              "torch.cuda peaks need --device cuda")
    if "train" in sections:
        train_section(args, args.device)
    if "videomae" in sections and args.preset.startswith("signhiera"):
        print("\n[videomae] skipped: a SignHiera preset has no VideoMAE of the same architecture (and transformers' "
              "HieraModel reads images only)")
    elif "videomae" in sections:
        videomae_section(args, args.device)
    if "memory" in sections:
        memory_section(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
