"""ssvp-slt: sign-language video to English text, as a fairseq plugin (``--user-dir``).

Importing the package registers the tasks ``how2sign_video`` (translation)
and ``unlabelled_video`` (pretraining), the models ``mae_vit_slt`` and
``mae_vit`` (MAE pretraining of its encoder), ``mae_hiera`` (MAE pretraining
of SignHiera), and the criteria
``slt_label_smoothed_cross_entropy`` and ``mae_reconstruction``.
Two-stage translation (stored features -> text) adds the task ``sign_features``
and the model ``feature_slt``. Ensembles of models reading different inputs (video + landmarks)
decode with the task ``sign_multimodal`` (docs/ensembles.md).
fairseq imports only this file for a user dir, so every module that
registers something is imported here.
"""

from . import runtime  # noqa: F401  (fault handling: see ssvp_plugin/runtime)
from .criterions import label_smoothed_ce, mae_reconstruction  # noqa: F401
from .models import feature_slt, mae_hiera, mae_vit, mae_vit_slt  # noqa: F401
from .tasks import how2sign_video, multimodal, sign_features, unlabelled_video  # noqa: F401
