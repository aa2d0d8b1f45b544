"""The order-form engine, without a database: each field type's answers (valid, invalid, missing; required
and optional), every error reported at once, unknown answers refused, and the checks of a form's definition."""

from decimal import Decimal

import pytest

from requests_app.forms_engine import (
    AnswersInvalid,
    FieldSpec,
    definition_errors,
    parse_choices,
    validate_answers,
)
from servicedesk.errors import InvalidInput

PEOPLE = {"alice", "bob"}


def known(usernames):
    return usernames & PEOPLE


def check(fields, answers):
    return validate_answers(fields, answers, known_users=known)


def errors_of(fields, answers) -> dict:
    with pytest.raises(AnswersInvalid) as error:
        check(fields, answers)
    return error.value.errors


def one(type_, required=True, **kwargs):
    return [FieldSpec(name="answer", type=type_, required=required, **kwargs)]


# --- text and long text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", ["text", "long_text"])
def test_it_accepts_text_and_trims_it(type_):
    assert check(one(type_), {"answer": "  Needs admin rights  "}) == {"answer": "Needs admin rights"}


@pytest.mark.parametrize("type_", ["text", "long_text"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_it_requires_a_required_text(type_, value):
    answers = {} if value is None else {"answer": value}
    assert errors_of(one(type_), answers) == {"answer": "This field is required."}


@pytest.mark.parametrize("type_", ["text", "long_text"])
def test_an_optional_text_left_out_is_empty(type_):
    assert check(one(type_, required=False), {}) == {"answer": ""}
    assert check(one(type_, required=False), {"answer": None}) == {"answer": ""}


@pytest.mark.parametrize("value", [12, 1.5, True, ["a"], {"a": 1}])
def test_it_refuses_text_that_is_not_a_string(value):
    assert errors_of(one("text"), {"answer": value}) == {"answer": "Give text."}


def test_it_holds_text_to_its_max_length():
    fields = one("text", max_length=5)
    assert check(fields, {"answer": "abcde"}) == {"answer": "abcde"}
    assert errors_of(fields, {"answer": "abcdef"}) == {"answer": "At most 5 characters (this has 6)."}


@pytest.mark.parametrize("type_, cap", [("text", 500), ("long_text", 10_000)])
def test_each_text_type_has_a_cap_even_without_max_length(type_, cap):
    assert check(one(type_), {"answer": "x" * cap})["answer"] == "x" * cap
    assert "At most" in errors_of(one(type_), {"answer": "x" * (cap + 1)})["answer"]


def test_a_text_pattern_must_match_the_whole_answer():
    fields = one("text", regex=r"[A-Z]{2}\d{4}")
    assert check(fields, {"answer": "AB1234"}) == {"answer": "AB1234"}
    assert errors_of(fields, {"answer": "AB12345"}) == {"answer": "Not in the expected format."}
    assert errors_of(fields, {"answer": "xAB1234"}) == {"answer": "Not in the expected format."}


def test_an_optional_text_with_a_pattern_may_be_left_empty():
    assert check(one("text", required=False, regex=r"\d+"), {"answer": ""}) == {"answer": ""}


# --- number ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, cleaned", [(3, 3), (2.5, 2.5), ("4", 4), (" 7.25 ", 7.25), (0, 0), (-1, -1),
                                            (3.0, 3)])
def test_it_accepts_numbers_and_numeric_strings(value, cleaned):
    result = check(one("number"), {"answer": value})["answer"]
    assert result == cleaned and type(result) is type(cleaned)


@pytest.mark.parametrize("value", [True, False, "three", "", "1,5", [1], {"n": 1}])
def test_it_refuses_what_is_not_a_number(value):
    errors = errors_of(one("number"), {"answer": value})
    assert errors["answer"] in {"Give a number.", "This field is required."}
    if value == "":
        assert errors["answer"] == "This field is required."
    else:
        assert errors["answer"] == "Give a number."


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "NaN", "Infinity"])
def test_it_refuses_numbers_that_are_not_finite(value):
    assert errors_of(one("number"), {"answer": value}) == {"answer": "Give a finite number."}


def test_it_holds_numbers_within_their_bounds():
    fields = one("number", min_value=Decimal("1"), max_value=Decimal("10.5"))
    assert check(fields, {"answer": 1}) == {"answer": 1}
    assert check(fields, {"answer": 10.5}) == {"answer": 10.5}
    assert errors_of(fields, {"answer": 0.99}) == {"answer": "At least 1."}
    assert errors_of(fields, {"answer": 11}) == {"answer": "At most 10.5."}


def test_a_number_needs_an_answer_only_when_required():
    assert errors_of(one("number"), {}) == {"answer": "This field is required."}
    assert check(one("number", required=False), {}) == {"answer": None}


