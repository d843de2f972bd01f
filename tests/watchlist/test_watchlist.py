"""Watchlist parsing, the scoring table, hot reloading, and the `scout score` command."""
from __future__ import annotations

import json
import logging
import os
import time

import pytest
from hypothesis import given, settings, strategies as st

from scout.cli import score as score_cli
from scout.config import Settings
from scout.watchlist import (DEFAULT_WATCHLIST_PATH, Watchlist, WatchlistError, WatchlistHolder, decode_label,
                             fold, load_watchlist, osa_distance, score_domain)


@pytest.fixture(scope="module")
def default() -> Watchlist:
    return load_watchlist(None)


# (domain as the pipeline hands it over, its root domain (PSL with its private section, as scout.names gives
# it), whether the default alert fires, rules that fired as "rule:brand-or-value")
DEFAULT_TABLE = [
    # ordinary names and the brands' own domains (a brand's own domain is allow-listed whole)
    ('example.com', 'example.com', False, []),
    ('www.example.com', 'example.com', False, []),
    ('paypal.com', 'paypal.com', False, []),
    ('www.paypal.com', 'paypal.com', False, []),
    ('amazon.co.uk', 'amazon.co.uk', False, []),
    ('login.microsoftonline.com', 'microsoftonline.com', False, []),
    # brands that are words, or parts of words: no false alarm
    ('purchase.com', 'purchase.com', False, []),
    ('pineapple.com', 'pineapple.com', False, ['label_length:9']),
    ('apply.com', 'apply.com', False, []),
    # homoglyphs (Unicode confusables) and punycode
    ('xn--pypal-4ve.com', 'xn--pypal-4ve.com', True, ['brand_lookalike:paypal']),
    ('xn--80ak6aa92e.com', 'xn--80ak6aa92e.com', True, ['brand_lookalike:apple']),
    ('xn--coinbas-hya.com', 'xn--coinbas-hya.com', True, ['brand_lookalike:coinbase']),
    ('paypa1.com', 'paypa1.com', True, ['brand_lookalike:paypal']),
    ('g00gle.com', 'g00gle.com', True, ['brand_lookalike:google']),
    # ASCII look-alikes and keyboard slips (a neighbouring key, a swap, a doubled or left-out letter)
    ('rnicrosoft.com', 'rnicrosoft.com', True, ['brand_lookalike:microsoft', 'label_length:10']),
    ('goggle.com', 'goggle.com', True, ['brand_lookalike:google']),
    ('wellsfarqo.com', 'wellsfarqo.com', True, ['brand_lookalike:wellsfargo', 'label_length:10']),
    ('bankofamerlca.com', 'bankofamerlca.com', True, ['brand_lookalike:bankofamerica', 'label_length:13']),
    ('bnakofamerica.com', 'bnakofamerica.com', True, ['brand_lookalike:bankofamerica', 'label_length:13']),
    # brand inside a longer label, in a subdomain of another root, on a root it does not own
    ('paypal-login.com', 'paypal-login.com', True, ['keyword:login', 'brand_in_label:paypal', 'label_length:12', 'root_hyphens:1']),
    ('mypaypalhelp.net', 'mypaypalhelp.net', False, ['brand_in_label:paypal', 'label_length:12']),
    ('chase-login.com', 'chase-login.com', True, ['keyword:login', 'brand_in_label:chase', 'label_length:11', 'root_hyphens:1']),
    ('metamask-wallet.io', 'metamask-wallet.io', True, ['keyword:wallet', 'brand_in_label:metamask', 'label_length:15', 'root_hyphens:1']),
    ('paypal.com.evil.example', 'evil.example', True, ['brand_in_subdomain:paypal', 'fake_tld:com']),
    ('secure-paypal.evil.example', 'evil.example', True, ['keyword:secure', 'brand_in_subdomain:paypal']),
    ('paypal.tk', 'paypal.tk', True, ['tld:tk', 'brand_other_root:paypal']),
    # combinations
    ('paypa1.tk', 'paypa1.tk', True, ['tld:tk', 'brand_lookalike:paypal']),
    ('amaz0n-verify-account.top', 'amaz0n-verify-account.top', True, ['tld:top', 'keyword:verify', 'keyword:account', 'brand_lookalike:amazon', 'label_length:21', 'root_hyphens:2']),
    ('apple.com.verify-id.cf', 'verify-id.cf', True, ['tld:cf', 'keyword:verify', 'brand_in_subdomain:apple', 'fake_tld:com', 'label_length:9', 'root_hyphens:1']),
    ('*.paypal-secure.support', 'paypal-secure.support', True, ['tld:support', 'keyword:secure', 'brand_in_label:paypal', 'label_length:13', 'root_hyphens:1']),
    # keywords (in the root label in full, further left 75 %), suspicious TLDs, regexes, shape
    ('verify-wallet.xyz', 'verify-wallet.xyz', True, ['tld:xyz', 'keyword:verify', 'keyword:wallet', 'label_length:13', 'root_hyphens:1']),
    ('secure-login-account-update.example.com', 'example.com', True, ['keyword:login', 'keyword:secure', 'keyword:account', 'keyword:update', 'regex:keyword-pair']),
    ('l0gin.example.org', 'example.org', False, ['keyword:login']),
    ('login2.example.net', 'example.net', False, ['keyword:login', 'regex:numbered-login']),
    ('a.b.c.d.example.com', 'example.com', False, []),
    ('ec2-1-2-3-4.compute-1.amazonaws.com', 'compute-1.amazonaws.com', False, []),
    # garbage punycode is kept as it is, never raises
    ('xn--bad-.com', 'xn--bad-.com', False, []),
    ('xn--zz.xn--.com', 'xn--.com', False, []),
    # issue 19, false positives: 'cloud' is no slip on 'icloud', brands' own domains, telegra.ph, CDN
    # endpoints that spell their customers' names, a hosting platform alone
    ('pcloud.com', 'pcloud.com', False, []),
    ('cloud.com', 'cloud.com', False, []),
    ('ns-cloud-a1.googledomains.com', 'googledomains.com', False, []),
    ('googlevideo.com', 'googlevideo.com', False, []),
    ('rr1---sn-hp57ynss.googlevideo.com', 'googlevideo.com', False, []),
    ('googletagmanager.com', 'googletagmanager.com', False, []),
    ('amazon-adsystem.com', 'amazon-adsystem.com', False, []),
    ('tiktokv.com', 'tiktokv.com', False, []),
    ('tiktokcdn-us.com', 'tiktokcdn-us.com', False, []),
    ('telegra.ph', 'telegra.ph', False, []),
    ('p59-buy-lb.itunes-apple.com.akadns.net', 'com.akadns.net', False, ['brand_in_subdomain:apple', 'brand_in_subdomain:itunes', 'private_suffix:akadns.net', 'random_subdomain:p59-buy-lb']),
    ('bucket.s3.amazonaws.com', 'bucket.s3.amazonaws.com', False, ['hosting_platform:s3.amazonaws.com']),
    ('appleid-verify.com', 'appleid-verify.com', True, ['keyword:verify', 'brand_in_label:apple', 'label_length:14', 'root_hyphens:1']),
    # issue 19, misses: brand forms (appleid), hosting and object-storage platforms, IPFS gateways,
    # com- tricks and lookalike registrations with extra words; label.* only under trusted TLDs
    ('myappleid-support.net', 'myappleid-support.net', True, ['keyword:support', 'brand_in_label:apple', 'label_length:17', 'root_hyphens:1']),
    ('appleid.com-secure.top', 'com-secure.top', True, ['tld:top', 'keyword:secure', 'brand_in_label:apple', 'fake_tld:com', 'com_prefix:com', 'label_length:10', 'root_hyphens:1']),
    ('paypal-login.weeblysite.com', 'weeblysite.com', True, ['keyword:login', 'brand_in_label:paypal', 'hosting_platform:weeblysite.com', 'label_length:12', 'root_hyphens:1']),
    ('secure-account-update.000webhostapp.com', '000webhostapp.com', True, ['keyword:secure', 'keyword:account', 'keyword:update', 'regex:keyword-pair', 'hosting_platform:000webhostapp.com', 'label_length:21', 'root_hyphens:2']),
    ('invoice-payment.us-east-1.linodeobjects.com', 'invoice-payment.us-east-1.linodeobjects.com', True, ['keyword:invoice', 'keyword:payment', 'hosting_platform:linodeobjects.com', 'label_length:15', 'root_hyphens:1']),
    ('bafybeigdyrztz4y6nq2c2n5xz4dg4gcb2k3jx5s7lwm2qbxk2o6o6hd3kq.ipfs.dweb.link', 'bafybeigdyrztz4y6nq2c2n5xz4dg4gcb2k3jx5s7lwm2qbxk2o6o6hd3kq.ipfs.dweb.link', True, ['tld:link', 'hosting_platform:ipfs.dweb.link', 'digits:16', 'label_length:59']),
    ('ezpass.com-tollpay.top', 'com-tollpay.top', True, ['tld:top', 'keyword:toll', 'brand_in_subdomain:ezpass', 'fake_tld:com', 'com_prefix:com', 'label_length:11', 'root_hyphens:1']),
    ('state-gov-toll.life', 'state-gov-toll.life', True, ['tld:life', 'keyword:toll', 'fake_tld:gov', 'label_length:14', 'root_hyphens:2']),
    ('google.de', 'google.de', False, []),
    ('google.tk', 'google.tk', True, ['tld:tk', 'brand_other_root:google']),
]
DEFAULT_ALERT = Settings().alert_min_score


