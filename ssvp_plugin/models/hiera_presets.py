"""Hiera encoder sizes, shared by ``mae_hiera`` (pretraining) and the translation models.

``signhiera_base_128x224`` is SSVP-SLT's SignHiera (Hiera-Base for 128 frames of 224 px: the
geometry of ``dm_70h_ub_signhiera.pth``); ``signhiera_tiny`` is a CPU preset for tests and
synthetic runs (48 or 64 px crops). The clip length and crop (Hiera's ``input_size``) come from
the data config. Checkpoints store only the preset name: never change an existing preset.
"""

from typing import Dict

HIERA_PRESETS: Dict[str, Dict[str, object]] = {
    "signhiera_base_128x224": dict(
        embed_dim=96,  # widths 96/192/384/768, heads 1/2/4/8 over the four stages
        num_heads=1,
        stages=(2, 3, 16, 3),
        q_pool=3,
        q_stride=(1, 2, 2),  # pooling halves space only: one feature per 2 frames throughout
        mask_unit_size=(1, 8, 8),
        mask_unit_attn=(True, True, False, False),
        patch_kernel=(3, 7, 7),
        patch_stride=(2, 4, 4),
        patch_padding=(1, 3, 3),
        sep_pos_embed=True,
    ),
    "signhiera_tiny": dict(
        embed_dim=32,  # widths 32/64/128, heads 1/2/4
        num_heads=1,
        stages=(1, 2, 1),  # three stages: Hiera's unrolling needs the token grid divisible by 2^(stages-1)
        q_pool=2,  # 48 px -> 12x12 tokens -> 3x3; 64 px -> 16x16 -> 4x4
        q_stride=(1, 2, 2),
        mask_unit_size=(1, 4, 4),
        mask_unit_attn=(True, False, False),
        patch_kernel=(3, 7, 7),
        patch_stride=(2, 4, 4),
        patch_padding=(1, 3, 3),
        sep_pos_embed=True,
    ),
}