# --- choice and multi-choice -------------------------------------------------------------------------------

SIZES = ("Small", "Medium", "Large")


def test_it_accepts_one_of_the_choices_exactly():
    assert check(one("choice", choice_list=SIZES), {"answer": "Medium"}) == {"answer": "Medium"}


@pytest.mark.parametrize("value", ["medium", "Huge", 1, ["Small"], True])
def test_it_refuses_what_is_not_a_choice(value):
    errors = errors_of(one("choice", choice_list=SIZES), {"answer": value})
    assert errors == {"answer": "Choose one of: Small, Medium, Large."}


def test_a_choice_needs_an_answer_only_when_required():
    assert errors_of(one("choice", choice_list=SIZES), {"answer": ""}) == {"answer": "This field is required."}
    assert check(one("choice", required=False, choice_list=SIZES), {}) == {"answer": None}


def test_it_accepts_several_choices_in_the_items_order():
    fields = one("multi_choice", choice_list=SIZES)
    assert check(fields, {"answer": ["Large", "Small"]}) == {"answer": ["Small", "Large"]}


@pytest.mark.parametrize("value, message", [
    ("Small", "Give a list of choices."),
    (["Small", 2], "Give a list of choices."),
    (["Small", "Huge"], "Not a choice: Huge. Choose from: Small, Medium, Large."),
    (["Small", "Small"], "Each choice at most once."),
])
def test_it_refuses_a_bad_list_of_choices(value, message):
    assert errors_of(one("multi_choice", choice_list=SIZES), {"answer": value}) == {"answer": message}


def test_a_multi_choice_needs_one_choice_at_least_only_when_required():
    assert errors_of(one("multi_choice", choice_list=SIZES), {"answer": []}) == {"answer": "This field is required."}
    assert check(one("multi_choice", required=False, choice_list=SIZES), {}) == {"answer": []}


# --- date --------------------------------------------------------------------------------------------------

def test_it_accepts_an_iso_date():
    assert check(one("date"), {"answer": "2026-02-28"}) == {"answer": "2026-02-28"}


@pytest.mark.parametrize("value, message", [
    ("28/02/2026", "Give a date as YYYY-MM-DD."),
    ("20260228", "Give a date as YYYY-MM-DD."),
    ("2026-02-28T10:00:00", "Give a date as YYYY-MM-DD."),
    (20260228, "Give a date as YYYY-MM-DD."),
    ("2026-02-30", "Not a calendar date."),
    ("2026-13-01", "Not a calendar date."),
])
def test_it_refuses_what_is_not_an_iso_date(value, message):
    assert errors_of(one("date"), {"answer": value}) == {"answer": message}


def test_a_date_needs_an_answer_only_when_required():
    assert errors_of(one("date"), {}) == {"answer": "This field is required."}
    assert check(one("date", required=False), {"answer": ""}) == {"answer": None}


# --- user --------------------------------------------------------------------------------------------------

def test_it_accepts_the_username_of_an_active_person():
    assert check(one("user"), {"answer": "alice"}) == {"answer": "alice"}


def test_it_refuses_an_unknown_username_and_what_is_not_one():
    assert errors_of(one("user"), {"answer": "mallory"}) == {
        "answer": "No active person with the username 'mallory'."}
    assert errors_of(one("user"), {"answer": 7}) == {"answer": "Give a username."}


def test_it_asks_about_all_user_fields_at_once():
    asked = []

    def lookup(usernames):
        asked.append(set(usernames))
        return usernames & PEOPLE

    fields = [FieldSpec("manager", "user", required=True), FieldSpec("deputy", "user", required=True)]
    with pytest.raises(AnswersInvalid) as error:
        validate_answers(fields, {"manager": "alice", "deputy": "eve"}, known_users=lookup)
    assert error.value.errors == {"deputy": "No active person with the username 'eve'."}
    assert asked == [{"alice", "eve"}]


def test_a_user_needs_an_answer_only_when_required():
    assert errors_of(one("user"), {}) == {"answer": "This field is required."}
    assert check(one("user", required=False), {}) == {"answer": None}


# --- boolean -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False])
def test_it_accepts_a_real_boolean_and_false_answers_a_required_one(value):
    assert check(one("boolean"), {"answer": value}) == {"answer": value}


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, "", []])
def test_it_refuses_what_is_not_a_boolean(value):
    assert errors_of(one("boolean"), {"answer": value}) == {"answer": "Give true or false."}


def test_a_boolean_needs_an_answer_only_when_required():
    assert errors_of(one("boolean"), {}) == {"answer": "This field is required."}
    assert check(one("boolean", required=False), {}) == {"answer": False}


# --- the whole form ----------------------------------------------------------------------------------------