def _summary(matches: list[dict]) -> list[str]:
    return [f"{m['rule']}:{m.get('brand', m.get('value'))}" for m in matches]


@pytest.mark.parametrize("domain,root,alert,rules", DEFAULT_TABLE, ids=[t[0] for t in DEFAULT_TABLE])
def test_default_watchlist_scores(default, domain, root, alert, rules):
    # The bundled weights are tuned by measurement (bench/RESULTS.md): pinned here is what fires and
    # whether the default alert does, not each number.
    got_score, matches = score_domain(domain, root, default)
    assert (got_score >= DEFAULT_ALERT, _summary(matches)) == (alert, rules), got_score
    assert got_score == sum(m["score"] for m in matches)
    assert all(m["score"] >= 0 for m in matches)
    json.dumps(matches)  # documents carry them: must serialise


def test_match_shapes(default):
    # Each match says which rule fired, what it saw and what it added; the score is their sum.
    assert score_domain("xn--pypal-4ve.com", "xn--pypal-4ve.com", default) == (60, [
        {"rule": "brand_lookalike", "brand": "paypal", "label": "pаypal", "token": "pаypal", "where": "root",
         "homoglyph": True, "distance": 1, "score": 60}])
    assert score_domain("paypal.com.evil.example", "evil.example", default) == (60, [
        {"rule": "brand_in_subdomain", "brand": "paypal", "label": "paypal", "where": "subdomain",
         "root": "evil.example", "score": 45},
        {"rule": "fake_tld", "value": "com", "score": 15}])
    _, m = score_domain("amaz0n-verify.top", "amaz0n-verify.top", default)
    look = [x for x in m if x["rule"] == "brand_lookalike"][0]
    assert (look["label"], look["token"]) == ("amaz0n-verify", "amaz0n")
    _, m = score_domain("paypal-login.com", "paypal-login.com", default)
    assert {"rule": "keyword", "value": "login", "where": "root", "score": 25} in m
    assert {"rule": "root_hyphens", "value": 1, "score": 4} in m
    # keywords left of an ordinary root count 75 %; on a hosting platform every label is the user's
    _, m = score_domain("login.example.com", "example.com", default)
    assert m == [{"rule": "keyword", "value": "login", "where": "subdomain", "score": 18}]
    _, m = score_domain("login.x1.weeblysite.com", "weeblysite.com", default)
    assert {"rule": "keyword", "value": "login", "where": "root", "score": 25} in m
    assert {"rule": "hosting_platform", "value": "weeblysite.com", "score": 45} in m
    # a CDN endpoint spells its customer's name: brand matches there are listed, worth nothing
    _, m = score_domain("paypal.com.edgekey.net", "com.edgekey.net", default)
    brand = [x for x in m if x["rule"] == "brand_in_subdomain"][0]
    assert (brand["score"], brand["endpoint_of"]) == (0, "edgekey.net")


