"""Per-clip feature sequences for two-stage translation (SSVP-SLT's recipe).

``store``: the on-disk feature store (numpy and yaml only: no torch, no fairseq), written by the
extraction and by any other producer of per-frame vectors (keypoints, ...), read by the
``sign_features`` task. ``encoder`` and ``extract``: a frozen video encoder run over a data
root's clips (they use the plugin's models, so they import torch and fairseq). Import the
submodules; this package imports nothing.
"""
