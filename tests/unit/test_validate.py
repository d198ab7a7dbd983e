"""The key checks the blocking asset checks are built from: each must catch what it names."""

import pyarrow as pa

from pipeline import validate


def test_unique_references_and_one_primary_pass_on_sound_tables():
    claims = pa.table({"claim_id": ["a", "b", "c"]})
    themes = pa.table({"theme_id": ["t1", "t2"]})
    claim_themes = pa.table(
        {
            "claim_id": ["a", "a", "b", "c"],
            "theme_id": ["t1", "t2", "t1", "t2"],
            "rank": [1, 2, 1, 1],
        }
    )
    assert validate.check_unique(claims, "claim_id") == []
    assert validate.check_one_primary(claim_themes, claims) == []
    assert validate.check_references(claim_themes, "theme_id", themes, "theme_id", "themes") == []


def test_checks_name_duplicates_missing_primaries_and_dangling_references():
    claims = pa.table({"claim_id": pa.chunked_array([["a", "b"], ["c", "d"]])})
    claim_themes = pa.table(
        {
            "claim_id": ["a", "a", "b", "x"],
            "theme_id": ["t1", "t9", "t1", "t8"],
            "rank": [1, 1, 1, 1],
        }
    )
    themes = pa.table({"theme_id": ["t1"]})
    assert validate.check_unique(claim_themes, "claim_id") == ["1 duplicate claim_id values: 'a'"]
    primary = validate.check_one_primary(claim_themes, claims)
    assert primary[0] == "1 duplicate claim_id values: 'a'"
    assert primary[1] == "2 claims without a rank-1 theme: 'c', 'd'"
    assert validate.check_references(claim_themes, "theme_id", themes, "theme_id", "themes") == [
        "2 theme_id values not in themes: 't8', 't9'"
    ]
    assert validate.check_references(claim_themes, "claim_id", claims, "claim_id", "claims") == [
        "1 claim_id values not in claims: 'x'"
    ]
