"""ssvp-slt: sign-language video to English text, as a fairseq plugin (``--user-dir``).

Importing the package registers the task ``how2sign_video``, the model
``mae_vit_slt`` and the criterion ``slt_label_smoothed_cross_entropy``.
fairseq imports only this file for a user dir, so every module that
registers something is imported here.
"""

from .criterions import label_smoothed_ce  # noqa: F401
from .models import mae_vit_slt  # noqa: F401
from .tasks import how2sign_video  # noqa: F401
