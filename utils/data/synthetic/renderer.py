"""Synthetic photos of people with exact masks: the offline stand-in for real person data.

Each picture is a crop of a real photograph bundled with scikit-image, with a few things that are
NOT people painted on it (skin-coloured blobs, patterned boxes, poles), then one to three stylised
people on top: head, hair, neck, a patterned shirt, trousers / shorts / a skirt, shoes, and arms and
legs bent at the joints. Poses, sizes, clothes and skin tones vary, people overlap each other and
the image border, and sometimes an object stands in front of someone.

Shapes are drawn at SUPERSAMPLE times the output size and averaged down, so edges in the image are
soft like in a photo, while the mask is cut at 50 % coverage and stays strictly 0/1.

Sample `index` of a dataset with seed `seed` depends only on (seed, index): the same numbers give the
same picture on every machine, in every DataLoader worker, in any order.

Difficulty knob: ``difficulty=1.0`` (the default) is the set described above. Lower values scale down
the clutter that is there to make the task hard: the mean number of distractors (1.8 at 1.0), the share
of skin-coloured ones (40 %), the chance of an occluder (20 %) and the share of small, far-away people
(35 %, the rest goes to medium and close-up people). ``difficulty=0`` leaves photo backgrounds and
1-3 medium or large people. Picture i of a seed keeps its background photo crop at every difficulty;
the rest is drawn anew.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..transforms import ImageSize, as_height_width

SUPERSAMPLE = 2
# Label codes on the drawing canvas: 0 is background, 1..99 are distractors (not people),
# PERSON_CODE_START and above are body parts. The mask is "code >= PERSON_CODE_START".
PERSON_CODE_START = 100
CODES_PER_PERSON = 8
SKIN, HAIR, SHIRT, LEGWEAR, SHOES = range(5)

SKIN_TONES = np.array(
    [
        (255, 224, 196), (241, 194, 160), (234, 192, 134), (224, 172, 105), (198, 134, 66),
        (170, 110, 70), (141, 85, 36), (110, 70, 45), (92, 56, 30), (62, 40, 28),
    ],
    dtype=np.float32,
) / 255
HAIR_COLOURS = np.array(
    [(20, 15, 12), (45, 30, 20), (80, 50, 30), (120, 80, 40), (200, 160, 90), (150, 150, 150), (130, 40, 20)],
    dtype=np.float32,
) / 255


# --------------------------------------------------------------------------------------------
# Backgrounds: real photographs shipped inside scikit-image, so no download is ever needed.
# --------------------------------------------------------------------------------------------
def _skimage_photos() -> dict[str, np.ndarray]:
    """The scikit-image sample photos we use as backgrounds (all bundled, none downloaded)."""
    from skimage import data

    # `astronaut` and `camera` are left out on purpose: they show people, who would then
    # appear in our pictures without being in the mask and teach the network the wrong thing.
    # `stereo_motorcycle`, `moon` and `page` are left out because their licence is not documented.
    loaders = {
        "coffee": data.coffee,
        "chelsea": data.chelsea,
        "rocket": data.rocket,
        "immunohistochemistry": data.immunohistochemistry,
        "hubble_deep_field": data.hubble_deep_field,
        "retina": data.retina,
        "grass": data.grass,
        "gravel": data.gravel,
        "brick": data.brick,
        "coins": data.coins,
        "text": data.text,
        "clock": data.clock,
        "cell": data.cell,
    }
    photos = {}
    for name, load in loaders.items():
        # Some scikit-image builds fetch a few files on demand; without them we have one photo fewer.
        with contextlib.suppress(ImportError, OSError, ValueError):
            photos[name] = np.asarray(load())
    return photos


@functools.lru_cache(maxsize=1)
def background_photos() -> tuple[Image.Image, ...]:
    """The background photographs as PIL images, loaded once per process."""
    photos = []
    for array in _skimage_photos().values():
        if array.dtype != np.uint8:
            continue
        if array.ndim == 3:
            array = array[..., :3]
        photo = Image.fromarray(array)
        # Our pictures are small; shrinking the big photos once makes every crop several times cheaper.
        photo.thumbnail((600, 600), Image.BILINEAR)
        photos.append(photo)
    if not photos:
        raise RuntimeError("scikit-image ships no usable sample photos; cannot build synthetic backgrounds")
    return tuple(photos)


def _photo_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of a sample photo, flipped, rescaled and colour-shifted; float32 (H, W, 3) in [0, 1]."""
    photos = background_photos()
    photo = photos[rng.integers(len(photos))]
    pw, ph = photo.size
    # Crop with the output's aspect ratio, anywhere from a quarter of the photo to all of it.
    crop_h = min(ph, pw * height / width) * rng.uniform(0.25, 1.0)
    crop_w = crop_h * width / height
    x0 = rng.uniform(0, pw - crop_w)
    y0 = rng.uniform(0, ph - crop_h)
    box = (x0, y0, x0 + crop_w, y0 + crop_h)
    if rng.random() < 0.3:
        # Out-of-focus backgrounds are common in photos of people; shrinking then enlarging
        # blurs like a defocused lens at a fraction of the cost of a Gaussian filter.
        blur = rng.uniform(2.0, 5.0)
        small = photo.resize((max(1, round(width / blur)), max(1, round(height / blur))), Image.BOX, box=box)
        crop = small.resize((width, height), Image.BILINEAR)
    else:
        # BOX is a proper area average when shrinking, and the cheapest such filter in PIL.
        crop = photo.resize((width, height), Image.BOX, box=box)
    pixels = np.asarray(crop, dtype=np.float32) / 255
    if pixels.ndim == 2:
        # Grey photos get a random tint so they do not all look like black-and-white prints.
        tint = rng.uniform(0.5, 1.0, 3)
        pixels = pixels[..., None] * tint + rng.uniform(0, 0.3) * (1 - tint)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    gains = rng.uniform(0.75, 1.25, 3)
    contrast = rng.uniform(0.6, 1.2)
    mean = pixels.mean()
    pixels = (pixels - mean) * contrast + mean + rng.uniform(-0.12, 0.12)
    return np.clip(pixels * gains, 0, 1).astype(np.float32)


