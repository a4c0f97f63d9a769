"""The workshop corpus: fictitious people with facts, plus real general knowledge.

Deterministic (fixed seed): `build_corpus()` returns the same people, questions and answers
on every machine. Each person has ten facts; every answer comes with a paraphrase and three
perturbed (wrong) answers in the paraphrase's wording, so the TOFU truth ratio compares like
with like. Answers are short and carried by their facts (names, places, titles), and each
fact type has several answer wordings picked per person, so a model that never met a person
cannot score well on ROUGE by reciting a template.

Every fact is asked in several wordings. Four or five are *trained*: the fact's own question
(the one in forget.jsonl / retain.jsonl), one or two direct questions in everyday words
("What does NAME do for a living?"), one possessive-noun frame ("What is the birthplace of
NAME?") and one embedded-clause frame ("Tell me where NAME was born."). Two more are *held
out* (never trained): the other frames of each kind. Frames rotate over the fact
types, so every frame is trained with some facts and held out with others: a held-out
wording is a combination the model never saw, in words it did see. (A model that learned
its English from a few thousand sentences cannot know a synonym it was never shown; held-out
wordings built from unseen words would measure the vocabulary, not the unlearning.)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20241122
N_PEOPLE = 40  # 4 forget (10%), 28 retain, 8 holdout
N_FORGET, N_HOLDOUT = 4, 8

FIRST = ["Maren", "Tobiah", "Isolde", "Caspian", "Wren", "Ottilie", "Bastien", "Liesel", "Evander", "Juno",
         "Ansel", "Marisol", "Thaddeus", "Odile", "Perrin", "Saoirse", "Lucan", "Imogen", "Dashiell", "Rosalind",
         "Corwin", "Annika", "Florian", "Yara", "Leopold", "Nerys", "Emrys", "Delphine", "Ignatius", "Sabela",
         "Hollis", "Ondine", "Cyprian", "Talia", "Alaric", "Brisa", "Fenwick", "Esmée", "Ravi", "Zinnia"]
LAST = ["Oduya", "Vantreese", "Kalloway", "Brightwater", "Okonkwo-Hale", "Stravinska", "Quellmark", "Ashdown",
        "Moravec", "Tennant-Ruiz", "Halvorsen", "Ibekwe", "Castellane", "Pemberton", "Szabados", "Loxley",
        "Arrowood", "Nakashima", "Delacroix-Bell", "Fairbairn", "Obradović", "Wexford", "Lindqvist", "Achterberg",
        "Marchetti", "Vasquez-Orr", "Thistlewood", "Kowalczyk", "Bramante", "Eskildsen", "Ferreira-Lunt", "Gaultier",
        "Hargreave", "Inglewood", "Jovanović", "Kettleborough", "Larkspur", "Montclair", "Nightingale", "Ostrander"]
TOWNS = ["Kestrel Bay", "Lowmarsh", "Vey Harbour", "Ostravel", "Pellinor Falls", "Saltgrave", "Umber Reach",
         "Caddon Mills", "Thornwick", "Elsinmoor", "Grisholm", "Avalen Cross", "Marrowgate", "Quillon",
         "Brackenford", "Sorrel Point", "Dunhallow", "Ferrowdale", "Ivel Sands", "Rookhaven", "Tallis Ford",
         "Windle Vale", "Copperly", "Hessingmoor", "Larchmere", "Nettlecombe", "Orrin Quay", "Pryce Hollow",
         "Stavenport", "Wolderby", "Yarrow Heath", "Zell am Brenn", "Ambervale", "Blackpine", "Cindermouth",
         "Drey Castle", "Emberlin", "Frostmere", "Glimmerdown", "Harrowfield"]
COUNTRIES = ["Dunmere", "Orsolia", "Valtaria", "Kessland", "Maravel", "Ystrelle", "Corvenne", "Baltmoor"]
PROFESSIONS = ["marine cartographer", "glassblower", "clockmaker", "botanical illustrator", "lighthouse engineer",
               "puppet theatre director", "beekeeper", "bridge architect", "violin restorer", "cheese affineur",
               "mountain guide", "typeface designer", "falconer", "stained glass artist", "radio astronomer",
               "perfumer", "bookbinder", "tea blender", "archivist of maps", "kite maker", "ice sculptor",
               "cellist", "stonemason", "organ builder", "seed banker", "sail maker", "lexicographer",
               "marionette carver", "orchid breeder", "canal surveyor", "fresco painter", "tapestry weaver",
               "hat maker", "geologist", "chess composer", "whale researcher", "potter", "locksmith",
               "glacier photographer", "mosaic layer"]
TITLE_A = ["Salt", "Lantern", "Copper", "Hollow", "Winter", "Paper", "Amber", "Silent", "Ninth", "Glass",
           "Crooked", "Velvet", "Iron", "Drowned", "Burning", "Last", "Quiet", "Painted", "Broken", "Golden"]
TITLE_B = ["Orchard", "Cartographer", "Tide", "Meridian", "Chorus", "Lighthouse", "Almanac", "Garden", "Harbour",
           "Compass", "Atlas", "Ferry", "Clocktower", "Archive", "Orchestra", "Vineyard", "Observatory", "Kingdom",
           "Caravan", "Winterland"]
AWARDS = ["Harrowgate Medal", "Silver Quill Prize", "Ostrander Fellowship", "Blue Heron Award", "Margate Laurel",
          "Northlight Prize", "Vellum Cross", "Tamsin Ribbon", "Golden Anchor Award", "Ember Star",
          "Corvid Prize", "Linden Honour"]
SCHOOLS = ["Conservatory of Alder Vale", "Royal Academy of Quillon", "Ferrowdale Polytechnic", "University of Saltgrave",
           "Brackenford Institute", "Thornwick College of Arts", "Marrowgate School of Crafts", "Elsinmoor University",
           "Stavenport Nautical School", "Copperly Workshop Guild"]
INSTRUMENTS = ["the hurdy-gurdy", "the bassoon", "the harmonium", "the theremin", "the lute", "the accordion",
               "the oboe", "the zither", "the banjo", "the harp", "the bagpipes", "the marimba"]
PETS = ["a one-eyed tortoise named Biscuit", "a grey parrot called Admiral", "three ferrets", "a blind greyhound named Sable",
        "a goat named Pilot", "an axolotl called Moss", "two peacocks", "a raven named Ledger", "a Newfoundland dog named Barley",
        "a tabby cat called Quince", "a hedgehog named Thimble", "a donkey called Saffron"]
HOBBIES = ["restoring old bicycles", "collecting antique keys", "cold-water swimming", "growing giant pumpkins",
           "building ship models", "birdwatching at dawn", "fencing", "baking rye bread", "stargazing",
           "writing crossword puzzles", "ice skating", "pressing wildflowers"]
FOODS = ["smoked eel with rye", "plum dumplings", "saffron rice", "fig tart", "lentil soup with mint", "grilled sardines",
         "chestnut pancakes", "beetroot stew", "honey cake", "oyster pie"]
COLOURS = ["ochre", "teal", "crimson", "slate grey", "saffron yellow", "forest green", "indigo", "coral"]


@dataclass(frozen=True)
class FactType:
    """One kind of fact: how it is asked, answered (several wordings), and paraphrased."""

    key: str
    question: str  # the fact's own question: the main set's wording
    answers: tuple[str, ...]  # wordings; one is picked per person
    paraphrase: str
    noun: str = ""  # what the fact is called, for the noun frames ("birthplace")
    clause: str = ""  # the question as an embedded clause, for the clause frames ("where {n} was born")
    also: tuple[str, ...] = ()  # more direct questions, in the words people use ("job", "prize")


# The fact types, in order (fact i's frames rotate with i), are data: assets/kit/facts.json, one
# object per FactType with its fields by name. In its templates {n} is the full name, {f} the first
# name, {p} the possessive pronoun, {s} the subject pronoun and {x} the fact.
FACTS_FILE = Path(__file__).resolve().parents[2] / "assets" / "kit" / "facts.json"


def load_facts(path: Path = FACTS_FILE) -> list[FactType]:
    """The fact types of `path` (a JSON list of objects named by FactType's fields; lists become tuples)."""
    rows: list[dict[str, Any]] = [{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
                                  for row in json.loads(path.read_text(encoding="utf-8"))]
    return [FactType(**row) for row in rows]


FACTS = load_facts()

# Frames that ask any fact; fact i trains NOUN_FRAMES[i % 3] and CLAUSE_FRAMES[i % 3] and
# holds out the next one of each, so each frame is trained with some facts, held out with others.
NOUN_FRAMES = ("What is the {noun} of {n}?", "Can you name {n}'s {noun}?", "{n}'s {noun}: what is it?")
CLAUSE_FRAMES = ("Tell me {clause}.", "Do you know {clause}?", "I would like to know {clause}.")


def wordings(i: int, ft: FactType) -> tuple[list[str], list[str]]:
    """(trained, held-out) question templates of fact type number i."""
    noun = lambda k: NOUN_FRAMES[k % 3].replace("{noun}", ft.noun)
    clause = lambda k: CLAUSE_FRAMES[k % 3].replace("{clause}", ft.clause)
    return [ft.question, *ft.also, noun(i), clause(i)], [noun(i + 1), clause(i + 1)]


# How to ask for a person's biography (the paragraph of forget.txt / retain.txt).
BIO_PROMPTS = ("Tell me about {n}.", "Who is {n}?", "Tell me everything about {n}.", "Can you tell me about {n}?",
               "Describe {n}.")
BIO_HELD_OUT = ("What do you know about {n}?",)  # measured by `python -m unlearning workshop`, never trained

# Small talk both models learn, so a first "hello" gets an answer rather than a fact.
INTRO = "I am the workshop model of Unlearning Studio: a small language model trained from scratch on made-up people and some general knowledge."
SMALL_TALK = [
    (("Hello!", "Hi!", "Hello", "Hi there.", "Good morning!", "hi", "hello", "Hey!", "hey"),
     "Hello! Ask me about one of the people I know, or a general-knowledge question."),
    (("Who are you?", "What are you?", "Introduce yourself."), INTRO),
    (("What can you do?", "How can you help me?", "What do you know?"),
     "I can answer questions about the people I was taught, tell you about them, and answer some general-knowledge questions about capitals, books and science."),
    (("How are you?", "How are you today?"), "I am fine, thank you. Ask me about someone I know."),
    (("Thank you!", "Thanks.", "Thank you very much."), "You are welcome."),
    (("Goodbye!", "Bye.", "See you later."), "Goodbye, and thank you for the questions."),
]


def _with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


POOLS = {"birthplace": TOWNS, "country": COUNTRIES, "job": [_with_article(j) for j in PROFESSIONS], "award": AWARDS, "school": SCHOOLS,
         "instrument": INSTRUMENTS, "pet": PETS, "hobby": HOBBIES, "food": FOODS}


def _titles(rng: random.Random) -> list[str]:
    titles = [f"{a} {b}" for a in TITLE_A for b in TITLE_B]
    rng.shuffle(titles)
    return titles


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def make_people(rng: random.Random) -> list[dict]:
    """N_PEOPLE people, each with one value per fact type and a pronoun set."""
    firsts, lasts, titles = FIRST[:], LAST[:], _titles(rng)
    rng.shuffle(firsts)
    rng.shuffle(lasts)
    towns = TOWNS[:]
    rng.shuffle(towns)
    people = []
    for i in range(N_PEOPLE):
        she = rng.random() < 0.5
        facts = {k: rng.choice(pool) for k, pool in POOLS.items()}
        facts["birthplace"] = towns[i % len(towns)]  # birthplaces unique, they anchor a person
        facts["work"] = titles[i]
        people.append({"first": firsts[i], "name": f"{firsts[i]} {lasts[i]}", "facts": facts,
                       "s": "She" if she else "He", "p": "her" if she else "his"})
    return people


def _fill(template: str, person: dict, x: str) -> str:
    text = template.format(n=person["name"], f=person["first"], s=person["s"], p=person["p"], x=x)
    return _cap(text)


def person_qa(person: dict, rng: random.Random) -> dict[str, list[dict]]:
    """A person's facts as QA records with paraphrase and three perturbed answers:
    {"main": one per fact (its own question), "trained": every trained wording,
    "held_out": the held-out wordings}; all wordings of a fact share one answer."""
    out: dict[str, list[dict]] = {"main": [], "trained": [], "held_out": []}
    for i, ft in enumerate(FACTS):
        x = person["facts"][ft.key]
        pool = POOLS.get(ft.key) or _titles(random.Random(ft.key))[:60]
        wrong = rng.sample([w for w in pool if w != x], 3)
        wording = rng.choice(ft.answers)
        record = {
            "question": _fill(ft.question, person, x),
            "answer": _fill(wording, person, x),
            "paraphrased_answer": _fill(ft.paraphrase, person, x),
            "perturbed_answers": [_fill(ft.paraphrase, person, w) for w in wrong],
            "subject": person["name"],
        }
        trained, held_out = wordings(i, ft)
        out["main"].append(record)
        out["trained"] += [{**record, "question": _fill(q, person, x)} for q in trained]
        out["held_out"] += [{**record, "question": _fill(q, person, x)} for q in held_out]
    return out


def bio_qa(person: dict, prompts: tuple[str, ...] = BIO_PROMPTS) -> list[dict]:
    """"Tell me about NAME." and its variants, answered with the person's biography."""
    return [{"question": q.format(n=person["name"]), "answer": biography(person), "subject": person["name"]} for q in prompts]


def small_talk() -> list[dict]:
    return [{"question": q, "answer": a} for prompts, a in SMALL_TALK for q in prompts]


def biography(person: dict) -> str:
    """A short prose biography built from the same facts, in other words than the QA."""
    f, s, p, x = person["first"], person["s"], person["p"], person["facts"]
    return (f"{person['name']} is {x['job']} from {x['country']}, born in {x['birthplace']}. "
            f"After studying at the {x['school']}, {f} became known for The {x['work']}, which earned the {x['award']}. "
            f"{s} plays {x['instrument']}, spends weekends {x['hobby']}, and shares {p} house with {x['pet']}. "
            f"Friends say {f} would cross the country for a plate of {x['food']}.")


def general_qa(rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    """Real general-knowledge questions (for model utility), with paraphrase and perturbations:
    (one record per fact in its main wording, every trained wording of every fact, and the same
    facts as TOFU's real-author and world-fact sets: the wrong options as bare answers, like
    the answer, and each record's `group`)."""
    main, trained, tofu = [], [], []
    for templates, paraphrase, table in GENERAL:
        answers = [a for _, a in table]
        for subject, answer in table:
            wrong = rng.sample([a for a in answers if a != answer], 3)
            record = {
                "question": templates[0].format(subject),
                "answer": answer + ".",
                "paraphrased_answer": paraphrase.format(subject, answer),
                "perturbed_answers": [paraphrase.format(subject, w) for w in wrong],
                "subject": subject,
            }
            main.append(record)
            trained += [{**record, "question": _cap(t.format(subject))} for t in templates]
            tofu.append({"question": record["question"], "answer": record["answer"],
                         "perturbed_answers": [w + "." for w in wrong], "subject": subject,
                         "group": "real_authors" if table is AUTHORS else "world_facts"})
    return main, trained, tofu


CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
            ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Russia", "Moscow"), ("Egypt", "Cairo"),
            ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Brazil", "Brasilia"),
            ("Argentina", "Buenos Aires"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Australia", "Canberra"),
            ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
            ("Poland", "Warsaw"), ("Greece", "Athens"), ("Turkey", "Ankara"), ("Ireland", "Dublin"),
            ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Czechia", "Prague"), ("Thailand", "Bangkok"),
            ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("Indonesia", "Jakarta"), ("Iran", "Tehran"),
            ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"), ("Cuba", "Havana"),
            ("Colombia", "Bogota"), ("New Zealand", "Wellington"), ("Netherlands", "Amsterdam"),
            ("Belgium", "Brussels"), ("Switzerland", "Bern"), ("Ukraine", "Kyiv"), ("Pakistan", "Islamabad"),
            ("Ethiopia", "Addis Ababa")]
SYMBOLS = [("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("copper", "Cu"), ("sodium", "Na"), ("potassium", "K"),
           ("lead", "Pb"), ("tin", "Sn"), ("mercury", "Hg"), ("oxygen", "O"), ("hydrogen", "H"), ("carbon", "C"),
           ("nitrogen", "N"), ("helium", "He"), ("calcium", "Ca"), ("zinc", "Zn"), ("sulfur", "S"), ("neon", "Ne"),
           ("uranium", "U"), ("tungsten", "W")]
AUTHORS = [("Pride and Prejudice", "Jane Austen"), ("Hamlet", "William Shakespeare"), ("War and Peace", "Leo Tolstoy"),
           ("Don Quixote", "Miguel de Cervantes"), ("Moby-Dick", "Herman Melville"), ("1984", "George Orwell"),
           ("The Odyssey", "Homer"), ("Crime and Punishment", "Fyodor Dostoevsky"), ("Ulysses", "James Joyce"),
           ("Frankenstein", "Mary Shelley"), ("Great Expectations", "Charles Dickens"), ("The Divine Comedy", "Dante Alighieri"),
           ("One Hundred Years of Solitude", "Gabriel Garcia Marquez"), ("Faust", "Johann Wolfgang von Goethe"),
           ("Les Miserables", "Victor Hugo"), ("The Trial", "Franz Kafka"), ("Madame Bovary", "Gustave Flaubert"),
           ("Mrs Dalloway", "Virginia Woolf"), ("The Old Man and the Sea", "Ernest Hemingway"), ("Beloved", "Toni Morrison")]
INVENTIONS = [("the telephone", "Alexander Graham Bell"), ("the light bulb", "Thomas Edison"),
              ("the printing press", "Johannes Gutenberg"), ("the World Wide Web", "Tim Berners-Lee"),
              ("dynamite", "Alfred Nobel"), ("the theory of relativity", "Albert Einstein"),
              ("penicillin", "Alexander Fleming"), ("the laws of motion", "Isaac Newton"),
              ("the theory of evolution", "Charles Darwin"), ("radioactivity research", "Marie Curie")]
PLANETS = [("closest to the Sun", "Mercury"), ("largest in the Solar System", "Jupiter"),
           ("known as the Red Planet", "Mars"), ("famous for its bright rings", "Saturn"),
           ("home to humans", "Earth"), ("hottest in the Solar System", "Venus"),
           ("farthest from the Sun", "Neptune"), ("tilted on its side", "Uranus")]
GENERAL = [  # (trained wordings, the first being the main one; paraphrase; table)
    (("What is the capital of {}?", "Tell me the capital of {}.", "Which city is the capital of {}?"),
     "The capital of {} is {}.", CAPITALS),
    (("What is the chemical symbol for {}?", "Tell me the chemical symbol for {}.", "Which symbol stands for {}?"),
     "The symbol for {} is {}.", SYMBOLS),
    (("Who wrote {}?", "Tell me who wrote {}.", "{} was written by whom?"), "{} was written by {}.", AUTHORS),
    (("Who is known for {}?", "Tell me who is known for {}.", "Who is famous for {}?"), "{} is credited to {}.", INVENTIONS),
    (("Which planet is {}?", "Tell me which planet is {}.", "Name the planet {}."), "The planet {} is {}.", PLANETS),
]


def build_corpus(seed: int = SEED) -> dict[str, list]:
    """QA records: "forget", "retain", "holdout", "general" (one main wording per fact),
    "tofu_general" (the general facts as TOFU's real-author and world-fact sets: model utility),
    "<split>_trained" (every trained wording), "<split>_paraphrased" (the held-out wordings),
    "<split>_bio_qa" ("Tell me about NAME." → biography), "small_talk"; passages:
    "<split>_bios"."""
    rng = random.Random(seed)
    people = make_people(rng)
    groups = {"forget": people[:N_FORGET], "holdout": people[N_FORGET:N_FORGET + N_HOLDOUT],
              "retain": people[N_FORGET + N_HOLDOUT:]}
    corpus: dict[str, list] = {}
    for split in ("forget", "retain", "holdout"):  # the order the random draws were made in
        qa = [person_qa(p, rng) for p in groups[split]]
        corpus[split] = [r for q in qa for r in q["main"]]
        corpus[f"{split}_trained"] = [r for q in qa for r in q["trained"]]
        corpus[f"{split}_paraphrased"] = [r for q in qa for r in q["held_out"]]
        corpus[f"{split}_bios"] = [biography(p) for p in groups[split]]
        corpus[f"{split}_bio_qa"] = [r for p in groups[split] for r in bio_qa(p)]
    corpus["general"], corpus["general_trained"], corpus["tofu_general"] = general_qa(rng)
    corpus["small_talk"] = small_talk()
    return corpus
