"""Caption normalisation, shared by vocabulary building, the task and scoring.

Keep this the single definition: the sentencepiece model is trained on
captions normalised here, so the task must normalise targets the same way.
"""


def normalize_caption(text: str, lowercase: bool) -> str:
    """Collapse every run of whitespace (spaces, tabs, newlines) to one space and strip
    the ends; lower-case when ``lowercase``. Punctuation and everything else is kept as is."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text
