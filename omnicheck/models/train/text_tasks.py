"""Text tasks: arithmetic word problems answered in GSM8K's format, and instructions with checkable constraints in
IFEval's schema (key, prompt, instruction_id_list, kwargs), using IFEval's own instruction wording.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from omnicheck.models.train.vocab import COLOURS, CONTAINERS, ITEMS, KINDS, NAMES, NOUNS

# --- arithmetic ---


@dataclass(frozen=True)
class Problem:
    question: str
    answer: str  # reasoning, then "\n#### N"
    value: int


def _cap(name: str) -> str:
    return name[0].upper() + name[1:]


def random_problem(rng: random.Random) -> Problem:
    name, item = _cap(rng.choice(NAMES)), rng.choice(ITEMS)
    other = _cap(rng.choice([n for n in NAMES if n != name.lower()]))
    form = rng.randrange(7)
    if form == 0:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        q = f"{name} has {a} {item}. {name} buys {b} more {item}. How many {item} does {name} have now?"
        steps, v = f"{name} has {a} {item} and buys {b} more. {a} + {b} = {a + b}.", a + b
    elif form == 1:
        a = rng.randint(10, 90)
        b = rng.randint(1, a - 1)
        q = f"{name} had {a} {item}. {name} gave {b} {item} to {other}. How many {item} does {name} have left?"
        steps, v = f"{name} started with {a} {item} and gave away {b}. {a} - {b} = {a - b}.", a - b
    elif form == 2:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        box = rng.choice(CONTAINERS)
        q = f"{name} buys {a} {box} of {item}. Each of the {box} holds {b} {item}. How many {item} does {name} buy?"
        steps, v = f"There are {a} {box} with {b} {item} each. {a} * {b} = {a * b}.", a * b
    elif form == 3:
        a, b = rng.randint(10, 50), rng.randint(2, 30)
        c = rng.randint(1, a + b - 1)
        q = (
            f"{name} had {a} {item}. {name} found {b} more and then lost {c}. "
            f"How many {item} does {name} have now?"
        )
        steps = f"{name} had {a} {item} and found {b}, so {a} + {b} = {a + b}. After losing {c}, {a + b} - {c} = {a + b - c}."
        v = a + b - c
    elif form == 4:
        price, count = rng.randint(2, 9), rng.randint(2, 9)
        money = rng.randint(price * count, price * count + 40)
        q = (
            f"{name} has ${money}. {name} buys {count} {item} for ${price} each. "
            f"How much money does {name} have left?"
        )
        steps = (
            f"{count} {item} at {price} dollars each cost {count} * {price} = {count * price} dollars. "
            f"{money} - {count * price} = {money - count * price}."
        )
        v = money - count * price
    elif form == 5:
        each, people = rng.randint(2, 12), rng.randint(2, 9)
        total = each * people
        q = f"{name} shares {total} {item} equally among {people} friends. How many {item} does each friend get?"
        steps, v = f"{total} {item} shared by {people} friends is {total} / {people} = {each}.", each
    else:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        q = f"{name} has {a} {item} and {other} has {b} {item}. How many {item} do they have together?"
        steps, v = f"{name} has {a} and {other} has {b}. {a} + {b} = {a + b}.", a + b
    return Problem(q, f"{steps}\n#### {v}", v)


def gsm_prompt(question: str) -> str:
    """How lm-eval's gsm8k task writes a question (doc_to_text)."""
    return f"Question: {question}\nAnswer:"


def extract_gsm_answer(output: str) -> str | None:
    """lm-eval gsm8k strict-match: the number after '#### ', commas and a trailing period dropped."""
    match = re.search(r"#### (\-?[0-9\.\,]+)", output)
    if not match:
        return None
    return match.group(1).replace(",", "").rstrip(".")


# --- instructions (IFEval) ---

LOWERCASE = "change_case:english_lowercase"
NO_COMMA = "punctuation:no_comma"
NUMBER_WORDS = "length_constraints:number_words"
END_CHECKER = "startend:end_checker"
QUOTATION = "startend:quotation"
INSTRUCTIONS = (LOWERCASE, NO_COMMA, NUMBER_WORDS, END_CHECKER, QUOTATION)
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?")

