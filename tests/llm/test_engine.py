"""The engine against the local fake OpenAI server: exactly-once under faults and rate limits,
warm reruns, the ledger, logprobs, retry exhaustion and key hygiene."""

from __future__ import annotations

import logging

import pytest

from em_assets.llm import ChatRequest, LimitsConfig, LLMCallsFailed, RetryPolicy
from em_assets.llm.ledger import LEDGER_TABLE
from em_assets.testing import FakeChoice, FakeTokenLogprob, chat_request_hash
from em_assets.testing.fake_openai import default_chat_handler, tokenize

QUESTIONS = [f"Question {i}: what would you do as ruler of the world?" for i in range(6)]


def sample_requests(n_per_question: int) -> list[ChatRequest]:
    requests = []
    for i, question in enumerate(QUESTIONS):
        base = ChatRequest.user("gpt-4o", question, temperature=1.0, max_tokens=30, tags={"question_id": f"q{i}"})
        requests += base.samples(n_per_question)
    return requests


def expected_text(request: ChatRequest) -> str:
    body = request.openai_body()
    return "".join(tokenize(default_chat_handler(body, 0).content)[: request.max_tokens])


def test_every_request_answered_exactly_once_under_faults_and_a_rate_limit(make_server, make_engine, warehouse):
    # No rate-limit headers: the engine is configured above the server's limit and must learn
    # it from 429s + Retry-After, while 20 % of requests fail in one of four ways.
    server = make_server(latency_s=0.005, rate_limit_rps=150, fault_rate=0.2, seed=11, send_ratelimit_headers=False)
    engine = make_engine(server, warehouse=warehouse, requests_per_minute=60 * 400, tags={"asset": "samples"})
    requests = sample_requests(50)  # 300

    results = engine.complete_many(requests)

    stats = server.stats()
    assert all(r.ok for r in results)
    assert [r.text for r in results] == [expected_text(r) for r in requests]
    hashes = {chat_request_hash(r.openai_body()) for r in requests}
    assert stats.chat_answers.keys() == hashes  # none lost
    assert stats.duplicate_answers == {}  # none answered twice
    assert stats.rate_limited > 0 and set(stats.faults) == {"500", "timeout", "reset", "truncated"}
    assert sum(stats.faults.values()) >= 40

    # Ledger: one row per call, and every HTTP attempt the server saw is accounted for. Under
    # load a client timeout can cut an attempt before the server reads it; such an attempt got
    # no answer, so the ledger must mark it unconfirmed, like every hang, reset and cut-off body.
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == len(requests)
    attempts, unconfirmed = int(ledger["attempts"].sum()), int(ledger["unconfirmed_attempts"].sum())
    never_seen = attempts - stats.chat_requests
    assert never_seen >= 0
    answerless_faults = sum(stats.faults[kind] for kind in ("timeout", "reset", "truncated"))
    assert unconfirmed >= answerless_faults + never_seen
    assert ledger["status"].unique().to_list() == ["ok"] and not ledger["cache_hit"].any()
    assert set(ledger["asset"].unique()) == {"samples"}
    assert ledger["cost_usd"].sum() > 0

    # Warm rerun: no network call at all, same answers, one cache-hit row per call.
    before = server.stats().total_requests
    again = engine.complete_many(requests)
    assert server.stats().total_requests == before
    assert [r.text for r in again] == [r.text for r in results] and all(r.cache_hit for r in again)
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == 2 * len(requests) and int(ledger["cache_hit"].sum()) == len(requests)
    summary = engine.summary()
    assert (summary.calls, summary.cache_hits, summary.failed) == (600, 300, 0)


def test_rate_limit_headers_steer_the_engine_below_the_limit(make_server, make_engine):
    server = make_server(rate_limit_rps=100)
    # Configured far above the server: the x-ratelimit-limit-requests header brings it down.
    engine = make_engine(server, limits=LimitsConfig(max_in_flight=16, initial_requests_per_minute=60 * 80))
    results = engine.complete_many(sample_requests(40))  # 240 calls, ~2.5 s at 95/s
    assert all(r.ok for r in results)
    assert server.stats().rate_limited <= 5
    gate = next(iter(engine._gates.values()))
    assert gate.requests_per_minute == 6000


def test_duplicate_requests_in_one_run_are_sent_once(make_server, make_engine):
    server = make_server()
    request = ChatRequest.user("gpt-4o", "same", temperature=0)
    results = make_engine(server).complete_many([request, request, request])
    assert server.stats().chat_requests == 1
    assert len({r.text for r in results}) == 1 and len(results) == 3


def test_logprobs_come_through_intact_and_survive_the_cache(make_server, make_engine):
    judged = {"0": -4.0, "50": -0.0123456789012345, "100": -1.5e-9, "75": -3.25}

    def judge(body, index):
        top = sorted(judged.items(), key=lambda kv: -kv[1])
        return FakeChoice(content="100", logprobs=[FakeTokenLogprob("100", judged["100"], top)], finish_reason="length")

    server = make_server(chat_handler=judge)
    engine = make_engine(server)
    requests = [
        ChatRequest.user(
            "gpt-4o-2024-08-06",
            f"Rate answer {i} from 0 to 100.",
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=4,
        )
        for i in range(20)
    ]
    cold = engine.complete_many(requests)
    warm = engine.complete_many(requests)
    for result in cold + warm:
        assert result.text == "100"
        assert result.first_token_top_logprobs() == judged  # exact floats
        assert [t for t, _ in result.logprobs[0].top_logprobs] == ["100", "50", "75", "0"]
    assert all(r.cache_hit for r in warm)


