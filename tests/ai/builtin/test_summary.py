from __future__ import annotations

import pytest

from agentqueue.ai.builtin import Summary, summarize
from agentqueue.ai.builtin.summary import split_sentences

TRANSIT = [
    "The city council approved a new budget for public transit on Tuesday.",
    "The budget adds forty electric buses to the transit fleet and extends evening service on"
    " six routes.",
    "Council members said the transit budget was the largest in a decade.",
    "The meeting began with a moment of silence for a former mayor.",
    "Riders have complained for years about crowded buses and long waits on evening routes.",
    "The new electric buses should arrive next spring, and evening service begins in June.",
    "Local bakeries reported strong sales of pumpkin bread this autumn.",
]
NEWS = " ".join(TRANSIT)
ASIDES = {TRANSIT[3], TRANSIT[6]}


def assert_verbatim_in_order(summary: Summary, text: str) -> None:
    cursor = 0
    for sentence in summary.sentences:
        found = text.find(sentence, cursor)
        assert found >= 0, f"not verbatim or out of order: {sentence!r}"
        cursor = found + len(sentence)
    assert summary.summary == " ".join(summary.sentences)
    assert summary.summary_length == len(summary.summary)
    assert summary.original_length == len(text)


def test_splits_the_news_paragraph_into_its_seven_sentences() -> None:
    assert split_sentences(NEWS) == TRANSIT


def test_default_summary_picks_the_two_central_sentences() -> None:
    summary = summarize(NEWS)  # ratio 0.3 of 7 sentences -> 2
    assert summary.sentences == [TRANSIT[1], TRANSIT[2]]
    assert summary.summary == f"{TRANSIT[1]} {TRANSIT[2]}"
    assert summary.summary_length < summary.original_length
    assert_verbatim_in_order(summary, NEWS)


def test_more_sentences_are_kept_in_original_order() -> None:
    summary = summarize(NEWS, max_sentences=3)
    assert summary.sentences == [TRANSIT[0], TRANSIT[1], TRANSIT[2]]
    assert_verbatim_in_order(summary, NEWS)


def test_off_topic_asides_are_the_last_to_be_chosen() -> None:
    summary = summarize(NEWS, max_sentences=5)
    assert len(summary.sentences) == 5
    assert not ASIDES & set(summary.sentences)
    assert_verbatim_in_order(summary, NEWS)


def test_ratio_sets_the_length() -> None:
    assert len(summarize(NEWS, ratio=0.6).sentences) == 4  # round(4.2)
    assert len(summarize(NEWS, ratio=1.0).sentences) == 7


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    text = (
        "Dr. Alvarez moved to the U.S. in 2019 and joined the lab at 3.5 times her old salary. "
        "The lab studies coral reefs. Coral reefs lose colour when the sea warms. "
        "The lab's coral reef survey covers 40 reefs."
    )
    sentences = split_sentences(text)
    assert sentences[0] == (
        "Dr. Alvarez moved to the U.S. in 2019 and joined the lab at 3.5 times her old salary."
    )
    assert sentences[1:] == [
        "The lab studies coral reefs.",
        "Coral reefs lose colour when the sea warms.",
        "The lab's coral reef survey covers 40 reefs.",
    ]


def test_hard_wrapped_sentences_stay_whole_with_their_line_breaks() -> None:
    text = (
        "Solar panel prices fell again this year,\nas factories expanded. Cheaper solar panels\n"
        "brought more rooftop installations. My neighbour painted his fence. Installers say solar"
        " demand keeps rising."
    )
    assert split_sentences(text) == [
        "Solar panel prices fell again this year,\nas factories expanded.",
        "Cheaper solar panels\nbrought more rooftop installations.",
        "My neighbour painted his fence.",
        "Installers say solar demand keeps rising.",
    ]
    summary = summarize(text, max_sentences=2)
    assert "My neighbour painted his fence." not in summary.sentences
    assert_verbatim_in_order(summary, text)


def test_a_blank_line_ends_a_sentence() -> None:
    text = "Quarterly results\n\nRevenue rose 12 percent.\r\n\r\nCosts were flat."
    assert split_sentences(text) == [
        "Quarterly results",
        "Revenue rose 12 percent.",
        "Costs were flat.",
    ]


@pytest.mark.parametrize(
    "text",
    ["The server restarted at noon.", "The server restarted at noon. Nobody noticed."],
)
def test_one_or_two_sentences_are_their_own_summary(text: str) -> None:
    summary = summarize(text)
    assert summary.summary == text
    assert summary.summary_length == summary.original_length == len(text)


def test_surrounding_whitespace_is_not_part_of_the_summary() -> None:
    summary = summarize("  \n The server restarted at noon.\n\n")
    assert summary.sentences == ["The server restarted at noon."]
    assert summary.original_length == len("  \n The server restarted at noon.\n\n")


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_text_is_rejected_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="empty text"):
        summarize(text)


def test_bad_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_sentences"):
        summarize(NEWS, max_sentences=0)
    with pytest.raises(ValueError, match="ratio"):
        summarize(NEWS, ratio=0)
    with pytest.raises(ValueError, match="ratio"):
        summarize(NEWS, ratio=1.5)


def test_same_input_same_summary() -> None:
    assert summarize(NEWS, max_sentences=3) == summarize(NEWS, max_sentences=3)


def test_long_text_is_split_in_pieces_without_losing_or_moving_a_sentence() -> None:
    sentences = []
    for day in range(1, 121):
        sentences.append(f"On day {day} the Dr. Reyes survey counted {day * 3} herons at the lake.")
        sentences.append("Volunteers logged the weather, the water level and any nesting pairs.")
    text = " ".join(sentences)
    assert len(text) > 10 * 1_500
    assert split_sentences(text) == sentences
    summary = summarize(text, max_sentences=5)
    assert len(summary.sentences) == 5
    assert_verbatim_in_order(summary, text)
