"""keywords."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spread(members: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` members, evenly spaced in order (deterministic)."""
    if len(members) <= limit:
        return members
    picked: np.ndarray = members[np.linspace(0, len(members) - 1, limit).round().astype(int)]
    return picked


def ctfidf_keywords(class_texts: Sequence[str], top_n: int = 8) -> list[list[str]]:
    """Class-based TF-IDF keywords: one document per class, terms ranked per class.

    Weight of term t in class c: ``tf(t, c) / |c| * log(1 + A / f(t))`` where ``|c|`` is the
    class's word count, ``A`` the mean word count per class and ``f(t)`` the term's frequency
    over all classes (as in BERTopic's c-TF-IDF).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(t.strip() for t in class_texts):
        return [[] for _ in class_texts]
    vectorizer = CountVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w’'-]+\b", lowercase=True
    )
    try:
        counts = vectorizer.fit_transform(class_texts).toarray().astype(np.float64)
    except ValueError:  # only stop words
        return [[] for _ in class_texts]
    terms = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, words_per_class, out=np.zeros_like(counts), where=words_per_class > 0)
    avg = counts.sum() / max(1, (words_per_class > 0).sum())
    idf = np.log(1 + avg / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    result = []
    for row in weights:
        order = np.lexsort((terms, -row))  # ties broken alphabetically, for determinism
        result.append([str(terms[j]) for j in order[:top_n] if row[j] > 0])
    return result
