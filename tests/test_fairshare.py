"""The broker's work slots, shared fairly among agencies (R-SEC-3; pure logic, leis.rules.fairshare)."""

from __future__ import annotations

import asyncio

import pytest

from leis.rules.fairshare import FairShare, Slot, Ticket

LIMIT = 100


async def _settle() -> None:
    """Let handed-over slots reach their waiters (a few turns of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _queued(share: FairShare, key: str, limit: int = LIMIT) -> asyncio.Task[Ticket]:
    task = asyncio.create_task(share.acquire(key, limit, None))
    await asyncio.sleep(0)  # let it reach the queue
    return task


def test_a_free_slot_is_taken_at_once_and_given_back() -> None:
    async def scenario() -> None:
        share = FairShare(slots=2, total=10)
        ticket = await share.acquire("a", LIMIT, None)
        assert ticket == Ticket(over_budget=False, slot=True)
        assert share.within_budget("a") == 1
        share.release("a", ticket)
        assert share.within_budget("a") == 0

    asyncio.run(scenario())


def test_a_free_slot_goes_to_the_agency_holding_fewest_not_to_the_longest_queue() -> None:
    async def scenario() -> None:
        share = FairShare(slots=2, total=1000)
        held = [await share.acquire("flood", LIMIT, None) for _ in range(2)]
        flood = [await _queued(share, "flood") for _ in range(20)]
        bystander = await _queued(share, "bystander")
        assert share.waiting() == 21
        share.release("flood", held[0])
        await _settle()
        assert bystander.done(), "the bystander waited behind the flood's queue"
        assert not any(task.done() for task in flood)
        share.release("flood", held[1])
        await _settle()
        assert sum(task.done() for task in flood) == 1  # then the flood, one by one
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        assert share.waiting() == 0

    asyncio.run(scenario())


def test_agencies_waiting_alike_take_turns() -> None:
    async def scenario() -> None:
        share = FairShare(slots=1, total=1000)
        first = await share.acquire("x", LIMIT, None)
        order: list[str] = []

        async def call(key: str) -> None:
            ticket = await share.acquire(key, LIMIT, None)
            order.append(key)
            await asyncio.sleep(0)
            share.release(key, ticket)

        tasks = [asyncio.create_task(call(key)) for key in ("a", "a", "a", "b", "b", "b")]
        await asyncio.sleep(0)
        share.release("x", first)
        await asyncio.gather(*tasks)
        assert order == ["a", "b", "a", "b", "a", "b"]

    asyncio.run(scenario())


def test_calls_beyond_the_agency_bound_are_marked_and_do_not_count() -> None:
    async def scenario() -> None:
        share = FairShare(slots=1, total=1000)
        tickets = [await share.acquire("a", 2, None)]
        waiting = [await _queued(share, "a", limit=2) for _ in range(3)]
        assert share.within_budget("a") == 2  # the first two; the others are over
        share.release("a", tickets[0])
        for task in waiting:
            ticket = await task
            tickets.append(ticket)
            share.release("a", ticket)
        assert [t.over_budget for t in tickets] == [False, False, True, True]
        assert share.within_budget("a") == 0
        # Room again: a new call is within the bound.
        assert not (await share.acquire("a", 2, None)).over_budget

    asyncio.run(scenario())


def test_calls_beyond_the_broker_bound_are_marked() -> None:
    async def scenario() -> None:
        share = FairShare(slots=4, total=3)
        tickets = [await share.acquire(key, LIMIT, None) for key in ("a", "b", "c", "d")]
        assert [t.over_total for t in tickets] == [False, False, False, True]
        assert not tickets[3].over_budget
        for key, ticket in zip("abcd", tickets, strict=True):
            share.release(key, ticket)
        assert not (await share.acquire("d", LIMIT, None)).over_total

    asyncio.run(scenario())


def test_a_wait_that_runs_out_holds_no_slot_and_counts_until_released() -> None:
    async def scenario() -> None:
        share = FairShare(slots=1, total=10)
        held = await share.acquire("a", LIMIT, None)
        late = await share.acquire("b", LIMIT, 0.01)
        assert late == Ticket(over_budget=False, slot=False)
        assert share.within_budget("b") == 1
        share.release("b", late)
        assert share.within_budget("b") == 0
        share.release("a", held)
        assert (await share.acquire("b", LIMIT, 0.01)).slot

    asyncio.run(scenario())


def test_a_cancelled_wait_leaves_the_queue_and_passes_on_a_slot_handed_over() -> None:
    async def scenario() -> None:
        share = FairShare(slots=1, total=10)
        held = await share.acquire("a", LIMIT, None)
        gone = await _queued(share, "b")
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert share.within_budget("b") == 0
        # Handed a slot in the same turn as it is cancelled: the slot goes on to the next.
        handed = await _queued(share, "c")
        after = await _queued(share, "d")
        share.release("a", held)
        handed.cancel()
        await asyncio.gather(handed, return_exceptions=True)
        ticket = await asyncio.wait_for(after, 1)
        assert ticket.slot
        assert share.within_budget("c") == 0

    asyncio.run(scenario())


def test_a_slot_is_released_once() -> None:
    async def scenario() -> None:
        share = FairShare(slots=1, total=10)
        slot = Slot(share, "a", await share.acquire("a", LIMIT, None))
        waiting = await _queued(share, "b")
        slot.release()
        slot.release()
        assert (await waiting).slot
        assert share.within_budget("a") == 0

    asyncio.run(scenario())


def test_an_agency_beyond_its_bound_comes_after_the_others_and_at_its_pace() -> None:
    async def scenario() -> None:
        now = [0.0]
        share = FairShare(slots=1, total=1000, pace_seconds=1.0, clock=lambda: now[0])
        held = await share.acquire("flood", 2, None)
        flood = [await _queued(share, "flood", limit=2) for _ in range(3)]  # the last two over
        bystander = [await _queued(share, "bystander") for _ in range(2)]
        share.release("flood", held)
        await _settle()
        assert bystander[0].done(), "an agency within its bound goes first"
        share.release("bystander", bystander[0].result())
        await _settle()
        assert bystander[1].done()
        share.release("bystander", bystander[1].result())
        await _settle()
        assert flood[0].done()  # the flood's turn, now that nobody else waits
        share.release("flood", flood[0].result())
        await _settle()
        assert not flood[1].done(), "a flood beyond its bound is served at its pace"
        now[0] += 0.5  # pace / limit: one call every half second
        await asyncio.sleep(0.6)  # the timer's turn is due in real time too
        await _settle()
        assert flood[1].done()
        share.release("flood", flood[1].result())
        now[0] += 0.5
        assert (await asyncio.wait_for(flood[2], 2)).over_budget

    asyncio.run(scenario())


def test_an_agency_beyond_its_bound_is_paced_even_with_slots_free() -> None:
    async def scenario() -> None:
        now = [0.0]
        share = FairShare(slots=4, total=1000, pace_seconds=0.2, clock=lambda: now[0])
        assert (await share.acquire("flood", 1, None)).slot
        second = await share.acquire("flood", 1, None)  # over its bound, first turn due: at once
        assert second.over_budget
        assert second.slot
        third = await _queued(share, "flood", limit=1)
        await _settle()
        assert not third.done(), "the next turn is a pace away, free slots or not"
        now[0] += 0.2
        assert (await asyncio.wait_for(third, 2)).slot

    asyncio.run(scenario())


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairShare(slots=0, total=1)
    with pytest.raises(ValueError, match="positive"):
        FairShare(slots=1, total=1, pace_seconds=0)
