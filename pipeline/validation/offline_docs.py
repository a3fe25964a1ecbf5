"""Make a GX Data Docs site usable offline: no CDN CSS/JS, no tracking image.

GX 1.x pages load jQuery, Bootstrap, bootstrap-table (the index table is built by it), font-awesome,
vega, ... from CDNs, and the navbar logo from GX's S3 bucket with `?d=<time>&dataContextId=<id>`
appended (a tracking pixel, shown whatever the analytics setting). After the site is built this
module copies the vendored files of docs_static/ (same versions, licenses in docs_static/licenses)
into <site>/static/vendor/, points every page at them with relative URLs, points the logo at the
site's own static/images/logo-long.png, and drops the external tags that are not needed (vega:
no chart in our suite; bootstrap-dark: cosmetic). Links a reader may click (<a href>) stay.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("docs_static")
VENDOR = "static/vendor"
# CDN file name (last URL path segment) -> vendored file under static/vendor
VENDORED = {
    "jquery-3.7.1.min.js": "jquery.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
    "popper.min.js": "popper.min.js",
    "bootstrap-table.min.js": "bootstrap-table.min.js",
    "bootstrap-table.min.css": "bootstrap-table.min.css",
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "all.min.css": "css/fontawesome.min.css",
}
LOGO = "static/images/"  # GX ships its logos in the site too
_TAG = re.compile(
    r"<(?P<tag>script|link|img)\b(?P<attrs>[^>]*?)\b(?P<attr>src|href)\s*=\s*"
    r"(?P<q>[\"'])(?P<url>(?:https?:)?//[^\"']+)(?P=q)(?P<rest>[^>]*)>(?P<close>\s*</script>)?",
    re.IGNORECASE | re.DOTALL,
)
_SRI = re.compile(r"\s+(integrity|crossorigin)\s*=\s*([\"'])[^\"']*\2", re.IGNORECASE)
EXTERNAL = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def _local(url: str, site_rel: str) -> str | None:
    """Relative URL of the vendored/site copy of url, or None when the tag should be dropped."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if "great-expectations-web-assets" in url:
        return f"{site_rel}{LOGO}{name}"
    if name in VENDORED:
        return f"{site_rel}{VENDOR}/{VENDORED[name]}"
    return None


def rewrite(html: str, site_rel: str) -> tuple[str, list[str]]:
    """(html with every external script/link/img made local or removed, the dropped URLs)."""
    dropped: list[str] = []

    def sub(m: re.Match) -> str:
        local = _local(m["url"], site_rel)
        if local is None:
            dropped.append(m["url"])
            return ""
        tag = f"<{m['tag']}{m['attrs']}{m['attr']}={m['q']}{local}{m['q']}{m['rest']}>"
        return _SRI.sub("", tag) + (m["close"] or "")

    return _TAG.sub(sub, html), dropped


def make_offline(site: Path) -> int:
    """Vendor the assets into site and rewrite every page; returns the number of pages rewritten."""
    shutil.copytree(STATIC, site / VENDOR, dirs_exist_ok=True)
    pages, dropped = 0, set()
    for page in sorted(site.rglob("*.html")):
        rel = os.path.relpath(site, page.parent).replace(os.sep, "/")
        text, gone = rewrite(page.read_text(encoding="utf-8"), "" if rel == "." else rel + "/")
        page.write_text(text, encoding="utf-8")
        dropped.update(gone)
        pages += 1
    if dropped:
        log.debug("Data Docs: dropped external tags %s", sorted(dropped))
    return pages
