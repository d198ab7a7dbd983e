"""Claim matching: each check on short texts, candidates, clusters and ids that last.

The texts are made up for the rule they test; the vectors are built so that the embedding
side is not in question (the real model runs in test_matching_pipeline.py).
"""

import datetime as dt

import numpy as np
import pytest

from pipeline.matching import ClaimIndex, MatchConfig, PreviousMatches, match_claims
from pipeline.matching.candidates import find_candidates
from pipeline.matching.clusters import cluster_claims, new_cluster_id
from pipeline.matching.verify import conflict, extract_facts


def why(a: str, b: str) -> str | None:
    return conflict(extract_facts(a), extract_facts(b))


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        # numbers: the same kind of quantity with incompatible values
        ("The pipeline carries 38 bcm a year.", "The pipeline carries 61 bcm a year.", "quantity"),
        ("The strike killed 12 people.", "The strike killed 21 people.", "quantity"),
        ("Turnout was 54%.", "Turnout was 45 percent.", "quantity"),
        ("They paid $2.3 billion.", "They paid $3.1bn.", "quantity"),
        ("The wall is 8 metres high.", "The wall is 40 feet high.", "quantity"),
        ("Up to 1,000 troops crossed.", "Up to 4,000 troops crossed.", "quantity"),
        ("Exports fell 5% in 2013.", "Exports fell 5% in 2014.", "quantity"),
        # both state figures and share none
        ("The firm employs 75,000 people.", "The firm paid $2 billion to suppliers.", "figures"),
        ("It hit 38 Russian people.", "It has hit 189 Russian individuals.", "figures"),
        # a demonym counts: "57 Canadians" and "63 Canadians" are the same kind
        ("The crash killed 57 Canadians.", "The crash killed 63 Canadians.", "quantity"),
        # negation
        ("Russia signed the gas deal.", "Russia failed to sign the gas deal.", "negation"),
        ("The minister denied the report.", "The minister confirmed the report.", "negation"),
        ("Iran will allow inspectors in.", "Iran will not allow inspectors in.", "negation"),
        ("Kyiv can't export grain.", "Kyiv can export grain.", "negation"),
        ("Moscow decided not to retaliate.", "Moscow decided to retaliate.", "negation"),
        ("Trump upset allies by not restating it.", "Trump restated it.", "negation"),
        ("Reporters were barred from entering.", "Reporters entered.", "negation"),
        ("We have not yet seen a turn.", "We have seen a turn.", "negation"),
        # dates
        ("The limit is passed on June 27.", "The limit is passed on July 27.", "date"),
        ("Rebels took the town on Wednesday.", "On Thursday rebels took a hill.", "date"),
        # actors: both name countries or organisations, none in common
        ("Russia vetoed the resolution.", "China vetoed the resolution.", "actors"),
    ],
)
def test_a_contradicting_detail_refuses_the_pair(a, b, reason):
    assert why(a, b) == reason
    assert why(b, a) == reason


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The sanctions hit 617 companies.", "The sanctions hit more than 600 companies."),
        ("About 300 people were detained.", "Police detained 305 people."),
        ("Nearly 700 flights were cancelled.", "Airlines cancelled 690 flights."),
        ("Iran may keep 300 kilograms of uranium.", "Iran may keep 661 pounds of uranium."),
        ("The ban lasts a week.", "The ban lasts seven days."),
        ("The talks, which did not end, resume on May 3.", "The talks resume May 3."),
        ("Iran can keep no more than 300 kg.", "Iran can keep up to 300 kg."),
        ("Not only Russia but China objected.", "Russia and China objected."),
        ("He did not sign, and never will.", "He did not sign the accord."),
        ("The Boeing 737 was shot down.", "Flight 752 was shot down."),  # names, not figures
        ("A frantic search began.", "Two searches began."),  # "a frantic" counts nothing
        ("Moscow and Beijing signed a deal.", "Russia and China signed a deal."),
        ("Builders added 48,000 jobs in May.", "Builders added 48,000 new workers in May."),
        ("On Monday, Iran denied the attacks.", "Iran denied the attacks, saying Monday."),
        ("Unemployment fell to 7.7%.", "Unemployment fell to 7.72 percent."),  # rounding
        ("Doping marred the 2014 Sochi Games.", "Doping marred the Games in 2014."),
        ("Russia vetoed the resolution.", "The resolution was vetoed."),
        # negation that does not deny the claim's assertion
        ("The attack would not have happened without his approval.", "He approved the attack."),
        ("Freedoms not found on the mainland are guaranteed.", "Freedoms are guaranteed."),
        ("Trump may end some, all or none of the perks.", "Trump may end the perks."),
        ("Flynn lied when he said that he did not ask.", "Flynn lied about what he asked."),
        ("Reporters could not enter the town.", "Reporters were barred from entering the town."),
        # a negation only in a subordinate clause of one: the shared statement may be that one
        ("Because we have not seen a turn, we act.", "We have not seen a turn."),
        # years in an event's name and numbers in words are not the claim's figures
        ("Russia was banned over the 2014 Sochi Games.", "Russia was banned from the 2018 Games."),
        ("Under one country, two systems, it keeps freedoms.", "It keeps freedoms for 50 years."),
    ],
)
def test_what_a_reader_accepts_as_the_same_is_not_refused(a, b):
    assert why(a, b) is None
    assert why(b, a) is None


