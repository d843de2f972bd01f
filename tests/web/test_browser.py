"""The web page in a real browser: Debian's headless Chromium, driven by Selenium, against `scout web` over a
store filled by a real pipeline run. Pages load, the search form is filled and sent, links are followed,
screenshots are taken and checked not blank, and markup in a WHOIS answer renders as inert text.

SCOUT_UPDATE_SCREENSHOT=1 also writes the search page's screenshot to docs/web.png (the README shows it)."""
from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT, wait_for
from tests.support.web import XSS_DOMAIN, XSS_REGISTRAR, browser, chromium_available, copy_screenshot, distinct_colours

pytestmark = pytest.mark.skipif(not chromium_available() and not os.environ.get("CI"),
                                reason="chromium/chromium-driver not installed (DEV=1 scripts/setup.sh installs them)")
MIN_COLOURS = 12   # a blank or unstyled page has a handful; these pages have hundreds (text antialiasing)


@pytest.fixture(scope="module")
def driver():
    from selenium.webdriver.common.by import By  # noqa: F401  (fails early when selenium is missing)

    d = browser()
    yield d
    d.quit()


def shot(driver, tmp_path, name: str) -> bytes:
    png = driver.get_screenshot_as_png()
    (tmp_path / f"{name}.png").write_bytes(png)
    assert distinct_colours(png) >= MIN_COLOURS, f"{name}: the screenshot looks blank"
    return png