def _room_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A plain wall over a floor, lit from one side: many real photos of people are indoors."""
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    wall = rng.uniform(0.25, 0.95, 3).astype(np.float32)
    floor = rng.uniform(0.1, 0.7, 3).astype(np.float32)
    horizon = rng.uniform(0.45, 0.85)
    light = 1 + rng.uniform(-0.3, 0.3) * (cols - 0.5) + rng.uniform(-0.2, 0.2) * (rows - 0.5)
    pixels = np.where(rows < horizon, wall, floor * (0.8 + 0.4 * rows)) * light
    pixels = pixels + rng.normal(0, 0.02, (height, width, 1)).astype(np.float32)
    return np.clip(pixels, 0, 1).astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Background for one picture: mostly photo crops, sometimes a simple room."""
    if rng.random() < 0.2:
        return _room_background(rng, height, width)
    return _photo_background(rng, height, width)


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed block of Gaussian noise; pictures take random windows of it instead of drawing fresh noise."""
    # Drawing new normal numbers for every pixel of every picture was a large share of the time.
    return np.random.default_rng(12345).standard_normal((1024, 1024), dtype=np.float32)


def noise_window(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A (height, width) window of standard-normal noise at a random place in the bank."""
    bank = _noise_bank()
    if height > bank.shape[0] or width > bank.shape[1]:
        return rng.standard_normal((height, width), dtype=np.float32)
    y = rng.integers(bank.shape[0] - height + 1)
    x = rng.integers(bank.shape[1] - width + 1)
    return bank[y:y + height, x:x + width]