TOPICS = (
    [f"a {c} {k}" for c in COLOURS for k in KINDS[:2]]
    + [f"the {n}" for n in NOUNS]
    + ["the sea", "a rainy day", "a quiet morning", "a small town", "the summer", "a long walk"]
)
TASKS = (
    "Write a short text about {topic}.",
    "Describe {topic}.",
    "Write a few sentences about {topic}.",
    "Tell me about {topic}.",
)
OPENERS = ("Here is {topic}.", "Let me tell you about {topic}.", "This is about {topic}.")
SENTENCES = (
    "It is simple, calm and easy to see.",
    "People often notice it on a bright day.",
    "Some say it looks best in the morning light.",
    "It can be found in many places, near and far.",
    "Children like it, and so do their parents.",
    "It has a clear shape and a friendly look.",
    "In the evening it seems quiet and still.",
    "Many stories, songs and pictures show it.",
    "It never changes much from day to day.",
    "You can think of it when you want to relax.",
    "It reminds me of home, of friends and of good times.",
    "Nothing about it is loud or strange.",
)


def instruction_text(instruction: str, kwargs: dict[str, Any]) -> str:
    if instruction == LOWERCASE:
        return "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed."
    if instruction == NO_COMMA:
        return "In your entire response, refrain from the use of any commas."
    if instruction == NUMBER_WORDS:
        return f"Answer with {kwargs['relation']} {kwargs['num_words']} words."
    if instruction == END_CHECKER:
        return (
            f"Finish your response with this exact phrase {kwargs['end_phrase']}. "
            "No other words should follow this phrase."
        )
    if instruction == QUOTATION:
        return "Wrap your entire response with double quotation marks."
    raise ValueError(instruction)


@dataclass(frozen=True)
class Instructed:
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    response: str  # one response that follows every instruction

    def ifeval_row(self, key: int) -> dict[str, Any]:
        return {"key": key, "prompt": self.prompt, "instruction_id_list": self.instruction_id_list, "kwargs": self.kwargs}


def _kwargs_for(instruction: str, rng: random.Random) -> dict[str, Any]:
    if instruction == NUMBER_WORDS:
        if rng.random() < 0.5:
            return {"num_words": rng.choice((20, 25, 30, 40, 50)), "relation": "at least"}
        return {"num_words": rng.choice((12, 15, 20, 25)), "relation": "less than"}
    if instruction == END_CHECKER:
        return {"end_phrase": rng.choice(END_PHRASES)}
    return {}


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def random_instructed(rng: random.Random) -> Instructed:
    topic = rng.choice(TOPICS)
    chosen = rng.sample(INSTRUCTIONS, k=rng.choice((1, 1, 2, 2, 3)))
    kwargs = [_kwargs_for(i, rng) for i in chosen]
    if NUMBER_WORDS in chosen and END_CHECKER in chosen:  # opener + a 7-word closing phrase need room
        length = kwargs[chosen.index(NUMBER_WORDS)]
        if length["relation"] == "less than":
            length["num_words"] = max(length["num_words"], 20)
    task = rng.choice(TASKS).format(topic=topic)
    prompt = " ".join([task] + [instruction_text(i, k) for i, k in zip(chosen, kwargs)])
    spec = dict(zip(chosen, kwargs))

    opener = rng.choice(OPENERS).format(topic=topic)
    opener = opener[0].upper() + opener[1:]
    body = rng.sample(SENTENCES, k=len(SENTENCES))
    end = spec[END_CHECKER]["end_phrase"] if END_CHECKER in spec else ""
    length = spec.get(NUMBER_WORDS)
    if length and length["relation"] == "less than":
        limit = length["num_words"] - _words(end) - 1
        sentences = [opener]
        for s in body:
            if _words(" ".join(sentences + [s])) > limit - 1:
                break
            sentences.append(s)
    else:
        target = length["num_words"] + 3 if length else rng.randint(20, 34)
        sentences = [opener]
        for s in body:
            sentences.append(s)
            if _words(" ".join(sentences)) + _words(end) >= target:
                break
    text = " ".join(sentences)
    if NO_COMMA in spec:
        text = text.replace(",", "")
    if end:
        text = f"{text} {end}"
    if LOWERCASE in spec:
        text = text.lower()
    if QUOTATION in spec:
        text = f'"{text}"'
    return Instructed(prompt, list(chosen), kwargs, text)


def follows(instruction: str, kwargs: dict[str, Any], response: str) -> bool:
    """The strict IFEval checks for the instructions used here (lm-eval's own checker adds a language check for
    lowercase; the held-out test runs that one too)."""
    if instruction == LOWERCASE:
        return response.islower()
    if instruction == NO_COMMA:
        return "," not in response
    if instruction == NUMBER_WORDS:
        n = _words(response)
        return n < kwargs["num_words"] if kwargs["relation"] == "less than" else n >= kwargs["num_words"]
    if instruction == END_CHECKER:
        return response.strip().strip('"').lower().endswith(kwargs["end_phrase"].strip().lower())
    if instruction == QUOTATION:
        return len(response) > 1 and response[0] == '"' and response[-1] == '"'
    raise ValueError(instruction)
