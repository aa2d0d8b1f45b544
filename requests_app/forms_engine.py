"""The catalog's form engine: checks a form definition (what an admin builds in the catalog) and the answers
a person gives to it. Pure apart from one fact: which usernames belong to active people, asked of a callable
(`known_users`, by default `active_usernames`, one query) once for every `user` field of the form together.

    cleaned = validate_answers(item.fields.all(), {"product": "Office", "justification": "..."})

`validate_answers` reports EVERY bad, missing or unknown answer at once: it raises `AnswersInvalid` whose
`errors` maps each field's `name` to one message a person can act on.

Answer rules per type (what `cleaned` holds for each):
- text, long_text: a string, trimmed; within max_length (and the type's own cap), fully matching the regex if
  one is set. Empty or missing optional -> "".
- number: a JSON number (or a numeric string, as HTML forms send), finite, within min/max -> int when whole,
  else float. Missing optional -> None.
- choice: one of the choices, exactly -> that string. Missing optional -> None.
- multi_choice: a list of distinct choices -> that list, in the item's choice order. Missing optional -> [].
- date: "YYYY-MM-DD" (ISO 8601 calendar date) -> the same string. Missing optional -> None.
- user: the username of an active person -> that username. Missing optional -> None.
- boolean: true or false (a JSON boolean; "true"/1 are refused). Required means an answer must be given,
  false being one. Missing optional -> False.
"""

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from servicedesk.errors import InvalidInput

TEXT = "text"
LONG_TEXT = "long_text"
NUMBER = "number"
CHOICE = "choice"
MULTI_CHOICE = "multi_choice"
DATE = "date"
USER = "user"
BOOLEAN = "boolean"

TYPES = {
    TEXT: "Text",
    LONG_TEXT: "Long text",
    NUMBER: "Number",
    CHOICE: "Choice",
    MULTI_CHOICE: "Multiple choice",
    DATE: "Date",
    USER: "Person",
    BOOLEAN: "Yes / no",
}
TEXT_TYPES = {TEXT, LONG_TEXT}
CHOICE_TYPES = {CHOICE, MULTI_CHOICE}
# However an admin sets max_length, an answer never exceeds these.
TEXT_CAP = {TEXT: 500, LONG_TEXT: 10_000}
CHOICE_MAX_LENGTH = 200
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class AnswersInvalid(InvalidInput):
    """Answers that do not fit the form: `errors` maps each field name at fault to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Some answers are missing or not valid: " + ", ".join(sorted(errors)) + ".")
        self.errors = errors


@dataclass(frozen=True)
class FieldSpec:
    """A form field as the engine reads it; the catalog's model field has the same attributes."""

    name: str
    type: str
    label: str = ""
    required: bool = False
    choice_list: tuple[str, ...] = ()
    min_value: Decimal | int | float | None = None
    max_value: Decimal | int | float | None = None
    max_length: int | None = None
    regex: str = ""


def parse_choices(text: str) -> list[str]:
    """Choices as an admin types them: one per line, blank lines and surrounding spaces ignored."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# --- the definition ----------------------------------------------------------------------------------------

def definition_errors(field) -> dict[str, str]:
    """What is wrong with one field's definition, by attribute name (empty when it is sound)."""
    errors = {}
    if not NAME_RE.match(field.name or ""):
        errors["name"] = "Use lower-case letters, digits and underscores, starting with a letter (e.g. needed_by)."
    if field.type not in TYPES:
        errors["type"] = f"Unknown type {field.type!r}; one of {', '.join(TYPES)}."
        return errors
    choices = list(field.choice_list)
    if field.type in CHOICE_TYPES:
        if not choices:
            errors["choices"] = "A choice field needs at least one choice (one per line)."
        elif len(set(choices)) != len(choices):
            twice = sorted({c for c in choices if choices.count(c) > 1})
            errors["choices"] = f"Each choice once: {', '.join(twice)} appears more than once."
        elif any(len(c) > CHOICE_MAX_LENGTH for c in choices):
            errors["choices"] = f"A choice is at most {CHOICE_MAX_LENGTH} characters."
    elif choices:
        errors["choices"] = "Only choice and multiple-choice fields have choices."
    if field.type == NUMBER:
        if field.min_value is not None and field.max_value is not None and field.min_value > field.max_value:
            errors["max_value"] = "The maximum must not be below the minimum."
    elif field.min_value is not None or field.max_value is not None:
        errors["min_value" if field.min_value is not None else "max_value"] = "Only number fields have bounds."
    if field.type in TEXT_TYPES:
        cap = TEXT_CAP[field.type]
        if field.max_length is not None and not 1 <= field.max_length <= cap:
            errors["max_length"] = f"Between 1 and {cap} for this type."
        if field.regex:
            try:
                re.compile(field.regex)
            except re.error as error:
                errors["regex"] = f"Not a valid regular expression: {error}."
    else:
        if field.max_length is not None:
            errors["max_length"] = "Only text fields have a maximum length."
        if field.regex:
            errors["regex"] = "Only text fields have a pattern."
    return errors