def test_overview_page(driver, web, filled_store, tmp_path):
    from selenium.webdriver.common.by import By

    _, _, docs = filled_store
    driver.get(web.base + "/")
    assert driver.title.startswith("Overview")
    assert driver.find_element(By.ID, "total").text == str(len(docs))
    hits = {n for n, d in docs.items() if d.get("score", 0) >= 50}
    assert driver.find_element(By.ID, "hits").text == str(len(hits))
    shown = {a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.results td:first-child a")}
    assert shown == hits
    # The stylesheet applied: the header bar is the dark blue of style.css, not the browser's default.
    assert driver.find_element(By.TAG_NAME, "header").value_of_css_property("background-color") == "rgba(31, 58, 95, 1)"
    shot(driver, tmp_path, "overview")


def test_search_form_paging_and_links(driver, web, filled_store, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, _, docs = filled_store
    every = sorted(n for n, d in docs.items()
                   if "a.iana-servers.net" in (d["domain_whois_parsed"].get("nameservers") or []))
    assert len(every) > 20
    driver.get(web.base + "/search")
    driver.find_element(By.ID, "f-ns").send_keys("A.IANA-SERVERS.NET")
    Select(driver.find_element(By.ID, "f-limit")).select_by_value("20")
    driver.find_element(By.ID, "search-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "result-count"), timeout=60, message="search results")
    assert driver.find_element(By.ID, "result-count").text == f"{len(every)} domains"
    names, page = [], 1
    while True:
        rows = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.results td:first-child a")]
        assert 0 < len(rows) <= 20
        names += rows
        if not driver.find_elements(By.ID, "next"):
            break
        driver.find_element(By.ID, "next").click()
        page += 1
        wait_for(lambda: f"page={page}" in driver.current_url, timeout=60, message=f"page {page}")
    assert sorted(names) == every and page == -(-len(every) // 20)

    expected = sorted(n for n, d in docs.items() if any(a.startswith("198.51.100.") for a in d["a_records"]))
    driver.get(web.base + "/search")
    driver.find_element(By.ID, "f-ip").send_keys("198.51.100.0/24")
    driver.find_element(By.ID, "f-since").send_keys("1d")
    driver.find_element(By.ID, "search-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "result-count"), timeout=60, message="search results")
    assert driver.find_element(By.ID, "result-count").text == f"{len(expected)} domains"
    assert driver.find_element(By.ID, "f-ip").get_attribute("value") == "198.51.100.0/24"   # the form keeps it
    shown = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.results td:first-child a")]
    assert sorted(shown) == expected
    png = shot(driver, tmp_path, "search")
    if os.environ.get("SCOUT_UPDATE_SCREENSHOT") == "1":
        copy_screenshot(png, ROOT / "docs" / "web.png")

    # Follow a result to its domain page, then a neighbour on the same address.
    driver.find_element(By.LINK_TEXT, "mail.hosting-demo.example").click()
    wait_for(lambda: driver.find_elements(By.ID, "domain-name"), timeout=60, message="the domain page")
    assert driver.find_element(By.ID, "domain-name").text.startswith("mail.hosting-demo.example")
    a_row = driver.find_element(By.XPATH, "//table[@id='dns']//tr[td[1]='A']")
    assert "198.51.100.33" in a_row.text and "NOERROR" in a_row.text
    shot(driver, tmp_path, "domain")
    group = driver.find_element(By.XPATH, "//div[@class='group'][.//h3[contains(., 'Same IP address 198.51.100.33')]]")
    group.find_element(By.LINK_TEXT, "hosting-demo.example").click()
    wait_for(lambda: driver.find_element(By.ID, "domain-name").text.startswith("hosting-demo.example "),
             timeout=60, message="the neighbour's page")


def test_a_bad_filter_shows_its_error(driver, web):
    from selenium.webdriver.common.by import By

    driver.get(web.base + "/search")
    driver.find_element(By.ID, "f-ip").send_keys("300.1.2.3")
    driver.find_element(By.ID, "search-submit").click()
    error = wait_for(lambda: driver.find_elements(By.ID, "search-error"), timeout=60, message="the error")[0]
    assert error.text.startswith("ip='300.1.2.3'")


def test_markup_in_a_whois_answer_renders_inert(driver, web, filled_store, tmp_path):
    from selenium.webdriver.common.by import By

    _, _, docs = filled_store
    hostile = sorted(n for n, d in docs.items() if d["domain_whois_parsed"].get("registrar") == XSS_REGISTRAR)
    assert hostile and all(n.endswith(XSS_DOMAIN) for n in hostile)   # the pipeline kept the text as is
    for path in (f"/domain/{hostile[0]}", "/search?registrar=evil", f"/search?root={XSS_DOMAIN}"):
        driver.get(web.base + path)
        assert XSS_REGISTRAR in driver.find_element(By.TAG_NAME, "main").text, path   # shown as text
        assert driver.find_elements(By.TAG_NAME, "script") == [], path
        assert driver.find_elements(By.CSS_SELECTOR, "img") == [], path
        assert driver.execute_script("return window.__xss === undefined"), path
    driver.get(web.base + f"/domain/{hostile[0]}")
    raw = driver.find_element(By.ID, "raw-whois").get_attribute("textContent")
    assert "window.__xss=3" in raw and "<script>" in raw
    shot(driver, tmp_path, "xss")


def test_a_long_neighbour_list_links_to_the_full_search(driver, web, filled_store):
    from selenium.webdriver.common.by import By

    _, _, docs = filled_store
    same_ns = [n for n, d in docs.items() if n != "acme-widgets.example"
               and "b.iana-servers.net" in (d["domain_whois_parsed"].get("nameservers") or [])]
    assert len(same_ns) > 20
    driver.get(web.base + "/domain/acme-widgets.example")
    group = driver.find_element(By.XPATH, "//div[@class='group'][.//h3[contains(., 'Same name server b.iana-servers.net')]]")
    assert len(group.find_elements(By.CLASS_NAME, "related-link")) == 20
    assert f"({len(same_ns)})" in group.find_element(By.TAG_NAME, "h3").text
    group.find_element(By.CLASS_NAME, "related-more").click()
    count = wait_for(lambda: driver.find_elements(By.ID, "result-count"), timeout=60, message="the search")[0]
    assert count.text == f"{len(same_ns) + 1} domains"        # the search lists the page's own domain too
    assert driver.find_element(By.ID, "f-ns").get_attribute("value") == "b.iana-servers.net"
