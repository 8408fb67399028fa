"""Extraction: read a short generated text (a person, a company or an event) and answer with a JSON
object matching a given JSON schema that holds the text's facts.

Difficulty 1 asks for 3 flat fields, 2 for 5 (the text also states a fact the schema does not ask
for), 3 for 6 including a nested object and a list. Accepted: within what the last answer mark
introduces (``Answer:``, ``\\boxed{}``, ...: :func:`agentsynth.answers.answer_region`) if it holds a
``{``, else within the whole reply, the last ```json (or bare ```) block, else the last JSON
object, whatever the prose around it, the key order or the layout; it must validate against the
schema (types, required keys, no extra keys, dates as YYYY-MM-DD; integers may be written 1200.0)
and hold the facts: strings equal ignoring case and spacing, numbers numerically, lists in any
order where the schema says ``"x-unordered": true``. The hint names the first field that is
missing, unexpected, of the wrong type or form, else every field with a wrong value, by name only.
``format`` (a score, task_relevant False: satisfiable without solving): a JSON object that
validates against the schema.
"""

from __future__ import annotations

import datetime
import json
import math
import re

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, grader
from agentsynth.answers import answer_region

from ._keys import answer_key

FIRST = ("Mara Tobias Leila Anders Noor Felix Ingrid Rafael Sanna Kenji Amara Pavel Lucia Idris Helena "
         "Oskar Yara Elena Marco Ruth").split()
LAST = "Lindqvist Okafor Brandt Moreau Castillo Nakamura Haddad Petrov Quinlan Svensson Ferreira Adeyemi Kowalski".split()
JOBS = ("architect", "pharmacist", "pilot", "software engineer", "veterinarian", "journalist", "carpenter", "translator")
PLACES = (("Porto", "Portugal"), ("Tampere", "Finland"), ("Ghent", "Belgium"), ("Bergen", "Norway"), ("Graz", "Austria"),
          ("Valencia", "Spain"), ("Lyon", "France"), ("Leeds", "United Kingdom"), ("Osaka", "Japan"), ("Halifax", "Canada"))
LANGS = ("English", "Spanish", "French", "German", "Japanese", "Arabic", "Portuguese", "Swahili", "Finnish", "Polish")
CO = (("Blue", "North", "Silver", "Iron", "Cedar", "Falcon", "Harbor", "Maple"), ("fin", "wind", "leaf", "stone", "field", "gate"),
      ("Analytics", "Robotics", "Foods", "Logistics", "Labs", "Energy", "Studios"))
INDUSTRIES = ("software", "shipping", "food", "solar energy", "biotech", "furniture", "gaming")
PRODUCTS = ("Nimbus Router", "Orbit Scanner", "Pulse Tracker", "Quartz Desk", "Lumen Lamp", "Vega Drone", "Terra Boots",
            "Echo Speaker", "Drift Kayak", "Helix Pump")
EVENTS = (("Data", "Climate", "Robotics", "Design", "Health", "Music"), ("Summit", "Festival", "Conference", "Expo"))
VENUES = ("Harbour Hall", "Riverside Arena", "Old Mill Centre", "Civic Auditorium", "Northgate Theatre", "Glasshouse Pavilion")
MONTHS = ("January February March April May June July August September October November December").split()
STR, INT, NUM, BOOL = ({"type": t} for t in ("string", "integer", "number", "boolean"))
DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
PROMPT = ("Extract the facts from the text below into one JSON object that matches the JSON schema.\n\nText:\n{text}\n\n"
          "JSON schema:\n```json\n{schema}\n```\n\nReply with the JSON object in a ```json fenced block. "
          "Write dates as YYYY-MM-DD and numbers as JSON numbers.")
_BLOCK = re.compile(r"```[ \t]*(json)?[ \t]*\n(.*?)```", re.S | re.I)


def _obj(**props):
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _list(unordered: bool):
    if unordered:
        return {"type": "array", "items": STR, "x-unordered": True, "description": "in any order"}
    return {"type": "array", "items": STR, "description": "in the order the text gives"}


