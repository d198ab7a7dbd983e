"""Keywords and labels of themes: c-TF-IDF candidates, reranked by the embedding model (MMR).

Candidates are words and phrases of up to three words (``north korea``, ``belt and road``):
a phrase may hold a stop word inside but never starts or ends with one, and no candidate holds
a word of news prose that says nothing about a topic (``said``, ``mr``, ``would``, ``told``…).
Class-based TF-IDF (as in BERTopic) ranks them per theme; the best ``keyword_candidates`` are
then reranked by maximal marginal relevance against the theme's centroid with the same model
that embedded the claims (as KeyBERT does), so the keywords are relevant and not five spellings
of one idea. A word already inside a chosen phrase is not chosen again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.themes.config import ThemeConfig

__all__ = ["NEWS_STOP_WORDS", "ctfidf_keywords", "mmr", "spread", "theme_keywords"]

# Words of reporting and of news prose in general: frequent in every theme, telling of none. Then
# contractions, and the residue news pages leave in scraped text (captions, players, credits).
NEWS_STOP_WORDS = frozenset(
    """
    said says say saying told tell tells telling according added adding asked asks ask
    mr mrs ms dr sir would could should might must may also just like including
    reported reports report reporting reporter reporters news statement statements
    spokesman spokeswoman spokesperson official officials people year years week weeks
    month months day days time times today yesterday tomorrow monday tuesday wednesday
    thursday friday saturday sunday january february march april june july august
    september october november december percent cent per new make made makes making
    going get got gets want wants wanted think thought know known way ways lot lots thing
    things many much one two three four five six seven eight nine ten first second last
    next see seen well good back still even however though although does did doing done
    let lets yes okay ok really actually later look looked looks story stories
    don't didn't doesn't isn't aren't wasn't weren't won't wouldn't can't couldn't
    shouldn't haven't hasn't hadn't i'm i've i'll i'd you're you've we're we've we'll
    they're they've it's that's there's here's what's who's let's he's she's
    caption captions photo photos photograph image images video videos replay watch
    watched click read rest hide getty ap reuters afp contributed copyright
    """.split()
)

_WORD = re.compile(r"(?u)\b[^\W\d_][\w’'-]*[^\W_]\b|\b[^\W\d_]\b")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | NEWS_STOP_WORDS


def _analyzer(stop: frozenset[str]) -> Callable[[str], list[str]]:
    """Words and phrases of up to three words, none starting or ending with a stop word."""

    def analyse(text: str) -> list[str]:
        words = [w.replace("’", "'") for w in _WORD.findall(text.lower())]
        words = [w[:-2] if w.endswith("'s") else w for w in words]  # "russia's" is "russia"
        terms = []
        for n in (1, 2, 3):
            for i in range(len(words) - n + 1):
                gram = words[i : i + n]
                if gram[0] in stop or gram[-1] in stop or len(gram[0]) < 2 or len(gram[-1]) < 2:
                    continue
                if any(w in NEWS_STOP_WORDS for w in gram):
                    continue
                terms.append(" ".join(gram))
        return terms

    return analyse


def spread(members: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` members, evenly spaced in order (deterministic)."""
    if len(members) <= limit:
        return members
    picked: np.ndarray = members[np.linspace(0, len(members) - 1, limit).round().astype(int)]
    return picked


