"""Rendering styles of the synthetic corpus, behind one small interface.

The corpus writers (:func:`~.corpus.render_corpus`, one clip per sentence,
and :func:`~.full_videos.render_full_videos`, How2Sign's full videos) decide
which sentences go where, run the workers and encode the mp4s; a *style*
decides what a video looks like:

- ``"simple"`` (the default, :mod:`.signer`): a bright yellow hand on small
  square frames, made to be learned fast (``make demo``);
- ``"how2sign"`` (:mod:`.how2sign_style`): a realistic-looking signer with
  two moving arms and hands with fingers, off-centre in 16:9 frames, varied
  people, backgrounds and lighting, camera noise, and sentences from one word
  to several clauses (:class:`~.grammar.DiscourseGrammar`).

A style is a small picklable object (it travels with every worker job) with:

- ``name``, ``width``, ``height``; ``grammar`` (``None`` means the simple
  grammar of :mod:`.grammar`); ``encoder_preset`` (x264 preset or ``None``);
- ``plan(words, rng)``: a plan of one sentence (``.n_frames``, ``.spans``,
  ``.words``), signed by a signer drawn from ``rng``; rendering is a pure
  function of the plan;
- ``frames(plan)``: its frames (an array, or an iterator for long videos);
  ``render(plan)``: the same as one (T, H, W, 3) uint8 array;
- ``video_look(rng)``, ``restyle(plan, look)``, ``join(plans, pauses, look)``:
  a full video is one signer (a *look*) signing several planned sentences,
  with ``pauses`` rest frames before each and after the last;
- ``keypoints(plan)``: the OpenPose keypoints of every frame, (T, 137, 3),
  read off the same geometry the frames are drawn from (:mod:`.openpose`).
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .signer import ClipPlan, plan_sentence, render_plan

STYLES = ("simple", "how2sign")
DEFAULT_FRAME_SIZE = (640, 360)  # the how2sign style's default (width, height)


class SimpleStyle:
    """The original synthetic signer (:mod:`.signer`) on ``size`` x ``size`` frames."""

    name = "simple"
    grammar = None
    encoder_preset: Optional[str] = None

    def __init__(self, size: int = 64):
        self.width = self.height = int(size)

    def __repr__(self):
        return f"SimpleStyle({self.width})"

    def plan(self, words, rng: np.random.Generator) -> ClipPlan:
        return plan_sentence(words, rng, height=self.height, width=self.width)

    def frames(self, plan: ClipPlan) -> np.ndarray:
        return render_plan(plan)

    def render(self, plan: ClipPlan) -> np.ndarray:
        return render_plan(plan)

    def keypoints(self, plan: ClipPlan) -> np.ndarray:
        from .simple_keypoints import plan_keypoints  # it uses the how2sign style's face model (OpenCV)

        return plan_keypoints(plan)

    def video_look(self, rng: np.random.Generator):
        """(background, skin, shirt): drawn exactly as a clip draws its colours (its first draws)."""
        probe = plan_sentence([], rng, 16, 16)
        return probe.background, probe.skin, probe.shirt

    def restyle(self, plan: ClipPlan, look) -> ClipPlan:
        plan.background, plan.skin, plan.shirt = look
        return plan

    def join(self, plans: Sequence[ClipPlan], pauses: Sequence[int], look) -> ClipPlan:
        """The sentences one after another, each pause showing the rest frame of the sentence that follows it."""
        if len(pauses) != len(plans) + 1 or not plans:
            raise ValueError("need one pause before each sentence and one after the last")
        shape_parts, xy_parts, spans = [], [], []
        t = 0
        for pause, plan in zip(pauses, plans):
            shape_parts += [np.repeat(plan.shape_ids[:1], pause), plan.shape_ids]
            xy_parts += [np.repeat(plan.xy[:1], pause, axis=0), plan.xy]
            t += pause
            spans += [(w, t + s0, t + e0) for w, s0, e0 in plan.spans]
            t += plan.n_frames
        shape_parts.append(np.repeat(plans[-1].shape_ids[:1], pauses[-1]))
        xy_parts.append(np.repeat(plans[-1].xy[:1], pauses[-1], axis=0))
        background, skin, shirt = look
        return ClipPlan(
            words=[w for p in plans for w in p.words],
            height=self.height,
            width=self.width,
            shape_ids=np.concatenate(shape_parts),
            xy=np.concatenate(xy_parts),
            spans=spans,
            background=background,
            skin=skin,
            shirt=shirt,
        )


def parse_frame_size(text: str) -> Tuple[int, int]:
    """``"640x360"`` -> ``(640, 360)`` (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"frame size must look like 640x360, got {text!r}") from None
    return w, h


def make_style(
    name: str = "simple",
    size: Optional[int] = None,
    frame_size: Optional[Tuple[int, int]] = None,
    words_per_sentence: Optional[Tuple[int, int]] = None,
):
    """A style by name. ``size`` (square frames) belongs to the simple style, ``frame_size``
    (width, height) and ``words_per_sentence`` (min, max) to the how2sign style."""
    if name == "simple":
        if frame_size is not None:
            raise ValueError("frame_size applies to the how2sign style; the simple style takes size")
        if words_per_sentence is not None:
            raise ValueError("words_per_sentence applies to the how2sign style (the simple grammar has 3-6 words)")
        return SimpleStyle(64 if size is None else size)
    if name == "how2sign":
        if size is not None:
            raise ValueError("size applies to the simple style; the how2sign style takes frame_size (width, height)")
        from .how2sign_style import How2SignStyle  # needs OpenCV; the simple style does not
        from .grammar import WORDS_PER_SENTENCE

        w, h = DEFAULT_FRAME_SIZE if frame_size is None else frame_size
        return How2SignStyle(w, h, WORDS_PER_SENTENCE if words_per_sentence is None else words_per_sentence)
    raise ValueError(f"unknown style {name!r}; choose one of {STYLES}")


def resolve_style(style: Union[str, object, None], size: int, frame_size=None, words_per_sentence=None):
    """The style object the corpus writers use: a style object as is, or one made from a name.

    ``size`` is the writers' square frame size: it applies to the simple style
    only (the how2sign style's frames are ``frame_size``)."""
    if style is None or isinstance(style, str):
        name = style or "simple"
        if name == "simple":
            return make_style("simple", size=size, frame_size=frame_size, words_per_sentence=words_per_sentence)
        return make_style(name, frame_size=frame_size, words_per_sentence=words_per_sentence)
    if frame_size is not None or words_per_sentence is not None:
        raise ValueError("pass frame_size / words_per_sentence to make_style, not with a style object")
    return style
