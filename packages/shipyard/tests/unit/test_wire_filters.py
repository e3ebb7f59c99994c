"""``filter[...]``/``page[...]`` query parsing: the SDK's own queries, repeated parameters,
ISO dates, and a clear 400 for anything unknown, unsupported or malformed."""

from __future__ import annotations

import pytest
from wire_examples import SDK_LIST_QUERY

from shipyard.errors import ValidationError
from shipyard.schemas import (
    RUN_FILTERS_SUPPORTED,
    CursorPage,
    parse_offset_page,
    parse_run_list_query,
    parse_token_list_query,
)


def test_the_sdk_list_query() -> None:
    query = parse_run_list_query(SDK_LIST_QUERY)
    assert query.statuses == ("COMPLETED", "FAILED")
    assert query.task_identifiers == ("hello",)
    assert query.tags == ("a", "b")
    assert query.created_from_ms == 1_700_000_000_000
    assert query.page == CursorPage(size=5, after="run_1")


def test_defaults() -> None:
    query = parse_run_list_query({})
    assert query.statuses == () and query.batch is None
    assert query.page == CursorPage(size=25)


def test_repeated_list_parameters_merge() -> None:
    query = parse_run_list_query([("filter[tag]", "a"), ("filter[tag]", "b,a")])
    assert query.tags == ("a", "b")


def test_iso_dates_and_periods() -> None:
    query = parse_run_list_query(
        {
            "filter[createdAt][from]": "2025-01-01T00:00:00Z",
            "filter[createdAt][to]": "2025-01-02T00:00:00+00:00",
            "filter[createdAt][period]": "1d",
            "filter[batch]": "batch_1",
        }
    )
    assert query.created_from_ms == 1_735_689_600_000
    assert query.created_to_ms == 1_735_776_000_000
    assert query.period_ms == 86_400_000
    assert query.batch == "batch_1"
    # The later of the two starts wins.
    assert query.created_range(now_ms=1_735_776_000_000) == (1_735_689_600_000, 1_735_776_000_000)
    assert query.created_range(now_ms=1_735_800_000_000)[0] == 1_735_713_600_000


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"filter[status]": "DONE"}, "filter[status]", "unknown status 'DONE'"),
        ({"filter[status]": "QUEUED,"}, "filter[status]", "empty item"),
        ({"filter[createdAt][from]": "yesterday"}, "filter[createdAt][from]", "epoch"),
        ({"filter[createdAt][period]": "1y"}, "filter[createdAt][period]", "Invalid duration"),
        (
            {"filter[createdAt][from]": "2000", "filter[createdAt][to]": "1000"},
            "filter[createdAt][to]",
            "before",
        ),
        ({"page[size]": "0"}, "page[size]", "1 to 100"),
        ({"page[size]": "101"}, "page[size]", "1 to 100"),
        ({"page[size]": "ten"}, "page[size]", "1 to 100"),
        ({"filter[batch]": ""}, "filter[batch]", "empty"),
        ({"filter[colour]": "red"}, "filter[colour]", "Unknown query parameter"),
        ({"filter[version]": "20250101.1"}, "filter[version]", "not supported"),
        ({"page[before]": "run_1"}, "page[before]", "not supported"),
    ],
)
def test_bad_queries_name_the_parameter(params: dict[str, str], param: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        parse_run_list_query(params)
    assert caught.value.context["param"] == param


def test_scalar_parameters_given_twice_are_refused() -> None:
    with pytest.raises(ValidationError, match="more than once"):
        parse_run_list_query([("filter[batch]", "a"), ("filter[batch]", "b")])


def test_a_server_can_opt_into_more_filters() -> None:
    supported = RUN_FILTERS_SUPPORTED | {"filter[isTest]", "filter[version]", "page[before]"}
    query = parse_run_list_query(
        {"filter[isTest]": "true", "filter[version]": "1,2", "page[before]": "run_9"},
        supported=supported,
    )
    assert query.is_test is True
    assert query.versions == ("1", "2")
    assert query.page.before == "run_9"
    with pytest.raises(ValidationError, match="true or false"):
        parse_run_list_query({"filter[isTest]": "yes"}, supported=supported)


def test_token_list_query() -> None:
    query = parse_token_list_query(
        [("filter[status]", "WAITING,COMPLETED"), ("filter[tags]", "t"), ("page[size]", "10")]
    )
    assert query.statuses == ("WAITING", "COMPLETED")
    assert query.tags == ("t",)
    assert query.page.size == 10
    with pytest.raises(ValidationError, match="unknown status 'QUEUED'"):
        parse_token_list_query({"filter[status]": "QUEUED"})


def test_offset_pages() -> None:
    assert parse_offset_page({}).offset == 0
    page = parse_offset_page({"page": "3", "perPage": "10"})
    assert (page.page, page.per_page, page.offset) == (3, 10, 20)
    with pytest.raises(ValidationError) as caught:
        parse_offset_page({"page": "0"})
    assert caught.value.context["param"] == "page"