def ctfidf_keywords(class_texts: Sequence[str], top_n: int = 8) -> list[list[str]]:
    """Class-based TF-IDF keywords: one document per class, terms ranked per class.

    Weight of term t in class c: ``tf(t, c) / |c| * log(1 + A / f(t))`` where ``|c|`` is the
    class's term count, ``A`` the mean term count per class and ``f(t)`` the term's frequency
    over all classes (as in BERTopic's c-TF-IDF). A phrase must occur at least twice in its
    class to be a keyword (once is an accident of wording). Ties break alphabetically.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(t.strip() for t in class_texts):
        return [[] for _ in class_texts]
    vectorizer = CountVectorizer(analyzer=_analyzer(_stop_words()), lowercase=False)
    try:
        counts = vectorizer.fit_transform(class_texts).astype(np.float64).tocsr()
    except ValueError:  # only stop words
        return [[] for _ in class_texts]
    terms = vectorizer.get_feature_names_out()
    # Sparse throughout: phrases make the vocabulary large (themes x terms would not fit).
    phrase = np.char.find(terms.astype(str), " ") >= 0
    counts.data[(counts.data < 2) & phrase[counts.indices]] = 0
    counts.eliminate_zeros()
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    avg = counts.sum() / max(1, int((words_per_class > 0).sum()))
    idf = np.log(1 + avg / np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1))
    result: list[list[str]] = []
    for c in range(counts.shape[0]):
        row = counts.getrow(c)
        if not row.nnz:
            result.append([])
            continue
        weights = row.data / words_per_class[c] * idf[row.indices]
        names = terms[row.indices]
        order = np.lexsort((names, -weights))[:top_n]  # ties alphabetically
        result.append([str(names[j]) for j in order if weights[j] > 0])
    return result


def mmr(centroid: np.ndarray, candidates: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: indices of ``top_n`` candidates, relevant and diverse.

    Each step takes the candidate maximising
    ``(1 - diversity) * cos(candidate, centroid) - diversity * max cos(candidate, chosen)``;
    ties go to the earlier (higher c-TF-IDF) candidate.
    """
    if not len(candidates):
        return []
    relevance = candidates @ centroid
    pairwise = candidates @ candidates.T
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(top_n, len(candidates)):
        redundancy = pairwise[:, chosen].max(axis=1)
        value = (1 - diversity) * relevance - diversity * redundancy
        value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))
    return chosen


def theme_keywords(
    class_texts: Sequence[Sequence[str]],
    centroids: Sequence[np.ndarray | None],
    cfg: ThemeConfig,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> list[list[str]]:
    """Keywords of each theme: c-TF-IDF candidates reranked by MMR when ``embed`` is given.

    Args:
        class_texts: Per theme, the claims its keywords are drawn from.
        centroids: Per theme, its unit centroid in embedding space (None: no rerank).
        cfg: ``n_keywords``, ``keyword_candidates`` and ``keyword_diversity``.
        embed: ``embed(texts) -> unit vectors`` (the run's model); None keeps c-TF-IDF order.
    """
    pool = max(cfg.n_keywords, cfg.keyword_candidates if embed is not None else cfg.n_keywords)
    candidates = ctfidf_keywords([" \n ".join(t) for t in class_texts], pool)
    if embed is None:
        return [_drop_covered(c)[: cfg.n_keywords] for c in candidates]
    unique = sorted({term for terms in candidates for term in terms})
    vectors = np.asarray(embed(unique), dtype=np.float32) if unique else np.zeros((0, 0))
    row = {term: i for i, term in enumerate(unique)}
    out = []
    for terms, centroid in zip(candidates, centroids, strict=True):
        if centroid is None or not terms:
            out.append(_drop_covered(terms)[: cfg.n_keywords])
            continue
        terms = _drop_covered(terms)
        order = mmr(centroid, vectors[[row[t] for t in terms]], len(terms), cfg.keyword_diversity)
        picked = [terms[i] for i in order]
        # A word inside a chosen phrase ("korea" beside "north korea") adds nothing.
        whole = [t for t in picked if not any(f" {t} " in f" {o} " for o in picked if o != t)]
        out.append(whole[: cfg.n_keywords])
    return out


def _drop_covered(terms: Sequence[str]) -> list[str]:
    """Terms in order, without a word or phrase that lies inside an earlier-ranked phrase."""
    kept: list[str] = []
    for term in terms:
        padded = f" {term} "
        if not any(padded in f" {k} " for k in kept if " " in k):
            kept.append(term)
    return kept
