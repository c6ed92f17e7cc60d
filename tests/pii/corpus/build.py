"""Build the labelled detector corpus (``positives.tsv``, ``negatives.tsv``), deterministically.

Run ``python tests/pii/corpus/build.py`` to regenerate. Each line is
``label<TAB>key<TAB>value``: ``label`` the category a detector must find (``-`` in the
negatives), ``key`` the property name the value sits under (``-`` for none). Generated
values (cards, IBANs, SSNs, IPs, keys) use a fixed seed; checksums are computed, not copied.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(20261129)


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError


def luhn_break(number: str) -> str:
    last = int(number[-1])
    return number[:-1] + str((last + 1) % 10)


def group(number: str, sizes: list[int], sep: str) -> str:
    out, at = [], 0
    for size in sizes:
        out.append(number[at : at + size])
        at += size
    return sep.join(out)


IBAN_FORMATS = {
    "DE": "18n",
    "GB": "4a14n",
    "FR": "10n11c2n",
    "NL": "4a10n",
    "ES": "20n",
    "IT": "1a10n12c",
    "BE": "12n",
    "CH": "5n12c",
    "AT": "16n",
    "PL": "24n",
    "SE": "20n",
    "IE": "4a14n",
}


def bban(fmt: str) -> str:
    out, num = [], ""
    for ch in fmt:
        if ch.isdigit():
            num += ch
            continue
        pool = {
            "n": string.digits,
            "a": string.ascii_uppercase,
            "c": string.ascii_uppercase + string.digits,
        }[ch]
        out.append("".join(rng.choice(pool) for _ in range(int(num))))
        num = ""
    return "".join(out)


def iban(country: str) -> str:
    b = bban(IBAN_FORMATS[country])
    moved = b + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{b}"


def spaced(text: str) -> str:
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def ssn() -> str:
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def rand(pool: str, n: int) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def positives() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    emails = [
        "jane.doe@example.com",
        "JOHN.SMITH@Example.ORG",
        "  ana.lima@empresa.com.br ",
        "first+tag@gmail.com",
        "o'brien@example.ie",
        "x@y.io",
        "user_name@sub.domain.co.uk",
        "m.mueller@firma.de",
        "li.wei@company.cn",
        "k-tanaka@example.jp",
        "support.team@shop.example.com",
        "a.b.c.d@e-f.museum",
        "noreply+order-77@mail.example.net",
        "sam1990@hotmail.com",
        "peter.o.parker@dailybugle.news",
        "fr.dupont@laposte.fr",
    ]
    for e in emails:
        out.append(("email", "-", e))
    for text in [
        "please contact jane.doe@example.com for a refund",
        "Sent by: Max Power <max.power@example.org>",
        "reply to bob@example.net, thanks",
        "mailto:alice@example.com",
        "https://shop.example.com/unsubscribe?email=jane%40example.com",
        "my email is CHRIS@EXAMPLE.COM!!",
        "note: customer wrote from lena.k@firma.de yesterday",
        "(ops@example.io)",
        "cc: a.user@example.co.uk; b.user@example.co.uk",
        "forward to hr-team@corp.example",
    ]:
        out.append(("email", "note", text))
    for fmt in ["{a}.{b}@example.com", "{a}{n}@mail.example.org", "{a}_{b}@corp.example.net"]:
        for _ in range(5):
            out.append(
                (
                    "email",
                    "-",
                    fmt.format(
                        a=rand(string.ascii_lowercase, 5),
                        b=rand(string.ascii_lowercase, 6),
                        n=rng.randint(1, 99),
                    ),
                )
            )
    phones = [
        "+1 415 555 2671",
        "+1-415-555-2671",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "1-800-555-0199",
        "+44 20 7946 0958",
        "+442079460958",
        "020 7946 0958",
        "07700 900123",
        "+49 30 12345678",
        "+49 (0)30 1234 5678",
        "030 1234 5678",
        "+33 6 12 34 56 78",
        "06 12 34 56 78",
        "+81 3-1234-5678",
        "+61 2 9876 5432",
        "+34 612 345 678",
        "+39 06 6982 1234",
        "+31 20 794 6095",
        "+46 8 123 456 78",
        "+1 (212) 555-0147",
        "+86 10 6552 9988",
        "+91 98765 43210",
        "+55 11 91234-5678",
        "+27 21 123 4567",
        "+353 1 234 5678",
        "+41 44 668 18 00",
        "(312) 555-0123",
        "+14155552671",
    ]
    for p in phones:
        out.append(("phone", "-", p))
    for text in [
        "call me back on +44 7700 900123 after 6pm",
        "customer asked for a call at (646) 555-0178",
        "Tel. 030 1234 5678 (office)",
        "wrong number given: +1 202-555-0181",
        "whatsapp +49 151 23456789 please",
    ]:
        out.append(("phone", "note", text))
    cards: list[str] = []
    for prefix, length in [("4", 16)] * 8 + [
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("2720", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("65", 16),
        ("3530", 16),
        ("36", 14),
        ("62", 16),
        ("4", 13),
        ("4", 19),
    ]:
        cards.append(luhn_complete(prefix, length))
    for i, c in enumerate(cards):
        if len(c) == 16 and i % 3 == 0:
            out.append(("payment_card", "-", group(c, [4, 4, 4, 4], " ")))
        elif len(c) == 16 and i % 3 == 1:
            out.append(("payment_card", "-", group(c, [4, 4, 4, 4], "-")))
        elif len(c) == 15:
            out.append(("payment_card", "-", group(c, [4, 6, 5], " ")))
        else:
            out.append(("payment_card", "card", c))
    for _ in range(8):
        c = luhn_complete("4", 16)
        out.append(("payment_card", "note", f"paid with {group(c, [4, 4, 4, 4], ' ')} yesterday"))
    for _ in range(4):
        out.append(("payment_card", "-", luhn_complete("5" + str(rng.randint(1, 5)), 16)))
    for country in IBAN_FORMATS:
        value = iban(country)
        out.append(("bank_account", "-", value))
        out.append(("bank_account", "-", spaced(value)))
    for country in ("DE", "GB", "FR"):
        out.append(("bank_account", "note", f"please refund to {spaced(iban(country))} asap"))
    for _ in range(15):
        octets = [
            rng.randint(11, 223),
            rng.randint(0, 255),
            rng.randint(0, 255),
            rng.randint(1, 254),
        ]
        ip = ".".join(map(str, octets))
        out.append(("ip", "-", ip))
    for ip in [
        "203.0.113.79",
        "198.51.100.23",
        "8.8.4.4",
        "10.0.0.12",
        "192.168.1.20",
        "172.16.254.1",
        "100.64.12.9",
        "81.2.69.160",
    ]:
        out.append(("ip", "-", ip))
    for text in ["login from 203.0.113.7 blocked", "X-Forwarded-For: 198.51.100.4, 10.1.2.3"]:
        out.append(("ip", "note", text))
    v6 = [
        "2001:db8:85a3::8a2e:370:7334",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1ff:fe23:4567:890a",
        "2a00:1450:4001:82b::200e",
        "2606:4700:4700::1111",
        "2001:db8::1",
        "::ffff:203.0.113.9",
        "2001:db8:0:0:1:0:0:1",
        "2620:fe::fe",
        "2a02:26f0:fd::5c7a:a1f",
    ]
    for ip in v6:
        out.append(("ip", "-", ip))
    for _ in range(8):
        groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        groups[0] = "2001"
        out.append(("ip", "-", ":".join(groups)))
    out.append(("ip", "note", "client [2001:db8::42] connected"))
    out.append(("ip", "note", "peer 2a00:1450:4001:82b::200e dropped"))
    for _ in range(16):
        value = ssn()
        out.append(("government_id", "-", value if rng.random() < 0.7 else value.replace("-", " ")))
    for text in ["SSN 219-09-9999 on file", "my ssn is 536-22-1234"]:
        out.append(("government_id", "note", text))
    for _ in range(10):
        header = b64({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
        payload = b64(
            {
                "sub": str(rng.randint(10**6, 10**9)),
                "iat": rng.randint(10**9, 2 * 10**9),
                "email": "x@example.com",
            }
        )
        sig = rand(ALNUM + "-_", 43)
        out.append(("credentials", "-", f"{header}.{payload}.{sig}"))
    out.append(("credentials", "note", "Authorization: Bearer " + rand(ALNUM, 40)))
    keys = [
        "sk_live_" + rand(ALNUM, 24),
        "sk_test_" + rand(ALNUM, 24),
        "rk_live_" + rand(ALNUM, 24),
        "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
        "ASIA" + rand(string.ascii_uppercase + string.digits, 16),
        "ghp_" + rand(ALNUM, 36),
        "gho_" + rand(ALNUM, 36),
        "github_pat_" + rand(ALNUM + "_", 60),
        "xoxb-" + "-".join(rand(string.digits, 12) for _ in range(2)) + "-" + rand(ALNUM, 24),
        "AIza" + rand(ALNUM + "_-", 35),
        "glpat-" + rand(ALNUM, 20),
        "npm_" + rand(ALNUM, 36),
        "SG." + rand(ALNUM, 22) + "." + rand(ALNUM, 43),
        "sk-proj-" + rand(ALNUM, 48),
        "-----BEGIN RSA PRIVATE KEY-----",
    ]
    for k in keys:
        out.append(("credentials", "-", k))
    out.append(("credentials", "note", "oops, pasted my key sk_live_" + rand(ALNUM, 24) + " here"))
    return out


def negatives() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    import uuid

    for _ in range(15):
        out.append(("-", "-", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
    for _ in range(5):
        out.append(("-", "-", uuid.UUID(int=rng.getrandbits(128), version=4).hex))
    for _ in range(12):
        # Luhn-valid 16-digit ids with a card issuer prefix, under id keys
        out.append(
            (
                "-",
                rng.choice(
                    ["order_id", "transaction_id", "invoiceNumber", "tracking_no", "checkout_id"]
                ),
                luhn_complete("4", 16),
            )
        )
    out += [
        ("-", "-", v)
        for v in [
            "ord_8f3k2m9q",
            "ORD-2026-000123",
            "o-100234",
            "INV-2026-11-0042",
            "1000234567",
            "cart_7c1e5b",
            "chk-55a1e0",
            "A-1029-3384",
            "PO#4471-22",
            "BK-20261129-0007",
            "SKU-BOOK-9780262033848",
            "SKU-TSHIRT-RED-XL",
            "978-0-262-03384-8",
            "0-262-03384-4",
            "9780262033848",
            "B07XJ8C8F5",
            "1Z999AA10123456784",
            "MSKU1234567",
            "EAN 4006381333931",
            "UPC 036000291452",
            "p-3001",
            "usr_100000",
            "cus_N8Xb2kF4a1",
            "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "evt_1NG8Du2eZvKYlo2CZxQ2bW0a",
            "ch_3LmNo2eZvKYlo2C1ABCDEFGH",
            "2026-11-29T10:00:00.000Z",
            "2026-11-29T10:00:00+01:00",
            "2026-11-29",
            "29/11/2026",
            "11/29/2026",
            "2026-11-29 10:00:00",
            "10:00:00",
            "08:00-17:00",
            "T08:00:28.000Z",
            "1732874400",
            "1732874400123",
            "20261129100000",
            "Sun, 29 Nov 2026 10:00:00 GMT",
            "1.2.3.4",
            "2.4.0",
            "v2.4.0.1",
            "10.15.7",
            "4.2.1.0",
            "17.5.1",
            "1.0.0-beta.2",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 "
            "Safari/605.1.15",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "Chrome/120.0.6099.109 Safari/537.36",
            "analytics-python/2.4.0",
            "build 2026.11.29.3",
            "255.255.255.0",
            "0.0.0.0",
            "127.0.0.1",
            "$1,299.00",
            "1,299.00",
            "EUR 1.299,00",
            "49.99",
            "USD 12345.67",
            "1 299,00 €",
            "£2,499.99",
            "0.0825",
            "-122.4194",
            "37.7749,-122.4194",
            "https://shop.example.com/products/p-3001",
            "https://shop.example.com/?utm_source=newsletter",
            "https://cdn.example.com/img/icon@2x.png",
            "android-app://com.example.shop/https/shop",
            "https://example.com/search?q=usb+c+cable&page=2",
            "/checkout/step-2",
            "https://example.com/orders/1000234567/receipt",
            "http://localhost:8080/health",
            "https://api.example.com/v1/users/usr_100000",
            "https://example.com/#/cart",
            "icon@2x.png",
            "logo@3x.webp",
            "git@github.com:org/repo.git",
            "@scope/package",
            "npm install @babel/core@7.23.0",
            "user@localhost",
            "@channel please review",
            "a:hover",
            "16:9",
            "std::vector<int>",
            "0x7ffee3b5c9a8",
            "::",
            "::1",
            "00:1a:2b:3c:4d:5e",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "d41d8cd98f00b204e9800998ecf8427e",
            "9fceb02d0ae598e95dc970b74767f19372d61af8",
            "dGhpcyBpcyBub3QgYSBzZWNyZXQ=",
            "eyJwYWdlIjoyLCJzaXplIjo1MH0",
            "eyJhbGciOiJIUzI1NiJ9",
            "pk_live_51HxYzAbCdEfGhIjKlMnOpQr",
            "AKIAEXAMPLE",
            "sk_live_",
            "sk-short",
            "token_type_hint",
            "Bearer",
            "bearer token expired",
            "000-12-3456",
            "666-12-3456",
            "123-45-6789",
            "078-05-1120",
            "219-00-9999",
            "219-09-0000",
            "111-11-1111",
            "987-65-4320",
            "219 09-9999",
            "4242 4242 4242 4241",
            "1234 5678 9012 3456",
            "0000 0000 0000 0000",
            "DE00 3704 0044 0532 0130 00",
            "GB00WEST12345698765432",
            "XX89370400440532013000",
            "ISBN 978-3-16-148410-0",
            "+1",
            "+49",
            "555-1234",
            "12-34-56",
            "1-2-3-4-5-6-7-8",
            "12345",
            "123456",
            "1234567",
            "99999999",
            "1000000",
            "2026",
            "3.14159265358979",
            "6.02214076e23",
            "1e-9",
            "NaN",
            "Infinity",
        ]
    ]
    out += [
        ("-", "-", v)
        for v in [
            "usb c cable",
            "Introduction to Algorithms",
            "MIT Press",
            "Books",
            "Electronics > Cables",
            "running shoes size 42",
            "gift for mom",
            "iPhone 15 Pro Max 256GB",
            "Samsung Galaxy S24",
            "4K HDMI 2.1 cable 2m",
            "Size 10.5 US / 44.5 EU",
            "Pack of 3 (3x 100ml)",
            "Nintendo Switch OLED",
            "Order shipped in 2-3 business days",
            "Room 101, 2nd floor",
            "Summer Sale 2026 - up to 50% off",
            "free shipping over 49.99",
            "checkout_started",
            "Product Viewed",
            "Signed Up",
            "en-GB",
            "Europe/Berlin",
            "America/Los_Angeles",
            "WIFI",
            "cellular",
            "iOS 17.5.1",
            "Android 14; Pixel 8",
            "com.example.shop",
            "SUMMER-2026",
            "WELCOME10",
            "BLACKFRIDAY2026",
            "REF-ABCD-1234",
            "The quick brown fox jumps over the lazy dog",
            "Temperature 21.5 C at 10:30",
            "Version 2.4.0 (build 1187)",
            "Chapter 3.2.1.4",
            "table 4.1.2.3",
            "section 10.2.3.4 of the manual",
            "v1.2.3.4-rc1",
            "Call of Duty: Modern Warfare III",
            "12:30 PM - 1:45 PM",
            "9:00 AM",
            "ISO 8601",
            "RFC 3339",
            "HTTP/2 200",
            "x86_64",
            "arm64-v8a",
            "SG-2000 guitar",
            "AK-47 replica",
            "model 2024-05",
            "lot 12 345 678",
            "batch 2026-11-29-0001",
            "invoice total 1,234.56 EUR",
            "ratio 1:2:3:4",
            "score 98.6",
            "95th percentile latency 120.5 ms",
            "zip code required",
            "email me later",
            "phone support hours 9-17",
        ]
    ]
    return out


# -- issue 16: formats the detectors missed, from a second seed (earlier rows unchanged) --
rng16 = random.Random(16)
NEW_IBAN = {  # countries the frozen length table lacked, BBAN structure per the registry
    "LY": "21n", "RU": "29n", "OM": "3n16n", "MN": "16n", "NI": "4a20n", "YE": "4a22n",
    "SO": "19n", "FK": "2a12n", "BI": "23n", "DJ": "23n", "SD": "14n", "MC": "23n",
    "AL": "24n", "BE": "12n", "NL": "4a10n",
}  # fmt: skip


def bban16(fmt: str) -> str:
    out, num = [], ""
    for ch in fmt:
        if ch.isdigit():
            num += ch
            continue
        pool = string.digits if ch == "n" else string.ascii_uppercase
        out.append("".join(rng16.choice(pool) for _ in range(int(num))))
        num = ""
    return "".join(out)


def iban16(country: str) -> str:
    b = bban16(NEW_IBAN[country])
    check = 98 - int("".join(str(int(c, 36)) for c in b + country + "00")) % 97
    return f"{country}{check:02d}{b}"


def rand16(pool: str, n: int) -> str:
    return "".join(rng16.choice(pool) for _ in range(n))


def positives16() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for _ in range(8):
        area = rng16.choice([n for n in range(1, 900) if n != 666])
        value = f"{area:03d}.{rng16.randint(1, 99):02d}.{rng16.randint(1, 9999):04d}"
        out.append(("government_id", "-", value))
    out.append(("government_id", "note", "ssn 219.09.9999 per the form"))
    for country in NEW_IBAN:
        value = iban16(country)
        out.append(("bank_account", "-", value))
        if country in ("AL", "BE", "NL", "RU", "MC"):
            out.append(
                ("bank_account", "-", "-".join(value[i : i + 4] for i in range(0, len(value), 4)))
            )
    for email in [
        "a@xn--d1acufc.xn--p1ai",
        "kontakt@xn--mller-kva.xn--tckwe",
        "info@shop.xn--p1ai",
        "user.name@xn--80ak6aa92e.xn--p1ai",
    ]:
        out.append(("email", "-", email))
    out.append(("email", "note", "write to hello@xn--d1acufc.xn--p1ai today"))
    tokens = [
        "xapp-1-A"
        + rand16(string.ascii_uppercase + string.digits, 10)
        + "-"
        + rand16(string.digits, 13)
        + "-"
        + rand16("0123456789abcdef", 64),
        "xoxe-1-" + rand16(ALNUM, 40),
        "xoxe.xoxp-1-" + rand16(ALNUM, 40),
        "xoxo-" + rand16(string.digits, 10) + "-" + rand16(ALNUM, 24),
        "https://hooks.slack.com/services/T"
        + rand16(string.ascii_uppercase + string.digits, 8)
        + "/B"
        + rand16(string.ascii_uppercase + string.digits, 10)
        + "/"
        + rand16(ALNUM, 24),
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "rk_live_" + rand16(ALNUM, 32),
        "rk_test_" + rand16(ALNUM, 24),
        "AIza" + rand16(ALNUM + "_-", 35),
    ]
    for t in tokens:
        out.append(("credentials", "-", t))
    out.append(
        (
            "credentials",
            "note",
            "webhook is https://hooks.slack.com/services/T"
            + rand16(string.ascii_uppercase, 8)
            + "/B"
            + rand16(string.ascii_uppercase, 10)
            + "/"
            + rand16(ALNUM, 24)
            + " do not share",
        )
    )
    return out


def negatives16() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for country in ("BE", "NL", "AL", "LY", "MN"):
        good = iban16(country)
        broken = good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]
        out.append(("-", "-", " ".join(broken[i : i + 4] for i in range(0, len(broken), 4))))
    out += [
        ("-", "-", "AIza" + rand16(ALNUM, 40)),  # longer than a Google key
        ("-", "-", "build-AIza" + rand16(ALNUM, 35) + "x"),
        ("-", "-", "-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        ("-", "-", "-----BEGIN CERTIFICATE-----"),
        ("-", "-", "https://hooks.slack.com/"),
        ("-", "-", "rk_live_"),
        ("-", "-", "xn--p1ai"),
        ("-", "-", "version 123.45.6789-rc1"),
        ("-", "-", "1.219.09.9999"),
    ]
    return out


# -- opt-in national formats (pii.phone_regions, pii.id_countries), measured with them on --
OPTIN_REGIONS = ["DE", "IN", "TR", "BR", "JP", "ES", "IT", "PH", "FR", "GB"]
OPTIN_COUNTRIES = ["de", "fr", "es", "it", "nl", "be", "pl", "se", "gb"]


def digits16(n: int) -> str:
    return rand16(string.digits, n)


def bsn(body: str) -> str:  # Dutch BSN: 11-proof, the last weight -1
    total = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True))
    found = [body + str(c) for c in range(10) if (total - c) % 11 == 0]
    return found[0] if found else bsn(str(int(body) + 1))


def dni(number: int) -> str:  # Spanish DNI: letter of the number mod 23
    return f"{number:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[number % 23]


def pesel(body: str) -> str:  # Polish PESEL: weights 1 3 7 9, check (10 - sum) mod 10
    total = sum(int(d) * w for d, w in zip(body, [1, 3, 7, 9] * 3, strict=False))
    return body + str((10 - total % 10) % 10)


def nir(body: str) -> str:  # French NIR: key 97 - number mod 97
    return body + f"{97 - int(body) % 97:02d}"


def idnr(body: str) -> str:  # German IdNr: ISO 7064 MOD 11,10
    product = 10
    for d in body:
        total = (int(d) + product) % 10 or 10
        product = (total * 2) % 11
    return body + str((11 - product) % 10)


def optin() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    phones = [  # national formats, in each numbering plan's mobile or geographic ranges
        lambda: f"0151 {digits16(8)}",
        lambda: f"030 {digits16(4)} {digits16(4)}",
        lambda: f"9{digits16(4)} {digits16(5)}",
        lambda: f"0212 {digits16(3)} {digits16(2)} {digits16(2)}",
        lambda: f"0532 {digits16(3)} {digits16(2)} {digits16(2)}",
        lambda: f"(11) 9{digits16(4)}-{digits16(4)}",
        lambda: f"03-{digits16(4)}-{digits16(4)}",
        lambda: f"090-{digits16(4)}-{digits16(4)}",
        lambda: f"6{digits16(2)} {digits16(2)} {digits16(2)} {digits16(2)}",
        lambda: f"06 {digits16(4)} {digits16(4)}",
        lambda: f"0917 {digits16(3)} {digits16(4)}",
    ]
    for make in phones:
        for _ in range(3):
            out.append(("phone", "-", make()))
    out.append(("phone", "note", f"Rückruf bitte unter 0151 {digits16(8)} danke"))
    out.append(("phone", "note", f"arayın 0212 {digits16(3)} {digits16(2)} {digits16(2)} lütfen"))
    for _ in range(4):
        out.append(("government_id", "-", bsn(str(rng16.randint(10**7, 10**8 - 1)))))
        out.append(("government_id", "-", dni(rng16.randint(10**7, 10**8 - 1))))
        year, month, day = rng16.randint(50, 99), rng16.randint(1, 12), rng16.randint(1, 28)
        out.append(("government_id", "-", pesel(f"{year:02d}{month:02d}{day:02d}{digits16(4)}")))
        body = f"{rng16.choice('12')}{year:02d}{month:02d}{rng16.randint(1, 95):02d}{digits16(6)}"
        value = nir(body)
        out.append(
            (
                "government_id",
                "-",
                " ".join(
                    [
                        value[0],
                        value[1:3],
                        value[3:5],
                        value[5:7],
                        value[7:10],
                        value[10:13],
                        value[13:],
                    ]
                ),
            )
        )
        ten = rng16.sample("123456789", 1) + rng16.sample("0123456789", 10)
        ten = list(dict.fromkeys(ten))[:9]  # nine distinct digits, the first not 0
        ten.insert(rng16.randint(1, 9), rng16.choice(ten))  # one digit twice, one missing
        out.append(("government_id", "-", idnr("".join(ten))))
    out.append(("government_id", "note", f"DNI {dni(54362315)} del cliente"))
    out.append(("government_id", "-", "RSSMRA85T10A562S"))
    out.append(("government_id", "-", "85.07.30-033.28"))
    out.append(("government_id", "-", "811228-9874"))
    out.append(("government_id", "-", "943 476 5919"))
    negatives = [
        "1732874400",
        "1732874400123",
        "20261129100000",
        "ORD-2026-000123",
        "INV-2026-11-0042",
        "SKU-BOOK-9780262033848",
        "978-0-262-03384-8",
        "1Z999AA10123456784",
        "v10.15.7",
        "2026-11-29T10:00:00.000Z",
        "25318bf2-7b88-4975-9414-f6b506d002db",
        "$1,299.00",
        "lot 12 345 678",
        "model 2024-05",
        "score 98.6",
        "Chrome/120.0.6099.109",
        "build 2026.11.29.3",
        "+++ 12 +++",
        "batch 2026-11-29-0001",
        "EUR 1.299,00",
    ]
    for value in negatives:
        out.append(("-", "-", value))
    for _ in range(12):  # ids under id keys: a checksum passes one time in ten or eleven
        key = rng16.choice(["order_id", "invoice_number", "transaction_id", "tracking_no"])
        out.append(("-", key, digits16(rng16.choice([9, 10, 11, 13]))))
    return out


def write(name: str, rows: list[tuple[str, str, str]]) -> None:
    for _label, _key, value in rows:
        assert "\t" not in value and "\n" not in value, value
    text = "".join(f"{label}\t{key}\t{value}\n" for label, key, value in rows)
    (HERE / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    pos, neg = positives() + positives16(), negatives() + negatives16()
    write("positives.tsv", pos)
    write("negatives.tsv", neg)
    write("optin.tsv", optin())
    print(f"{len(pos)} positives, {len(neg)} negatives")
