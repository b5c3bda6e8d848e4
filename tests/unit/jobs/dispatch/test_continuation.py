"""Trimming what a fallback's continuation repeats of the text already sent."""

from __future__ import annotations

import random

import pytest

from jobs.dispatch.continuation import OverlapTrimmer, normalise

SENT = "The quick brown fox jumps over the lazy dog. It was"


def trim(sent: str, deltas: list[str]) -> str:
    trimmer = OverlapTrimmer(sent)
    return "".join(trimmer.feed(delta) for delta in deltas) + trimmer.finish()


@pytest.mark.parametrize(
    ("sent", "deltas", "passed"),
    [
        pytest.param(SENT, [" a sunny", " day."], " a sunny day.", id="no-overlap"),
        pytest.param(SENT, ["lazy dog. It", " was a sunny", " day."], " a sunny day.", id="repeats-the-last-words"),
        pytest.param("First one. Second sentence here.", ["Second sentence here.", " Third."], " Third.",
                     id="exact-repeat-of-the-last-sentence"),
        pytest.param(SENT, [" lazy  dog.\nIt\twas", " a sunny day."], " a sunny day.", id="whitespace-differs"),
        pytest.param("Hi there.", ["Hi there.", " Bye."], " Bye.", id="sent-text-shorter-than-the-window"),
        pytest.param(SENT, ["The quick brown fox jumps over the lazy dog. It was"], "", id="repeats-everything"),
        pytest.param(SENT, ["jumps over the lazy"], "", id="ends-while-only-repeating"),
        pytest.param(SENT, ["the lazy dog. It was a", " sunny day."], " a sunny day.", id="one-delta-overlap-and-more"),
        pytest.param("The quick bro", ["The quick brown fox"], "wn fox", id="sent-text-cut-mid-word"),
        pytest.param(SENT, ["was a sunny day."], "was a sunny day.", id="short-match-is-chance-not-a-repeat"),
        pytest.param(SENT, ["t was"], "t was", id="never-mid-word"),
        pytest.param(SENT, ["lazy dog. It is", " not."], "lazy dog. It is not.", id="diverges-before-the-end"),
        pytest.param("Hello big world ", ["big world and more"], "and more", id="sent-ends-in-space"),
        pytest.param(SENT, [""], "", id="empty"),
        pytest.param("", ["anything"], "anything", id="nothing-sent"),
    ],
)
def test_overlap_trimming(sent: str, deltas: list[str], passed: str) -> None:
    assert trim(sent, deltas) == passed


def test_text_is_held_only_while_it_may_be_a_repeat() -> None:
    trimmer = OverlapTrimmer(SENT)
    assert trimmer.feed("lazy dog.") == ""  # could still be a repeat: held
    assert trimmer.feed(" It was a") == " a"  # now it is known: the repeat goes, the rest passes
    assert trimmer.feed(" sunny") == " sunny"  # and then everything passes at once
    assert trimmer.finish() == ""


def test_new_text_passes_at_once() -> None:
    trimmer = OverlapTrimmer(SENT)
    assert trimmer.feed("Meanwhile") == "Meanwhile"


def test_a_repeat_starting_before_the_window_is_not_recognised() -> None:
    sent = "x" * 300 + " " + "word " * 10
    assert trim(sent, ["x" * 50 + " more"]) == "x" * 50 + " more"


@pytest.mark.parametrize(
    ("text", "normalised", "ends"),
    [("a  b", "a b", [1, 3, 4]), ("a\n\tb ", "a b ", [1, 3, 4, 5]), ("", "", [])],
)
def test_normalise_maps_back_to_the_original(text: str, normalised: str, ends: list[int]) -> None:
    assert normalise(text) == (normalised, ends)


def test_restarts_anywhere_in_the_window_streamed_in_any_pieces_come_out_exactly_once() -> None:
    words = "the quick brown fox jumps over a lazy dog. It was sunny, and then we went home! Why not?".split()
    rng = random.Random(1)
    for _ in range(500):
        full = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
        cut = rng.randint(1, len(full) - 1)  # where the first deployment failed
        restarts = [0] + [i + 1 for i, c in enumerate(full[:cut]) if c == " " and cut - i <= 150]
        restart = rng.choice([r for r in restarts if len(full[r:cut].rstrip()) >= 8 or r == 0] or [0])
        continuation = full[restart:]
        trimmer = OverlapTrimmer(full[:cut])
        pieces, i = [], 0
        while i < len(continuation):
            size = rng.randint(1, 7)
            pieces.append(trimmer.feed(continuation[i : i + size]))
            i += size
        assert full[:cut] + "".join(pieces) + trimmer.finish() == full, (full[:cut], continuation)
