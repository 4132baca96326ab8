"""Every page of the built book, opened in headless Chromium: math typeset, images loaded,
internal links resolve, no console errors.

The test serves ``_build/html`` on 127.0.0.1 from a thread. Nothing needs the network: the
server rewrites the MathJax CDN URL in the served HTML to a local copy of MathJax 3
(``npm install mathjax@3`` into ``_build/mathjax``, done here when missing). One screenshot per
page is saved under ``_build/screenshots/`` (a test artifact, not committed).

Prerequisites: ``make book`` (the built site) and the ``browser`` feature of
:mod:`tests.support.system`: Debian's ``chromium``, ``chromium-driver`` and ``npm`` (which
``make test`` installs where it can). When one is missing the page tests skip with the reason
(``tests/conftest.py``), except with ``REQUIRE_BROWSER=1`` (the book's workflow) or
``REQUIRE_SYSTEM_PACKAGES=1`` (``.ci/run``), where they fail instead; so do a missing built
site and a failed ``npm install`` (offline).
"""

from __future__ import annotations

import functools
import html
import shutil
import subprocess
import tempfile
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.support import system

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
MATHJAX_PREFIX = ROOT / "_build" / "mathjax"
MATHJAX_DIR = MATHJAX_PREFIX / "node_modules" / "mathjax"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CDN_MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3/"
LOCAL_MATHJAX = "/__mathjax__/"

pytestmark = [pytest.mark.xdist_group("browser")]


def _unavailable(reason: str):
    """Skip, or fail where the browser tests are required (CI must not silently skip them)."""
    if system.required(system.BY_MARKER["browser"]):
        pytest.fail(f"the browser tests are required here but {reason}")
    pytest.skip(reason)


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


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        _unavailable(f"the book is not built ({SITE / 'index.html'} is missing; run make book)")
    if not (MATHJAX_DIR / "es5" / "tex-mml-chtml.js").is_file():
        npm = shutil.which("npm")
        MATHJAX_PREFIX.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix",
                               str(MATHJAX_PREFIX), "mathjax@3"], capture_output=True, text=True)
        if done.returncode != 0 or not (MATHJAX_DIR / "es5" / "tex-mml-chtml.js").is_file():
            _unavailable(f"npm install mathjax@3 failed: {done.stderr[-500:]}")
    _Handler.missing, _Handler.served = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def driver(server):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = system.chromium()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(system.chromedriver()), options=options)
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


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
        _unavailable("the book is not built (run make book)")
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