def test_root_domain_fallback(default):
    # An empty or inconsistent root falls back to the last two labels.
    assert score_domain("paypal.com.evil.example", "", default)[0] == 60
    assert score_domain("paypal.com.evil.example", "unrelated.org", default)[0] == 60
    assert score_domain("PayPal-Login.COM.", "paypal-login.com", default)[0] == 62
    # a hosting platform the Public Suffix List does not know still gives its user's label as the root
    _, m = score_domain("paypal-login.weebly.com", "weebly.com", default)
    assert [x["where"] for x in m if x["rule"] == "brand_in_label"] == ["root"]


CUSTOM = """
keywords: {login: 10, "2fa": 5}
regexes:
  - {name: digits-run, pattern: '[0-9]{6,}', score: 7}
  - {pattern: '^mail\\.', score: 3}
watched_domains: {example.org: 100, corp.example: 40}
ignore_domains: [example.org, noisy.example]
tlds: [tk, co.ua]
brands:
  acme: [acme.com]
  widgetcorp:
    domains: [widgetcorp.com, widgetcorp.*]
    substring: false
brand_rules: {lookalike: 11, in_subdomain: 22, in_label: 33, other_root: 44, substring_min_length: 4}
structure:
  fake_tld: {score: 0}
  many_hyphens: {min: 2, score: 1}
"""