# --------------------------------------------------------------------------------------------
# Paint: how the pixels of one label code are coloured (pattern + lighting).
# --------------------------------------------------------------------------------------------
@dataclass
class Paint:
    """Colour pattern for one region: plain, stripes, checks, dots or grainy noise, plus a light gradient."""

    pattern: str
    colour: np.ndarray
    other_colour: np.ndarray
    period: float = 8.0  # pattern repeat, in canvas pixels
    angle: float = 0.0  # pattern direction, radians
    grain: float = 0.03  # fabric / skin texture strength
    light_origin: tuple[float, float] = (0.0, 0.0)
    light_direction: tuple[float, float] = (0.0, 0.0)  # brightness change per canvas pixel

    def colours(self, xs: np.ndarray, ys: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """RGB values in [0, 1] for the canvas pixels at (xs, ys); `noise` holds one normal number per pixel."""
        (x0, y0), (per_x, per_y) = self.light_origin, self.light_direction
        light = 1 + (xs - x0) * per_x + (ys - y0) * per_y
        grain = 1 + self.grain * noise
        brightness = np.clip(light * grain, 0.4, 1.6)[:, None]
        if self.pattern in ("plain", "noise"):  # these two differ only in grain strength
            return self.colour * brightness
        cos, sin = math.cos(self.angle) / self.period, math.sin(self.angle) / self.period
        along = xs * cos + ys * sin
        across = ys * cos - xs * sin
        if self.pattern == "stripes":
            weight = _soft_step(np.sin(2 * np.pi * along))
        elif self.pattern == "checks":
            weight = _soft_step(np.sin(2 * np.pi * along) * np.sin(2 * np.pi * across))
        else:  # dots
            # Distance to the nearest grid point, in pattern periods: a dot where it is small.
            off_along = along - np.round(along)
            off_across = across - np.round(across)
            weight = _soft_step(0.09 - (off_along**2 + off_across**2), sharpness=40)
        weight = weight[:, None]
        return (self.colour * (1 - weight) + self.other_colour * weight) * brightness


def _soft_step(values: np.ndarray, sharpness: float = 4.0) -> np.ndarray:
    """0 for negative values, 1 for positive ones, with a smooth ramp so patterns do not alias."""
    return np.clip(0.5 + sharpness * values, 0, 1).astype(np.float32)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A clothing-like colour: anything from dull greys to saturated brights."""
    base = rng.uniform(0.05, 0.95, 3)
    grey = base.mean()
    saturation = rng.uniform(0.2, 1.2)
    return np.clip(grey + (base - grey) * saturation, 0, 1).astype(np.float32)


def _random_paint(rng: np.random.Generator, scale: float) -> Paint:
    """A random fabric-like paint; `scale` (canvas pixels) sets how large the pattern is."""
    pattern = rng.choice(["plain", "plain", "noise", "stripes", "stripes", "checks", "dots"])
    return Paint(
        pattern=str(pattern),
        colour=_random_colour(rng),
        other_colour=_random_colour(rng),
        period=max(3.0 * SUPERSAMPLE, scale * rng.uniform(0.08, 0.25)),
        # Mostly horizontal or vertical stripes, like real clothes, a few diagonal.
        angle=float(rng.choice([0.0, math.pi / 2, rng.uniform(0, math.pi)])),
        grain=float(rng.uniform(0.1, 0.2) if pattern == "noise" else rng.uniform(0.01, 0.05)),
    )


# --------------------------------------------------------------------------------------------
# People: a stick skeleton with joint angles, fleshed out with tapered limbs.
# --------------------------------------------------------------------------------------------
def _direction(angle_deg: float) -> np.ndarray:
    """Unit vector for an angle measured from straight down, positive towards image right (y points down)."""
    angle = math.radians(angle_deg)
    return np.array([math.sin(angle), math.cos(angle)])


@dataclass
class Pose:
    """Joint angles in degrees (0 = hanging straight down, positive = towards image right)."""

    facing: int  # 0 front view, -1 / +1 side view looking left / right
    lean: float
    arms: tuple[tuple[float, float], tuple[float, float]]  # (upper arm, forearm) for left and right arm
    legs: tuple[tuple[float, float], tuple[float, float]]  # (thigh, shin)


def sample_pose(rng: np.random.Generator) -> Pose:
    """A random pose from a few everyday styles (standing, walking, waving, running, sitting, ...)."""
    style = rng.choice(["stand", "stand", "walk", "walk", "wave", "arms_up", "star", "run", "sit"])
    u = rng.uniform
    facing = 0
    # Front views use image directions (left limbs negative). Side views use "forward is positive"
    # and are mirrored at the end for people looking left; elbows bend forward, knees backward.
    if style == "stand":
        arms = ((-u(3, 30), -u(0, 40)), (u(3, 30), u(0, 40)))
        legs = ((-u(0, 10), -u(0, 6)), (u(0, 10), u(0, 6)))
    elif style == "walk":
        facing = int(rng.choice([-1, 1]))
        swing = u(10, 35)
        arms = ((-swing, -swing + u(0, 40)), (swing, swing + u(10, 50)))
        legs = ((swing, swing - u(0, 30)), (-swing, -swing - u(0, 15)))
    elif style == "wave":
        up = u(110, 170)
        arms = ((-u(5, 25), -u(0, 30)), (up, up - u(0, 60)))
        legs = ((-u(0, 10), 0.0), (u(0, 10), 0.0))
    elif style == "arms_up":
        arms = ((-u(120, 175), -u(140, 190)), (u(120, 175), u(140, 190)))
        legs = ((-u(0, 15), -u(0, 10)), (u(0, 15), u(0, 10)))
    elif style == "star":
        arms = ((-u(60, 110), -u(50, 130)), (u(60, 110), u(50, 130)))
        legs = ((-u(15, 35), -u(10, 30)), (u(15, 35), u(10, 30)))
    elif style == "run":
        facing = int(rng.choice([-1, 1]))
        front, back = u(30, 60), u(20, 45)
        arms = ((-u(20, 50), u(40, 100)), (u(20, 50), u(90, 140)))
        legs = ((front, front - u(50, 100)), (-back, -back - u(40, 90)))
    else:  # sit: thighs forward, shins hanging down
        facing = int(rng.choice([-1, 1]))
        thigh = u(70, 100)
        arms = ((u(5, 30), u(40, 90)), (u(0, 25), u(30, 80)))
        legs = ((thigh, u(-10, 15)), (thigh - u(0, 15), u(-15, 10)))
    if facing:
        arms = tuple((facing * a, facing * b) for a, b in arms)
        legs = tuple((facing * a, facing * b) for a, b in legs)
    return Pose(facing=facing, lean=float(u(-8, 8)), arms=arms, legs=legs)


@dataclass
class Body:
    """Body proportions as fractions of standing height (head top to soles)."""

    head: float
    shoulders: float
    hips: float
    limb: float  # limb thickness multiplier
    neck: float = 0.035
    torso: float = 0.29
    upper_arm: float = 0.165
    forearm: float = 0.145
    thigh: float = 0.235
    shin: float = 0.225


def sample_body(rng: np.random.Generator) -> Body:
    """Random proportions: slim to broad adults and a few children (bigger heads, shorter limbs)."""
    build = rng.uniform(0.8, 1.3)
    body = Body(head=rng.uniform(0.058, 0.07), shoulders=rng.uniform(0.2, 0.25) * build,
                hips=rng.uniform(0.15, 0.19) * build, limb=build)
    if rng.random() < 0.15:
        body.head = rng.uniform(0.08, 0.095)
        body.torso, body.thigh, body.shin = 0.27, 0.21, 0.2
    return body


@dataclass
class Outfit:
    """What a person wears: one paint per body-part group."""

    skin: Paint
    hair: Paint
    shirt: Paint
    legwear: Paint
    shoes: Paint
    long_sleeves: bool
    legwear_style: str  # "trousers", "shorts" or "skirt"
    hair_style: str  # "short", "long" or "bald"


def sample_outfit(rng: np.random.Generator, scale: float) -> Outfit:
    """Random clothes, skin tone and hair for a person about `scale` canvas pixels tall."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.08, 3).astype(np.float32)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    shoes = np.full(3, rng.uniform(0.05, 0.3), dtype=np.float32) if rng.random() < 0.7 else _random_colour(rng)
    return Outfit(
        skin=Paint("plain", np.clip(skin, 0, 1), skin, grain=0.02),
        hair=Paint("noise", hair, hair, grain=0.12),
        shirt=_random_paint(rng, scale),
        legwear=_random_paint(rng, scale),
        shoes=Paint("plain", shoes, shoes, grain=0.03),
        long_sleeves=bool(rng.random() < 0.5),
        legwear_style=str(rng.choice(["trousers", "trousers", "trousers", "shorts", "skirt"])),
        hair_style=str(rng.choice(["short", "short", "long", "bald"], p=[0.45, 0.2, 0.3, 0.05])),
    )


def _skeleton(body: Body, pose: Pose) -> dict[str, np.ndarray]:
    """Joint positions in body units (height 1), origin at the middle of the hips, y pointing down."""
    up = -_direction(pose.lean)
    side = np.array([-up[1], up[0]])  # perpendicular to the spine, pointing to image right
    # Side views show the body edge-on, so shoulders and hips are much narrower.
    width_factor = 0.35 if pose.facing else 1.0
    j: dict[str, np.ndarray] = {"pelvis": np.zeros(2)}
    j["neck"] = up * body.torso
    j["head"] = j["neck"] + up * (body.neck + body.head) + side * 0.25 * body.head * pose.facing
    for name, sign, (upper, lower) in (("l", -1, pose.arms[0]), ("r", 1, pose.arms[1])):
        shoulder = j["neck"] - up * 0.03 + side * sign * body.shoulders / 2 * width_factor
        j[f"shoulder_{name}"] = shoulder
        j[f"elbow_{name}"] = shoulder + _direction(upper + pose.lean) * body.upper_arm
        j[f"wrist_{name}"] = j[f"elbow_{name}"] + _direction(lower + pose.lean) * body.forearm
    for name, sign, (upper, lower) in (("l", -1, pose.legs[0]), ("r", 1, pose.legs[1])):
        hip = side * sign * body.hips / 2 * 0.6 * width_factor
        j[f"hip_{name}"] = hip
        j[f"knee_{name}"] = hip + _direction(upper + pose.lean) * body.thigh
        j[f"ankle_{name}"] = j[f"knee_{name}"] + _direction(lower + pose.lean) * body.shin
    return j


class _Canvas:
    """Label canvas we draw on with PIL: each shape is filled with an integer code."""

    def __init__(self, height: int, width: int) -> None:
        self.image = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.image)

    def disc(self, centre: np.ndarray, radius: float, code: int, squash: float = 1.0) -> None:
        """Filled ellipse; `squash` < 1 makes it narrower than tall."""
        x, y = centre
        self.draw.ellipse([x - radius * squash, y - radius, x + radius * squash, y + radius], fill=code)

    def limb(self, start: np.ndarray, end: np.ndarray, start_width: float, end_width: float, code: int) -> None:
        """Tapered segment with rounded ends, like an arm or a leg between two joints."""
        # Plain floats instead of numpy: this runs a dozen times per person and small-array overhead adds up.
        x0, y0, x1, y1 = float(start[0]), float(start[1]), float(end[0]), float(end[1])
        length = math.hypot(x1 - x0, y1 - y0) or 1e-6
        nx, ny = (y0 - y1) / length, (x1 - x0) / length
        a, b = start_width / 2, end_width / 2
        corners = [(x0 + nx * a, y0 + ny * a), (x1 + nx * b, y1 + ny * b),
                   (x1 - nx * b, y1 - ny * b), (x0 - nx * a, y0 - ny * a)]
        self.draw.polygon(corners, fill=code)
        self.draw.ellipse([x0 - a, y0 - a, x0 + a, y0 + a], fill=code)
        self.draw.ellipse([x1 - b, y1 - b, x1 + b, y1 + b], fill=code)

    def polygon(self, points: list[np.ndarray], code: int) -> None:
        """Filled polygon through `points`."""
        self.draw.polygon([tuple(p) for p in points], fill=code)


