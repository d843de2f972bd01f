"""DNS zones for the pipeline tests: every root domain of the shared fixture, served by a real nsd.

`EXPECTED` says what the documents must carry for a few names, so tests check real answers.
"""
from __future__ import annotations

SOA = "@ 3600 IN SOA ns1.{zone} hostmaster.{zone} 2026112801 7200 3600 1209600 300"

# zone -> records (relative to the zone apex)
ZONES = {
    "example.": [
        "shop-example-login 300 IN A 198.51.100.10",
        "shop-example-login 300 IN AAAA 2001:db8::10",
        "shop-example-login 300 IN MX 10 mx1.shop-example-login",
        "shop-example-login 300 IN MX 20 mx2.shop-example-login",
        'shop-example-login 300 IN TXT "v=spf1 " "include:_spf.example.net " "-all"',
        'shop-example-login 300 IN CAA 0 issue "letsencrypt.org"',
        "checkout.shop-example-login 300 IN CNAME edge.cdn-provider",
        "edge.cdn-provider 300 IN A 198.51.100.20",
        "acme-widgets 300 IN A 198.51.100.30",
        "xn--bcher-kva 300 IN A 198.51.100.31",
        "*.preview-pages 300 IN A 198.51.100.32",
        "hosting-demo 300 IN A 198.51.100.33",
        "mail.hosting-demo 300 IN A 198.51.100.33",
        "big-txt 300 IN TXT " + " ".join(f'"{"k" * 200}{i:02d}"' for i in range(20)),
        "loop-a 300 IN CNAME loop-b",
        "loop-b 300 IN CNAME loop-a",
    ],
    "test.": [
        "examplebank 300 IN A 203.0.113.40",
        "online.examplebank 300 IN A 203.0.113.41",
        "examplebank-secure-verify 300 IN A 203.0.113.42",
        "login.examplebank-secure-verify 300 IN A 203.0.113.42",
    ],
    "example.com.": [
        "@ 300 IN A 192.0.2.80",
        "@ 300 IN MX 0 mail.example.com.",
        'mail 300 IN A 192.0.2.81',
        "saas 300 IN A 192.0.2.90",
        "app.saas 300 IN A 192.0.2.91",
    ],
    "example.net.": [
        "cdn 300 IN A 198.51.100.50",
        "vpn 300 IN A 198.51.100.51",
    ],
    "example.org.": [
        "portal 300 IN A 203.0.113.60",
        "mail 300 IN A 203.0.113.61",
        'mail 300 IN TXT "hello"',
    ],
    "invalid.": [],
}


def zone_texts() -> dict[str, str]:
    out = {}
    for zone, records in ZONES.items():
        lines = [SOA.format(zone=zone), f"@ 3600 IN NS ns1.{zone}", f"ns1.{zone} 3600 IN A 127.0.0.1"]
        out[zone] = "\n".join(lines + records) + "\n"
    return out


# As the seed shows it (issue 14): the SOA's names with their final dot.
SOA_TEXT = {z: f"ns1.{z} hostmaster.{z} 2026112801 7200 3600 1209600 300" for z in ZONES}

# name -> fields its document must have (subset check)
EXPECTED = {
    "shop-example-login.example": {
        "root_domain": "shop-example-login.example",
        "a_records": ["198.51.100.10"], "aaaa_records": ["2001:db8::10"],
        "mx_records": ["10 mx1.shop-example-login.example", "20 mx2.shop-example-login.example"],
        "txt_records": ["v=spf1 include:_spf.example.net -all"],
        "caa_records": ['0 issue "letsencrypt.org"'],
        "soa_record": SOA_TEXT["example."],
    },
    "checkout.shop-example-login.example": {
        "a_records": ["198.51.100.20"], "cname_chain": ["edge.cdn-provider.example"],
    },
    "acme-widgets.example": {"a_records": ["198.51.100.30"]},
    "xn--bcher-kva.example": {"a_records": ["198.51.100.31"]},
    "a1b2c3d4e5f6.preview-pages.example": {"a_records": ["198.51.100.32"]},
    "portal.example.org": {"a_records": ["203.0.113.60"], "root_domain": "example.org",
                           "soa_record": SOA_TEXT["example.org."]},
    "mail.example.org": {"txt_records": ["hello"], "a_records": ["203.0.113.61"]},
    "example.com": {"a_records": ["192.0.2.80"], "mx_records": ["0 mail.example.com"]},
    "examplebank.test": {"a_records": ["203.0.113.40"]},
    "cdn.example.net": {"a_records": ["198.51.100.50"], "root_domain": "example.net"},
    "router.home.example": {"a_records": [], "dns_status": {"A": "NXDOMAIN"}},
    "login-examplebank.invalid": {"dns_status": {"A": "NXDOMAIN"}},
    "assets.example.org": {"dns_status": {"A": "NXDOMAIN"}},
}