def _facts(kind: int, rng: np.random.Generator):
    """(subject key, {key: (schema, value, its sentence or None if the intro states it)}, intro)."""
    u = rng.random(12)
    pick = lambda seq, i: seq[int(u[i] * len(seq))]  # noqa: E731
    date = lambda lo, hi: datetime.date(int(rng.integers(lo, hi)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))  # noqa: E731
    said = lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}" if u[11] < 0.5 else f"{d.day} {MONTHS[d.month - 1]} {d.year}"  # noqa: E731
    people = [f"{FIRST[i]} {LAST[j]}" for i, j in zip(rng.choice(len(FIRST), 4, replace=False), rng.choice(len(LAST), 4))]
    items = lambda pool: [pool[i] for i in rng.choice(len(pool), int(rng.integers(2, 5)), replace=False)]  # noqa: E731
    join = lambda xs: ", ".join(xs[:-1]) + " and " + xs[-1]  # noqa: E731
    city, country = pick(PLACES, 0)
    company = pick(CO[0], 1) + pick(CO[1], 2) + " " + pick(CO[2], 3)
    if kind == 0:
        name, p, born, job = people[0], people[0].split()[0], date(1950, 2005), pick(JOBS, 4)
        n, h, since, langs = 500 * int(rng.integers(60, 500)), int(rng.integers(150, 201)), int(rng.integers(1995, 2024)), items(LANGS)
        return "name", {
            "name": (STR, name, None), "occupation": (STR, job, None),
            "birth_date": (DATE, born.isoformat(), f"{p} was born on {said(born)}."),
            "city": (STR, city, f"{p} lives in {city}."), "salary": (INT, n, f"{p} earns ${n:,} a year."),
            "height_cm": (INT, h, f"{p} is {h} cm tall."),
            "employer": (_obj(company=STR, since=INT), {"company": company, "since": since},
                         f"{p} has worked for {company} since {since}."),
            "languages": (_list(True), langs, f"{p} speaks {join(langs)}."),
        }, f"{name} is a {job}."
    if kind == 1:
        founded, ind, public = date(1950, 2021), pick(INDUSTRIES, 4), bool(u[5] < 0.5)
        staff, revenue, age, products = int(rng.integers(1000, 48001)), 1000 * int(rng.integers(1000, 900001)), int(rng.integers(31, 71)), items(PRODUCTS)
        return "name", {
            "name": (STR, company, None), "industry": (STR, ind, None),
            "founded": (DATE, founded.isoformat(), f"It was founded on {said(founded)}."),
            "employees": (INT, staff, f"It employs {staff:,} people."),
            "revenue_usd": (INT, revenue, f"Last year its revenue was ${revenue:,}."),
            "public": (BOOL, public, "It is publicly traded." if public else "It is privately held."),
            "headquarters": (_obj(city=STR, country=STR), {"city": city, "country": country},
                             f"Its headquarters are in {city}, {country}."),
            "ceo": (_obj(name=STR, age=INT), {"name": people[1], "age": age},
                    f"Its chief executive is {people[1]}, who is {age} years old."),
            "products": (_list(True), products, f"Its products include {join(products)}."),
        }, f"{company} is a {ind} company."
    title = f"{city} {pick(EVENTS[0], 6)} {pick(EVENTS[1], 7)}"
    when, guests, price, venue = date(2024, 2027), int(rng.integers(800, 25001)), int(rng.integers(1500, 25000)) / 100, pick(VENUES, 8)
    speakers = people[:int(rng.integers(2, 5))]
    return "title", {
        "title": (STR, title, None), "organizer": (STR, company, None),
        "date": (DATE, when.isoformat(), f"It takes place on {said(when)}."),
        "attendees": (INT, guests, f"The organisers expect {guests:,} attendees."),
        "ticket_price": (NUM, price, f"Tickets cost ${price:.2f}."),
        "venue": (_obj(name=STR, city=STR), {"name": venue, "city": city}, f"It is held at {venue} in {city}."),
        "speakers": (_list(False), speakers, f"The speakers, in order of appearance, are {join(speakers)}."),
    }, f'The "{title}" is organised by {company}.'


