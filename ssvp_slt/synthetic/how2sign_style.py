"""The How2Sign-like style: sign inventory, signers, sentence planning and frame rendering.

The simple style (:mod:`.signer`) is too easy to tell models apart with; this
style is closer to How2Sign's videos while staying learnable by a small model
that sees a 64-96 px crop of the signer:

- **Signs** (:data:`SIGNS`): every word of
  :data:`~ssvp_slt.synthetic.grammar.DISCOURSE_VOCAB` is a location on or in
  front of the body, a movement, which hands take part (``one``: the
  dominant hand only; ``sym``: both, mirrored; ``alt``: both, alternating;
  ``base``: the non-dominant hand holds a flat base that the dominant one acts
  on) and a handshape with an orientation. No two words share
  ``(location, movement, hands)``, so a word can be read from coarse cues
  that survive downscaling; the handshape (which fingers are extended, bent or
  curled, where the thumb is) adds realism and a further cue, never the only one.
- **Sentences** (:func:`plan_motion`): rest pose, then per word a transition
  (all pose parameters interpolated, eased) and the sign itself, then back
  to rest. Signing speed varies per sentence, sign duration, place and
  amplitude per word.
- **Signers** (:func:`sample_look`): skin tone, hair, clothes, body size and
  proportions, handedness and position in the frame (the horizontal centre
  anywhere between 30% and 70% of the width, so a centred square crop
  sometimes cuts off a hand), plus a :class:`~.scene.Scene` (background,
  lighting, camera noise).

Planning is separate from drawing: a :class:`SignPlan` holds, per frame, the
pose of both hands in body units (see :mod:`.person`), so the same sentence
can be rendered for any signer and frame size, and a full video is its
sentences' plans joined with rest frames (:func:`join_plans`). Rendering
(:func:`iter_frames`) streams frames, so long videos never sit in memory.
"""

from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .grammar import DISCOURSE_VOCAB, WORDS_PER_SENTENCE, DiscourseGrammar
from .person import HandPose, Signer, draw_arm, draw_body, draw_hand, wrist_px
from .scene import Lighting, NoiseBank, Scene, draw_background, hsv_colour, sample_scene

# --------------------------------------------------------------------------- inventory

# handshape -> (thumb, index, middle, ring, pinky, spread); see person.HandPose for the meaning
HANDSHAPES: Dict[str, Tuple[float, ...]] = {
    "B": (0.5, 1.0, 1.0, 1.0, 1.0, 0.0),  # flat hand
    "5": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),  # open, fingers spread
    "A": (0.5, 0.0, 0.0, 0.0, 0.0, 0.0),  # fist, thumb along the side
    "S": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),  # fist, thumb across the fingers
    "1": (0.0, 1.0, 0.0, 0.0, 0.0, 0.0),  # index
    "V": (0.0, 1.0, 1.0, 0.0, 0.0, 1.0),
    "W": (0.0, 1.0, 1.0, 1.0, 0.0, 1.0),
    "L": (1.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    "Y": (1.0, 0.0, 0.0, 0.0, 1.0, 0.6),
    "C": (0.8, 0.5, 0.5, 0.5, 0.5, 0.3),  # claw / C
    "O": (0.25, 0.3, 0.3, 0.3, 0.3, 0.0),
    "rest": (0.6, 0.7, 0.6, 0.55, 0.5, 0.15),  # relaxed
}

# location -> dominant palm centre (x towards the dominant side, y down; head heights from the head
# centre) and depth (how far in front of the shoulders; it only places the elbow).
# Places at the face sit at its edge (forehead top, temple, side of the cheek, under the chin), as
# real signs mostly do, so the face stays visible enough for the face detector.
LOCATIONS: Dict[str, Tuple[float, float, float]] = {
    "forehead": (0.28, -0.5, 0.45),
    "temple": (0.62, -0.05, 0.3),
    "cheek": (0.52, 0.22, 0.4),
    "chin": (0.06, 0.64, 0.55),
    "shoulder": (-0.62, 1.08, 0.25),  # the other shoulder
    "chest": (0.08, 1.38, 0.35),
    "neutral": (0.42, 1.85, 0.75),  # in front of the torso
    "high": (0.98, 0.05, 0.3),  # raised beside the head
    "stomach": (0.12, 2.3, 0.45),
    "side": (1.2, 1.9, 0.25),  # out at the dominant side (the place a centred crop cuts off first)
    "base": (-0.16, 1.5, 0.65),  # just above the non-dominant base hand
}
# where the non-dominant hand holds the base of a "base" sign (its own frame), and its pose
BASE_POSE = (0.24, 1.8, 0.65, 180.0, -1.0)  # x, y, depth, angle (fingers to the midline), back to the camera
BASE_SHAPE = "B"


