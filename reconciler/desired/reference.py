"""The YAML reference for operators (``docs/yaml-reference.md``), rendered from the JSON Schema.

Every key of both file kinds -- ``rpki.yaml`` and ``cas/**/*.yaml`` -- with its type, default, constraints
and description, all taken from :func:`reconciler.desired.schema.json_schema`, so that the reference, the
schema editors validate with, and the loader cannot disagree. Regenerate the committed page with::

    python -m reconciler.desired.reference > docs/yaml-reference.md
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.desired import routerkeys
from reconciler.desired.schema import json_schema
from reconciler.rpki import aspa

REGENERATE = "python -m reconciler.desired.reference > docs/yaml-reference.md"

Schema = dict[str, Any]


@dataclass(frozen=True)
class _Section:
    """One object of the schema as it appears in a file: where (``timing``, ``roas[]``) and its schema."""

    path: str
    definition: Schema


@dataclass(frozen=True)
class _FileKind:
    title: str
    label: str  # the prefix of this kind's headings, so that both kinds' `safety` get their own anchor
    definition: str
    where: str
    rules: tuple[str, ...]


_FILE_KINDS = (
    _FileKind(
        title="rpki.yaml",
        label="rpki.yaml",
        definition="RpkiFile",
        where="`REPO/rpki.yaml`, exactly one per desired-state repository.",
        rules=(
            "Each signer has exactly the keys its `type` needs (table below); an `offline` signer's "
            "`key_signer` names another signer that is not itself offline.",
            "A `file` signer's `directory` lies outside the desired-state directory (keys are never "
            "committed).",
            "Each `*_renew_before` of `timing` must be shorter than its validity.",
            "`audit_log` names a file, not a directory.",
            "Publisher handles are unique; each `request` is a readable RFC 8183 publisher_request inside "
            "the repository. With publishers declared, `serve.signer` names a signer that is not offline, "
            "and no CA is named `publishers` or `repository`.",
        ),
    ),
    _FileKind(
        title="CA files",
        label="CA file",
        definition="CaFile",
        where="Every `*.yaml` under `REPO/cas/`, at any depth; one certificate authority per file. The "
        "file's name and directory carry no meaning.",
        rules=(
            "Exactly one CA is the root: either the one with `trust_anchor: true`, or the one whose "
            "`parent` is external (`response:` names the parent_response a registry or another operator "
            "sent); every other CA names an existing `parent`, and the parents form no cycle.",
            "`repository` goes only with an external parent, and then rpki.yaml's publication has no "
            "`rsync_base` or `rrdp_base` (the repository_response says where objects are served); a CA "
            "under an external parent does not use an `offline` signer.",
            "A CA holds at least one resource, inside its parent's; every ROA prefix lies inside its "
            "CA's resources.",
            "A ROA's `max_length` is at least the prefix length and at most 32 (IPv4) or 128 (IPv6).",
            "CA names are unique across all files; one CA lists an AS and prefix in one ROA entry only.",
            "An ASPA's `customer` is an AS its CA holds (AS0 never), named by one ASPA entry of the CA "
            "only; its `providers` are at least one AS, each listed once, never the customer itself, AS0 "
            f"only alone (the AS has no provider), and at most {aspa.MAX_PROVIDERS:,} (the most every "
            "validator takes). "
            "Their order is free.",
            "A router's `key` is a readable file inside the repository, at most "
            f"{routerkeys.MAX_KEY_BYTES // 1024} KiB: the router's PKCS#10 request, whose signature must "
            "verify, or its public key (SubjectPublicKeyInfo), in DER or PEM, ECDSA on P-256 either way; "
            "a CA lists each key in one entry only, with all its AS numbers. Its `asns` are at least one "
            "AS, each held by the CA and listed once (AS0 never); `router_id`, when given, is an IPv4 "
            "address other than 0.0.0.0.",
            "`signer` names an entry of rpki.yaml's `signers`; only the trust anchor may use an `offline` "
            "signer, and an offline trust anchor issues no ROAs, ASPAs or router certificates. The trust "
            "anchor has no "
            "`key_generation`.",
            "External children's handles are unique across all CA files and differ from every CA name; "
            "each child holds at least one resource, inside its CA's; each `request` is a readable RFC "
            "8183 child_request inside the repository; a CA with an `offline` signer has no children.",
        ),
    ),
)


def _ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _heading(label: str, path: str) -> str:
    return f"{label} `{path}`" if path else f"{label} keys"


def _code(text: str) -> str:
    """A code span that survives a Markdown table cell and any backticks inside."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """A description on one line, safe in a table cell; ``<directory>`` is text, not an HTML tag."""
    text = " ".join(text.split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _type(schema: Schema, defs: Schema, label: str, path: str) -> str:
    """One schema as words: ``integer, 0 to 4,294,967,295`` or ``string matching `^...$```."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return " or ".join(_type(option, defs, label, path) for option in options)
    ref = _ref_name(schema)
    if ref is not None:
        heading = _heading(label, path)
        return f"mapping, see [{heading}](#{slug(heading)})"
    kind = schema.get("type")
    if kind == "array":
        items: Schema = schema.get("items", {})
        text = _type(items, defs, label, path + "[]")
        if _ref_name(items) is not None:
            return "list of " + text.replace("mapping,", "mappings,", 1)
        return f"list of ({text})" if "anyOf" in items else f"list of {text}"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return f"mapping of names to {_type(values, defs, label, path + '.NAME')}"
        return "mapping"
    return _scalar(schema)


