from __future__ import annotations

from servestatic.storage import CompressedManifestStaticFilesStorage


class ManifestStorageWithFallback(CompressedManifestStaticFilesStorage):
    """Hashed, compressed names after collectstatic; the plain name before it.

    Before collectstatic (tests, a fresh checkout) ServeStatic's finders serve the source
    files, so the page still works instead of failing on a missing manifest entry.
    """

    manifest_strict = False
    # The chat page's ES modules import one another by relative path: rewrite those imports to the
    # hashed names too, so a module and everything it imports change names together.
    support_js_module_import_aggregation = True

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            return name
