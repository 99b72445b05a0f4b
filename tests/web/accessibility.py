"""Accessibility checks for the browser tests: axe-core injected into a Playwright
page, the sideways-scroll check, the two viewports, screenshots and keyboard walks.

axe-core is the npm package pinned in `tests/web/axe/package.json` (and its
`package-lock.json`), installed into `tests/web/axe/node_modules/` by `INSTALL_AXE`
(`npm ci --prefix tests/web/axe`): `.ci/run` runs it, and the first test that needs
axe runs it too when the file is missing, so the README's test command works on a
fresh checkout. Without npm, or with the registry out of reach, that test fails and
says the command to run.

Viewports (Playwright `viewport=` dicts), by name:

- `DESKTOP` 1280 x 900 and `PHONE` 390 x 844; `VIEWPORTS = {"desktop": ..., "phone": ...}`.

Functions:

- `axe_source() -> str`: the text of axe.min.js (installing it first if missing).
- `axe_run(page, **options) -> dict`: injects axe into the page (bypassing the
  pages' Content-Security-Policy, which allows no inline script) and returns the
  full `axe.run` result for the document; `options` go to `axe.run`.
- `axe_serious(page) -> list[dict]`: the violations whose impact is `serious` or
  `critical`, each axe's own dict (`id`, `impact`, `help`, `nodes`, ...).
- `describe(violations) -> str`: the violations one per line with their first
  targets, for an assertion message.
- `sideways_overflow(page) -> int`: how many CSS pixels the document is wider than
  the window (`document.documentElement.scrollWidth - innerWidth`), 0 when it does
  not scroll sideways; `scrolls_sideways(page) -> bool` is that `> 0`.
- `save_screenshot(page, name, viewport) -> Path`: a full-page screenshot written to
  `test-output/screenshots/<name>-<viewport>.png` (`viewport` a `VIEWPORTS` key).
- `check_page(page, name, viewport)`: the three above at once: writes the
  screenshot, then asserts no serious or critical axe violation and no sideways
  scroll, naming the page and viewport on failure.
- `focused(page) -> dict`: the focused element (`tag`, `id`, `name` its accessible
  text, `role`).
- `tab_to(page, name, *, limit=60, backwards=False) -> dict`: presses Tab
  (Shift+Tab) until the focused element's text or label contains `name`; fails
  after `limit` presses. Returns `focused(page)`.

Fixtures in `tests/web/conftest.py`: `page_at(viewport)` opens a page in a new
browser context of that viewport (a `VIEWPORTS` key), closed after the test.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = ROOT / "tests" / "web" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_AXE = "npm ci --prefix tests/web/axe --no-audit --no-fund"
SCREENSHOTS = ROOT / "test-output" / "screenshots"

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
SERIOUS = ("serious", "critical")

_source: str | None = None


def _install() -> None:
    if not shutil.which("npm"):
        pytest.fail(f"{AXE_JS} is missing and npm is not installed: install npm, run {INSTALL_AXE}")
    # One install when several test processes start at once.
    with open(AXE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if AXE_JS.is_file():
            return
        result = subprocess.run(
            INSTALL_AXE.split(), cwd=ROOT, capture_output=True, text=True, timeout=300
        )
    if result.returncode != 0 or not AXE_JS.is_file():
        pytest.fail(
            f"{AXE_JS} is missing and `{INSTALL_AXE}` failed (run it from the project "
            f"folder):\n{result.stderr[-2000:]}"
        )


def axe_source() -> str:
    global _source
    if _source is None:
        if not AXE_JS.is_file():
            _install()
        _source = AXE_JS.read_text(encoding="utf-8")
    return _source


def axe_run(page: Any, **options: Any) -> dict[str, Any]:
    # evaluate() runs through the DevTools protocol, outside the page's CSP.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(f"(() => {{ {axe_source()}\n }})()")
        page.evaluate("() => window.axe !== undefined") or pytest.fail("axe did not load")
    result: dict[str, Any] = page.evaluate(
        "options => window.axe.run(document, options)", options or {}
    )
    return result


def axe_serious(page: Any) -> list[dict[str, Any]]:
    return [v for v in axe_run(page)["violations"] if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}")
    return "\n".join(lines)


def sideways_overflow(page: Any) -> int:
    width: int = page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )
    return width


def scrolls_sideways(page: Any) -> bool:
    return sideways_overflow(page) > 0


def save_screenshot(page: Any, name: str, viewport: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{viewport}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page: Any, name: str, viewport: str) -> None:
    path = save_screenshot(page, name, viewport)
    assert path.is_file()
    violations = axe_serious(page)
    assert not violations, f"{name} at {viewport}:\n{describe(violations)}"
    overflow = sideways_overflow(page)
    assert overflow == 0, f"{name} at {viewport} scrolls sideways by {overflow}px"


FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {tag: "body", id: "", name: "", role: ""};
  const labels = el.labels ? Array.from(el.labels).map(l => l.innerText).join(" ") : "";
  const name = [el.getAttribute("aria-label") || "", labels, el.innerText || "",
                el.value && el.type === "submit" ? el.value : ""].join(" ").trim();
  return {tag: el.tagName.toLowerCase(), id: el.id || "", name: name.replace(/\\s+/g, " "),
          role: el.getAttribute("role") || ""};
}"""


def focused(page: Any) -> dict[str, str]:
    element: dict[str, str] = page.evaluate(FOCUSED)
    return element


def tab_to(page: Any, name: str, *, limit: int = 60, backwards: bool = False) -> dict[str, str]:
    key = "Shift+Tab" if backwards else "Tab"
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        element = focused(page)
        if name.lower() in element["name"].lower():
            return element
        seen.append(element["name"][:40] or element["tag"])
    pytest.fail(f"{name!r} not reached by {key} in {limit} presses; reached: {seen}")
