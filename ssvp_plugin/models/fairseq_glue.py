"""What every translation model here needs from fairseq's conventions, written once."""

from typing import Callable, Dict, List

import torch
from fairseq.models import register_model_architecture


def reorder_encoder_out(encoder_out: Dict[str, List[torch.Tensor]], new_order) -> Dict[str, List[torch.Tensor]]:
    """Beam search's reordering of fairseq's list-valued encoder outputs (T x B x C and B x ... entries)."""
    batch_dim = {"encoder_out": 1, "encoder_states": 1}
    return {key: [x.index_select(batch_dim.get(key, 0), new_order) for x in values] for key, values in encoder_out.items()}


def register_preset_architectures(model_name: str, presets, resolve_preset: Callable) -> None:
    """Named architectures ``<model>_<preset>`` for the legacy ``fairseq-train --arch`` path (under
    hydra, ``model.preset`` selects the preset): the arch name is the preset, explicit size flags
    still override it."""

    def preset_architecture(name):
        def arch(args):
            args.preset = name
            vars(args).update(vars(resolve_preset(args)))

        return arch

    for name in presets:
        register_model_architecture(model_name, f"{model_name}_{name}")(preset_architecture(name))