def _ease(p):
    """Smooth start and stop (smoothstep)."""
    p = np.clip(p, 0.0, 1.0)
    return p * p * (3.0 - 2.0 * p)


# movement -> (frames at normal speed, offset function of the phase p in [0, 1] -> (n, 2) body units,
#              whether it is periodic: alternating hands then take it half a cycle apart)
def _tap(p):
    return np.stack([0 * p, -0.15 * np.abs(np.sin(2 * np.pi * p))], 1)  # two taps


def _down(p):
    return np.stack([0 * p, -0.28 + 0.56 * _ease(p)], 1)


def _up(p):
    return np.stack([0 * p, 0.28 - 0.56 * _ease(p)], 1)


def _out(p):
    return np.stack([0.55 * _ease(p) - 0.1, 0 * p], 1)  # towards the hand's own side (two hands: apart)


def _across(p):
    return np.stack([0.3 - 0.6 * _ease(p), 0 * p], 1)  # towards the midline (two hands: together)


def _arc(p):
    e = _ease(p)
    return np.stack([-0.32 + 0.64 * e, -0.32 * np.sin(np.pi * e)], 1)


def _circle(p):
    a = 2 * np.pi * p
    return np.stack([0.22 * np.sin(a), -0.22 * np.cos(a) + 0.22], 1)


def _shake(p):
    return np.stack([0.13 * np.sin(2 * np.pi * 3 * p), 0 * p], 1)  # three quick side-to-side shakes


MOVEMENTS = {
    "tap": (14, _tap, True),
    "down": (11, _down, False),
    "up": (11, _up, False),
    "out": (11, _out, False),
    "across": (11, _across, False),
    "arc": (13, _arc, False),
    "circle": (15, _circle, True),
    "shake": (15, _shake, True),
}
HANDS = ("one", "sym", "alt", "base")


@dataclass(frozen=True)
class Sign:
    location: str
    movement: str
    hands: str
    shape: str
    angle: float  # finger direction, degrees (0 towards the hand's side, -90 up, 180 towards the midline)
    facing: float  # +1 palm to the camera, -1 back of the hand


# word -> sign (loosely after ASL where that stays learnable; no two words share location+movement+hands)
SIGNS: Dict[str, Sign] = {
    # determiners
    "the": Sign("neutral", "tap", "one", "1", -70, -1),
    "a": Sign("stomach", "across", "one", "A", -90, -1),
    # adjectives
    "big": Sign("neutral", "out", "sym", "L", -90, 1),
    "small": Sign("neutral", "across", "sym", "B", -90, 1),
    "red": Sign("chin", "down", "one", "1", 180, -1),
    "tall": Sign("base", "up", "base", "1", -90, -1),
    "happy": Sign("chest", "circle", "one", "B", 180, -1),
    # nouns
    "dog": Sign("side", "tap", "one", "B", 90, -1),
    "cat": Sign("cheek", "out", "sym", "O", 180, 1),
    "man": Sign("forehead", "tap", "one", "5", -125, -1),
    "woman": Sign("chin", "tap", "one", "5", 180, 1),
    "bird": Sign("chin", "shake", "one", "L", 180, -1),
    "ball": Sign("neutral", "circle", "sym", "C", -90, 1),
    "car": Sign("neutral", "circle", "alt", "S", -90, -1),
    # transitive verbs
    "sees": Sign("temple", "out", "one", "V", -40, -1),
    "likes": Sign("chest", "out", "one", "L", -90, 1),
    "takes": Sign("high", "down", "one", "C", -90, 1),
    "wants": Sign("neutral", "down", "sym", "C", -90, 1),
    # intransitive verbs
    "runs": Sign("base", "out", "base", "L", 0, -1),
    "sleeps": Sign("cheek", "tap", "one", "B", -90, -1),
    # pronouns
    "he": Sign("side", "out", "one", "1", 0, -1),
    "she": Sign("high", "out", "one", "1", 0, -1),
    # conjunctions
    "and": Sign("stomach", "out", "one", "5", -90, 1),
    "but": Sign("chest", "out", "sym", "1", -90, -1),
    "then": Sign("base", "arc", "base", "L", -90, 1),
    # interjections
    "yes": Sign("shoulder", "tap", "one", "S", -90, -1),
    "no": Sign("neutral", "shake", "one", "V", -90, -1),
    "okay": Sign("stomach", "circle", "one", "O", -90, 1),
}


