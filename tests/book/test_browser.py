"""Every page of the built book, opened in headless Chromium: math typeset, images loaded,
internal links resolve, no console errors; no WCAG 2.1 A or AA violation that axe-core finds,
in the light and in the dark colour mode; and every dropdown and launch button reachable with
the Tab key.

The test serves ``_build/html`` on 127.0.0.1 from a thread. Nothing needs the network: the
server rewrites the MathJax CDN URL in the served HTML to a local copy of MathJax 3
(``npm install mathjax@3`` into ``_build/mathjax``), and axe-core is injected from a local copy
too (``npm install axe-core@AXE_VERSION`` into ``_build/axe``); both are installed here when
missing. One screenshot per page is saved under ``_build/screenshots/`` (a test artifact, not
committed).

Prerequisites: ``make book`` (the built site) and the ``browser`` feature of
:mod:`tests.support.system`: Debian's ``chromium``, ``chromium-driver`` and ``npm`` (which
``make test`` installs where it can). When one is missing the page tests skip with the reason
(``tests/conftest.py``), except with ``REQUIRE_BROWSER=1`` (the book's workflow) or
``REQUIRE_SYSTEM_PACKAGES=1`` (``.ci/run``), where they fail instead; so do a missing built
site and a failed ``npm install`` (offline). axe-core and MathJax are installed
locally the same way.
"""

from __future__ import annotations

import functools
import html
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.support.browser import chromium, unavailable

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
MATHJAX_PREFIX = ROOT / "_build" / "mathjax"
MATHJAX_DIR = MATHJAX_PREFIX / "node_modules" / "mathjax"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CDN_MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3/"
LOCAL_MATHJAX = "/__mathjax__/"
AXE_VERSION = "4.14.1"
AXE_PREFIX = ROOT / "_build" / "axe"
AXE_JS = AXE_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
# The audit: every rule of WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = [pytest.mark.xdist_group("browser")]


def _site_pages() -> list[str]:
    """Paths (relative to the site root) of every HTML page of the built book."""
    if not (SITE / "index.html").is_file():
        return []
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if "_static" not in p.parts and "_sources" not in p.parts)


# --- static analysis of the built pages: ids and links ------------------------------------

class _Collector(HTMLParser):
    """Collects element ids/names, link targets and image sources of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8", errors="replace"))
    return collector


def _broken_links(page: str, site: Path = SITE) -> list[str]:
    """Local hrefs of ``page`` whose file or #anchor does not exist in the built site."""
    base = f"http://127.0.0.1/{page}"
    broken = []
    for href in _parse(site / page).hrefs:
        href = html.unescape(href)
        target = urlsplit(urljoin(base, href))
        if target.scheme not in ("http", "https") or target.hostname != "127.0.0.1":
            continue                                  # external (not followed) or mailto: etc.
        path = site / unquote(target.path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(f"{href} (no file {path.relative_to(site)})")
            continue
        if target.fragment and path.suffix == ".html":
            if unquote(target.fragment) not in _parse(path).ids:
                broken.append(f"{href} (no anchor #{target.fragment})")
    return broken


# --- the local server ---------------------------------------------------------------------

class _Handler(SimpleHTTPRequestHandler):
    """Serves the site; maps /__mathjax__/ to the local MathJax and rewrites the CDN URL."""

    site: Path = SITE
    missing: list[str] = []
    served: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(self.site), **kwargs)

    def log_message(self, format, *args):      # noqa: A002 - keep pytest output quiet
        pass

    def translate_path(self, path):
        clean = unquote(urlsplit(path).path)
        if clean.startswith(LOCAL_MATHJAX):
            return str(MATHJAX_DIR / clean[len(LOCAL_MATHJAX):])
        return super().translate_path(path)

    def send_error(self, code, message=None, explain=None):
        if code == 404:
            self.missing.append(self.path)
        super().send_error(code, message, explain)

    def do_GET(self):
        self.served.append(self.path)
        if urlsplit(self.path).path == "/favicon.ico" and not (self.site / "favicon.ico").exists():
            # the browser asks for it on its own; the site defines none
            self.send_response(204)
            self.end_headers()
            return
        local = Path(self.translate_path(self.path))
        if local.suffix == ".html" and local.is_file():
            body = local.read_text(encoding="utf-8").replace(CDN_MATHJAX, LOCAL_MATHJAX)
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()


