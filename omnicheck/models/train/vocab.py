"""The small world every generator draws from: colours, shapes, counts, places, names, words.

One vocabulary for all modalities keeps the tokenizer small and lets speech, images and video share words.
"""

from __future__ import annotations

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 180),
    "orange": (250, 130, 10),
}
KINDS = ("circle", "square", "triangle", "star")
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()
DIGIT_WORDS = NUMBER_WORDS[:10]

# Single-group placements, and the opposite pairs two groups are split into.
PLACES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
PLACE_PAIRS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"))

NAMES = (
    "anna ben carla david emma felix grace henry iris jack kate liam maya noah olivia peter rosa sam tina victor"
).split()
ITEMS = "apples books cards pens stickers marbles cookies flowers stamps shells candles balloons".split()
CONTAINERS = "boxes bags baskets jars packs".split()

# Words for spoken sentences beyond shapes and numbers.
NOUNS = "door window car dog cat house tree ball book phone table chair light river road garden bird cup".split()
ADJECTIVES = "big small old new fast slow warm cold bright dark quiet loud".split()
VERBS = "open close take find move stop start bring hold push".split()


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def plural(kind: str, count: int) -> str:
    return kind if count == 1 else kind + "s"


def object_phrase(count: int, colour: str, kind: str) -> str:
    """'a red circle', 'an orange star', 'three blue squares'."""
    head = article(colour) if count == 1 else COUNT_WORDS[count]
    return f"{head} {colour} {plural(kind, count)}"
