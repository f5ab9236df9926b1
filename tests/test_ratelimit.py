"""Adaptive concurrency: a service that refuses calls beyond its own limit with 429 gets fewer
calls at a time, and every call eventually goes through (none fails for being rate-limited)."""

import threading
import time

import pytest

from sinkin_pipeline import ratelimit
from sinkin_pipeline.providers import TransientError
from sinkin_pipeline.ratelimit import AdaptiveLimit, Throttled


class LimitedService:
    """Answers after ``latency`` seconds; more than ``capacity`` calls at once get HTTP 429."""

    def __init__(self, capacity, latency=0.01):
        self.capacity = capacity
        self.latency = latency
        self.active = 0
        self.most = 0
        self.refused = 0
        self.served = 0
        self.lock = threading.Lock()

    def inference(self, payload, init_image=None):
        with self.lock:
            if self.active >= self.capacity:
                self.refused += 1
                raise TransientError("HTTP 429 Too Many Requests", status=429)
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(self.latency)
        with self.lock:
            self.active -= 1
            self.served += 1
        return {"inf_id": payload["n"]}


def hammer(provider, calls, threads):
    results, errors = [], []

    def worker(start):
        for n in range(start, calls, threads):
            try:
                results.append(provider.inference({"n": n})["inf_id"])
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(e)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(results), errors


def test_calls_beyond_the_service_limit_wait_and_none_fails(monkeypatch):
    monkeypatch.setattr(ratelimit, "RETRY_PAUSE", (0.001, 0.005))
    service = LimitedService(capacity=3)
    limit = AdaptiveLimit(12)
    results, errors = hammer(Throttled(service, limit), calls=120, threads=12)
    assert errors == [] and results == list(range(120)) and service.served == 120
    assert service.refused > 0 and limit.refusals == service.refused
    assert limit.lowest <= 3 and limit.limit <= 12
    # after the first refusals the limit stays near the service's: most calls are not refused
    assert service.refused < 60


def test_other_errors_pass_through_and_the_limit_is_kept():
    class Broken:
        name = "broken"

        def inference(self, payload, init_image=None):
            raise TransientError("HTTP 503", status=503)

    provider = Throttled(Broken(), AdaptiveLimit(4))
    with pytest.raises(TransientError, match="503"):
        provider.inference({})
    assert provider.rate_limit.limit == 4 and provider.rate_limit.in_flight == 0
    assert provider.name == "broken"  # every other attribute is the provider's


def test_a_service_that_keeps_refusing_fails_the_call_after_the_give_up_time(monkeypatch):
    monkeypatch.setattr(ratelimit, "GIVE_UP_AFTER", 0.05)
    monkeypatch.setattr(ratelimit, "RETRY_PAUSE", (0.01, 0.01))
    service = LimitedService(capacity=0)
    with pytest.raises(TransientError, match="429"):
        Throttled(service, AdaptiveLimit(2)).inference({"n": 1})
    assert service.served == 0 and service.refused >= 2


def test_work_at_concurrency_above_the_services_limit_fails_no_job_and_pays_once(
    api_env, db_path, make_run, monkeypatch
):
    from sinkin_pipeline import jobs
    from sinkin_pipeline.worker import work

    monkeypatch.setattr(ratelimit, "RETRY_PAUSE", (0.005, 0.02))
    monkeypatch.setattr(jobs, "MAX_ATTEMPTS", 1)  # any 429 reaching the job's own retries would fail it
    api_env.latency = 0.05
    api_env.max_concurrent = 2
    make_run(
        db_path,
        {
            "provider": "sinkin",
            "model_id": "4zdwGOB",
            "prompt": "a fox",
            "width": 128,
            "height": 128,
            "steps": 5,
            "num_images": 1,
            "seed": list(range(12)),
        },
    )
    summary = work(db_path, concurrency=6)
    assert (summary.succeeded, summary.failed, summary.images) == (12, 0, 12)
    refused = [c for c in api_env.calls if c["endpoint"] == "inference" and c["outcome"] == "429"]
    assert refused and api_env.charged("inference") == 12


def test_run_next_waits_out_429s_and_pays_once(api_env, db_path, make_run, monkeypatch):
    from sinkin_pipeline import jobs
    from sinkin_pipeline.worker import run_next

    monkeypatch.setattr(ratelimit, "RETRY_PAUSE", (0.005, 0.01))
    monkeypatch.setattr(jobs, "MAX_ATTEMPTS", 1)  # any 429 reaching the job's own retries would fail it
    make_run(
        db_path,
        {
            "provider": "sinkin",
            "model_id": "4zdwGOB",
            "prompt": "a fox",
            "width": 128,
            "height": 128,
            "steps": 5,
        },
    )
    api_env.inject("inference", "429", times=8)  # more than the job's own retries would take
    job = run_next(db_path)
    assert (job["status"], job["images"], job["error"]) == ("succeeded", 1, None)
    refused = [c for c in api_env.calls if c["endpoint"] == "inference" and c["outcome"] == "429"]
    assert len(refused) == 8 and api_env.charged("inference") == 1