def _check_inventory():
    assert set(SIGNS) == set(DISCOURSE_VOCAB), "every word needs exactly one sign"
    coarse = [(s.location, s.movement, s.hands) for s in SIGNS.values()]
    assert len(set(coarse)) == len(coarse), "two words share location + movement + hands"
    for s in SIGNS.values():
        assert s.location in LOCATIONS and s.movement in MOVEMENTS and s.hands in HANDS and s.shape in HANDSHAPES
        assert (s.hands == "base") == (s.location == "base")


_check_inventory()

# --------------------------------------------------------------------------- poses

# a hand's pose per frame as a vector: x, y, depth, angle, facing, spread, thumb, index, middle, ring, pinky
POSE_DIM = 11
X, Y, DEPTH, ANGLE, FACING, SPREAD = range(6)
FINGERS = slice(6, 11)


def pose_vector(pos, depth, angle, facing, shape: str) -> np.ndarray:
    hs = HANDSHAPES[shape]
    return np.array([pos[0], pos[1], depth, angle, facing, hs[5], *hs[:5]], dtype=np.float64)


REST = pose_vector((0.3, 2.72), 0.4, 165.0, -1.0, "rest")  # hands low in front of the belly, same for both hands
BASE = pose_vector(BASE_POSE[:2], *BASE_POSE[2:], BASE_SHAPE)


def hand_pose(v: np.ndarray) -> HandPose:
    return HandPose(
        pos=(float(v[X]), float(v[Y])),
        angle=float(v[ANGLE]),
        facing=float(v[FACING]),
        spread=float(v[SPREAD]),
        fingers=tuple(float(f) for f in v[FINGERS]),
        depth=float(v[DEPTH]),
    )


# --------------------------------------------------------------------------- signers

# skin tones from light to dark (RGB): a signer's tone is interpolated along this list
SKIN_TONES = np.array(
    [(246, 218, 198), (233, 192, 163), (212, 163, 128), (186, 135, 99), (150, 103, 71), (112, 74, 50), (78, 52, 36)],
    dtype=np.float64,
)
HAIR_COLOURS = ((28, 22, 18), (58, 38, 26), (105, 72, 44), (190, 160, 105), (145, 145, 140), (135, 66, 34))
HAIR_STYLES = ("short", "long", "bun")
IRIS_COLOURS = ((48, 32, 22), (70, 50, 30), (60, 80, 105), (65, 85, 60))
P_LEFT_HANDED = 0.1
CENTRE_X = (0.3, 0.7)  # horizontal position of the signer's head, fraction of the frame width
HEAD_HEIGHT = (0.14, 0.18)  # head height, fraction of the frame height (How2Sign: ~0.17)


@dataclass(frozen=True)
class Look:
    """A signer and a scene, independent of the frame size (positions are fractions of the frame)."""

    centre_x: float  # head centre, fraction of the width
    centre_y: float  # head centre, fraction of the height
    head: float  # head height, fraction of the frame height
    mirror: int  # -1 right-handed (dominant hand on the image's left), +1 left-handed
    head_width: float
    shoulder_half: float
    hand_scale: float
    skin: Tuple[int, int, int]
    hair: Tuple[int, int, int]
    hair_style: str
    shirt: Tuple[int, int, int]
    short_sleeves: bool
    lips: Tuple[int, int, int]
    iris: Tuple[int, int, int]
    scene: Scene

    def signer(self, width: int, height: int) -> Signer:
        """The signer in pixels for a frame size."""
        return Signer(
            cx=self.centre_x * width,
            cy=self.centre_y * height,
            scale=self.head * height,
            mirror=self.mirror,
            head_width=self.head_width,
            shoulder_half=self.shoulder_half,
            hand_scale=self.hand_scale,
            skin=self.skin,
            hair=self.hair,
            hair_style=self.hair_style,
            shirt=self.shirt,
            short_sleeves=self.short_sleeves,
            lips=self.lips,
            iris=self.iris,
        )


