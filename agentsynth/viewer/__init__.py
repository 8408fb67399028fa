"""``agentsynth view``: the store in a browser.

An aiohttp application (:mod:`.app`: routes, error pages) over server-rendered HTML
(:mod:`.html`: the one escape function; :mod:`.layout`, :mod:`.pages`, :mod:`.report_pages`:
the pages; :mod:`.svg`: interval plots), reading the store one read-only connection per request
(:mod:`.db`) with the SQL of each page (:mod:`.queries`, :mod:`.reports`; filters, sort and
keyset pages in :mod:`.filters`), behind the access rules and security headers of
:mod:`.security`. ``static/`` holds its JavaScript and CSS (package data).

The viewer sits beside the analysis layer: it imports the store and the analysis, and only the
CLI imports it.
"""

from .app import ViewerConfig, create_app

__all__ = ["ViewerConfig", "create_app"]
