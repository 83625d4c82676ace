"""Catalogue lookup that finds ``zh_CN`` for Babel's ``zh_Hans_CN``.

Babel 2.18 parses ``zh_CN`` as ``zh_Hans_CN``; Python's gettext then looks for
``zh_Hans_CN/`` and ``zh/`` but never ``zh_CN/``, so the Chinese catalogue would
silently not load (seen in ckan/ckan#4413).
"""

from __future__ import annotations

from babel import support
from flask_babel import Domain, get_locale


class CatalogueDomain(Domain):
    """Flask-Babel's domain, also trying ``<language>_<territory>`` folders."""

    def get_translations(self):
        locale = get_locale()
        if locale is None:
            return support.NullTranslations()
        key = (str(locale), self.domain[0])
        if key not in self.cache:
            names = [str(locale)]
            if locale.territory:
                names.insert(0, f"{locale.language}_{locale.territory}")
            translations = support.Translations()
            for dirname in self.translation_directories:
                catalog = support.Translations.load(dirname, names, self.domain[0])
                translations.merge(catalog)
                if hasattr(catalog, "plural"):
                    translations.plural = catalog.plural
            self.cache[key] = translations
        return self.cache[key]
