"""Claims: statements only, exact offsets, conservative compound splits, attributes, ids."""

import pytest

from pipeline.claims import (
    detect_attribution,
    extract_claims,
    find_entities,
    is_hedged,
    is_quote,
    load_gazetteer,
    split_compound,
)


def claim_texts(text):
    return [c["text"] for c in extract_claims("d1", text).claims]


def test_headings_attribution_and_questions_are_segments_not_claims():
    # They are kept (nothing of the text is lost) but are not checkable statements.
    text = (
        "Strained Ties with Traditional Allies\n\n"
        "Russia faces isolation. Will it last?\n"
        "Source: Official Russian Ministry of Foreign Affairs website."
    )
    result = extract_claims("d1", text)
    assert [c["text"] for c in result.claims] == ["Russia faces isolation."]
    kinds = [(s["kind"], s["text"]) for s in result.segments]
    assert kinds == [
        ("heading", "Strained Ties with Traditional Allies"),
        ("statement", "Russia faces isolation."),
        ("question", "Will it last?"),
        ("attribution", "Source: Official Russian Ministry of Foreign Affairs website."),
    ]


def test_offsets_index_the_text_exactly():
    # Analysts cite claims by span; a split claim must still index the document text exactly.
    text = "  Pipelines ensure supplies, while Beijing secures resources for its economy.\n"
    for row in extract_claims("d1", text).claims:
        assert text[row["char_start"] : row["char_end"]] == row["text"]


@pytest.mark.parametrize(
    "sentence, parts",
    [
        # ", while" + new subject and verb: two independent statements.
        (
            "Pipelines and long-term contracts ensure steady supplies, while Beijing secures "
            "essential resources for its rapidly growing economy.",
            2,
        ),
        # "; " joins two statements.
        ("Russia sells oil to China; India buys its weapons from Moscow.", 2),
        # ", and" + new subject.
        ("Exports rose sharply last year, and the government expects further growth.", 2),
        # Sentence-initial "While" is subordination, not a compound.
        ("While both leaders assert the cooperation is defensive, analysts disagree.", 1),
        # ", and" joining a list, not clauses: never split.
        ("They discussed trade, energy, and security at length in Beijing.", 1),
        # "not only ... but also" shares one subject: kept whole.
        ("This serves not only to boost trade but also to enhance influence abroad.", 1),
        # A verbless fragment is never cut off as a claim.
        ("Prices rose sharply, while unchanged.", 1),
    ],
)
def test_split_compound(sentence, parts):
    # One claim = one checkable statement; each case says why it splits or not.
    spans = split_compound(sentence, 0, len(sentence))
    assert len(spans) == parts, [sentence[a:b] for a, b in spans]
    for a, b in spans:
        assert sentence[a:b] == sentence[a:b].strip(" ,;")


def test_claim_ids_are_stable_and_positional():
    # Ids join tables across nights: same text at the same place in the same doc, same id.
    text = "Russia sells oil. Russia sells oil."
    first = extract_claims("d1", text).claims
    again = extract_claims("d1", text).claims
    assert [c["claim_id"] for c in first] == [c["claim_id"] for c in again]
    # Same text at another place is another claim.
    assert first[0]["claim_id"] != first[1]["claim_id"]
    assert extract_claims("d2", text).claims[0]["claim_id"] != first[0]["claim_id"]


def test_hedging():
    # Analysts separate assertions from speculation.
    assert is_hedged("The era of Western dominance may be fading.")
    assert is_hedged("Support now appears to be waning.")
    assert is_hedged("The deal is likely to be signed.")
    assert not is_hedged("Russia redirected its exports to Asia.")


@pytest.mark.parametrize(
    "text, who",
    [
        ("Analysts suggest it serves as a warning to the West.", "Analysts"),
        ("Observers note that Xi and Putin's meetings highlighted a convergence.", "Observers"),
        (
            "The Foreign Ministry spokesman said the talks were constructive.",
            "the Foreign Ministry spokesman",
        ),
        ("According to the Kremlin, the talks went well.", "the Kremlin"),
        ('"We are ready," said Sergei Lavrov.', "Sergei Lavrov"),
        ("Russia redirected its exports to Asia.", None),
        ("It said nothing.", None),
    ],
)
def test_attribution(text, who):
    # Who says a claim matters as much as the claim; pronouns are never speakers.
    assert detect_attribution(text) == who


def test_quotes():
    # Direct quotations are the speaker's words; scare quotes around one word are not.
    assert is_quote('"We will not back down," the minister said.')
    assert is_quote("He called it “a strategic partnership without limits”.")
    assert not is_quote('The so-called "axis" grew.')


def test_entities_are_normalised():
    # Counting "Russia" must include Moscow, the Kremlin and Putin.
    gaz = load_gazetteer()
    text = "Moscow and the Kremlin courted Beijing, while Xi met NATO and the IMF in the U.S."
    assert find_entities(text, gaz) == ["China", "IMF", "NATO", "Russia", "United States"]
    # pycountry supplies countries the curated list does not name.
    assert find_entities("Talks in Mongolia and Peru.", gaz) == ["Mongolia", "Peru"]
    # Words inside other words do not match.
    assert find_entities("Chinaware and Russianness.", gaz) == []


def test_claim_rows_carry_attributes():
    # The attributes reach the claims table, not just the helper functions.
    (row,) = extract_claims("d1", "Analysts say Moscow may lose influence.").claims
    assert row["is_hedged"] and row["attributed_to"] == "Analysts"
    assert row["entities"] == ["Russia"] and row["sentence_id"] and row["paragraph"] == 0