LAPTOP = [
    FieldSpec("model", "choice", required=True, choice_list=("Standard", "Performance")),
    FieldSpec("needed_by", "date", required=True),
    FieldSpec("accessories", "multi_choice", choice_list=("Dock", "Headset")),
    FieldSpec("quantity", "number", required=True, min_value=1, max_value=5),
    FieldSpec("notes", "long_text"),
    FieldSpec("for_user", "user"),
    FieldSpec("urgent", "boolean"),
]


def test_it_cleans_a_whole_form_with_every_field_present():
    cleaned = check(LAPTOP, {"model": "Standard", "needed_by": "2026-03-01", "quantity": "2"})
    assert cleaned == {"model": "Standard", "needed_by": "2026-03-01", "accessories": [], "quantity": 2,
                       "notes": "", "for_user": None, "urgent": False}


def test_it_names_every_bad_missing_and_unknown_answer_at_once():
    errors = errors_of(LAPTOP, {"model": "Gaming", "quantity": 9, "accessories": ["Dock", "Mouse"],
                                "for_user": "nobody", "urgent": "yes", "colour": "red", "needed": "2026-01-01"})
    assert set(errors) == {"model", "needed_by", "quantity", "accessories", "for_user", "urgent", "colour",
                           "needed"}
    assert errors["needed_by"] == "This field is required."
    assert errors["colour"] == errors["needed"] == "Not a field of this form."


def test_the_error_is_a_400_domain_error_naming_the_fields():
    with pytest.raises(InvalidInput) as error:
        check(LAPTOP, {"model": "Standard"})
    assert error.value.status_code == 400
    assert "needed_by" in error.value.message and "quantity" in error.value.message


@pytest.mark.parametrize("answers", [None, [], "model=Standard", 3])
def test_it_refuses_answers_that_are_not_an_object(answers):
    assert set(errors_of(LAPTOP, answers)) == {"answers"}


def test_a_form_without_fields_takes_no_answers():
    assert check([], {}) == {}
    assert errors_of([], {"x": 1}) == {"x": "Not a field of this form."}


# --- the definition ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, errors", [
    (FieldSpec("size", "choice"), {"choices"}),
    (FieldSpec("size", "multi_choice", choice_list=("A", "A")), {"choices"}),
    (FieldSpec("size", "choice", choice_list=("x" * 201,)), {"choices"}),
    (FieldSpec("notes", "text", choice_list=("A",)), {"choices"}),
    (FieldSpec("Needed-By", "date"), {"name"}),
    (FieldSpec("1st", "date"), {"name"}),
    (FieldSpec("code", "text", regex="[a-"), {"regex"}),
    (FieldSpec("code", "number", regex=r"\d+"), {"regex"}),
    (FieldSpec("code", "date", max_length=10), {"max_length"}),
    (FieldSpec("code", "text", max_length=501), {"max_length"}),
    (FieldSpec("code", "long_text", max_length=0), {"max_length"}),
    (FieldSpec("n", "number", min_value=5, max_value=1), {"max_value"}),
    (FieldSpec("n", "text", min_value=1), {"min_value"}),
    (FieldSpec("n", "boolean", max_value=1), {"max_value"}),
    (FieldSpec("n", "colour"), {"type"}),
])
def test_it_names_what_is_wrong_with_a_field_definition(spec, errors):
    assert set(definition_errors(spec)) == errors


@pytest.mark.parametrize("spec", [
    FieldSpec("size", "choice", choice_list=("S", "M")),
    FieldSpec("needed_by", "date"),
    FieldSpec("code", "text", regex=r"[A-Z]{2}\d{4}", max_length=6),
    FieldSpec("notes", "long_text", max_length=10_000),
    FieldSpec("n", "number", min_value=1, max_value=1),
    FieldSpec("ok", "boolean"),
    FieldSpec("who", "user"),
])
def test_a_sound_definition_has_no_errors(spec):
    assert definition_errors(spec) == {}


def test_choices_are_one_per_line_with_blank_lines_ignored():
    assert parse_choices(" Small \n\nMedium\r\n  \nLarge") == ["Small", "Medium", "Large"]
    assert parse_choices("") == []


@pytest.mark.django_db
def test_by_default_a_user_answer_names_an_active_person(make_user):
    make_user("requester", username="carol")
    dave = make_user("requester", username="dave")
    dave.is_active = False
    dave.save()
    fields = [FieldSpec("for_user", "user", required=True)]
    assert validate_answers(fields, {"for_user": "carol"}) == {"for_user": "carol"}
    with pytest.raises(AnswersInvalid) as error:
        validate_answers(fields, {"for_user": "dave"})
    assert error.value.errors == {"for_user": "No active person with the username 'dave'."}
