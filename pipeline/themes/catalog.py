"""catalog."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.themes.base import UNASSIGNED


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
class ThemeVectors:
    """Embedded catalog: per theme, its seed phrase vectors and description vector."""

    keys: list[str]
    seeds: list[np.ndarray]
    descriptions: np.ndarray  # (n_themes, dim)

    @classmethod
    def from_catalog(cls, catalog: ThemeCatalog, embed: Any) -> ThemeVectors:
        """Embed the catalog with ``embed(texts) -> (n, dim)`` normalised vectors."""
        keys = sorted(catalog.themes)
        # The label is itself a short seed phrase ("Energy axis"), often used verbatim in text.
        phrases = [[catalog.themes[k].label, *catalog.themes[k].seed_phrases] for k in keys]
        descriptions = [catalog.themes[k].description for k in keys]
        # One call for the whole catalog: each call is a cache lookup.
        vectors = np.asarray(embed([p for ps in phrases for p in ps] + descriptions), np.float32)
        bounds = np.cumsum([0] + [len(ps) for ps in phrases])
        seeds = [vectors[bounds[i] : bounds[i + 1]] for i in range(len(keys))]
        desc = vectors[bounds[-1] :]
        return cls(keys, seeds, desc)