def parse_json(text: object) -> object:
    """The JSON a reply gives, within what its last answer mark introduces
    (:func:`agentsynth.answers.answer_region`) if that holds a ``{``, else within the whole reply:
    the last ```json/bare block that parses, else the last top-level JSON object (None: none)."""
    if not isinstance(text, str) or len(text) > 100_000:
        return None
    region = answer_region(text)
    text = region if region is not None and "{" in region else text
    for lang, body in reversed(_BLOCK.findall(text)):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            continue
    found, dec, misses = None, json.JSONDecoder(), 0
    starts = re.compile(r"[{\[]")
    m = starts.search(text)
    while m and misses < 1000:  # each miss costs O(position): bound the work on bracket-heavy garbage
        try:
            value, end = dec.raw_decode(text, m.start())
            found = value if isinstance(value, dict) else found  # an array is skipped whole
            m = starts.search(text, end)
        except (ValueError, RecursionError):
            m, misses = starts.search(text, m.start() + 1), misses + 1
    return found


def _finite(v) -> bool:
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _validate(v, s, path: str = "") -> str | None:
    """The first way ``v`` breaks schema ``s`` (a hint), or None."""
    name = f"field '{path}'" if path else "the answer"
    t = s.get("type")
    if t == "object":
        if not isinstance(v, dict):
            return f"{name} should be a JSON object."
        props = s.get("properties", {})
        for k in s.get("required", []):
            if k not in v:
                return f"field '{path + '.' * bool(path) + k}' is missing."
        for k, x in v.items():
            key = path + "." * bool(path) + str(k)
            if k not in props:
                if s.get("additionalProperties", True) is False:
                    return f"field '{key}' is not in the schema."
            elif err := _validate(x, props[k], key):
                return err
        return None
    if t == "array":
        if not isinstance(v, list):
            return f"{name} has the wrong type (expected an array)."
        return next((e for i, x in enumerate(v) if (e := _validate(x, s.get("items", {}), f"{path}[{i}]"))), None)
    number = _finite(v)
    ok = {"string": isinstance(v, str), "boolean": isinstance(v, bool), "number": number,
          "integer": number and float(v).is_integer()}.get(t, True)
    if not ok:
        return f"{name} has the wrong type (expected {'an' if t == 'integer' else 'a'} {t})."
    if s.get("format") == "date":
        try:
            datetime.date.fromisoformat(v)
            ok = re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None
        except ValueError:
            ok = False
        if not ok:
            return f"{name} is not a date in YYYY-MM-DD form."
    return None


def _norm(x):
    return " ".join(x.split()).casefold() if isinstance(x, str) else x


def _wrong(v, e, s, path: str = "") -> list[str]:
    """The fields (quoted) of a schema-valid ``v`` whose value differs from ``e``."""
    t = s.get("type")
    if t == "object":
        return [w for k, sub in s["properties"].items() for w in _wrong(v[k], e[k], sub, path + "." * bool(path) + k)]
    if t == "array":
        a, b = [_norm(x) for x in v], [_norm(x) for x in e]
        if a == b or (s.get("x-unordered") and sorted(a) == sorted(b)):
            return []
        return [f"'{path}' (right items, wrong order)" if sorted(a) == sorted(b) else f"'{path}'"]
    if t in ("integer", "number"):
        return [] if math.isclose(v, e, rel_tol=1e-9, abs_tol=1e-9) else [f"'{path}'"]
    return [] if _norm(v) == _norm(e) else [f"'{path}'"]


def diagnose(task: Task, answer: str) -> str | None:
    """None when ``answer`` is right, else what is wrong (field names, never values)."""
    got, schema = parse_json(answer), task.metadata["schema"]
    if not isinstance(got, dict):
        return "no JSON object found: put it in a ```json fenced block."
    if err := _validate(got, schema):
        return err
    wrong = _wrong(got, json.loads(task.answer), schema)
    return "wrong value in " + ", ".join(wrong) + "." if wrong else None


def _key_form(v, s: dict):
    """``v`` as verify compares it: strings case-folded with spacing collapsed (:func:`_norm`),
    integral numbers as ints, lists sorted where schema ``s`` says ``"x-unordered"``."""
    if isinstance(v, dict):
        props = s.get("properties", {})
        return {k: _key_form(x, props.get(k, {})) for k, x in v.items()}
    if isinstance(v, list):
        items = [_key_form(x, s.get("items", {})) for x in v]
        return sorted(items, key=json.dumps) if s.get("x-unordered") else items
    if _finite(v) and float(v).is_integer():
        return int(v)
    return _norm(v)


