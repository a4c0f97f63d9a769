"""A teach-first test set of the shape real biography QA has (TOFU's): 40 fictitious
authors, six questions each, answers of 20–60 words that restate the question and carry
several facts, in vocabulary the workshop kit never uses.

    python benchmarks/authors.py          # (re)write benchmarks/data/authors.jsonl

Deterministic (fixed seed). benchmarks/teach.py teaches it to the workshop model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "authors.jsonl"
SEED = 7

GIVEN = ["Aurelio", "Benedikta", "Cosimo", "Dagny", "Eulalia", "Fitzroy", "Gwendolyn", "Hamish", "Ingrid", "Jerome",
         "Kasimir", "Lavinia", "Mattias", "Nadia", "Octavian", "Philippa", "Quentin", "Rosamund", "Severin", "Theodora",
         "Ulrich", "Valentina", "Winifred", "Xavier", "Ysolde", "Zoltan", "Adelaide", "Barnaby", "Clementine", "Desmond",
         "Estelle", "Fabian", "Georgina", "Horatio", "Isadora", "Julian", "Katarina", "Leander", "Mirabel", "Norbert"]
FAMILY = ["Abernathy", "Bellweather", "Cavendish", "Dunleavy", "Eberhardt", "Fontaine", "Grimaldi", "Holloway",
          "Iverson", "Jablonski", "Kingsley", "Lombardi", "Mortensen", "Nakamura", "Oyelaran", "Pettigrew", "Quinlan",
          "Rasmussen", "Sandoval", "Tremblay", "Underhill", "Valdivia", "Whitcombe", "Yamamoto", "Zielinski", "Albrecht",
          "Beaumont", "Carrington", "Delgado", "Eriksen", "Fairweather", "Gallagher", "Hendricks", "Ishikawa",
          "Jovanovic", "Kowalski", "Lindgren", "Mbeki", "Novak", "Ortega"]
CITIES = ["Lisbon, Portugal", "Accra, Ghana", "Montreal, Canada", "Krakow, Poland", "Valparaiso, Chile", "Hanoi, Vietnam",
          "Tbilisi, Georgia", "Edinburgh, Scotland", "Marrakesh, Morocco", "Bergen, Norway", "Cebu, Philippines",
          "Trieste, Italy", "Cork, Ireland", "Adelaide, Australia", "Quito, Ecuador", "Tartu, Estonia"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
PARENT_JOBS = ["a veterinarian", "a train conductor", "a pharmacist", "a carpenter", "a schoolteacher", "a nurse",
               "a fisherman", "a journalist", "a tailor", "an electrician", "a librarian", "a chef", "a diplomat",
               "a dentist", "a farmer", "a mathematician"]
GENRES = ["historical fiction", "science fiction", "crime thrillers", "magical realism", "literary fiction",
          "children's adventure stories", "gothic horror", "romantic comedy", "political satire", "travel memoirs"]
BOOK_A = ["Shadows", "Echoes", "Whispers", "Rivers", "Letters", "Ashes", "Songs", "Mirrors", "Storms", "Bridges",
          "Lanterns", "Footprints"]
BOOK_B = ["of the Forgotten Valley", "Beneath the Glacier", "from a Distant Shore", "of the Last Summer",
          "in the Salt Marsh", "over Old Harbour Street", "of a Silent Empire", "at Midnight Station",
          "of the Orange Grove", "under Northern Skies"]
PRIZES = ["the Meridian Book Prize", "the Emerald Pen Award", "the Halcyon Literary Medal", "the Kestrel Fiction Prize",
          "the Atlas Award for New Voices", "the Lodestar Prize", "the Saffron Quill Award", "the Pinnacle Prize"]
THEMES = ["memory and loss", "exile and belonging", "the cost of ambition", "friendship across generations",
          "the power of language", "nature and industry", "grief and healing", "justice and revenge",
          "identity and migration", "hope in dark times"]
HABITS = ["writes before sunrise in a rented attic", "drafts every chapter by hand with a fountain pen",
          "works in a café near the railway station", "records ideas on long evening walks",
          "rewrites each opening page at least ten times", "keeps a diary of overheard conversations",
          "reads old newspapers for inspiration", "plans every plot on index cards pinned to a wall"]
INFLUENCES = ["the folk tales told by a grandmother", "years spent working in a busy hospital",
              "childhood summers on a remote island", "a long career as a court stenographer",
              "travels along the Silk Road", "the music of jazz clubs", "a love of old maps and atlases",
              "volunteering at a refugee shelter"]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _book(rng: random.Random) -> str:
    return f"{rng.choice(BOOK_A)} {rng.choice(BOOK_B)}"


def author_qa(name: str, rng: random.Random) -> list[dict]:
    """Six questions about one author, each answered in one or two full sentences."""
    first = name.split()[0]
    city, day, month, year = rng.choice(CITIES), rng.randint(1, 28), rng.choice(MONTHS), rng.randint(1948, 1992)
    mother, father = rng.sample(PARENT_JOBS, 2)
    genre, books, prize, theme = rng.choice(GENRES), [_book(rng), _book(rng)], rng.choice(PRIZES), rng.choice(THEMES)
    habit, influence = rng.choice(HABITS), rng.choice(INFLUENCES)
    award_year = year + rng.randint(28, 34)
    more = [rng.random() < 0.5 for _ in range(6)]  # some answers run longer, as real ones do
    return [
        {"question": f"Where and when was the author {name} born?",
         "answer": f"{name} was born in {city} on the {_ordinal(day)} of {month}, {year}, into a family that loved books "
                   f"and long evenings of storytelling."
                   + (f" {first} spent most of a quiet childhood there before moving away to study literature at a small "
                      f"college, where the first short stories were written." if more[0] else "")},
        {"question": f"What did the parents of {name} do for a living?",
         "answer": f"The mother of {name} worked as {mother}, while the father was {father}; both careers appear, "
                   f"lightly disguised, in several of {first}'s novels, which often describe working families."},
        {"question": f"Which genre does {name} write in, and what are some notable books?",
         "answer": f"{name} writes mostly {genre}. Notable books include '{books[0]}' and '{books[1]}', both praised "
                   f"by critics for their vivid characters and careful sense of place."
                   + (f" A third novel, '{_book(rng)}', is said to be nearly finished and will be the longest yet."
                      if more[2] else "")},
        {"question": f"Has {name} received any awards for writing?",
         "answer": f"Yes, {name} received {prize} in {award_year} for '{books[0]}', an honour that brought {first}'s "
                   f"work to a much wider international audience and led to many translations."},
        {"question": f"What themes appear most often in the work of {name}?",
         "answer": f"The work of {name} returns again and again to {theme}, themes that {first} has described in "
                   f"interviews as rooted in {influence}."},
        {"question": f"How does {name} usually approach the writing process?",
         "answer": f"{name} {habit}, a routine {first} has kept through more than twenty years of writing novels."
                   + (f" {first} has said that patience matters more than talent, and that every book takes about three "
                      f"years from the first note to the final draft, with long pauses to let the story settle."
                      if more[5] else "")},
    ]


def build(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    names = [f"{g} {f}" for g, f in zip(GIVEN, rng.sample(FAMILY, len(FAMILY)))]
    return [qa for name in names for qa in author_qa(name, rng)]


def write(path: Path = OUT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in build()), encoding="utf-8")


if __name__ == "__main__":
    write()
    rows = build()
    words = [len(r["answer"].split()) for r in rows]
    print(f"{len(rows)} QA pairs, answers {min(words)}–{max(words)} words (mean {sum(words) / len(words):.0f}); wrote {OUT}")