def _scalar(schema: Schema) -> str:
    """A string, number or boolean schema with its constraints."""
    kind = schema.get("type")
    words = {"string": "text", "integer": "whole number", "number": "number", "boolean": "true or false"}
    text = words.get(str(kind), str(kind))
    if "enum" in schema:
        text = "one of " + ", ".join(_code(json.dumps(v)) for v in schema["enum"])
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        text += f", {_number(low)} to {_number(high)}"
    elif low is not None:
        text += f", at least {_number(low)}"
    elif high is not None:
        text += f", at most {_number(high)}"
    if "minLength" in schema:
        text += ", not empty" if schema["minLength"] == 1 else f", at least {schema['minLength']} characters"
    if "pattern" in schema:
        text += f" matching {_code(schema['pattern'])}"
    return text


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) and not re.fullmatch(r"[\w.]+", value) else str(value)


def _default(name: str, prop: Schema, required: set[str], defs: Schema) -> str:
    if name in required:
        return "**required**"
    if "default" in prop and prop["default"] is not None:
        return f"default {_code(_yaml_value(prop['default']))}"
    ref = _ref_name(prop)
    if ref is not None:  # an optional section: each key keeps its own default
        return "optional; each key has its default"
    if prop.get("type") == "array":
        return "optional; default none (`[]`)"
    return "optional"


def _sections(path: str, definition: Schema, defs: Schema) -> Iterator[_Section]:
    """This object and, depth first, every object below it, each with the path an operator writes."""
    yield _Section(path, definition)
    for name, prop in definition.get("properties", {}).items():
        child = f"{path}.{name}" if path else name
        target: Schema = prop
        if prop.get("type") == "array":
            target, child = prop.get("items", {}), child + "[]"
        elif isinstance(prop.get("additionalProperties"), dict):
            target, child = prop["additionalProperties"], child + ".NAME"
        for ref in _refs(target):
            yield from _sections(child, defs[ref], defs)


def _refs(schema: Schema) -> Iterator[str]:
    """The definitions a property's schema names, also among the options of a union (``a | b``)."""
    ref = _ref_name(schema)
    if ref is not None:
        yield ref
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, ()):
            yield from _refs(option)


def _conditional_keys(definition: Schema) -> list[str]:
    """The ``if type == X then required/refused`` rules of a section (the signers), as table rows."""
    rows = []
    for rule in definition.get("allOf", []):
        kind = rule.get("if", {}).get("properties", {}).get("type", {}).get("const")
        then = rule.get("then", {})
        if kind is None:
            continue
        needed = ", ".join(_code(k) for k in then.get("required", [])) or "nothing"
        refused = ", ".join(_code(r["required"][0]) for r in then.get("not", {}).get("anyOf", []))
        rows.append(f"| {_code(kind)} | {needed} | {refused or 'nothing'} |")
    return rows


def _render_section(section: _Section, defs: Schema, label: str) -> list[str]:
    definition = section.definition
    lines = [f"### {_heading(label, section.path)}", ""]
    lines += [_prose(definition.get("description", "")), ""]
    conditional = _conditional_keys(definition)
    if conditional:
        lines += ["Which keys each `type` needs, and which it refuses:", ""]
        lines += ["| type | requires | refuses |", "| --- | --- | --- |", *conditional, ""]
    required = set(definition.get("required", []))
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for name, prop in definition.get("properties", {}).items():
        child = f"{section.path}.{name}" if section.path else name
        description = _prose(prop.get("description", ""))
        kind, default = _type(prop, defs, label, child), _default(name, prop, required, defs)
        lines.append(f"| `{name}` | {kind} | {default} | {description} |")
    lines.append("")
    if definition.get("additionalProperties") is False:
        lines += ["Any other key is an error (a misspelt key is never silently ignored).", ""]
    return lines


def _render_kind(kind: _FileKind, defs: Schema) -> list[str]:
    definition = defs[kind.definition]
    lines = [f"## {kind.title}", "", kind.where, ""]
    lines += ["Checked across files by `rpkictl validate` (not expressible in the schema):", ""]
    lines += [f"- {rule}" for rule in kind.rules]
    lines.append("")
    for section in _sections("", definition, defs):
        lines += _render_section(section, defs, kind.label)
    return lines


def render() -> str:
    """The whole of ``docs/yaml-reference.md``."""
    schema = json_schema()
    defs: Schema = schema["$defs"]
    lines = [
        "# YAML reference",
        "",
        "<!-- Generated from schemas/desired-state.schema.json by reconciler/desired/reference.py; do not "
        "edit by hand. -->",
        "",
        "The desired state is two kinds of YAML file: [`rpki.yaml`](#rpkiyaml) with the repository-wide "
        "settings, and one [CA file](#ca-files) per certificate authority under `cas/`. This page is "
        "generated from the JSON Schema `schemas/desired-state.schema.json` (editors can validate with "
        "it; `rpkictl validate` checks the same and more, and names the file, line and column of each "
        "problem). After changing the models in `reconciler/desired/schema.py`, regenerate both:",
        "",
        "```sh",
        "python -m reconciler.desired.schema > schemas/desired-state.schema.json",
        REGENERATE,
        "```",
        "",
        "Durations are written like `30m`, `8h`, `7d`, `52w` or `1d12h` (weeks, days, hours, minutes, "
        "seconds), or as a whole number of seconds. Shares are a number from 0 to 1 (`0.3`) or a "
        'percentage (`"30%"`). Relative paths are relative to `rpki.yaml`. The bundled example is in '
        "`state/`.",
        "",
    ]
    for kind in _FILE_KINDS:
        lines += _render_kind(kind, defs)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