def _npm_install(prefix: Path, package: str, wanted: Path) -> None:
    """``npm install package`` into ``prefix`` unless ``wanted`` (a file it provides) exists."""
    if wanted.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        unavailable(f"{wanted} is missing and npm is not installed")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                           package], capture_output=True, text=True)
    if done.returncode != 0 or not wanted.is_file():
        unavailable(f"npm install {package} failed: {done.stderr[-500:]}")


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        unavailable(f"the book is not built ({SITE / 'index.html'} is missing; run make book)")
    _npm_install(MATHJAX_PREFIX, "mathjax@3", MATHJAX_DIR / "es5" / "tex-mml-chtml.js")
    _Handler.missing, _Handler.served = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def driver(server):
    with chromium() as browser:
        yield browser


def _wait_for_mathjax(browser) -> str:
    return browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) {
            done('MathJax did not load'); return; }
        MathJax.startup.promise.then(() => done('ok')).catch(e => done('error: ' + e));
    """)


PAGES = _site_pages()


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES or ["<not built>"])
def test_page_renders(page, server, driver):
    """A built page shows typeset math, loaded images, no broken internal link and no console
    error in headless Chromium."""
    if page == "<not built>":
        unavailable("the book is not built (run make book)")
    driver.get_log("browser")                            # drop entries of earlier pages
    driver.get(f"{server}/{page}")
    driver.execute_script("return document.readyState")
    has_math = bool(driver.execute_script(
        "return document.querySelectorAll('.math, span.math, div.math').length"))
    problems: list[str] = []

    if has_math:
        state = _wait_for_mathjax(driver)
        if state != "ok":
            problems.append(f"MathJax: {state}")
        untypeset = driver.execute_script("""
            return Array.from(document.querySelectorAll('span.math, div.math'))
                .filter(el => !el.querySelector('mjx-container'))
                .map(el => el.textContent.slice(0, 60));""")
        if untypeset:
            problems.append(f"math not typeset: {untypeset[:5]}")
        errors = driver.execute_script("return document.querySelectorAll('mjx-merror').length")
        if errors:
            problems.append(f"{errors} MathJax errors (mjx-merror) on the page")
        if not any(p.startswith(LOCAL_MATHJAX) for p in _Handler.served):
            problems.append("MathJax was not served from the local copy")

    broken_images = driver.execute_script("""
        return Array.from(document.images)
            .filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => img.getAttribute('src'));""")
    if broken_images:
        problems.append(f"images that did not load: {broken_images}")

    broken = _broken_links(page)
    if broken:
        problems.append(f"broken internal links: {broken[:10]}")

    severe = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE"]
    if severe:
        problems.append(f"console errors: {severe[:5]}")
    missing = list(_Handler.missing)
    if missing:
        problems.append(f"requests answered 404: {missing[:10]}")
    _Handler.missing.clear()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = page.replace("/", "__")[:-5]
    driver.save_screenshot(str(SCREENSHOTS / f"{stem}.png"))
    if driver.execute_script("""
            const fig = document.querySelector('main figure img, main .cell_output img');
            if (!fig) return false;
            fig.scrollIntoView({block: 'center'}); return true;"""):
        driver.save_screenshot(str(SCREENSHOTS / f"{stem}__figure.png"))
    assert not problems, f"{page}: " + "; ".join(problems)


def test_broken_link_detection_catches_a_bad_anchor(tmp_path):
    """The link checker reports a missing file and a missing anchor and accepts good ones."""
    (tmp_path / "a.html").write_text('<a href="b.html#here">ok</a><a href="b.html#gone">x</a>'
                                     '<a href="c.html">x</a><a href="https://example.org/">e</a>'
                                     '<a href="#self">s</a><p id="self"></p>')
    (tmp_path / "b.html").write_text('<h1 id="here">B</h1>')
    assert _broken_links("a.html", site=tmp_path) == ["b.html#gone (no anchor #gone)",
                                                      "c.html (no file c.html)"]


# --- accessibility: axe-core in both colour modes, and the keyboard ------------------------

@pytest.fixture(scope="module")
def axe_source(server) -> str:
    _npm_install(AXE_PREFIX, f"axe-core@{AXE_VERSION}", AXE_JS)
    return AXE_JS.read_text(encoding="utf-8")


def _settle(driver, seconds: float = 10.0) -> None:
    """Wait until the page has loaded and its URL has stopped changing (redirects done)."""
    import time

    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        url = driver.current_url
        if url == last and driver.execute_script("return document.readyState") == "complete":
            return
        last = url
        time.sleep(0.2)


def _open_in_mode(driver, url: str, mode: str) -> None:
    """Open ``url`` in the theme's colour ``mode`` ("light" or "dark"), set the way the theme's
    switch stores it (localStorage ``mode`` and ``theme``) and read before the first paint, so
    no colour transition is under way when the page is audited."""
    driver.get(url)
    _settle(driver)                     # index.html redirects to the first chapter
    driver.execute_script("localStorage.setItem('mode', arguments[0]);"
                          "localStorage.setItem('theme', arguments[0]);", mode)
    driver.refresh()
    _settle(driver)
    if driver.execute_script("return document.querySelectorAll('span.math, div.math').length"):
        _wait_for_mathjax(driver)


def _axe_violations(driver, axe_source: str) -> list[str]:
    driver.execute_script(axe_source)
    result = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: arguments[0]},
                           resultTypes: ['violations']})
           .then(r => done(r.violations.map(v => ({
               id: v.id, impact: v.impact, help: v.help, tags: v.tags,
               nodes: v.nodes.map(n => n.target.join(' ') + ': '
                                  + n.failureSummary.replace(/\\s+/g, ' ').slice(0, 240))}))))
           .catch(e => done('axe failed: ' + e));""", WCAG_TAGS)
    if isinstance(result, str):
        return [result]
    return [f"{v['id']} ({v['impact']}; {v['help']}): " + " | ".join(v["nodes"][:3])
            for v in result]


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES or ["<not built>"])
def test_page_meets_wcag_21_aa(page, mode, server, driver, axe_source):
    """axe-core finds no violation of a WCAG 2.0/2.1 level A or AA rule on the page, in the
    light and in the dark colour mode of the theme."""
    if page == "<not built>":
        unavailable("the book is not built (run make book)")
    _open_in_mode(driver, f"{server}/{page}", mode)
    assert driver.execute_script("return document.documentElement.dataset.theme") == mode
    violations = _axe_violations(driver, axe_source)
    assert not violations, f"{page} ({mode} mode): " + "\n".join(violations)