def _colour(values) -> Tuple[int, int, int]:
    return tuple(int(np.clip(round(float(v)), 0, 255)) for v in values)


def _distance(a, b) -> float:
    return float(np.sqrt(((np.asarray(a, float) - np.asarray(b, float)) ** 2).sum()))


def sample_look(rng: np.random.Generator) -> Look:
    """A random signer in a random scene.

    Shirt and background keep a minimum colour distance from the skin (resampled
    until they do): hands over a same-coloured shirt would be invisible at low
    resolution, which real recordings avoid too.
    """
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    k = min(int(t), len(SKIN_TONES) - 2)
    skin = _colour(SKIN_TONES[k] + (SKIN_TONES[k + 1] - SKIN_TONES[k]) * (t - k) + rng.uniform(-6, 6, size=3))
    hair = _colour(np.asarray(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]) + rng.uniform(-8, 8, size=3))
    hair_style = HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]
    for _ in range(50):
        shirt = hsv_colour(rng, (0, 180), (0.0, 0.75), (0.1, 0.8))  # clothes: muted to saturated, dark to light
        if _distance(shirt, skin) > 70:
            break
    for _ in range(50):
        scene = sample_scene(rng)
        if min(_distance(scene.colour_a, skin), _distance(scene.colour_b, skin)) > 45:
            break
    head = rng.uniform(*HEAD_HEIGHT)
    # vertical placement: the hair stays in the frame and the resting hands stay visible
    lo, hi = max(0.2, 0.03 + 0.56 * head), min(0.3, 0.96 - 2.95 * head)
    return Look(
        centre_x=float(rng.uniform(*CENTRE_X)),
        centre_y=float(rng.uniform(lo, max(lo, hi))),
        head=float(head),
        mirror=1 if rng.random() < P_LEFT_HANDED else -1,
        head_width=float(rng.uniform(0.94, 1.06)),
        shoulder_half=float(rng.uniform(0.78, 0.95)),
        hand_scale=float(rng.uniform(0.92, 1.06)),
        skin=skin,
        hair=hair,
        hair_style=hair_style,
        shirt=shirt,
        short_sleeves=bool(rng.random() < 0.3),
        lips=_colour(np.asarray(skin) * 0.62 + np.array([150, 62, 62]) * 0.38),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        scene=scene,
    )


# --------------------------------------------------------------------------- planning

# timing, in frames at 25 fps (scaled by the sentence's speed)
REST_FRAMES = (3, 8)  # before and after the sentence
TRANSITION_FRAMES = (3, 10)  # between signs: 3 + 5 per head height travelled, clipped to this
SPEED = (0.85, 1.2)  # per sentence: frames are multiplied by 1 / speed
WORD_JITTER = (0.9, 1.12)  # per sign duration factor
PLACE_JITTER = 0.05  # +- head heights per sign
AMPLITUDE_JITTER = (0.85, 1.15)


@dataclass
class SignPlan:
    """Everything needed to render one video; rendering is a pure function of it."""

    words: List[str]
    width: int
    height: int
    look: Look
    dom: np.ndarray  # (T, POSE_DIM) dominant hand, its own body-unit frame
    nd: np.ndarray  # (T, POSE_DIM) non-dominant hand
    spans: List[Tuple[str, int, int]] = field(default_factory=list)  # (word, first frame, end exclusive)

    @property
    def n_frames(self) -> int:
        return int(len(self.dom))


def sign_frames(sign: Sign, n: int, place: np.ndarray, amplitude: float) -> Tuple[np.ndarray, np.ndarray]:
    """The (n, POSE_DIM) poses of the dominant and non-dominant hand during one sign."""
    base_frames, fn, periodic = MOVEMENTS[sign.movement]
    p = np.linspace(0.0, 1.0, n)
    depth = LOCATIONS[sign.location][2]
    dom = np.repeat(pose_vector(place, depth, sign.angle, sign.facing, sign.shape)[None], n, axis=0)
    dom[:, :2] += fn(p) * amplitude
    if sign.hands == "one":
        nd = np.repeat(REST[None], n, axis=0)
    elif sign.hands == "sym":
        nd = dom.copy()
    elif sign.hands == "alt":
        nd = np.repeat(pose_vector(place, depth, sign.angle, sign.facing, sign.shape)[None], n, axis=0)
        nd[:, :2] += fn((p + 0.5) % 1.0 if periodic else 1.0 - p) * amplitude
    else:  # base: the non-dominant hand holds still, the dominant one acts on it
        nd = np.repeat(BASE[None], n, axis=0)
    return dom, nd


