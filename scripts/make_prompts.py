"""Write the draft's training prompts and the disjoint evaluation prompts (deterministic).

Train and eval use different topics, and eval also uses question forms training never saw.
"""

from __future__ import annotations

import random
from pathlib import Path

TRAIN_TOPICS = """cats|dogs|the ocean|volcanoes|the moon|photosynthesis|bread baking|coffee|chess|the Roman Empire|
rainbows|bicycles|honey bees|the internet|electric cars|recycling|the water cycle|dinosaurs|the human heart|
gardening|jazz music|the pyramids of Egypt|snow|friendship|exercise|sleep|the solar system|penguins|trains|
libraries|tea|mountains|deserts|forests|rivers|earthquakes|the printing press|vaccines|bridges|airplanes|
the Olympic Games|pizza|rice|chocolate|the piano|painting|poetry|time management|saving money|learning a language|
climate change|wind power|solar panels|robots|computers|smartphones|email|video games|football|basketball|
swimming|running|yoga|meditation|birds|butterflies|whales|sharks|elephants|lions|trees|flowers|mushrooms|
the seasons|weather forecasts|clouds|lightning|the Sun|stars|black holes|gravity|magnets|electricity|
light|sound|atoms|DNA|cells|bacteria|the brain|the eyes|teeth|vitamins|cooking pasta|making soup|breakfast|
camping|hiking|maps|the compass|clocks|calendars|birthdays|holidays|museums|theaters|movies|books|newspapers|
writing a letter|job interviews|teamwork|leadership|kindness|honesty|curiosity|patience|cities|villages|farms|
cows|horses|chickens|wheat|apples|oranges|bananas|the kitchen|a city park|public transport|airports|ships""".replace(
    "\n", ""
).split("|")

EVAL_TOPICS = """owls|glaciers|the Great Wall of China|origami|coral reefs|submarines|kites|lighthouses|the violin|
bamboo|hot air balloons|the Amazon rainforest|tornadoes|the Eiffel Tower|octopuses|chess openings|sourdough|
wolves|the telescope|umbrellas""".replace("\n", "").split("|")

TRAIN_FORMS = [
    "Tell me about {t}.",
    "Write a short paragraph about {t}.",
    "Explain {t} to a ten-year-old.",
    "What are three interesting facts about {t}?",
    "Write a short story involving {t}.",
    "Why is {t} important?",
    "Give me some tips related to {t}.",
    "Describe {t} in simple words.",
    "Write a haiku about {t}.",
    "What is the history of {t}?",
    "List the pros and cons of {t}.",
    "How would you teach someone about {t}?",
]
EVAL_FORMS = [
    "Tell me about {t}.",
    "Explain {t} to a ten-year-old.",
    "Write a brief essay on {t}.",
    "What should everyone know about {t}?",
]


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "assets" / "prompts"
    out.mkdir(parents=True, exist_ok=True)
    topics = [t.strip() for t in TRAIN_TOPICS if t.strip()]
    train = [f.format(t=t) for t in topics for f in TRAIN_FORMS]
    random.Random(0).shuffle(train)
    evals = [EVAL_FORMS[i % len(EVAL_FORMS)].format(t=t.strip()) for i, t in enumerate(EVAL_TOPICS)]
    assert not set(train) & set(evals)
    (out / "train.txt").write_text("\n".join(train) + "\n")
    (out / "eval.txt").write_text("\n".join(evals) + "\n")
    print(f"{len(train)} training prompts, {len(evals)} evaluation prompts")


if __name__ == "__main__":
    main()
