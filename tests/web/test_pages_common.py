"""What every page shares: HTML errors and security headers."""


def test_a_missing_page_is_an_html_error_with_security_headers(client):
    response = client.get("/admin/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"Not Found" in response.data
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_api_errors_stay_json(client):
    response = client.get("/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_the_error_page_renders_in_chromium_with_its_stylesheet(live_server, page, screenshot):
    response = page.goto(f"{live_server}/admin/no-such-page")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not Found"
    # The stylesheet loaded from our own origin under the CSP: the skip link is off-screen.
    assert page.locator("a.skip").bounding_box()["x"] < 0
    assert screenshot(page, "error-404").exists()
