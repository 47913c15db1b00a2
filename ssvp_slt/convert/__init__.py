"""Convert public video-MAE weights (VideoMAE, mae_st) into this project's encoder files.

``convert_checkpoint`` reads a checkpoint, maps every encoder tensor by an
explicit key map (:mod:`.videomae`, :mod:`.mae_st`), checks the result forms a
:class:`~ssvp_plugin.models.video_vit.VideoViT` of the inferred geometry and
returns a :class:`Conversion`; ``write_conversion`` saves it as an encoder file
that ``model.pretrained_encoder`` loads. ``scripts/convert_video_mae_checkpoint.py``
is the command-line front end.
"""

from pathlib import Path
from typing import Optional

from .common import (
    Conversion,
    ConversionError,
    GeometryOverrides,
    check_fits_video_vit,
    data_config_lines,
    model_settings,
    read_source,
    report_lines,
    write_conversion,
)
from .mae_st import convert_mae_st, looks_like_mae_st
from .videomae import convert_videomae, looks_like_videomae

FORMATS = ("auto", "videomae", "mae_st")


def detect_format(source) -> str:
    """'videomae' or 'mae_st' from the state dict's keys."""
    is_videomae, is_mae_st = looks_like_videomae(source.state), looks_like_mae_st(source.state)
    if is_videomae and not is_mae_st:
        return "videomae"
    if is_mae_st and not is_videomae:
        return "mae_st"
    sample = ", ".join(sorted(source.state)[:6])
    if is_videomae:
        raise ConversionError(f"{source.path}: keys of both VideoMAE and mae_st blocks; pass --format")
    raise ConversionError(
        f"{source.path}: unknown checkpoint format: neither VideoMAE (Hugging Face or original naming) nor "
        f"mae_st blocks found (first keys: {sample})"
    )


def convert_checkpoint(
    path,
    fmt: str = "auto",
    config: Optional[Path] = None,
    overrides: Optional[GeometryOverrides] = None,
) -> Conversion:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    overrides = overrides or GeometryOverrides()
    source = read_source(path)
    if fmt == "auto":
        fmt = detect_format(source)
    if fmt == "videomae":
        conversion = convert_videomae(source, overrides, config)
    else:
        if config is not None:
            raise ConversionError(f"{config}: --config applies to Hugging Face VideoMAE weights, not mae_st")
        conversion = convert_mae_st(source, overrides)
    check_fits_video_vit(source.path, conversion.state, conversion.geometry)
    return conversion


__all__ = [
    "FORMATS",
    "Conversion",
    "ConversionError",
    "GeometryOverrides",
    "convert_checkpoint",
    "detect_format",
    "data_config_lines",
    "model_settings",
    "report_lines",
    "write_conversion",
]