def _draw_person(canvas: _Canvas, joints: dict[str, np.ndarray], body: Body, pose: Pose,
                 outfit: Outfit, size: float, first_code: int) -> None:
    """Draw one person from back to front; `joints` are already in canvas pixels, `size` is their height."""
    skin, hair, shirt, legwear, shoes = (first_code + part for part in (SKIN, HAIR, SHIRT, LEGWEAR, SHOES))
    w = size * body.limb  # limb widths scale with build
    head_r = body.head * size
    up = joints["neck"] - joints["pelvis"]
    up = up / (np.hypot(*up) or 1.0)
    side = np.array([-up[1], up[0]])  # across the body, towards image right when upright
    # In a side view the arm on the far side is hidden behind the body: draw it before the torso.
    far_arm = {1: "l", -1: "r"}.get(pose.facing)

    def draw_leg(name: str) -> None:
        hip, knee, ankle = joints[f"hip_{name}"], joints[f"knee_{name}"], joints[f"ankle_{name}"]
        thigh_code = skin if outfit.legwear_style == "skirt" else legwear
        shin_code = legwear if outfit.legwear_style == "trousers" else skin
        canvas.limb(hip, knee, 0.09 * w, 0.065 * w, thigh_code)
        canvas.limb(knee, ankle, 0.065 * w, 0.045 * w, shin_code)
        # Feet point where the person looks, or slightly outwards in a front view.
        toe_direction = pose.facing if pose.facing else (-0.4 if name == "l" else 0.4)
        toe = ankle + np.array([toe_direction, 0.35]) * 0.07 * size
        canvas.limb(ankle, toe, 0.045 * w, 0.035 * w, shoes)

    def draw_arm(name: str) -> None:
        shoulder, elbow, wrist = joints[f"shoulder_{name}"], joints[f"elbow_{name}"], joints[f"wrist_{name}"]
        canvas.limb(shoulder, elbow, 0.06 * w, 0.05 * w, shirt)
        canvas.limb(elbow, wrist, 0.05 * w, 0.038 * w, shirt if outfit.long_sleeves else skin)
        hand = wrist + (wrist - elbow) / (np.hypot(*(wrist - elbow)) or 1.0) * 0.025 * size
        canvas.disc(hand, 0.028 * w, skin)

    if outfit.hair_style == "long":
        canvas.limb(joints["head"], joints["neck"] - up * 0.05 * size, 1.9 * head_r, 2.0 * head_r, hair)
    if far_arm:
        draw_arm(far_arm)
    # Legs go under the hips and skirt, which are drawn next.
    draw_leg("l")
    draw_leg("r")

    # The torso is a block tapering from the shoulders to the waist; hips and skirt are legwear.
    narrow = 0.45 if pose.facing else 1.0
    hip_half = body.hips / 2 * size * narrow * 1.05
    shoulder_half = body.shoulders / 2 * size * narrow
    pelvis, neck = joints["pelvis"], joints["neck"]
    waist = pelvis + up * 0.08 * size
    crotch = pelvis - up * 0.04 * size
    canvas.polygon([waist - side * hip_half * 0.95, waist + side * hip_half * 0.95,
                    crotch + side * hip_half, crotch - side * hip_half], legwear)
    if outfit.legwear_style == "skirt":
        hem = pelvis - up * 0.22 * size
        flare = hip_half * 1.5
        canvas.polygon([waist - side * hip_half, waist + side * hip_half,
                        hem + side * flare, hem - side * flare], legwear)
    canvas.polygon([neck - side * shoulder_half, neck + side * shoulder_half,
                    waist + side * hip_half * 0.95, waist - side * hip_half * 0.95], shirt)
    for sign in (-1, 1):  # rounded shoulders
        canvas.disc(neck + side * sign * (shoulder_half - 0.03 * w) - up * 0.02 * size, 0.035 * w, shirt)

    # Neck, then the hair as a cap that the face is drawn into, turned towards where the person looks.
    head = joints["head"]
    canvas.limb(neck - up * 0.01 * size, head, 0.045 * w, 0.045 * w, skin)
    if outfit.hair_style != "bald":
        canvas.disc(head + up * 0.15 * head_r, head_r * 1.02, hair, squash=0.88)
    canvas.disc(head - up * 0.12 * head_r + side * 0.12 * head_r * pose.facing, head_r * 0.9, skin, squash=0.8)

    for name in ("l", "r"):
        if name != far_arm:
            draw_arm(name)