CUSTOM_TABLE = [
    ("example.org", "example.org", 100, ["watched_root:example.org"]),  # watched beats ignored
    ("a.b.example.org", "example.org", 100, ["watched_root:example.org"]),
    ("login.corp.example", "corp.example", 50, ["watched_root:corp.example", "keyword:login"]),
    ("x.noisy.example", "noisy.example", 0, []),
    ("notexample.org", "notexample.org", 0, []),                      # not a subdomain of a watched root
    ("shop.tk", "shop.tk", 10, ["tld:tk"]),
    ("shop.co.ua", "shop.co.ua", 10, ["tld:co.ua"]),
    ("mail.x123456.com", "x123456.com", 10, ["regex:digits-run", "regex:^mail\\."]),
    ("acme.net", "acme.net", 44, ["brand_other_root:acme"]),
    ("acme.evil.com", "evil.com", 22, ["brand_in_subdomain:acme"]),
    ("myacmeshop.com", "myacmeshop.com", 33, ["brand_in_label:acme"]),
    ("acrne.com", "acrne.com", 11, ["brand_lookalike:acme"]),           # rn -> m
    ("widgetcorp.de", "widgetcorp.de", 0, []),                          # widgetcorp.* is legitimate
    ("mywidgetcorpshop.com", "mywidgetcorpshop.com", 0, []),            # substring: false
    ("widgetcorp-2fa.com", "widgetcorp-2fa.com", 38, ["keyword:2fa", "brand_in_label:widgetcorp"]),
    ("widgetc0rp.com", "widgetc0rp.com", 11, ["brand_lookalike:widgetcorp"]),
    ("a-b-c.com", "a-b-c.com", 1, ["many_hyphens:2"]),
    ("paypal-login.com", "paypal-login.com", 10, ["keyword:login"]),     # the default list is not merged
]