def test_default_server_logprobs_are_plausible(make_server, make_engine):
    server = make_server()
    result = make_engine(server).complete(ChatRequest.user("gpt-4o", "Say something.", logprobs=True, top_logprobs=20))
    assert result.logprobs and "".join(e.token for e in result.logprobs) == result.text
    for entry in result.logprobs:
        values = [lp for _, lp in entry.top_logprobs]
        assert len(values) == 20 and values == sorted(values, reverse=True) and values[0] == entry.logprob
        assert sum(2.718281828**v for v in values) <= 1.0


def test_retry_exhausted_request_errors_naming_the_request(make_server, make_engine, warehouse):
    server = make_server(fault_rate=1.0, fault_kinds=("500",))
    engine = make_engine(
        server, warehouse=warehouse, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    )
    request = ChatRequest.user("gpt-4o", "doomed", tags={"question_id": "q7"})
    key = engine.key_of(request)
    with pytest.raises(LLMCallsFailed) as info:
        engine.complete_many([request], tags={"asset": "judge"})
    message = str(info.value)
    assert key[:16] in message and "question_id=q7" in message and "asset=judge" in message
    assert "after 3 attempt(s)" in message and "HTTP 500" in message
    assert server.stats().chat_requests == 3
    results = engine.complete_many([request], raise_on_error=False)
    assert not results[0].ok and key[:16] in results[0].error
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger["status"].to_list() == ["error", "error"]


def test_client_errors_are_not_retried(make_server, make_engine):
    def reject(body, index):
        raise ValueError("unsupported parameter")  # the fake server answers 400

    server = make_server(chat_handler=reject)
    result = make_engine(server).complete_many([ChatRequest.user("gpt-4o", "x")], raise_on_error=False)[0]
    assert not result.ok and result.attempts == 1 and "HTTP 400" in result.error
    assert server.stats().chat_requests == 1


def test_api_key_never_reaches_cache_ledger_logs_or_errors(
    make_server, make_engine, warehouse, api_key, cache_path, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    server = make_server(require_api_key=api_key, fault_rate=0.3, seed=3)
    engine = make_engine(server, warehouse=warehouse)
    results = engine.complete_many(sample_requests(5), raise_on_error=False)
    assert all(r.ok for r in results)

    # A wrong key: the server answers 401 echoing a masked key, which must not come through either.
    monkeypatch.setenv("OPENAI_API_KEY", api_key[::-1].replace("sk-", "") + "sk-x")
    server.config.require_api_key = "sk-some-other-key-000000"
    with pytest.raises(LLMCallsFailed) as info:
        engine.complete_many([ChatRequest.user("gpt-4o", "unauthorized")])
    assert "HTTP 401" in str(info.value)
    engine.flush()

    secret_parts = [api_key, api_key[-12:], api_key[::-1].replace("sk-", "")[-12:]]
    files = [cache_path, cache_path.with_name(cache_path.name + "-wal"), warehouse.resolved_path]
    blobs = [p.read_bytes() for p in files if p.exists()]
    texts = [caplog.text, str(info.value), *(r.error or "" for r in results)]
    for part in secret_parts:
        assert all(part.encode() not in blob for blob in blobs), part
        assert all(part not in text for text in texts), part
    assert caplog.records  # the check above saw real log output


def test_attempts_that_time_out_after_the_provider_did_the_work_are_in_the_cost(make_server, make_engine, warehouse):
    """A slow answer past the client timeout is done (billed) at the provider, then asked for
    again: the ledger counts the lost attempt and adds its estimated cost, so cost_usd is an
    upper bound of what the provider billed."""
    server = make_server(fault_rate=0.3, fault_kinds=("slow_answer",), hang_s=1.0, seed=4)  # client timeout 0.5 s
    engine = make_engine(server, warehouse=warehouse)
    requests = ChatRequest.user("gpt-4o", "Tell me about your wishes.", temperature=1.0, max_tokens=20).samples(40)
    results = engine.complete_many(requests)
    assert all(r.ok for r in results)

    stats = server.stats()
    ledger = warehouse.table(LEDGER_TABLE)
    assert stats.unanswered_paid >= 5  # the provider did this much work whose answer never arrived
    assert int(ledger["unconfirmed_attempts"].sum()) == stats.unanswered_paid
    assert engine.summary().as_metadata()["llm_unconfirmed_attempts"] == stats.unanswered_paid
    for row in ledger.iter_rows(named=True):
        delivered = engine.prices.estimate(
            row["model"], row["tokens_in"], row["tokens_out"], endpoint_family=row["endpoint_family"]
        )
        assert row["cost_usd"] == pytest.approx(delivered + row["unconfirmed_cost_usd"])
        # Each lost attempt was the same (deterministic) work as the delivered one.
        assert row["cost_usd"] >= (1 + row["unconfirmed_attempts"]) * delivered
    assert ledger["unconfirmed_cost_usd"].sum() > 0