def _place_person(rng: np.random.Generator, joints: dict[str, np.ndarray], height: int, width: int,
                  size: float, tilt: float) -> dict[str, np.ndarray]:
    """Scale, tilt and move body-unit joints onto the canvas; big people are framed like portraits."""
    c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    rotation = np.array([[c, -s], [s, c]])
    placed = {name: rotation @ p * size for name, p in joints.items()}
    points = np.stack(list(placed.values()))
    top, bottom = points[:, 1].min() - 0.07 * size, points[:, 1].max() + 0.03 * size
    centre_x = (points[:, 0].min() + points[:, 0].max()) / 2
    target_x = rng.uniform(-0.1, 1.1) * width
    if size > 0.9 * height:
        # Close-ups: head near the top, legs run out of the picture like in a portrait.
        shift_y = rng.uniform(0.0, 0.25) * height - top
        target_x = rng.uniform(0.15, 0.85) * width
    else:
        shift_y = rng.uniform(0.5, 1.08) * height - bottom
    shift = np.array([target_x - centre_x, shift_y])
    return {name: p + shift for name, p in placed.items()}


def _visible_fraction(joints: dict[str, np.ndarray], height: int, width: int) -> float:
    """Share of the person's bounding box that lies inside the picture."""
    points = np.stack(list(joints.values()))
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    area = max((x1 - x0) * (y1 - y0), 1e-6)
    inside_w = max(0.0, min(x1, width) - max(x0, 0))
    inside_h = max(0.0, min(y1, height) - max(y0, 0))
    return inside_w * inside_h / area


