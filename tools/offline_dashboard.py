"""Make an ``asv publish`` dashboard work without internet access.

asv's HTML loads jQuery, flot, bootstrap and a few small plugins from CDNs. On a
machine that reaches only package registries, fetch the same versions with npm
and point the pages at local copies:

    mkdir -p /tmp/jsdeps && cd /tmp/jsdeps && npm pack jquery@3.3.1 flot@0.8.3 \\
        flot-orderbars@1.0.0 stupid-table-plugin blueimp-md5@2.19.0 bootstrap@3.1.1 \\
        && for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
    python tools/offline_dashboard.py .asv/html /tmp/jsdeps

It copies the files into ``<html>/vendor/`` and rewrites every page's CDN
addresses; run it again after each ``asv publish``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

# CDN address asv 0.6 uses -> file inside an unpacked npm package (glob from the packages dir).
SOURCES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-*/package/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js":
        "flot-*/package/jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        "flot-*/package/jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "flot-*/package/jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "flot-*/package/jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        "flot-orderbars-*/package/js/jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        "stupid-table-plugin-*/package/stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        "blueimp-md5-*/package/js/md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        "bootstrap-*/package/dist/js/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        "bootstrap-*/package/dist/css/bootstrap.min.css",
}  # fmt: skip


def vendor(html_dir: Path, packages: Path) -> None:
    target = html_dir / "vendor"
    target.mkdir(exist_ok=True)
    local = {}
    for url, pattern in SOURCES.items():
        matches = sorted(packages.glob(pattern))
        if not matches:
            sys.exit(f"missing {pattern} under {packages} (see this script's docstring)")
        name = url.rsplit("/", 1)[1]
        shutil.copy(matches[-1], target / name)
        local[url] = f"vendor/{name}"
    for page in html_dir.glob("*.html"):
        text = page.read_text()
        for url, path in local.items():
            text = text.replace(url, path)
        # The CDN tags carry subresource-integrity hashes of the CDN's own builds
        # (minified by cdnjs); the npm files differ byte for byte, so drop them.
        text = re.sub(r'\s+integrity="[^"]*"', "", text)
        page.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tools/offline_dashboard.py HTML_DIR NPM_PACKAGES_DIR")
    vendor(Path(sys.argv[1]), Path(sys.argv[2]))
