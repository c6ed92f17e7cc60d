"""The plan format, published as a JSON Schema (``trackplan schema`` prints it).

Editors use it to check plan files; the loader checks every file against it first.
Sections owned by other backends (``pii``, ``destinations``, ``consent``, ``lint``,
``policy``) are described here too, so there is one document for the whole format.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PLAN_FORMAT_SCHEMA",
    "RULE_SCHEMA",
    "EVENT_FILE_SCHEMA",
    "EDITOR_SCHEMA_IDS",
    "editor_schema",
]

_SCHEMA_VALUE: dict[str, Any] = {
    "description": "A JSON Schema (draft-07 or 2020-12), checked against its meta-schema.",
    "type": ["object", "boolean"],
}

_CALL_CONTROLS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "unplanned_events": {
            "enum": ["allow", "block"],
            "description": "Track calls whose event is not in the plan: forward or block.",
        },
        "unplanned_properties": {
            "enum": ["allow", "omit", "block"],
            "description": "Properties or traits the rule does not name: forward, omit "
            "them (recorded in context.protocols.omitted), or block the event.",
        },
        "violations": {
            "enum": ["allow", "omit", "block"],
            "description": "Schema violations: forward with the violations recorded, omit the "
            "offending top-level properties, or block the event.",
        },
        "common_violations": {
            "enum": ["allow", "omit", "block"],
            "description": "Violations of the common rule.",
        },
    },
}

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One rule: the schema of a track event version, or of another call type.",
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "The event name on the wire."},
        "version": {
            "type": "integer",
            "minimum": 1,
            "description": "The event version; context.protocols.event_version selects it.",
        },
        "description": {"type": "string"},
        "properties": {
            **_SCHEMA_VALUE,
            "description": "JSON Schema of the call's properties (track, page, screen).",
        },
        "traits": {**_SCHEMA_VALUE, "description": "JSON Schema of traits (identify, group)."},
        "call": {
            "type": "object",
            "description": "JSON Schema applied to the whole call: context, messageId, ...",
        },
        "labels": {"type": "object", "description": "Segment labels, kept as they are."},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}

EVENT_FILE_SCHEMA: dict[str, Any] = {
    **RULE_SCHEMA,
    "required": ["name"],
    "description": "A file under events/: one track event version.",
}

_PII_CATEGORIES = [
    "email", "phone", "name", "address", "postal_code", "birthdate", "ip", "device_id",
    "government_id", "payment_card", "bank_account", "precise_location", "health",
    "credentials", "free_text", "other",
]  # fmt: skip

_PII_ACTIONS = ["reject", "drop", "redact", "hash", "mask", "allow"]

_PII: dict[str, Any] = {
    "type": "object",
    "description": "PII enforcement. Any schema in a rule (a property, a trait, array items, "
    "context.ip, context.traits.*) declares PII with the vendor keyword x-pii: a category "
    "string (x-pii: email; the plan's default action for the category applies), an object "
    "{category, action, basis} (basis: the lawful basis an allow records), or false (not "
    "PII: detectors leave it alone). Actions: reject blocks the event; drop omits the field; "
    "redact writes a fixed marker of the same JSON type (strings '[REDACTED]', numbers 0, "
    "booleans false, arrays [], objects {}, null stays null); hash writes HMAC-SHA256 (hex) "
    "of the value after normalisation (emails trimmed and lower-cased, phones in E.164 "
    "with default_region, else digits keeping a leading +; government ids without "
    "separators, upper-cased; other strings trimmed) under the key in hash_key_env, read "
    "at compile time (a missing key is a compile error, never an unkeyed hash); mask keeps "
    "part (email: the domain; IPv4: first three octets; IPv6: the /48; card and bank "
    "account: the last four; phone: the last two digits; others: the first character then "
    "****); allow passes the value. Declarations apply inside arrays and nested objects; "
    "identify traits apply under context.traits too. Free text declared allow is still "
    "scanned by the detectors.",
    "x-categories": _PII_CATEGORIES,
    "x-actions": _PII_ACTIONS,
    "additionalProperties": False,
    "properties": {
        "hash_key_env": {
            "type": "string",
            "minLength": 1,
            "default": "TRACKPLAN_HASH_KEY",
            "description": "Environment variable holding the HMAC key (never in the plan).",
        },
        "defaults": {
            "type": "object",
            "description": "Action per category where x-pii names no action (redact where "
            "unset).",
            "additionalProperties": {"enum": _PII_ACTIONS},
        },
        "categories": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "The plan's own categories, beside the built-in ones.",
        },
        "default_region": {
            "type": "string",
            "pattern": "^[A-Za-z]{2}$",
            "description": "Region (ISO 3166-1 alpha-2) of phone numbers written without a "
            "country code: hash turns every phone into E.164 first (+442079460958), so "
            "spellings of one number join; a value that does not parse is hashed as its "
            "digits and reported. Without it only numbers with + or 00 are rewritten.",
        },
        "phone_regions": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
            "description": "Also detect phone numbers written in these regions' national "
            "formats (opt-in; valid numbers of the region's numbering plan only).",
        },
        "id_countries": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
            "description": "Also detect these countries' national identity numbers "
            "(checksum-bearing formats, checked by python-stdnum: at be bg ch cz de dk ee es "
            "fi fr gb gr hr ie it lt nl no pl pt ro se si sk us).",
        },
        "client_side": {
            "type": "boolean",
            "description": "Generated typed clients apply the declared actions themselves "
            "before sending (x-pii-client-side: true on a rule asks it for that rule only).",
        },
        "detection": {
            "description": "Detectors on values no declaration covers (email, phone, payment "
            "card with Luhn, IBAN with mod-97, IPv4, IPv6, US SSN, JWT and API keys) and "
            "key-name matchers (Segment Privacy Portal's default list). On for every plan, "
            "with or without a pii section; off (or false, or enabled: false) turns them off, "
            "and trackplan lint warns about it (rule piiDetectionOff).",
            "oneOf": [
                {"const": False},
                {"const": "off"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enabled": {"type": "boolean", "default": True},
                        "values": {"type": "boolean", "default": True,
                                   "description": "Value detectors."},
                        "key_names": {"type": "boolean", "default": True,
                                      "description": "Key-name matchers."},
                        "context": {
                            "type": "array",
                            "items": {"type": "string"},
                            "default": ["ip", "traits"],
                            "description": "Context fields the detectors cover ('*': all "
                            "of context); the payload is always covered.",
                        },
                        "action": {
                            "enum": [*_PII_ACTIONS, "default"],
                            "default": "default",
                            "description": "What a detection does: 'default' (the "
                            "category's action in defaults, redact where unset), or an "
                            "action every detection gets at least (a stricter category "
                            "default still applies); each is reported as a PII violation.",
                        },
                    },
                },
            ],
        },
    },
}

_LINT_RULES = [
    "numericMinimumMaximum", "stringMinMaxLength", "arrayMinMaxItems", "numericProperties",
    "stringProperties", "arrayProperties", "objectProperties", "requiredPropertiesExist",
    "rootObject", "stringMaxLengthRange", "unknownFormats", "numericMinMax", "stringLength",
    "optionalNull", "typedProperties", "eventNameCase", "propertyNameCase",
    "eventNameCollision", "propertyNameCollision", "conflictingPropertyTypes",
    "eventDescription", "propertyDescription", "piiStatus", "piiUndeclared", "piiAnnotation",
    "piiDetectionOff",
]  # fmt: skip
_CASES = ["title", "sentence", "lower", "snake", "camel", "pascal", "kebab", "constant"]
_CLASSES = ["MODEL", "REVISION", "ADDITION", "PATCH"]

_LINT: dict[str, Any] = {
    "type": "object",
    "description": "trackplan lint settings (rules in x-rules; `trackplan lint --help`). A "
    "property declares its PII status with x-pii: <category> or {category, action}, or is "
    "marked not PII with x-pii: false.",
    "x-rules": _LINT_RULES,
    "additionalProperties": False,
    "properties": {
        "skip": {"type": "array", "items": {"enum": _LINT_RULES}, "description": "Rules not run."},
        "levels": {
            "type": "object",
            "propertyNames": {"enum": _LINT_RULES},
            "additionalProperties": {"enum": ["error", "warning", "info", "off"]},
            "description": "Level per rule id; errors fail lint, warnings only with --strict.",
        },
        "event_case": {"enum": _CASES, "description": "Event names (default title: "
                       "Segment's 'Object Action' Title Case)."},
        "property_case": {"enum": ["auto", *_CASES], "description": "Property names "
                          "(default auto: the convention most of the plan's names use)."},
        "optional_null": {"type": "boolean", "description": "Optional properties must allow "
                          "null (rule optionalNull; default false)."},
    },
}

_POLICY: dict[str, Any] = {
    "type": "object",
    "description": "Version-bump policy `trackplan diff` enforces (exit 1 when violated).",
    "additionalProperties": False,
    "properties": {
        "new_version_for": {
            "enum": [*_CLASSES, "never"],
            "description": "The least change class (SchemaVer, after Snowplow) that needs a "
            "new event version: a new event file with version+1 beside the old one, or the "
            "version number increased. Default MODEL; `never` turns the check off.",
        },
        "removed_events": {
            "enum": ["allow", "fail"],
            "description": "Whether removing an event from the plan fails diff (default allow).",
        },
    },
}

_FORMS = ["allow", "sha256", "hash", "mask", "redact", "drop", "reject"]

_DESTINATION: dict[str, Any] = {
    "type": "object",
    "description": "A destination events are routed to (`trackplan route`, `trackplan report "
    "dpia`). Consent categories it needs must all be granted (Segment's semantics).",
    "required": ["name", "legal_basis", "region"],
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "Unique; the key of the "
                 "destination in an event's `integrations` object."},
        "vendor": {"type": "string", "description": "Who processes the data."},
        "purpose": {"type": "string", "description": "Why (record of processing)."},
        "consent": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                    "description": "Consent category ids (declared under consent.categories); "
                    "empty: the destination does not depend on consent."},
        "legal_basis": {"enum": ["consent", "contract", "legal_obligation", "vital_interests",
                                 "public_task", "legitimate_interest"],
                        "description": "GDPR Art. 6(1) lawful basis."},
        "region": {"type": "string", "pattern": "^[A-Za-z]{2,3}$", "description": "Where the "
                   "data is processed: EU, EEA or an ISO 3166 country code (US, GB, ...)."},
        "transfer": {"enum": ["adequacy", "scc", "dpf", "none"], "description": "Transfer "
                     "mechanism outside the EEA: adequacy decision, standard contractual "
                     "clauses, EU-US Data Privacy Framework, or none (default)."},
        "dpa": {"type": "boolean", "description": "A data processing agreement is signed."},
        "pii": {"type": "object", "propertyNames": {"enum": _PII_CATEGORIES},
                "additionalProperties": {"enum": _FORMS},
                "description": "PII category -> form the destination may receive it in; it "
                "can only tighten the plan's action (allow < hash < mask < redact < drop < "
                "reject: reject keeps the event away). sha256 is the plain, unkeyed SHA-256 "
                "of the value normalised as ad platforms document it (email trimmed and "
                "lower-cased, phone in E.164), made from the raw value where the plan hashes "
                "or allows it, for destinations whose matching needs it (the report flags "
                "it). Unlisted categories are dropped; without this map the destination gets "
                "the plan's forms (a report gap)."},
    },
}

_CONSENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Consent categories, read from context.consent.categoryPreferences.",
    "properties": {
        "categories": {
            "type": "object",
            "description": "Category id -> description, or {description, ids}: ids are "
            "what a consent management platform sends for the category (OneTrust C0002, "
            "Cookiebot statistics). Ids are case-sensitive, do not start with a digit and "
            "have fewer than 35 characters (Segment's rules).",
            "propertyNames": {"pattern": "^[^0-9]", "minLength": 1, "maxLength": 34},
            "additionalProperties": {"anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": False, "properties": {
                    "description": {"type": "string"},
                    "ids": {"type": "array", "items": {"type": "string", "minLength": 1}},
                }},
            ]},
        },
        "preset": {"enum": ["onetrust", "cookiebot", "usercentrics"],
                   "description": "The CMP whose ids the usual category names get "
                   "(analytics, advertising, functional, ...) unless a category lists ids."},
    },
}

PLAN_FORMAT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:trackplan:plan-format:1",
    "title": "trackplan plan file",
    "description": "plan.yaml (or a single-file plan). Sibling files named after a section "
    "(common.yaml, identify.yaml, group.yaml, page.yaml, screen.yaml, definitions.yaml, "
    "destinations.yaml) and events/*.yaml hold the same content split for review.",
    "type": "object",
    "required": ["name"],
    "properties": {
        "trackplan": {"const": 1, "description": "Plan format version."},
        "name": {"type": "string", "minLength": 1},
        "version": {"type": ["string", "integer"], "description": "The plan's own version."},
        "description": {"type": "string"},
        "draft": {
            "enum": ["draft-07", "2020-12"],
            "description": "Default JSON Schema draft of rules without $schema (draft-07).",
        },
        "controls": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: _CALL_CONTROLS for k in ("track", "identify", "group", "page", "screen", "alias")
            },
        },
        "definitions": {
            "type": "object",
            "additionalProperties": _SCHEMA_VALUE,
            "description": "Shared schemas, reached as {$ref: '#/definitions/<name>'}.",
        },
        "common": {**RULE_SCHEMA, "description": "Applied to every call (use `call`)."},
        "identify": RULE_SCHEMA,
        "group": RULE_SCHEMA,
        "page": RULE_SCHEMA,
        "screen": RULE_SCHEMA,
        "events": {"type": "array", "items": EVENT_FILE_SCHEMA},
        "pii": _PII,
        "destinations": {"type": "array", "items": _DESTINATION},
        "consent": _CONSENT,
        "lint": _LINT,
        "policy": _POLICY,
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}


#: Stable identifiers of the editor schemas (``trackplan schema --kind plan|event``); the
#: example plan's files name them in a ``yaml-language-server: $schema=`` line.
EDITOR_SCHEMA_IDS = {
    "plan": "https://trackplan.dev/schemas/1/plan.json",
    "event": "https://trackplan.dev/schemas/1/event.json",
}
_DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def editor_schema(kind: str) -> dict[str, Any]:
    """The plan format for editors, as JSON Schema draft-07 (what YAML editors speak).

    ``kind``: ``plan`` (plan.yaml or a single-file plan) or ``event`` (a file under
    ``events/``). The format uses no keyword draft-07 lacks, so the content is the one the
    loader checks with; only ``$schema`` and a stable ``https`` ``$id`` are set.

    >>> editor_schema("event")["$id"]
    'https://trackplan.dev/schemas/1/event.json'
    """
    if kind not in EDITOR_SCHEMA_IDS:
        raise ValueError(f"unknown schema kind {kind!r}: plan or event")
    body = PLAN_FORMAT_SCHEMA if kind == "plan" else EVENT_FILE_SCHEMA
    title = "trackplan plan file" if kind == "plan" else "trackplan event file"
    rest = {k: v for k, v in body.items() if k not in ("$schema", "$id", "title")}
    return {"$schema": _DRAFT_07, "$id": EDITOR_SCHEMA_IDS[kind], "title": title, **rest}
