"""The shared PDF renderer fetches the project's static files and nothing else."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pims.pdf import BASE_URL, RefusedURL, fetch_static, render_pdf, static_only_url_fetcher
from tests.documents.pdftools import pdf_text


@pytest.fixture
def listening_server():
    """A local web server that counts the requests it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def test_static_files_are_served_from_disk():
    body, mime_type = fetch_static(BASE_URL + "static/pims/pdf.css")
    assert b"@page" in body and mime_type == "text/css"
    response = static_only_url_fetcher().fetch(BASE_URL + "static/pims/pdf.css")
    assert b"@page" in response.read()


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/style.css",
        "http://127.0.0.1:8000/static/pims/pdf.css",
        "file:///etc/passwd",
        "ftp://example.org/x",
        BASE_URL + "media/secret.pdf",
        BASE_URL + "static/../pims/settings.py",
        BASE_URL + "static/%2e%2e/pims/settings.py",
        BASE_URL + "static/pims/no-such-file.css",
    ],
)
def test_everything_else_is_refused(url):
    with pytest.raises(RefusedURL):
        static_only_url_fetcher().fetch(url)


def test_data_urls_stay_inline():
    response = static_only_url_fetcher().fetch("data:text/plain;base64,aGVsbG8=")
    assert response.read() == b"hello"


def test_rendering_never_calls_the_network(listening_server, tmp_path, settings):
    base, hits = listening_server
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "probe.html").write_text(
        "{% load static %}<html><head>"
        f'<link rel="stylesheet" href="{base}/remote.css">'
        '<link rel="stylesheet" href="{% static \'pims/pdf.css\' %}">'
        f"<style>@import url('{base}/imported.css'); @font-face {{ font-family: X; "
        f"src: url('{base}/font.woff'); }}</style></head>"
        f'<body><img src="{base}/logo.png" alt="logo"><p>Glucose 17.9 mmol/L</p></body></html>'
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates", *settings.TEMPLATES[0]["DIRS"]]}
    ]
    pdf = render_pdf("probe.html", {})
    assert hits == []
    text = pdf_text(pdf, tmp_path)
    assert "Glucose 17.9 mmol/L" in text
    assert "Page 1 of 1" in text  # pdf.css (a static file) was applied


def test_the_listening_server_would_have_seen_a_plain_fetch(listening_server):
    """The probe above can fail: WeasyPrint's own fetcher does reach the server."""
    from weasyprint.urls import URLFetcher

    base, hits = listening_server
    URLFetcher().fetch(f"{base}/remote.css").read()
    assert hits == ["/remote.css"]