@pytest.mark.browser
def test_axe_reports_a_violation(tmp_path, server, driver, axe_source):
    """The audit is live: an image without alt text and grey-on-grey text are reported."""
    bad = SITE / "__axe_probe__.html"
    bad.write_text('<!doctype html><html lang="en"><head><title>probe</title></head><body>'
                   '<main><h1>Probe</h1><img src="_static/images/logo_binder.svg">'
                   '<p style="color:#999;background:#aaa">faint</p></main></body></html>',
                   encoding="utf-8")
    try:
        driver.get(f"{server}/__axe_probe__.html")
        found = " ".join(_axe_violations(driver, axe_source))
    finally:
        bad.unlink()
    assert "image-alt" in found and "color-contrast" in found


# what a keyboard user must be able to reach: every dropdown and toggle, and the launch menu
KEYBOARD_TARGETS = """
    return Array.from(document.querySelectorAll(
        'details > summary, button.toggle-button, .dropdown-launch-buttons > button'))
      .filter(el => el.offsetParent !== null || el.getClientRects().length);"""


def _tab_through(driver, limit: int = 2000) -> list:
    """Press Tab from the top of the page until focus wraps around; return the elements that
    received focus, in order."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement && document.activeElement.blur();"
                          "window.scrollTo(0, 0);")
    seen, first = [], None
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        element = driver.switch_to.active_element
        if first is None:
            first = element
        elif element == first or element.tag_name == "body":
            break
        seen.append(element)
    return seen


KEYBOARD_PAGES = [p for p in PAGES if p.startswith("book/")]


@pytest.mark.browser
@pytest.mark.parametrize("page", KEYBOARD_PAGES or ["<not built>"])
def test_keyboard_reaches_every_dropdown_and_launch_button(page, server, driver):
    """Tab alone reaches every code-cell toggle, every solution dropdown and the launch button;
    Enter opens the launch menu, whose Binder and Colab links Tab then reaches."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    if page == "<not built>":
        unavailable("the book is not built (run make book)")
    _open_in_mode(driver, f"{server}/{page}", "light")
    targets = driver.execute_script(KEYBOARD_TARGETS)
    reached = _tab_through(driver)
    missed = [driver.execute_script("return arguments[0].outerHTML.slice(0, 120)", t)
              for t in targets if t not in reached]
    assert not missed, f"{page}: Tab never reaches {missed[:5]}"

    launch = [t for t in targets if "dropdown-toggle" in (t.get_attribute("class") or "")]
    if not launch:
        return
    driver.execute_script("arguments[0].focus()", launch[0])
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    assert launch[0].get_attribute("aria-expanded") == "true", f"{page}: Enter did not open"
    names = []
    for _ in range(4):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        names.append(driver.switch_to.active_element.text.strip())
    assert "Binder" in names and "Colab" in names, f"{page}: the launch menu gave {names}"