# --- the answers -------------------------------------------------------------------------------------------

class _Bad(Exception):
    pass


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)


EMPTY = {TEXT: "", LONG_TEXT: "", NUMBER: None, CHOICE: None, MULTI_CHOICE: [], DATE: None, USER: None,
         BOOLEAN: False}


def _number_text(value) -> str:
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


def _text(field, value) -> str:
    if not isinstance(value, str):
        raise _Bad("Give text.")
    value = value.strip()
    limit = min(field.max_length or TEXT_CAP[field.type], TEXT_CAP[field.type])
    if len(value) > limit:
        raise _Bad(f"At most {limit} characters (this has {len(value)}).")
    if field.regex and not re.fullmatch(field.regex, value):
        raise _Bad("Not in the expected format.")
    return value


def _number(field, value):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad("Give a number.")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise _Bad("Give a number.") from None
    if not number.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise _Bad("Give a finite number.")
    if field.min_value is not None and number < Decimal(str(field.min_value)):
        raise _Bad(f"At least {_number_text(field.min_value)}.")
    if field.max_value is not None and number > Decimal(str(field.max_value)):
        raise _Bad(f"At most {_number_text(field.max_value)}.")
    return int(number) if number == number.to_integral_value() else float(number)


def _choice(field, value) -> str:
    if not isinstance(value, str) or value not in field.choice_list:
        raise _Bad(f"Choose one of: {', '.join(field.choice_list)}.")
    return value


def _multi_choice(field, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad("Give a list of choices.")
    allowed = list(field.choice_list)
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise _Bad(f"Not a choice: {', '.join(unknown)}. Choose from: {', '.join(allowed)}.")
    if len(set(value)) != len(value):
        raise _Bad("Each choice at most once.")
    return [c for c in allowed if c in value]


def _date(field, value) -> str:
    if not isinstance(value, str) or not ISO_DATE_RE.match(value.strip()):
        raise _Bad("Give a date as YYYY-MM-DD.")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _Bad("Not a calendar date.") from None


def _user(field, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad("Give a username.")
    return value.strip()


def _boolean(field, value) -> bool:
    if not isinstance(value, bool):
        raise _Bad("Give true or false.")
    return value


CLEAN = {TEXT: _text, LONG_TEXT: _text, NUMBER: _number, CHOICE: _choice, MULTI_CHOICE: _multi_choice,
         DATE: _date, USER: _user, BOOLEAN: _boolean}


def active_usernames(usernames: set[str]) -> set[str]:
    """Which of `usernames` belong to active people: one query. The default for `validate_answers`."""
    from django.contrib.auth import get_user_model

    return set(get_user_model().objects.filter(username__in=usernames, is_active=True)
               .values_list("username", flat=True))


def validate_answers(fields: Iterable, answers, *,
                     known_users: Callable[[set[str]], set[str]] = active_usernames) -> dict:
    """The answers to a form, cleaned (one entry per field, see the module's rules), or AnswersInvalid naming
    every field at fault: bad, missing while required, or not a field of the form at all."""
    fields = list(fields)
    if not isinstance(answers, dict):
        raise AnswersInvalid({"answers": "Give the answers as an object of field name to value."})
    errors: dict[str, str] = {}
    cleaned: dict = {}
    by_name = {f.name: f for f in fields}
    for key in answers:
        if key not in by_name:
            errors[str(key)] = "Not a field of this form."
    for field in fields:
        value = answers.get(field.name)
        if field.type == BOOLEAN and value is not None:
            pass  # false is an answer, not an empty one
        elif _empty(value):
            if field.required:
                errors[field.name] = "This field is required."
            else:
                cleaned[field.name] = list(EMPTY[field.type]) if field.type == MULTI_CHOICE else EMPTY[field.type]
            continue
        try:
            cleaned[field.name] = CLEAN[field.type](field, value)
        except _Bad as bad:
            errors[field.name] = str(bad)
    wanted = {cleaned[f.name] for f in fields if f.type == USER and cleaned.get(f.name)}
    if wanted:
        found = known_users(wanted)
        for field in fields:
            if field.type == USER and cleaned.get(field.name) and cleaned[field.name] not in found:
                errors[field.name] = f"No active person with the username {cleaned[field.name]!r}."
    if errors:
        raise AnswersInvalid(errors)
    return cleaned
