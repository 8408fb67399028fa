"""The sim's extraction competence: read each fact the schema asks for out of the text's sentences.
Its favourite slip is one field's value in the wrong form (a date as the text writes it, a number
with its thousands separator as a string); others: a missing field, an extra field, a list item
dropped."""

from __future__ import annotations

import json
import re

from agentsynth.sim import Problem

_MONTHS = "January February March April May June July August September October November December".split()
_INTROS = (
    (re.compile(r'^The "(.+?)" is organised by (.+?)\.'), ("title", "organizer")),
    (re.compile(r"^(.+?) is an? (.+?) company\."), ("name", "industry")),
    (re.compile(r"^(\w+ \w+) is an? (.+?)\."), ("name", "occupation")),
)
_NUM = lambda s: int(s.replace(",", ""))  # noqa: E731
_FACTS = {  # key: (pattern, parts -> value)
    "birth_date": (r"was born on (.+?\d{4})\.", None), "founded": (r"was founded on (.+?\d{4})\.", None),
    "date": (r"takes place on (.+?\d{4})\.", None),
    "city": (r"lives in (.+?)\.", str), "salary": (r"earns \$([\d,]+) a year", _NUM), "height_cm": (r"is (\d+) cm tall", int),
    "employer": (r"has worked for (.+?) since (\d{4})\.", lambda c, y: {"company": c, "since": int(y)}),
    "languages": (r"speaks (.+?)\.", None), "employees": (r"employs ([\d,]+) people", _NUM),
    "revenue_usd": (r"revenue was \$([\d,]+)\.", _NUM), "public": (r"It is (publicly traded|privately held)\.", lambda w: w == "publicly traded"),
    "headquarters": (r"headquarters are in (.+?), (.+?)\.", lambda c, k: {"city": c, "country": k}),
    "ceo": (r"chief executive is (.+?), who is (\d+) years old", lambda n, a: {"name": n, "age": int(a)}),
    "products": (r"products include (.+?)\.", None), "attendees": (r"expect ([\d,]+) attendees", _NUM),
    "ticket_price": (r"Tickets cost \$(\d+\.\d\d)", float), "venue": (r"held at (.+?) in (.+?)\.", lambda n, c: {"name": n, "city": c}),
    "speakers": (r"in order of appearance, are (.+?)\.", None),
}
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)```", re.S | re.I)


def _iso(said: str) -> str | None:
    m = re.fullmatch(r"(\w+) (\d+), (\d{4})", said) or re.fullmatch(r"(\d+) (\w+) (\d{4})", said)
    if not m:
        return None
    month, day = (m[1], m[2]) if m[1] in _MONTHS else (m[2], m[1])
    return f"{m[3]}-{_MONTHS.index(month) + 1:02d}-{int(day):02d}" if month in _MONTHS else None


def _facts(text: str) -> dict:
    """Every fact the sim can read from ``text``, by key."""
    out: dict = {}
    for rx, keys in _INTROS:
        if m := rx.match(text):
            out.update(zip(keys, m.groups()))
            break
    for key, (pattern, conv) in _FACTS.items():
        if not (m := re.search(pattern, text)):
            continue
        if key in ("birth_date", "founded", "date"):
            out[key] = _iso(m[1])
        elif key in ("languages", "products", "speakers"):
            out[key] = re.split(r", | and ", m[1])
        else:
            out[key] = conv(*m.groups())
    return out


def _dump(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _mistakes(record: dict, schema: dict, facts: dict, text: str) -> list[str]:
    """A value in the wrong form (the favourite), a field missing, an extra field, a list item dropped."""
    props, out = schema["properties"], []
    slip = dict(record)
    dates = [k for k, s in props.items() if s.get("format") == "date"]
    big = [k for k, s in props.items() if s.get("type") in ("integer", "number") and abs(record[k]) >= 1000]
    if dates:
        said = re.search(_FACTS[dates[0]][0], text)
        slip[dates[0]] = said[1] if said else record[dates[0]].replace("-", "/")
    elif big:
        slip[big[0]] = f"{record[big[0]]:,}"
    elif prices := [k for k, s in props.items() if s.get("type") == "number"]:
        slip[prices[0]] = f"${record[prices[0]]:.2f}"
    elif flags := [k for k, s in props.items() if s.get("type") == "boolean"]:
        slip[flags[0]] = not record[flags[0]]
    else:  # a name cut to its first word
        k = next(k for k, s in props.items() if s.get("type") == "string" and " " in record[k])
        slip[k] = record[k].split()[0]
    out.append(_dump(slip))
    out.append(_dump({k: v for k, v in record.items() if k != list(props)[-1]}))
    extra = next((k for k in facts if k not in props and facts[k] is not None), "summary")
    out.append(_dump({**record, extra: facts.get(extra, text.split(".")[0])}))
    lists = [k for k, s in props.items() if s.get("type") == "array"]
    if lists:
        out.append(_dump({**record, lists[0]: record[lists[0]][:-1]}))
    return out


def _render(answer: str, tidy: bool) -> str:
    try:
        pretty = json.dumps(json.loads(answer), indent=2)
    except ValueError:
        pretty = answer
    if tidy:
        return f"```json\n{pretty}\n```"
    return f"Here is what the text says: {answer}\nThat covers every field of the schema."


def _extract(reply: str) -> str | None:
    """The JSON object a reply states (its last ```json block, else its last object), canonical."""
    reply = reply or ""
    found, dec = None, json.JSONDecoder()
    for block in _FENCE.findall(reply)[::-1]:
        try:
            found = json.loads(block)
            break
        except ValueError:
            continue
    i = reply.find("{") if found is None else -1
    while i >= 0:
        try:
            found, end = dec.raw_decode(reply, i)
            i = reply.find("{", end)
        except ValueError:
            i = reply.find("{", i + 1)
    return _dump(found) if isinstance(found, dict) else None


def extraction(prompt: str) -> Problem | None:
    """Extraction prompts: 'Text:' with the facts, then 'JSON schema:' in a ```json block."""
    m = re.search(r"Text:\n(.+?)\n\nJSON schema:\n```json\n(.+?)\n```", prompt, re.S)
    if not m or "matches the JSON schema" not in prompt:
        return None
    text = m[1].strip()
    try:
        schema = json.loads(m[2])
    except ValueError:
        return None
    facts = _facts(text)
    props = schema.get("properties", {})
    if not props or any(facts.get(k) is None for k in props):
        return None
    record = {k: facts[k] for k in props}
    nested = any(s.get("type") in ("object", "array") for s in props.values())
    difficulty = 1.0 + 0.25 * (len(props) - 3) + 0.25 * nested
    return Problem("extraction", _dump(record), difficulty, _mistakes(record, schema, facts, text),
                   render=_render, extract=_extract)