# --------------------------------------------------------------------------------------------
# Distractors: things with skin and clothing colours that are NOT people.
# --------------------------------------------------------------------------------------------
def _draw_distractor(canvas: _Canvas, rng: np.random.Generator, code: int, height: int, width: int,
                     skin_share: float = 0.4) -> Paint:
    """Draw one non-person shape with `code` and return how to paint it."""
    short = min(height, width)
    centre = rng.uniform([0, 0], [width, height])
    kind = rng.choice(["blob", "box", "pole", "polygon"])
    if kind == "blob":
        canvas.disc(centre, short * rng.uniform(0.03, 0.15), code, squash=rng.uniform(0.6, 1.4))
    elif kind == "box":
        half = short * rng.uniform(0.04, 0.2, 2)
        angle = rng.uniform(0, math.pi)
        axis_a = np.array([math.cos(angle), math.sin(angle)]) * half[0]
        axis_b = np.array([-math.sin(angle), math.cos(angle)]) * half[1]
        canvas.polygon([centre + axis_a + axis_b, centre + axis_a - axis_b,
                        centre - axis_a - axis_b, centre - axis_a + axis_b], code)
    elif kind == "pole":
        end = centre + _direction(rng.uniform(0, 360)) * short * rng.uniform(0.15, 0.5)
        thickness = short * rng.uniform(0.015, 0.05)
        canvas.limb(centre, end, thickness, thickness * rng.uniform(0.6, 1.2), code)
    else:
        corners = rng.integers(5, 9)
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = short * rng.uniform(0.04, 0.15, corners)
        corner_points = [centre + r * np.array([math.cos(a), math.sin(a)]) for a, r in zip(angles, radii, strict=True)]
        canvas.polygon(corner_points, code)
    if rng.random() < skin_share:
        # Skin-coloured things make "find the skin colour" a losing strategy.
        tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
        return Paint("plain", tone, tone, grain=0.03)
    return _random_paint(rng, short)