def _transition(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """n poses strictly between a and b, eased."""
    k = _ease(np.arange(1, n + 1) / (n + 1.0))[:, None]
    return a[None] + (b - a)[None] * k


def _unwrap_to(prev_angle: float, seq: np.ndarray) -> np.ndarray:
    """Shift a sequence's angles by whole turns so a transition turns the short way round."""
    seq = seq.copy()
    seq[:, ANGLE] += 360.0 * np.round((prev_angle - seq[0, ANGLE]) / 360.0)
    return seq


def plan_motion(words: Sequence[str], rng: np.random.Generator):
    """(dom, nd, spans) of a sentence: rest, signs joined by transitions, rest."""
    unknown = [w for w in words if w not in SIGNS]
    if unknown:
        raise ValueError(f"words without a sign: {unknown}")
    speed = rng.uniform(*SPEED)
    dom: List[np.ndarray] = []
    nd: List[np.ndarray] = []
    spans: List[Tuple[str, int, int]] = []
    t = 0

    def add(d, n_):
        nonlocal t
        dom.append(d)
        nd.append(n_)
        t += len(d)

    def rest(n):
        add(np.repeat(REST[None], n, axis=0), np.repeat(REST[None], n, axis=0))

    def transition_to(d1, n1):
        d0, n0 = dom[-1][-1], nd[-1][-1]
        dist = max(np.hypot(*(d1[0, :2] - d0[:2])), np.hypot(*(n1[0, :2] - n0[:2])))
        n = int(np.clip(round((3 + 5 * dist) / speed), *TRANSITION_FRAMES))
        add(_transition(d0, d1[0], n), _transition(n0, n1[0], n))

    rest(int(rng.integers(REST_FRAMES[0], REST_FRAMES[1] + 1)))
    for w in words:
        sign = SIGNS[w]
        n = max(6, int(round(MOVEMENTS[sign.movement][0] / speed * rng.uniform(*WORD_JITTER))))
        place = np.asarray(LOCATIONS[sign.location][:2]) + rng.uniform(-PLACE_JITTER, PLACE_JITTER, size=2)
        d, n_ = sign_frames(sign, n, place, rng.uniform(*AMPLITUDE_JITTER))
        d = _unwrap_to(dom[-1][-1, ANGLE], d)
        n_ = _unwrap_to(nd[-1][-1, ANGLE], n_)
        transition_to(d, n_)
        spans.append((w, t, t + n))
        add(d, n_)
    if words:
        back = np.repeat(REST[None], 1, axis=0)
        transition_to(_unwrap_to(dom[-1][-1, ANGLE], back), _unwrap_to(nd[-1][-1, ANGLE], back))
    rest(int(rng.integers(REST_FRAMES[0], REST_FRAMES[1] + 1)))
    return np.concatenate(dom), np.concatenate(nd), spans


def check_frame_size(width: int, height: int) -> None:
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"frame size must be even and at least 16x16, got {width}x{height}")


def plan_sentence(words: Sequence[str], rng: np.random.Generator, width: int = 640, height: int = 360) -> SignPlan:
    """A sentence signed by a random signer: the look is drawn first, then the motion."""
    check_frame_size(width, height)
    look = sample_look(rng)
    dom, nd, spans = plan_motion(words, rng)
    return SignPlan(list(words), width, height, look, dom, nd, spans)


def join_plans(plans: Sequence[SignPlan], pauses: Sequence[int], look: Look) -> SignPlan:
    """One video of several sentences by one signer: ``pauses[i]`` rest frames before sentence i,
    ``pauses[-1]`` after the last one (``len(pauses) == len(plans) + 1``)."""
    if len(pauses) != len(plans) + 1 or not plans:
        raise ValueError("need one pause before each sentence and one after the last")
    dom, nd, spans = [], [], []
    t = 0
    for pause, plan in zip(pauses, plans):
        dom += [np.repeat(REST[None], pause, axis=0), plan.dom]
        nd += [np.repeat(REST[None], pause, axis=0), plan.nd]
        t += pause
        spans += [(w, t + s, t + e) for w, s, e in plan.spans]
        t += plan.n_frames
    dom.append(np.repeat(REST[None], pauses[-1], axis=0))
    nd.append(np.repeat(REST[None], pauses[-1], axis=0))
    return SignPlan(
        words=[w for p in plans for w in p.words],
        width=plans[0].width,
        height=plans[0].height,
        look=look,
        dom=np.concatenate(dom),
        nd=np.concatenate(nd),
        spans=spans,
    )