@pytest.fixture()
def custom(tmp_path) -> Watchlist:
    p = tmp_path / "wl.yaml"
    p.write_text(CUSTOM)
    return load_watchlist(p)


@pytest.mark.parametrize("domain,root,score,rules", CUSTOM_TABLE, ids=[t[0] for t in CUSTOM_TABLE])
def test_custom_watchlist_scores(custom, domain, root, score, rules):
    got_score, matches = score_domain(domain, root, custom)
    assert (got_score, _summary(matches)) == (score, rules)


def test_extends_default(tmp_path, default):
    p = tmp_path / "wl.yaml"
    p.write_text("extends: default\nkeywords: {acmebank: 40, login: 5}\nwatched_domains: [acme.example]\n"
                 "brands: {acmebank: [acmebank.com]}\n")
    wl = load_watchlist(p)
    # keywords acmebank 40 + login 5, brand_in_label 25, label_length 12, root_hyphens 4
    assert score_domain("acmebank-login.com", "acmebank-login.com", wl)[0] == 40 + 5 + 25 + 12 + 4
    assert score_domain("www.acme.example", "acme.example", wl)[0] == 100
    assert score_domain("paypa1.tk", "paypa1.tk", wl)[0] == 100  # the default rules are still there
    assert len(wl.brands) == len(default.brands) + 1


