"""The issue-14 WHOIS world (tests/stages/test_names_whois.py, tests/whois/test_ip_per_address.py): names
under private suffixes and an IDN, their addresses inside one wide RDAP network, and Team Cymru's view
of those addresses."""
from __future__ import annotations

import copy

from tests.servers.rdap import ARIN_8_8_8

# One RDAP network object for all of 8.0.0.0/8, as a RIR answers for a legacy block.
WIDE_8 = dict(copy.deepcopy(ARIN_8_8_8), handle="NET-8-0-0-0-1", startAddress="8.0.0.0",
              endAddress="8.255.255.255", name="LVLT-ORG-8-8", parentHandle="",
              cidr0_cidrs=[{"v4prefix": "8.0.0.0", "length": 8}])

ADDRESSES = {"a1.github.io": "8.8.8.8", "b2.github.io": "8.1.2.3", "deep.c3.github.io": "8.8.8.9",
             "shop.herokuapp.com": "8.8.8.8", "api.herokuapp.com": "8.200.0.1",
             "xn--strae-oqa.de": "8.1.2.3"}
# Team Cymru's view: 8.8.8.0/24 is AS15169, 8.1.0.0/16 AS3356. 8.1.2.3 also gets a record about a longer
# prefix that does not contain it (the longest one is not the answer then); 8.200.0.1 has no route.
CYMRU = ['8.8.8.8.origin IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"',
         '9.8.8.8.origin IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"',
         '3.2.1.8.origin IN TXT "3356 | 8.1.0.0/16 | US | arin | 1992-12-01"',
         '3.2.1.8.origin IN TXT "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"',
         'AS3356 IN TXT "3356 | US | arin | 2000-03-10 | LEVEL3, US"']
EXPECTED_ASN = {"8.8.8.8": ("15169", "8.8.8.0/24"), "8.8.8.9": ("15169", "8.8.8.0/24"),
                "8.1.2.3": ("3356", "8.1.0.0/16"), "8.200.0.1": (None, None)}
