"""The theme catalog (YAML) and its embedded form."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.themes.base import UNASSIGNED, unit


class NamedTheme(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    seed_phrases: list[str] = Field(min_length=1)


class ThemeCatalog(BaseModel):
    """The theme catalog file: ``version`` and a mapping of theme key to :class:`NamedTheme`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    themes: dict[str, NamedTheme] = Field(min_length=1)
    background: list[str] = Field(default_factory=list)

    @field_validator("themes")
    @classmethod
    def _keys_are_ids(cls, themes: dict[str, NamedTheme]) -> dict[str, NamedTheme]:
        for key in themes:
            if not key.replace("_", "").isalnum() or not key.islower():
                raise ValueError(f"theme key {key!r} must be lower_snake_case")
            if key == UNASSIGNED or key.startswith("discovered_"):
                raise ValueError(f"theme key {key!r} is reserved")
        return themes


def load_catalog(path: str | Path | None = None) -> ThemeCatalog:
    """Load and validate a theme catalog (the packaged one when ``path`` is None).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        pydantic.ValidationError: If the file does not match the catalog schema.
    """
    if path is None:
        raw = resources.files("pipeline").joinpath("data/theme_catalog.yaml").read_text("utf-8")
    else:
        raw = Path(path).read_text(encoding="utf-8")
    return ThemeCatalog.model_validate(yaml.safe_load(raw))


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled statement: a positive example of ``theme_id``, or a negative one (``not:``).

    ``theme_id`` may be ``unassigned``: a statement that belongs to no named theme, used as
    background.
    """

    text: str
    theme_id: str
    positive: bool = True


@dataclass(frozen=True, slots=True)
class ThemeVectors:
    """Embedded catalog (and analyst examples): what named-theme scores are computed from.

    Per theme, ``seeds`` holds the label, the seed phrases and the positive examples, with their
    texts in ``seed_texts`` and where each comes from in ``seed_kinds`` (``label``, ``seed``,
    ``feedback``); ``negatives`` the ``not:`` examples. ``background`` holds the catalog's
    background statements and the examples labelled ``unassigned``.
    """

    keys: list[str]
    seeds: list[np.ndarray]
    descriptions: np.ndarray  # (n_themes, dim)
    seed_texts: list[list[str]] = field(default_factory=list)
    seed_kinds: list[list[str]] = field(default_factory=list)
    background: np.ndarray | None = None  # (n_background, dim)
    negatives: list[np.ndarray] = field(default_factory=list)

    def centroid(self, k: int) -> np.ndarray:
        """Unit mean of theme ``k``'s seeds."""
        return unit(self.seeds[k].mean(axis=0))

    @classmethod
    def from_catalog(
        cls,
        catalog: ThemeCatalog,
        embed: Callable[[list[str]], np.ndarray],
        examples: Sequence[Example] = (),
    ) -> ThemeVectors:
        """Embed the catalog and ``examples`` with ``embed(texts) -> (n, dim)`` unit vectors.

        Raises:
            ValueError: If an example names a theme that is not in the catalog.
        """
        keys = sorted(catalog.themes)
        for ex in examples:
            if ex.theme_id not in catalog.themes and ex.theme_id != UNASSIGNED:
                raise ValueError(f"example for unknown theme {ex.theme_id!r}: {ex.text[:80]!r}")
        # The label is itself a short seed phrase ("Energy axis"), often used verbatim in text.
        texts = [
            [catalog.themes[k].label, *catalog.themes[k].seed_phrases]
            + [e.text for e in examples if e.positive and e.theme_id == k]
            for k in keys
        ]
        kinds = [
            ["label"]
            + ["seed"] * len(catalog.themes[k].seed_phrases)
            + ["feedback"] * (len(t) - 1 - len(catalog.themes[k].seed_phrases))
            for k, t in zip(keys, texts, strict=True)
        ]
        negatives = [[e.text for e in examples if not e.positive and e.theme_id == k] for k in keys]
        background = list(catalog.background) + [
            e.text for e in examples if e.positive and e.theme_id == UNASSIGNED
        ]
        descriptions = [catalog.themes[k].description for k in keys]
        groups = [*texts, *negatives, background, descriptions]
        # One call for the whole catalog: each call is a cache lookup.
        flat = [t for group in groups for t in group]
        vectors = np.asarray(embed(flat), np.float32) if flat else np.zeros((0, 0), np.float32)
        bounds = np.cumsum([0] + [len(g) for g in groups])
        parts = [vectors[bounds[i] : bounds[i + 1]] for i in range(len(groups))]
        n = len(keys)
        return cls(
            keys,
            parts[:n],
            parts[-1],
            texts,
            kinds,
            parts[-2] if background else None,
            parts[n : 2 * n],
        )
