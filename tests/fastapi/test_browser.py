"""The example's chat page in a real headless Chromium: a message posted through the API
appears on the page (read from the DOM), and a screenshot of it is saved."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .app_server import AppServer, header, session_cookie
from .browser import Browser

#: Where the run leaves the screenshot (the repository's build/, ignored by git).
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "browser" / "chat-page.png"

# Resolves once the page's EventSource is open (the status badge says "live").
LIVE = """new Promise((resolve) => {
  const badge = document.getElementById("status");
  const done = () => badge.dataset.state === "live" && (resolve(true), true);
  if (!done()) new MutationObserver(done).observe(badge, {attributes: true});
})"""

# Resolves with the texts on the page once one of them is TEXT.
SHOWN = """new Promise((resolve) => {
  const list = document.getElementById("messages");
  const texts = () => [...list.querySelectorAll("li .text")].map((node) => node.textContent);
  const done = () => texts().includes(%s) && (resolve(texts()), true);
  if (!done()) new MutationObserver(done).observe(list, {childList: true, subtree: true});
})"""


def test_a_posted_message_appears_on_the_live_page() -> None:
    text = "Hello from the API <b>not bold</b>"
    with AppServer("memory://browser") as app, Browser() as browser:
        browser.open(f"{app.url}/")
        assert browser.evaluate(LIVE) is True
        visible = browser.evaluate(
            "[...document.forms].filter((form) => form.offsetParent !== null).map((f) => f.id)"
        )
        login = httpx.post(f"{app.url}/login", json={"username": "ada", "password": "arketic"})
        posted = httpx.post(
            f"{app.url}/chat/general/messages",
            json={"text": text},
            headers=header(session_cookie(login)),
        )
        assert posted.status_code == 200
        shown = browser.evaluate(SHOWN % json.dumps(text))
        entry = browser.evaluate(f"document.querySelector('li[data-id=\"{posted.json()['id']}\"]')"
                                 ".querySelector('.user').textContent")  # fmt: skip
        bold = browser.evaluate("document.querySelectorAll('#messages b').length")
        saved = browser.screenshot(SCREENSHOT)
    assert visible == ["login"]  # no session yet: the login form only
    assert shown == [text]
    assert entry == "ada"
    assert bold == 0  # shown as text, never as markup
    assert saved.read_bytes().startswith(b"\x89PNG")
