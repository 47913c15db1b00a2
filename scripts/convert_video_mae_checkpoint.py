#!/usr/bin/env python
"""Convert public VideoMAE or mae_st weights into an encoder file for model.pretrained_encoder.

VideoMAE, Hugging Face transformers weights (VideoMAEModel / VideoMAEForPreTraining /
VideoMAEForVideoClassification; config.json beside the weights is read for the geometry):

    python scripts/convert_video_mae_checkpoint.py \\
        --input videomae-base/model.safetensors --output encoders/videomae_base.pt
    # (or --input videomae-base/ , or .../pytorch_model.bin; --config PATH for a config elsewhere)

VideoMAE, the authors' MCG-NJU/VideoMAE checkpoints (weights under "model" or "module"):

    python scripts/convert_video_mae_checkpoint.py --format videomae \\
        --input checkpoint.pth --output encoders/videomae_base_k400.pt --num-frames 16 --img-size 224

mae_st (facebookresearch/mae_st, weights under "model"):

    python scripts/convert_video_mae_checkpoint.py \\
        --input mae_pretrain_vit_large_k400.pth --output encoders/mae_st_large.pt

--format auto (the default) tells the sources apart by their keys. What the
weights cannot tell comes from config.json, the checkpoint's saved training
arguments, or --num-frames / --img-size / --num-heads (VideoMAE defaults: 16
frames, 224 px; heads of the standard ViT widths are known). The report lists
the tensors mapped, the non-encoder tensors ignored (MAE decoder,
classification head), the qkv fusing, whether the source lacked the final
norm, and the model settings to fine-tune with the file. Exit code 1 with a
one-line error when the input cannot be converted.
"""

import argparse
import logging
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.convert import (  # noqa: E402
    FORMATS,
    GeometryOverrides,
    convert_checkpoint,
    data_config_lines,
    model_settings,
    report_lines,
    write_conversion,
)
from ssvp_plugin.models.pretrained_encoder import PretrainedEncoderError  # noqa: E402

logger = logging.getLogger("convert_video_mae_checkpoint")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True, help="checkpoint (.pth, .bin, .safetensors) or HF model directory")
    parser.add_argument("--output", type=Path, required=True, help="encoder file to write (.pt)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="source naming (default: detect from the keys)")
    parser.add_argument("--config", type=Path, help="Hugging Face config.json (default: the one beside the input, if any)")
    parser.add_argument("--num-frames", type=int, help="frames per pretraining clip, when the checkpoint cannot tell")
    parser.add_argument("--img-size", type=int, help="pretraining crop size in pixels, when the checkpoint cannot tell")
    parser.add_argument("--tubelet-size", type=int, help="frames per tubelet (checked against the weights)")
    parser.add_argument("--patch-size", type=int, help="patch size in pixels (checked against the weights)")
    parser.add_argument("--num-heads", type=int, help="attention heads, for widths other than 384/768/1024/1280 without config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)

    overrides = GeometryOverrides(
        num_frames=args.num_frames, img_size=args.img_size, tubelet_size=args.tubelet_size,
        patch_size=args.patch_size, num_heads=args.num_heads,
    )
    try:
        conversion = convert_checkpoint(args.input, args.format, args.config, overrides)
        output = write_conversion(conversion, args.output)
    except PretrainedEncoderError as e:  # ConversionError included; messages start with the file
        logger.error(str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 1
    except OSError as e:
        logger.error(f"{e.filename or args.output}: {e.strerror or e}")
        return 1
    except Exception as e:  # a malformed checkpoint the checks above did not foresee: still one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        logger.error(f"{args.input}: cannot convert ({type(e).__name__}: {first})")
        return 1

    for line in report_lines(conversion, output) + data_config_lines(conversion):
        print(line)
    print("to fine-tune with it, set (hydra overrides of mae_vit_slt):")
    print("  " + " ".join(model_settings(conversion.geometry, output)))
    g = conversion.geometry
    print(
        f"  (the data config's num_frames / crop_size need not match the pretraining {g['num_frames']} frames / "
        f"{g['img_size']} px: position tables are interpolated when the encoder loads)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
