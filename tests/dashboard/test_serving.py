"""The dashboard's static files as a browser meets them: types, caching, CSP, and nothing else served."""

from __future__ import annotations

import httpx
import pytest

from heliport.dashboard import CSP
from tests.harness import Gateway


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/dashboard/", "text/html; charset=utf-8", b'<script type="module" src="app.js">'),
        ("/dashboard/index.html", "text/html; charset=utf-8", b"<title>heliport dashboard</title>"),
        ("/dashboard/app.js", "text/javascript; charset=utf-8", b"function el("),
        ("/dashboard/app.css", "text/css; charset=utf-8", b"prefers-color-scheme: dark"),
        ("/dashboard/favicon.svg", "image/svg+xml", b"<svg"),
    ],
)
def test_page_and_assets_are_served_with_their_type_and_a_strict_csp(
    gateway: Gateway, path: str, content_type: str, marker: bytes
) -> None:
    response = httpx.get(gateway.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert marker in response.content
    assert response.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == ("no-cache" if path.endswith(("/", ".html")) else
                                                 "public, max-age=300, must-revalidate")  # fmt: skip
    assert int(response.headers["content-length"]) == len(response.content)


def test_bare_path_redirects_to_the_page(gateway: Gateway) -> None:
    response = httpx.get(gateway.url + "/dashboard")
    assert response.status_code == 308 and response.headers["location"] == "/dashboard/"
    assert httpx.get(gateway.url + "/dashboard", follow_redirects=True).url.path == "/dashboard/"


def test_etag_revalidation_answers_not_modified(gateway: Gateway) -> None:
    first = httpx.get(gateway.url + "/dashboard/app.js")
    again = httpx.get(gateway.url + "/dashboard/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.head(gateway.url + "/dashboard/app.js").headers["content-length"] == first.headers["content-length"]


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/nope.js",
        "/dashboard/static/app.js",
        "/dashboard/../app.py",
        "/dashboard/%2e%2e/__init__.py",
        "/dashboard/..%2f__init__.py",
        "/dashboard/%2e%2e%2f%2e%2e%2fapp.py",
        "/dashboard/__init__.py",
        "/dashboard/app.js/",
        "/dashboardx",
    ],
)
def test_unknown_assets_and_traversal_are_refused(gateway: Gateway, path: str) -> None:
    # raw paths, so no client normalises the dots away before heliport sees them
    with httpx.Client(base_url=gateway.url) as client:
        request = client.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        response = client.send(request)
    assert response.status_code == 404
    assert b"import" not in response.content and b"def " not in response.content


def test_wrong_method_is_refused(gateway: Gateway) -> None:
    response = httpx.post(gateway.url + "/dashboard/app.js")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


def test_page_holds_no_inline_script_or_style_and_loads_nothing_from_elsewhere(gateway: Gateway) -> None:
    page = httpx.get(gateway.url + "/dashboard/").text
    script = httpx.get(gateway.url + "/dashboard/app.js").text
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace("http-equiv", "")
    # data is written as text: the script never assigns HTML
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script
    assert "http://" not in script and "https://" not in script
