"""Rendered scenes of shapes (images) and short clips of one shape doing one thing (video), with their descriptions.

Everything is drawn at 384x384 pixels: the gemma4_unified processor with max_soft_tokens=70 keeps that size (an
8x8 grid of 48-pixel patches, 64 soft tokens), so training pixels are exactly the pixels the processor produces.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from omnicheck.models.train.vocab import COLOURS, KINDS, PLACE_PAIRS, PLACES, article, object_phrase

SIZE = 384
IMAGE_PROMPT = "Describe this image in one sentence."
VIDEO_PROMPT = "Describe what happens in this video."
IMAGE_PROMPT_VARIANTS = ("Describe the image.", "What is in this image?", "Write a caption for this image.")
VIDEO_PROMPT_VARIANTS = ("What happens in this video?", "Describe the video.")
VIDEO_FPS = 4.0

# Centre regions (x0, y0, x1, y1) for each placement, in pixels.
REGIONS = {
    "left": (20, 40, 172, 344),
    "right": (212, 40, 364, 344),
    "top": (40, 20, 344, 172),
    "bottom": (40, 212, 344, 364),
    "center": (96, 96, 288, 288),
}


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    cx: float
    cy: float
    size: float  # circumscribed diameter in pixels


@dataclass
class Scene:
    caption: str
    key_objects: list[str]  # "red circle" per group: what caption recall checks
    shapes: list[Shape]
    background: tuple[int, int, int] = (255, 255, 255)
    extra: dict = field(default_factory=dict)


def _polygon(kind: str, cx: float, cy: float, size: float) -> list[tuple[float, float]]:
    r = size / 2
    if kind == "square":
        h = r / math.sqrt(2) * 1.15
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if kind == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if kind == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    raise ValueError(kind)


def draw(shapes: list[Shape], background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """One 384x384 RGB uint8 frame."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), background)
    pen = ImageDraw.Draw(image)
    for s in shapes:
        fill = COLOURS[s.colour]
        if s.kind == "circle":
            r = s.size / 2
            pen.ellipse((s.cx - r, s.cy - r, s.cx + r, s.cy + r), fill=fill)
        else:
            pen.polygon(_polygon(s.kind, s.cx, s.cy, s.size), fill=fill)
    return np.asarray(image)


def _background(rng: random.Random) -> tuple[int, int, int]:
    if rng.random() < 0.6:
        return (255, 255, 255)
    return tuple(rng.randint(225, 255) for _ in range(3))  # type: ignore[return-value]


def _place(rng: random.Random, region: str, count: int, taken: list[Shape], kind: str, colour: str) -> list[Shape]:
    x0, y0, x1, y1 = REGIONS[region]
    placed: list[Shape] = []
    for _ in range(count):
        for _attempt in range(200):
            size = rng.uniform(56, 92)
            cx, cy = rng.uniform(x0 + size / 2, x1 - size / 2), rng.uniform(y0 + size / 2, y1 - size / 2)
            if all(math.hypot(cx - o.cx, cy - o.cy) > (size + o.size) / 2 + 6 for o in taken + placed):
                placed.append(Shape(kind, colour, cx, cy, size))
                break
        else:
            raise RuntimeError("no room")  # the caller redraws the scene
    return placed


def random_scene(rng: random.Random) -> Scene:
    """One or two groups of identical shapes, each group in a named place."""
    while True:
        try:
            return _random_scene(rng)
        except RuntimeError:
            continue


def _random_scene(rng: random.Random) -> Scene:
    background = _background(rng)
    if rng.random() < 0.55:
        place = rng.choice(list(PLACES))
        count = rng.randint(1, 3)
        kind, colour = rng.choice(KINDS), rng.choice(list(COLOURS))
        shapes = _place(rng, place, count, [], kind, colour)
        caption = f"{object_phrase(count, colour, kind)} {PLACES[place]}."
        keys = [f"{colour} {kind}"]
    else:
        places = rng.choice(PLACE_PAIRS)
        kind_colours: list[tuple[str, str]] = []
        while len(kind_colours) < 2:
            pair = (rng.choice(KINDS), rng.choice(list(COLOURS)))
            if pair not in kind_colours:
                kind_colours.append(pair)
        shapes, phrases = [], []
        for place, (kind, colour) in zip(places, kind_colours):
            count = rng.randint(1, 2)
            shapes += _place(rng, place, count, shapes, kind, colour)
            phrases.append(f"{object_phrase(count, colour, kind)} {PLACES[place]}")
        caption = " and ".join(phrases) + "."
        keys = [f"{c} {k}" for k, c in kind_colours]
    return Scene(caption=caption[0].upper() + caption[1:], key_objects=keys, shapes=shapes, background=background)


# --- video ---


@dataclass
class Clip:
    description: str
    concepts: list[str]  # phrases the description must carry: colour, kind, what happened
    frames: list[list[Shape]]
    background: tuple[int, int, int] = (255, 255, 255)

    def render(self) -> np.ndarray:
        """(frames, 384, 384, 3) uint8."""
        return np.stack([draw(shapes, self.background) for shapes in self.frames])


MOVES = {
    "left to right": ((70, 192), (314, 192), "moves from left to right"),
    "right to left": ((314, 192), (70, 192), "moves from right to left"),
    "up": ((192, 314), (192, 70), "moves up"),
    "down": ((192, 70), (192, 314), "moves down"),
}
EVENTS = ("move", "turn", "appear", "disappear")


def random_clip(rng: random.Random, num_frames: int = 8) -> Clip:
    kind, colour = rng.choice(KINDS), rng.choice(list(COLOURS))
    size = rng.uniform(64, 96)
    background = _background(rng)
    event = rng.choice(EVENTS)
    subject = f"{article(colour)} {colour} {kind}"
    jitter = lambda: rng.uniform(-24, 24)  # noqa: E731 - one random offset per clip axis
    frames: list[list[Shape]] = []
    if event == "move":
        name = rng.choice(list(MOVES))
        (xa, ya), (xb, yb), verb = MOVES[name]
        dx, dy = (0.0, jitter()) if name in ("left to right", "right to left") else (jitter(), 0.0)
        for i in range(num_frames):
            t = i / (num_frames - 1)
            frames.append([Shape(kind, colour, xa + (xb - xa) * t + dx, ya + (yb - ya) * t + dy, size)])
        description, concepts = f"{subject} {verb}.", [colour, kind, verb.replace("moves ", "").replace("from ", "")]
    else:
        cx, cy = 192 + jitter() * 2, 192 + jitter() * 2
        switch = rng.randint(max(1, num_frames // 4), num_frames - max(1, num_frames // 4))
        if event == "turn":
            new = rng.choice([c for c in COLOURS if c != colour])
            for i in range(num_frames):
                frames.append([Shape(kind, colour if i < switch else new, cx, cy, size)])
            description, concepts = f"{subject} turns {new}.", [colour, kind, f"turns {new}"]
        else:
            visible = (lambda i: i >= switch) if event == "appear" else (lambda i: i < switch)
            for i in range(num_frames):
                frames.append([Shape(kind, colour, cx, cy, size)] if visible(i) else [])
            verb = "appears" if event == "appear" else "disappears"
            description, concepts = f"{subject} {verb}.", [colour, kind, verb]
    return Clip(description[0].upper() + description[1:], concepts, frames, background)