# --------------------------------------------------------------------------- rendering


def hand_positions(plan: SignPlan) -> Tuple[np.ndarray, np.ndarray]:
    """Palm centres in pixels per frame, (T, 2) for the dominant and the non-dominant hand."""
    sg = plan.look.signer(plan.width, plan.height)
    return sg.to_px(plan.dom[:, :2], 1), sg.to_px(plan.nd[:, :2], -1)


def drawing_order(plan: SignPlan, t: int) -> List[Tuple[int, np.ndarray]]:
    """``[(side, pose vector), ...]`` of frame ``t``, the hand further from the camera first (it is
    drawn first, so the other one covers it); on a tie the non-dominant one (the dominant hand
    acts in front of a base hand)."""
    hands = [(-1, plan.nd[t]), (1, plan.dom[t])]
    if plan.dom[t, DEPTH] < plan.nd[t, DEPTH] - 0.05:
        hands.reverse()
    return hands


def iter_frames(plan: SignPlan) -> Iterator[np.ndarray]:
    """The frames of a plan, one (H, W, 3) uint8 RGB array at a time.

    The background and body are drawn and lit once; per frame the arms and
    hands are drawn over a copy (coloured by the light where they are), then
    camera noise is added. Each yielded array is new (safe to keep).
    """
    h, w = plan.height, plan.width
    sg = plan.look.signer(w, h)
    scene = plan.look.scene
    lighting = Lighting(scene, h, w)
    static = draw_background(scene, h, w)
    draw_body(static, sg)
    static = lighting.apply(static)
    noise = NoiseBank(scene, h, w)
    choices = noise.choice(np.random.default_rng([scene.seed, 3]), plan.n_frames)
    for t in range(plan.n_frames):
        frame = static.copy()
        for side, v in drawing_order(plan, t):
            pose = hand_pose(v)
            wrist = wrist_px(sg, pose, side)
            light = lighting.at(*wrist)
            draw_arm(frame, sg, side, wrist, pose.depth, light)
            draw_hand(frame, sg, pose, side, light)
        yield noise.add(frame, choices[t])


def render_plan(plan: SignPlan) -> np.ndarray:
    """All frames of a plan, (T, H, W, 3) uint8 RGB (for short clips and tests)."""
    return np.stack(list(iter_frames(plan))) if plan.n_frames else np.zeros((0, plan.height, plan.width, 3), np.uint8)


# --------------------------------------------------------------------------- the style


class How2SignStyle:
    """The How2Sign-like style as the corpus writers use it (see :mod:`.styles`)."""

    name = "how2sign"
    # x264 "veryfast": these frames are large and noisy; the default preset would dominate the run time
    encoder_preset: Optional[str] = "veryfast"

    def __init__(self, width: int = 640, height: int = 360, words_per_sentence=WORDS_PER_SENTENCE):
        check_frame_size(width, height)
        self.width, self.height = int(width), int(height)
        self.grammar = DiscourseGrammar(words_per_sentence)

    def __repr__(self):
        return f"How2SignStyle({self.width}x{self.height}, words_per_sentence={self.grammar.words_per_sentence})"

    def plan(self, words: Sequence[str], rng: np.random.Generator) -> SignPlan:
        return plan_sentence(words, rng, self.width, self.height)

    def frames(self, plan: SignPlan) -> Iterator[np.ndarray]:
        return iter_frames(plan)

    def render(self, plan: SignPlan) -> np.ndarray:
        return render_plan(plan)

    def keypoints(self, plan: SignPlan) -> np.ndarray:
        from .how2sign_keypoints import plan_keypoints  # it imports this module

        return plan_keypoints(plan)

    def video_look(self, rng: np.random.Generator) -> Look:
        return sample_look(rng)

    def restyle(self, plan: SignPlan, look: Look) -> SignPlan:
        return replace(plan, look=look)

    def join(self, plans: Sequence[SignPlan], pauses: Sequence[int], look: Look) -> SignPlan:
        return join_plans(plans, pauses, look)