def _occluder(canvas: _Canvas, rng: np.random.Generator, code: int, height: int, width: int) -> Paint:
    """An object in front of the people (table edge, railing, post): the mask must exclude it."""
    if rng.random() < 0.5:
        top = rng.uniform(0.65, 0.9) * height
        canvas.polygon([np.array([-1, top]), np.array([width + 1, top + rng.uniform(-0.05, 0.05) * height]),
                        np.array([width + 1, height + 1]), np.array([-1, height + 1])], code)
    else:
        x = rng.uniform(0.1, 0.9) * width
        thickness = rng.uniform(0.03, 0.08) * width
        canvas.limb(np.array([x, -thickness]), np.array([x + rng.uniform(-0.1, 0.1) * width, height + thickness]),
                    thickness, thickness, code)
    return _random_paint(rng, min(height, width))


# --------------------------------------------------------------------------------------------
# One picture
# --------------------------------------------------------------------------------------------
def _paint_canvas(labels: np.ndarray, paints: dict[int, Paint], rng: np.random.Generator) -> np.ndarray:
    """Colour every labelled canvas pixel with its code's paint; unlabelled pixels stay 0."""
    colour = np.zeros((*labels.shape, 3), dtype=np.float32)
    flat_labels = labels.ravel()
    drawn = np.flatnonzero(flat_labels)
    # One sort groups the pixels of each code together, cheaper than one full-canvas search per code.
    drawn = drawn[np.argsort(flat_labels[drawn], kind="stable")]
    codes = flat_labels[drawn]
    starts = np.searchsorted(codes, list(paints), side="left")
    ends = np.searchsorted(codes, list(paints), side="right")
    flat_colour = colour.reshape(-1, 3)
    flat_noise = noise_window(rng, *labels.shape).ravel()
    for paint, start, end in zip(paints.values(), starts, ends, strict=True):
        if end > start:
            pixels = drawn[start:end]
            ys, xs = np.divmod(pixels, labels.shape[1])
            flat_colour[pixels] = paint.colours(xs.astype(np.float32), ys.astype(np.float32), flat_noise[pixels])
    return colour


def _shrink(values: np.ndarray) -> np.ndarray:
    """Average SUPERSAMPLE x SUPERSAMPLE blocks: add up rows of a block, then its columns."""
    # Plain slice additions on reshaped views are several times faster here than .mean(axis=...).
    s = SUPERSAMPLE
    height, width = values.shape[0] // s, values.shape[1] // s
    rows = values.reshape(height, s, width * s, *values.shape[2:])
    row_sum = rows[:, 0].astype(np.float32)
    for i in range(1, s):
        row_sum += rows[:, i]
    columns = row_sum.reshape(height, width, s, *values.shape[2:])
    block_sum = columns[:, :, 0].copy()
    for j in range(1, s):
        block_sum += columns[:, :, j]
    return block_sum * (1 / s**2)


