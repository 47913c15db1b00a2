"""Import FAIR's ``hiera-transformer`` package: the Hiera that SSVP-SLT's SignHiera is a copy of.

The package takes two layers from timm (``DropPath``, ``Mlp``). timm imports torchvision as it
is imported, and PyPI's torchvision wheels are built against CUDA torch, so with a CPU-only torch
(``make install``'s default, this project's CI) ``import timm`` fails. In that case this module
registers those two layers under timm's module name, with timm's parameter names (``fc1``,
``fc2``) and arithmetic, before importing ``hiera``; where timm imports, it is used as it is.
Import ``hiera`` through this module only.
"""

import sys
import types

import torch.nn as nn


class _Mlp(nn.Module):
    """timm.layers.Mlp as hiera uses it: fc1 -> activation -> fc2 (dropout 0)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0, **_):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class _DropPath(nn.Module):
    """timm.layers.DropPath: drop whole residual branches per sample while training."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * (mask / keep if self.scale_by_keep else mask)


def _timm_importable() -> bool:
    try:
        import timm.models.layers  # noqa: F401

        return True
    except Exception:  # ImportError, or torchvision's RuntimeError on a CPU-only torch
        for name in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
            del sys.modules[name]
        return False


TIMM_LAYERS = _timm_importable()
if not TIMM_LAYERS:
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.Mlp = _DropPath, _Mlp
    models = types.ModuleType("timm.models")
    models.layers = layers
    timm_stub = types.ModuleType("timm")
    timm_stub.models = models
    sys.modules.update({"timm": timm_stub, "timm.models": models, "timm.models.layers": layers})

try:
    import hiera  # noqa: E402
    from hiera.hiera_mae import MaskedAutoencoderHiera  # noqa: E402
finally:
    if not TIMM_LAYERS:  # leave no fake timm behind for other code to find
        for name in ("timm", "timm.models", "timm.models.layers"):
            sys.modules.pop(name, None)

Hiera = hiera.Hiera
__all__ = ["Hiera", "MaskedAutoencoderHiera", "TIMM_LAYERS", "hiera"]