def index_of(texts, docs, vectors, families=None, days=None, outlets=None):
    """A ClaimIndex of these claims: docs[i] is claim i's document number."""
    n_docs = max(docs) + 1
    v = np.asarray(vectors, np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    day0 = dt.date(2024, 3, 1)
    dates = [day0 + dt.timedelta(days=(days or [0] * n_docs)[d]) for d in range(n_docs)]
    return ClaimIndex(
        claim_ids=[f"c{i:02d}" for i in range(len(texts))],
        texts=list(texts),
        doc_pos=np.array(docs, np.int64),
        vectors=v,
        doc_ids=[f"d{d}" for d in range(n_docs)],
        doc_family=np.array(families or list(range(n_docs)), np.int64),
        doc_day=np.array([(d - dt.date(1970, 1, 1)).days for d in dates], np.int32),
        doc_date=dates,
        doc_outlet=outlets or [f"outlet {d}" for d in range(n_docs)],
    )


def near(base, noise, seed):
    rng = np.random.default_rng(seed)
    return base + noise * rng.standard_normal(base.shape)


E = np.eye(8)
CONFIG = MatchConfig()


def test_pairs_within_one_document_or_family_are_never_matched():
    texts = ["Russia signed the gas deal."] * 4
    # claims 0 and 1 share a document, 2 is in a near duplicate of it, 3 in another article
    index = index_of(texts, [0, 0, 1, 2], [E[0]] * 4, families=[0, 0, 2])
    result = match_claims(index, CONFIG)
    assert {(i, j) for i, j, _, _ in result.matches} == {(0, 3), (1, 3), (2, 3)}
    assert len(set(result.cluster_of.values())) == 1


def test_a_claim_too_short_to_state_anything_is_never_matched():
    texts = ["Wales has moved on.", "Wales has moved on.", "Wales beat Italy in Rome on Saturday."]
    texts.append("Wales beat Italy in Rome on Saturday.")
    result = match_claims(index_of(texts, [0, 1, 2, 3], [E[0], E[0], E[1], E[1]]), CONFIG)
    assert {(i, j) for i, j, _, _ in result.matches} == {(2, 3)}
    assert result.stats["refused_short"] == 1
    loose = match_claims(
        index_of(texts, [0, 1, 2, 3], [E[0], E[0], E[1], E[1]]),
        CONFIG.model_copy(update={"min_content_words": 0}),
    )
    assert {(i, j) for i, j, _, _ in loose.matches} == {(0, 1), (2, 3)}


def test_a_chain_of_matches_does_not_join_contradicting_claims():
    texts = [
        "The pipeline will carry 38 bcm a year, officials said.",
        "Officials said the pipeline will carry gas to China.",
        "The pipeline will carry 61 bcm a year, officials said.",
    ]
    vectors = [E[0], near(E[0], 0.02, 1), near(E[0], 0.02, 2)]
    result = match_claims(index_of(texts, [0, 1, 2], vectors), CONFIG)
    assert result.stats["refused_quantity"] == 1
    assert result.cluster_of.get(0) != result.cluster_of.get(2)


def test_average_linkage_keeps_a_topic_from_becoming_one_cluster():
    # a~a' and b~b' are tight pairs; m is close to both, a and b are unrelated.
    texts = [
        "The ministers agreed a pipeline route.",
        "The pipeline route was agreed by the ministers.",
        "Officials warmly welcomed the pipeline talks.",
        "Gas prices were settled at the summit.",
        "The summit settled gas prices.",
    ]
    m = E[0] + E[1]
    vectors = [E[0], near(E[0], 0.01, 1), m, E[1], near(E[1], 0.01, 2)]
    index = index_of(texts, [0, 1, 2, 3, 4], vectors)
    config = CONFIG.model_copy(update={"match_threshold": 0.65})
    loose = match_claims(index, config.model_copy(update={"cluster_threshold": 0.0}))
    assert len(loose.cluster_of) == 5 and len(set(loose.cluster_of.values())) == 1
    strict = match_claims(index, config).cluster_of
    assert strict[0] == strict[1] == strict[2] != strict[3] == strict[4]


def test_articles_far_apart_in_time_are_not_compared_directly():
    texts = ["Russia signed the gas deal."] * 2
    index = index_of(texts, [0, 1], [E[0], E[0]], days=[0, 90])
    assert match_claims(index, CONFIG).matches == []
    unlimited = CONFIG.model_copy(update={"max_days_apart": None})
    assert len(match_claims(index, unlimited).matches) == 1


def test_cluster_ids_last_and_new_claims_join_old_clusters():
    texts = [
        "Russia signed the gas deal with China.",
        "Russia and China signed the gas deal.",
        "Iran will store 300 kg of uranium.",
        "Iran may store 300 kg of enriched uranium.",
    ]
    vectors = [E[0], near(E[0], 0.01, 1), E[2], near(E[2], 0.01, 2)]
    night1 = match_claims(index_of(texts, [0, 1, 2, 3], vectors), CONFIG)
    ids1 = {c: night1.cluster_of[i] for i, c in enumerate(["c00", "c01", "c02", "c03"])}
    assert ids1["c00"] == ids1["c01"] == new_cluster_id(["c00", "c01"])
    assert ids1["c02"] == ids1["c03"] != ids1["c00"]

    # Night 2: a third outlet states the gas claim; c00's article was deleted.
    texts2 = [*texts, "China and Russia have signed the gas deal."]
    vectors2 = [*vectors, near(E[0], 0.01, 3)]
    index2 = index_of(texts2, [0, 1, 2, 3, 4], vectors2)
    index2.texts[0] = texts[0]
    previous = PreviousMatches(
        seen=frozenset(ids1),
        clusters=ids1,
        matches=[(index2.claim_ids[i], index2.claim_ids[j], s, c) for i, j, s, c in night1.matches],
    )
    night2 = match_claims(index2, CONFIG, previous)
    assert night2.stats["new_claims"] == 1
    assert night2.cluster_of[4] == ids1["c00"]  # joins the published cluster, keeps its id
    assert night2.cluster_of[2] == ids1["c02"]
    # From scratch, the same clusters get the same ids (derived from the smallest member).
    assert match_claims(index2, CONFIG).cluster_of == night2.cluster_of


def test_published_clusters_are_never_merged():
    joined = cluster_claims(["a", "b", "c", "d"], [(0.9, 1, 2)], lambda g, h: True,
                            {0: "cc_1", 1: "cc_1", 2: "cc_2", 3: "cc_2"})  # fmt: skip
    assert joined == {0: "cc_1", 1: "cc_1", 2: "cc_2", 3: "cc_2"}


def test_candidates_are_the_same_exact_or_approximate():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 16)).astype(np.float32)
    vectors[200:] = vectors[:200] + 0.05 * rng.standard_normal((200, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    family = np.arange(400)
    day = np.zeros(400, np.int32)
    queries = np.arange(400)
    kwargs = {"top_k": 3, "floor": 0.9, "max_days_apart": None, "block_bytes": 4096}
    exact = find_candidates(vectors, queries, family, day, exact_max=10_000, **kwargs)
    approx = find_candidates(vectors, queries, family, day, exact_max=10, **kwargs)
    pairs = set(zip(exact.left.tolist(), exact.right.tolist(), strict=True))
    assert {(i, i + 200) for i in range(200)} <= pairs
    found = set(zip(approx.left.tolist(), approx.right.tolist(), strict=True))
    assert len(found & pairs) >= 0.98 * len(pairs)


def test_the_canonical_claim_of_a_pair_is_the_smaller_id_whatever_the_float_noise():
    # Both claims of a pair are equally close to their mean; a norm off by float noise (as
    # another backend's unit vectors are, by ~1e-7) must not choose between them.
    from pipeline.matching.match import MatchResult
    from pipeline.matching.tables import cluster_table

    texts = ["Russia signed the deal.", "Russia has signed the deal."]
    for scale in (1 - 5e-7, 1.0, 1 + 5e-7):
        index = index_of(texts, [0, 1], [near(E[0], 0.05, 3), near(E[0], 0.05, 4)])
        index.vectors[1] *= np.float32(scale)
        table = cluster_table(index, MatchResult([(0, 1, 0.9, 0.9)], {0: "cc_x", 1: "cc_x"}))
        assert set(table.column("canonical_claim_id").to_pylist()) == {"c00"}, scale