@pytest.mark.parametrize("text,message", [
    ("keywords: [", "not valid YAML"),
    ("", "file is empty"),
    ("- just\n- a list\n", "expected a mapping"),
    ("kewords: {login: 1}\n", "unknown section"),
    ("keywords: {login: high}\n", "keywords.login: expected a whole number"),
    ("keywords: {login: true}\n", "keywords.login: expected a whole number"),
    ("keywords: login\n", "keywords: expected a mapping"),
    ("regexes:\n  - {pattern: '(unclosed', score: 5}\n", "bad regular expression"),
    ("regexes:\n  - {pattern: 'x'}\n", "regexes[0]: expected a mapping with pattern and score"),
    ("regexes: {a: 1}\n", "regexes: expected a list"),
    ("brands: {'pay pal': [paypal.com]}\n", "brand name"),
    ("brands: {acme: {domains: [acme.com], typo: false}}\n", "unknown key"),
    ("brands: {acme: {substring: 'no'}}\n", "expected true or false"),
    ("brands: {acme: 5}\n", "expected a list of legitimate domains"),
    ("watched_domains: [' ']\n", "non-empty string"),
    ("brand_rules: {lookalik: 3}\n", "brand_rules.lookalik: unknown"),
    ("structure: {many_hyphens: {min: x}}\n", "structure.many_hyphens.min"),
    ("extends: other\n", "only 'default'"),
    ("platforms: {hosting: 5, cdn: 3}\n", "platforms.cdn: unknown"),
    ("platforms: {hosting_suffixes: weebly.com}\n", "platforms.hosting_suffixes: expected a list"),
    ("platforms: {hosting_suffixes: ['a b']}\n", "not a valid domain name"),
    ("keyword_rules: {subdomain_percent: half}\n", "keyword_rules.subdomain_percent: expected a whole number"),
    ("brand_affixes: id\n", "brand_affixes: expected a list"),
    ("structure: {label_length: {per_char: 2}}\n", "structure.label_length.per_char: unknown"),
])
def test_bad_watchlists_are_rejected_with_a_clear_message(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(WatchlistError) as e:
        load_watchlist(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(WatchlistError, match="file not found"):
        load_watchlist(tmp_path / "nope.yaml")


def test_unicode_watched_domain_is_punycoded(tmp_path):
    p = tmp_path / "wl.yaml"
    p.write_text("watched_domains: [bücher.example]\n")
    wl = load_watchlist(p)
    assert score_domain("shop.xn--bcher-kva.example", "xn--bcher-kva.example", wl)[0] == 100


def test_files_without_the_newer_sections_score_as_before(custom):
    # platforms, keyword context and the graded shape rules score nothing unless a file sets them
    assert score_domain("login-verify.github.io", "login-verify.github.io", custom) == (
        10, [{"rule": "keyword", "value": "login", "where": "root", "score": 10}])
    assert score_domain("login.x.example.net", "example.net", custom)[0] == 10     # subdomain_percent 100
    # no endpoint discount either: a brand left of a provider suffix counts in full
    assert score_domain("acme.x.akadns.net", "x.akadns.net", custom)[1] == [
        {"rule": "brand_in_subdomain", "brand": "acme", "label": "acme", "where": "subdomain",
         "root": "x.akadns.net", "score": 22}]


def test_keyboard_slips_and_confusables():
    from scout.watchlist.text import keyboard_typo
    # slips of the fingers (or eyes) on "google" / "amazon" / "paypal"
    for typed, meant in [("goofle", "google"), ("gogle", "google"), ("googel", "google"), ("gooogle", "google"),
                         ("goggle", "google"), ("amazin", "amazon"), ("paypla", "paypal"), ("wellsfarqo", "wellsfargo")]:
        assert keyboard_typo(typed, meant), typed
    # one edit away but no slip: a far key, the first or last letter left out (issue 19: pcloud, cloud)
    for typed, meant in [("pcloud", "icloud"), ("cloud", "icloud"), ("telegra", "telegram"), ("gmogle", "google"),
                         ("google", "google"), ("goo", "google")]:
        assert not keyboard_typo(typed, meant), typed
    # Unicode confusables data, not a hand list: Greek, Armenian, Cherokee, mathematical letters
    assert fold("gοοgle") == "google"              # Greek omicron
    assert fold("օutlook") == "outlook"            # Armenian o
    assert fold("𝐩aypal") == "paypal"              # mathematical bold p
    assert fold("аррӏе") == "apple"                # Cyrillic, palochka read as l


def test_helpers():
    assert fold("pаypa1") == "paypal"
    assert fold("rnicrosoft") == "microsoft"
    assert fold("ﬁ") == "fi"  # NFKD
    assert decode_label("xn--pypal-4ve") == "pаypal"
    assert decode_label("xn--") == "xn--"
    assert decode_label("plain") == "plain"
    assert osa_distance("paypal", "paypla") == 1
    assert osa_distance("paypal", "paypal") == 0
    assert osa_distance("kitten", "sitting") == 3
    assert osa_distance("kitten", "sitting", 1) == 2


_label_chars = st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789-.*_ xnаеорсі\u0301\u200d\U0001F600"))


@settings(max_examples=400, deadline=None)
@given(domain=st.one_of(st.text(max_size=80), st.text(_label_chars, max_size=80),
                        st.builds(lambda a, b: "xn--" + a + "." + b, st.text(max_size=30), st.text(max_size=10))),
       root=st.one_of(st.text(max_size=30), st.text(_label_chars, max_size=30), st.just("")))
def test_score_domain_never_raises(default, domain, root):
    score, matches = score_domain(domain, root, default)
    assert isinstance(score, int)
    assert score == sum(m["score"] for m in matches)
    json.dumps(matches)


# --- hot reload --------------------------------------------------------------------------------------------


def _write(path, text):
    """Rewrite in place and make sure the mtime moves even on coarse-timestamp filesystems."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st_ = path.stat()
    if st_.st_mtime_ns == before:
        os.utime(path, ns=(st_.st_atime_ns, before + 1_000_000))


def test_hot_reload_and_broken_file_keeps_last_good(tmp_path, caplog):
    p = tmp_path / "wl.yaml"
    _write(p, "keywords: {login: 10}\n")
    holder = WatchlistHolder(p, check_interval=0)
    assert score_domain("login.example.com", "example.com", holder.current())[0] == 10

    _write(p, "keywords: {login: 30}\n")
    assert score_domain("login.example.com", "example.com", holder.current())[0] == 30
    assert holder.version == 2

    caplog.set_level(logging.WARNING, logger="scout.watchlist")
    _write(p, "keywords: {login: [\n")  # broken YAML
    for _ in range(5):
        wl = holder.current()
    assert score_domain("login.example.com", "example.com", wl)[0] == 30   # last good one
    warnings = [r for r in caplog.records if "keeping the last good one" in r.getMessage()]
    assert len(warnings) == 1 and "not valid YAML" in warnings[0].getMessage()
    assert "not valid YAML" in holder.last_error

    _write(p, "regexes: [{pattern: '(', score: 1}]\n")  # another bad version: logged once more
    holder.current()
    holder.current()
    assert len([r for r in caplog.records if "keeping the last good one" in r.getMessage()]) == 2

    p.unlink()  # deleted: still the last good one
    assert score_domain("login.example.com", "example.com", holder.current())[0] == 30

    _write(p, "keywords: {login: 50}\n")  # fixed
    assert score_domain("login.example.com", "example.com", holder.current())[0] == 50
    assert holder.last_error is None


def test_atomic_replace_is_seen(tmp_path):
    p = tmp_path / "wl.yaml"
    p.write_text("keywords: {login: 10}\n")
    holder = WatchlistHolder(p, check_interval=0)
    tmp = tmp_path / "wl.yaml.new"
    tmp.write_text("keywords: {login: 20}\n")
    os.replace(tmp, p)
    assert score_domain("login.x.com", "x.com", holder.current())[0] == 20


def test_reload_is_checked_at_most_every_interval(tmp_path):
    p = tmp_path / "wl.yaml"
    _write(p, "keywords: {login: 10}\n")
    holder = WatchlistHolder(p, check_interval=0.3)
    _write(p, "keywords: {login: 20}\n")
    assert score_domain("login.x.com", "x.com", holder.current())[0] == 10   # not yet looked
    time.sleep(0.35)
    assert score_domain("login.x.com", "x.com", holder.current())[0] == 20


def test_holder_startup(tmp_path):
    with pytest.raises(WatchlistError):
        WatchlistHolder(tmp_path / "missing.yaml")
    holder = WatchlistHolder(None)
    assert holder.current().source == str(DEFAULT_WATCHLIST_PATH)
    assert holder.current() is holder.current()


# --- scout score ------------------------------------------------------------------------------------------


def test_score_cli_json(capsys, monkeypatch):
    monkeypatch.delenv("WATCHLIST_FILE", raising=False)
    monkeypatch.delenv("ALERT_MIN_SCORE", raising=False)
    assert score_cli.main(["--json", "pаypal.com", "Example.COM."]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["domain"] == "xn--pypal-4ve.com" and lines[0]["score"] == 60
    assert lines[0]["matches"][0]["rule"] == "brand_lookalike" and lines[0]["alert"] is True
    assert lines[1] == {"name": "Example.COM.", "domain": "example.com", "root_domain": "example.com",
                        "score": 0, "matches": [], "alert": False}


def test_score_cli_text_and_watchlist_flag(tmp_path, capsys):
    p = tmp_path / "wl.yaml"
    p.write_text("keywords: {acme: 42}\n")
    assert score_cli.main(["--watchlist", str(p), "acme.paypal-login.com"]) == 0
    out = capsys.readouterr().out
    assert out.split()[0] == "42" and "keyword acme +42" in out


def test_score_cli_bad_watchlist(tmp_path, capsys):
    p = tmp_path / "wl.yaml"
    p.write_text("keywords: [\n")
    assert score_cli.main(["--watchlist", str(p), "x.com"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
