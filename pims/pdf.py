"""Printed documents (lab reports, invoices) rendered with WeasyPrint from Django templates.

Rendering never touches the network: the URL fetcher serves the project's own static files
and refuses every other URL, so a template (or a value a user typed into one) naming a
remote stylesheet, font or image cannot make the server call out, and a PDF renders the
same on a machine with no network at all.
"""

import mimetypes
from contextlib import nullcontext
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils._os import safe_join

# Relative URLs in a PDF template resolve against this address; it names no real host and
# only the fetcher below ever reads it.
BASE_URL = "https://pims-documents.invalid/"
_BASE = urlsplit(BASE_URL)


class RefusedURL(ValueError):
    """A document asked for something outside the project's static files."""


def _static_name(url: str) -> str | None:
    """The static file name a URL points at, or None when it is not a static URL.

    ``{% static %}`` gives a path ("/static/x.css", read against BASE_URL) or, when
    STATIC_URL names a host, that full URL: the file is read from disk either way.
    """
    static_url = settings.STATIC_URL
    if urlsplit(static_url).netloc and url.startswith(static_url):
        return unquote(urlsplit(url).path[len(urlsplit(static_url).path) :])
    parts = urlsplit(url)
    prefix = "/" + urlsplit(static_url).path.strip("/") + "/"
    if (parts.scheme, parts.netloc) == (_BASE.scheme, _BASE.netloc) and parts.path.startswith(
        prefix
    ):
        return unquote(parts.path[len(prefix) :])
    return None


def static_file_path(name: str) -> Path | None:
    """The file behind a static name: the collected copy (hashed names included) first,
    then the app and project folders the finders search. None when there is none."""
    name = name.lstrip("/")
    if not name or ".." in Path(name).parts:
        return None
    if settings.STATIC_ROOT:
        try:
            path = Path(safe_join(str(settings.STATIC_ROOT), name))
        except SuspiciousFileOperation:  # outside STATIC_ROOT
            return None
        if path.is_file():
            return path
    found = finders.find(name)
    return Path(found) if found else None


def fetch_static(url: str) -> tuple[bytes, str]:
    """The bytes and MIME type behind a static URL; RefusedURL for anything else."""
    name = _static_name(url)
    if name is None:
        raise RefusedURL(f"Documents fetch nothing from outside the project: {url}")
    path = static_file_path(name)
    if path is None:
        raise RefusedURL(f"No static file for {url}")
    return path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@cache
def _fetcher_class():
    # WeasyPrint is imported when the first document is made: importing it loads its
    # stylesheets and logs, which every web and worker process would pay for at start-up.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyURLFetcher(URLFetcher):
        """Serves ``{% static %}`` URLs from disk and data: URLs; refuses everything else."""

        def fetch(self, url, headers=None):
            if urlsplit(url).scheme == "data":
                # Inline data never leaves the process; the base class decodes it.
                return super().fetch(url, headers)
            body, mime_type = fetch_static(url)
            return URLFetcherResponse(url, body, headers={"Content-Type": mime_type})

    return StaticOnlyURLFetcher


def static_only_url_fetcher():
    """A WeasyPrint URL fetcher that serves the project's static files and nothing else."""
    return _fetcher_class()()


def render_pdf(template_name: str, context: dict, *, time_zone=None) -> bytes:
    """The PDF of a template. ``time_zone`` (a department's) sets how times print."""
    with timezone.override(time_zone) if time_zone else nullcontext():
        html = render_to_string(template_name, context)
    from weasyprint import HTML

    document = HTML(string=html, base_url=BASE_URL, url_fetcher=static_only_url_fetcher())
    return document.write_pdf()
