"""The bucket mode's running total against a reference model of its rules, over random traces.

The script keeps a running total and subtracts only the buckets that expired since the last
decision; the model recomputes everything from the buckets each time, as the rules say: 64
buckets per window, a bucket counts in full while any of it is in the window, a request fits
when the counted units plus its cost are within the limit, and a refund gives back what is
left of the request's bucket. Every reply (allowed, count, remaining, retry-after, reset-after,
to the microsecond) must agree, through clock steps inside a bucket, across buckets, past a
whole window, and refunds."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from arketic_cache import Limit

from ..helpers import Flavor
from .helpers import T0, FakeClock, limiter, view

BUCKETS = 64


class BucketModel:
    """The rules of one bucket limit, recomputed from scratch for every request."""

    def __init__(self, limit: int, window_us: int) -> None:
        self.limit, self.window = limit, window_us
        self.width = window_us / BUCKETS
        self.buckets: dict[int, int] = {}

    def decide(self, now: int, cost: int) -> tuple[bool, int, int, int, int]:
        first = math.floor((now - self.window) / self.width)
        live = sorted((b, n) for b, n in self.buckets.items() if b >= first and n > 0)
        self.buckets = dict(live)
        count = sum(n for _, n in live)
        if count + cost <= self.limit:
            bucket = math.floor(now / self.width)
            self.buckets[bucket] = self.buckets.get(bucket, 0) + cost
            reset = (bucket + 1) * self.width + self.window - now
            count += cost
            return True, count, self.limit - count, 0, math.ceil(reset)
        over, retry = count + cost - self.limit, 0.0
        for bucket, units in live:
            if over > 0:
                over -= units
                if over <= 0:
                    retry = (bucket + 1) * self.width + self.window - now
        reset = (live[-1][0] + 1) * self.width + self.window - now
        return False, count, max(self.limit - count, 0), math.ceil(retry), math.ceil(reset)

    def refund(self, at: int, amount: int) -> int:
        bucket = math.floor(at / self.width)
        units = self.buckets.get(bucket, 0)
        given = min(units, amount)
        self.buckets[bucket] = units - given
        return given


def steps(rng: random.Random, window: int) -> int:
    """A clock step: none, within a bucket, across a few, or past the whole window."""
    width = window // BUCKETS
    return rng.choice(
        [0, rng.randrange(1, width), rng.randrange(width, 5 * width), window + rng.randrange(width)]
    )


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "with-another-limit"])
@pytest.mark.parametrize("seed", range(6))
def test_running_total_answers_as_the_model(flavor: Flavor, seed: int, alone: bool) -> None:
    """One bucket limit (its lean script), and the same limit beside a second one that never
    binds (the general script): every reply as the model's."""
    rng = random.Random(seed)
    limit = Limit(rng.choice([20, 200, 5000]), rng.choice([6.4, 60, 3.7]), "buckets")
    limits = (limit,) if alone else (limit, Limit(10**9, 3600, "buckets"))
    clock = FakeClock(T0 + rng.randrange(10**6))
    rl = limiter(flavor, clock=clock)
    model = BucketModel(limit.limit, limit.window_us)
    admitted: list[tuple[Any, int]] = []
    for _ in range(300):
        clock.advance(micro=steps(rng, limit.window_us))
        if admitted and rng.random() < 0.1:
            decision, at = admitted.pop(rng.randrange(len(admitted)))
            amount = rng.randint(1, decision.cost)
            assert rl.refund(decision, amount) == model.refund(at, amount)
            continue
        cost = rng.randint(1, max(1, limit.limit // 4))
        decision = rl.check("k", *limits, cost=cost)
        assert view(decision)[:5] == model.decide(clock.now, cost), (seed, clock.now - T0)
        if decision.allowed:
            admitted.append((decision, clock.now))


def test_the_model_itself_never_admits_too_many() -> None:
    """The reference keeps the rule it stands for: at most ``limit`` units in any trailing
    window (so the script, which answers as it does, keeps it too)."""
    rng = random.Random(7)
    window = 6_400_000
    model = BucketModel(10, window)
    now, admitted = T0, []
    for _ in range(2000):
        now += rng.randrange(0, window // 32)
        if model.decide(now, 1)[0]:
            admitted.append(now)
    for i, at in enumerate(admitted):
        inside = [t for t in admitted[: i + 1] if t > at - window]
        assert len(inside) <= 10
    assert len(admitted) > 100  # it did admit: the bound is not met by refusing everything