def check_difficulty(difficulty: float) -> float:
    """`difficulty` as a float, or a ValueError when it is outside [0, 1]."""
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1, got {difficulty!r}")
    return float(difficulty)


def render_people_picture(rng: np.random.Generator, height: int, width: int,
                          difficulty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic picture; returns (image uint8 (H, W, 3), mask uint8 (H, W) with 1 = person).

    `difficulty` in [0, 1] scales the clutter (see the module docstring); 1.0 is the standard set.
    """
    check_difficulty(difficulty)
    background = _background(rng, height, width)
    ss_h, ss_w = height * SUPERSAMPLE, width * SUPERSAMPLE
    canvas = _Canvas(ss_h, ss_w)
    paints: dict[int, Paint] = {}

    for code in range(1, 1 + min(rng.poisson(1.8 * difficulty), 8)):
        paints[code] = _draw_distractor(canvas, rng, code, ss_h, ss_w, skin_share=0.4 * difficulty)
    far_share = 0.35 * difficulty  # small, far-away people; what is taken from them goes to the others
    size_shares = np.array([far_share, 0.4, 0.25]) * np.array([1.0, *[(1 - far_share) / 0.65] * 2])

    n_people = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    people = []
    for _ in range(n_people):
        # Mix of far-away, medium and close-up people, in units of picture height.
        size = ss_h * float(rng.choice([rng.uniform(0.3, 0.55), rng.uniform(0.55, 0.9), rng.uniform(0.9, 1.6)],
                                       p=size_shares / size_shares.sum()))
        body, pose = sample_body(rng), sample_pose(rng)
        tilt = rng.normal(0, 6) if rng.random() < 0.9 else rng.uniform(-40, 40)
        for _attempt in range(4):
            joints = _place_person(rng, _skeleton(body, pose), ss_h, ss_w, size, tilt)
            # The first person is kept mostly in view so every picture has someone to find.
            if _visible_fraction(joints, ss_h, ss_w) > (0.6 if not people else 0.3):
                break
        people.append((size, body, pose, joints))

    # Smaller people are further away, so draw them first and let nearer people overlap them.
    for index, (size, body, pose, joints) in enumerate(sorted(people, key=lambda p: p[0])):
        first_code = PERSON_CODE_START + index * CODES_PER_PERSON
        outfit = sample_outfit(rng, size)
        _draw_person(canvas, joints, body, pose, outfit, size, first_code)
        light_origin = tuple(joints["neck"])
        light_direction = tuple(_direction(rng.uniform(0, 360)) * rng.uniform(0.2, 0.6) / size)
        for part, paint in zip((SKIN, HAIR, SHIRT, LEGWEAR, SHOES),
                               (outfit.skin, outfit.hair, outfit.shirt, outfit.legwear, outfit.shoes), strict=True):
            paint.light_origin, paint.light_direction = light_origin, light_direction
            paints[first_code + part] = paint

    if rng.random() < 0.2 * difficulty:
        paints[99] = _occluder(canvas, rng, 99, ss_h, ss_w)

    labels = np.asarray(canvas.image)
    colour = _paint_canvas(labels, paints, rng)

    # Averaging SUPERSAMPLE x SUPERSAMPLE blocks gives partial coverage at shape edges: soft edges.
    coverage = _shrink(labels > 0)
    image = _shrink(colour) + (1 - coverage)[..., None] * background
    mask = (_shrink(labels >= PERSON_CODE_START) >= 0.5).astype(np.uint8)

    # Camera noise, so flat regions are never perfectly flat.
    image += rng.uniform(0.003, 0.025) * noise_window(rng, height, width * 3).reshape(height, width, 3)
    image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.25:
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8))))
    return image, mask


def make_synthetic_person_image(seed: int, index: int, image_size: ImageSize = 128,
                                difficulty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Picture `index` of the synthetic set `seed` as (image uint8 (H, W, 3), mask uint8 (H, W)).

    `difficulty` in [0, 1]: 1.0 is the standard set, lower values have less clutter (module docstring).
    """
    height, width = as_height_width(image_size)
    rng = np.random.default_rng([seed, index])
    # A picture where everyone ended up hidden would teach nothing; draw again from the same stream.
    for _attempt in range(10):
        image, mask = render_people_picture(rng, height, width, difficulty)
        if mask.any():
            break
    return image, mask
