"""ssvp-slt's tools around the fairseq plugin: everything that runs offline.

``ssvp_plugin/`` is what ``fairseq --user-dir`` loads (data sets, tasks,
models, criteria). This package holds the rest, and importing it does not
import fairseq:

- :mod:`ssvp_slt.corpus`: the prepared-corpus format both sides share (data
  config, manifests, caption normalisation, video reading, frame sampling);
- :mod:`ssvp_slt.prep`: How2Sign preparation (cutting, checks, reports, face
  blurring, signer crop);
- :mod:`ssvp_slt.synthetic`: the synthetic sign-language corpora tests and demos use;
- :mod:`ssvp_slt.scoring`: scoring ``fairseq-generate`` output;
- :mod:`ssvp_slt.evaluation`: the evaluation report and model comparison (``ssvp-slt-evaluate``,
  ``ssvp-slt-compare``); its :mod:`~ssvp_slt.evaluation.decode` imports fairseq, to decode checkpoints.

Three tools need the plugin's models and so import fairseq when used:
:mod:`ssvp_slt.convert` (public VideoMAE / mae_st weights -> encoder files),
:mod:`ssvp_slt.viz` (MAE reconstruction pictures) and :mod:`ssvp_slt.translate`
(the Python translation API).
"""
