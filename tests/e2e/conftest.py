import os
from pathlib import Path

import pytest

PASSWORD = "correct-horse-42"  # UserFactory's


@pytest.fixture
def shots(request):
    """Saves a PNG of the page when E2E_SCREENSHOTS names a folder (for looking at pages)."""
    folder = os.environ.get("E2E_SCREENSHOTS")

    def take(page, name: str, **kw):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{request.node.name}-{name}.png"), **kw)

    return take


def sign_in(page, live_server, user, password: str = PASSWORD):
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