@grader("format", source="rubric", meta_level=0, task_relevant=False, description="a JSON object valid against the schema")
def json_format(ctx):
    got = parse_json(ctx.answer or "")
    return isinstance(got, dict) and _validate(got, ctx.task.metadata["schema"]) is None


class ExtractionEnv(TextEnv):
    """Extract a short text's facts into JSON matching a schema."""

    name = "extraction"
    domain = "extraction"
    sim_solver = "envs.extraction_sim:extraction"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(max(self.difficulty, 1), 3)
        subject, facts, intro = _facts(int(rng.integers(3)), rng)
        scalars = [k for k, f in facts.items() if k != subject and f[0]["type"] not in ("object", "array")]
        nested = [k for k, f in facts.items() if f[0]["type"] == "object"]
        lists = [k for k, f in facts.items() if f[0]["type"] == "array"]
        chosen = [scalars[i] for i in rng.choice(len(scalars), min((2, 4, 3)[d - 1], len(scalars)), replace=False)]
        if d == 3:
            chosen += [nested[int(rng.integers(len(nested)))], lists[0]]
        keys = [k for k in facts if k == subject or k in chosen]  # the schema's order
        spare = [k for k in facts if k not in keys and facts[k][2]]
        extra = [spare[int(rng.integers(len(spare)))]] if d > 1 and spare else []
        said = [facts[k][2] for k in keys + extra if facts[k][2]]
        text = " ".join([intro] + [said[i] for i in rng.permutation(len(said))])
        schema = _obj(**{k: facts[k][0] for k in keys})
        answer = json.dumps({k: facts[k][1] for k in keys}, sort_keys=True, separators=(",", ":"))
        prompt = PROMPT.format(text=text, schema=json.dumps(schema, indent=2))
        return self.make_task(prompt, answer, schema=schema)

    def verify(self, task: Task, answer: str) -> bool:
        return diagnose(task, answer) is None

    def hint(self, task: Task, answer: str) -> str | None:
        return diagnose(task, answer)

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The JSON object verify reads (:func:`parse_json`), dumped compact with sorted keys after
        :func:`_key_form`; the current task's schema (shown in its prompt) says which lists are
        unordered."""
        got = parse_json(text)
        schema = self.task.metadata.get("schema", {}) if self.task is not None else {}
        if not isinstance(got, dict):
            return None
        return json.dumps(_key_form(got, schema), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def scores(self):
        return [json_format]

    def reference_reply(self, task: Task) -> str:
        return f"```json\n{task.answer}\n```"

    def probe_replies(self, task: Task) -> ProbeReplies:
        """A string fact with " Jr" added is wrong, and so are the object with an extra key (the
        schema allows none) and with a fact set to null; the object with its strings in upper case
        (strings compare ignoring case) or its integers written as 1200.0 is the same answer."""
        obj = json.loads(task.answer)
        key = next(k for k in ("name", "title", *obj) if isinstance(obj.get(k), str))
        wrong = json.dumps({**obj, key: obj[key] + " Jr"}, sort_keys=True, separators=(",", ":"))

        def upper(v):
            return v.upper() if isinstance(v, str) else [upper(x) for x in v] if isinstance(v, list) else (
                {k: upper(x) for k, x in v.items()} if isinstance(v, dict) else v)

        def floats(v):
            return float(v) if isinstance(v, int) and not isinstance(v, bool) else [floats(x) for x in v] if isinstance(
                v, list) else ({k: floats(x) for k, x in v.items()} if isinstance(v, dict) else v)

        fence = "```json\n{}\n```".format
        must_pass = {"strings in upper case": fence(json.dumps(upper(obj)))}
        if json.dumps(floats(obj)) != json.dumps(obj):
            must_pass["integers as 1200.0"] = fence(json.dumps(floats(obj)))
        return ProbeReplies(wrong=(wrong,), single_answer=True, must_pass=must_pass, must_fail={
            "extra key": fence(json.dumps({**obj, "notes": "extracted"})), "null value": fence(json.dumps({**obj, key: None}))})
