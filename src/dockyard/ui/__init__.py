"""The web UI: pages rendered by the server (Jinja2), with small plain JavaScript for the live parts.

Everything lives under ``/ui/`` (as Nuvla's own UI does); ``GET /`` sends a browser there. The rest of the
URL space keeps Nuvla's behaviour (``/api/...``, and a 302 to the cloud entry point for anything else).

Pages read their data through the same domain functions as the API (:mod:`dockyard.resources.crud`), as
the caller of the session cookie, in a worker thread (:meth:`.pages.Pages.page`). Writes go through the
JSON API with ``fetch`` (``static/dockyard.js``: ``Dockyard.api``) so that a page shows the API's own
message at the field or place it concerns; login, logout and the group switch are plain forms handled here
(:mod:`.session`), so they work without JavaScript.

Adding a page (say "Things" at ``/ui/things``):

1. A module ``ui/things.py`` with ``def routes(pages: Pages) -> list[Route]``. Each handler is usually::

       async def things(request):
           def read(ctx: Ctx) -> dict:              # runs in a worker thread, as the logged-in user
               return {"found": crud.search(ctx, ctx.services.types["thing"], SearchParams())}
           return await pages.page(request, "things.html", read, nav="things")

   ``pages.page`` sends an anonymous visitor to the login page, renders the template with the header's
   data (``caller``), and turns a domain error into an error page in plain words.
2. List the module in :data:`.routes.PAGES` (replacing a placeholder of the same name, if any).
3. A template ``ui/templates/things.html`` that ``{% extends "base.html" %}`` and fills ``{% block main %}``
   (templates are flat: only ``templates/*`` is package data). Every control gets a ``<label>``; errors go
   in an element with ``role="alert"`` next to what they concern. JavaScript goes in ``ui/static/things.js``,
   loaded with ``{% block scripts %}``; CSS classes come from ``static/dockyard.css``.
4. A test ``tests/ui/test_things.py`` using the fixtures of ``tests/ui/conftest.py`` (``browser``,
   ``page``, ``login``, ``new_user``) that drives the page as a user would and asserts what they see, and a
   screenshot of it at both sizes with ``screenshot(page, "things")``.
"""

from __future__ import annotations

from .routes import routes

__all__ = ["routes"]
