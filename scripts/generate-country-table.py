#!/usr/bin/env python3
"""Compile libphonenumber metadata into Callgate's destination-number -> country table.

Purpose
    Reads Google's libphonenumber metadata (the PyPI `phonenumbers` package, pinned in
    scripts/requirements-country-table.txt) and writes:

    * Sources/CallgateCore/Generated/CountryTableData.swift
        Region codes, their calling codes and national (trunk) prefixes, the calling-code list
        with main regions and possible national-number lengths, and a flat range table over the
        15-digit padded E.164 space: a number of n digits is padded to value * 10^(15-n), the
        last range start <= that value gives its region id (255 = no country).
    * Tests/CallgateCoreTests/Resources/country-sample.csv
        About 100 valid numbers per region (randomised from libphonenumber's example numbers),
        each with `phonenumbers.region_code_for_number`, for the Swift tests.

    For calling codes shared by several regions (+1, +7, +44, +39, ...) the table reproduces
    `phonenumbers.region_code_for_number` for valid numbers: regions are tried in libphonenumber's
    order, the first whose `leading_digits` re.match()es the national number (or, without
    leading_digits, whose number-type patterns match it: type is not UNKNOWN) wins. The patterns
    are compiled to digit automata (checked against `re`/`regex`, full and partial matching), and
    a trie over national-number prefixes is expanded (up to MAX_NATIONAL_DEPTH digits) until every
    number starting with the prefix that has a region at all has the same one. Leaves are then
    flattened into disjoint, merged ranges covering [0, 10^15).

    Known limit of the padded space: numbers of different lengths can pad to the same value
    (+1 310 1234, a 7-digit Canadian UAN, pads like +1 310 123 4000, a US number); the longer
    numbers win such collisions.

How to run (from anywhere; paths are resolved from this file's location)
    python3 -m pip install -r scripts/requirements-country-table.txt
    python3 scripts/generate-country-table.py          # regenerate both files
    python3 scripts/generate-country-table.py --check  # verify the generated table on the sample

The output is deterministic: fixed random seed, sorted iteration everywhere.
"""

import argparse
import csv
import os
import random
import re
import sys
import time

import phonenumbers
import regex
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    COUNTRY_CODES_FOR_NON_GEO_REGIONS,
    NumberParseException,
)

EXPECTED_PHONENUMBERS_VERSION = "9.0.43"
NON_GEO_REGION = "001"
NO_REGION = 255
TOTAL_DIGITS = 15  # E.164 maximum; every number is padded to this many digits.
MAX_NATIONAL_DEPTH = 7  # Deepest national-number prefix the trie expands to for shared codes.
SAMPLE_SEED = 20240617
SAMPLE_PER_REGION = 100
SAMPLE_MAX_ATTEMPTS = 20000
VALUES_PER_LINE = 12

TYPE_ATTRS = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIFT_PATH = os.path.join(ROOT, "Sources", "CallgateCore", "Generated", "CountryTableData.swift")
SAMPLE_PATH = os.path.join(ROOT, "Tests", "CallgateCoreTests", "Resources", "country-sample.csv")


def metadata_for(region):
    return PhoneMetadata.metadata_for_region(region, None)


def desc_lengths(desc):
    return {n for n in (desc.possible_length or ()) if n > 0} if desc is not None else set()


# ---------------------------------------------------------------------------------------------
# Digit automata
#
# libphonenumber's number patterns use a tiny regex subset: digits, \d, [classes], (?:groups),
# alternation and the ?, {n}, {n,m} quantifiers. Compiling them to automata over the digits 0-9
# lets the trie ask exact questions ("which regions can win for some number starting with q?")
# instead of expanding every prefix where two regions' patterns overlap. The automata are
# cross-checked against the `regex` module (full and partial matching) on many strings.

DIGITS = "0123456789"


class PatternSyntaxError(Exception):
    pass


class Automaton:
    """Thompson NFA of a libphonenumber pattern, with memoised subset transitions."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.eps = []  # node -> list of nodes
        self.moves = []  # node -> list of (frozenset of digits, node)
        self.pos = 0
        ast = self._parse_alt()
        if self.pos != len(pattern):
            raise PatternSyntaxError(f"unexpected {pattern[self.pos:]!r} in {pattern!r}")
        start, self.accept = self._build(ast)
        self._closures = {}
        self._steps = {}
        self.start = self._closure(frozenset([start]))

    # Parsing ------------------------------------------------------------------------------
    def _peek(self):
        return self.pattern[self.pos] if self.pos < len(self.pattern) else ""

    def _parse_alt(self):
        branches = [self._parse_concat()]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._parse_concat())
        return ("alt", branches)

    def _parse_concat(self):
        items = []
        while self._peek() not in ("", "|", ")"):
            atom = self._parse_atom()
            while True:
                c = self._peek()
                if c == "?":
                    self.pos += 1
                    atom = ("rep", atom, 0, 1)
                elif c == "*":
                    self.pos += 1
                    atom = ("rep", atom, 0, None)
                elif c == "+":
                    self.pos += 1
                    atom = ("rep", atom, 1, None)
                elif c == "{":
                    end = self.pattern.index("}", self.pos)
                    spec = self.pattern[self.pos + 1 : end]
                    self.pos = end + 1
                    low, comma, high = spec.partition(",")
                    if not comma:
                        high = low
                    atom = ("rep", atom, int(low), int(high) if high else None)
                else:
                    break
            items.append(atom)
        return ("cat", items)

    def _parse_atom(self):
        c = self._peek()
        p = self.pattern
        if c.isdigit():
            self.pos += 1
            return ("set", frozenset(c))
        if p.startswith("\\d", self.pos):
            self.pos += 2
            return ("set", frozenset(DIGITS))
        if c == "[":
            end = p.index("]", self.pos)
            body = p[self.pos + 1 : end]
            self.pos = end + 1
            negate = body.startswith("^")
            body = body[1:] if negate else body
            chars = set()
            i = 0
            while i < len(body):
                if body.startswith("\\d", i):
                    chars.update(DIGITS)
                    i += 2
                elif i + 2 < len(body) and body[i + 1] == "-":
                    chars.update(chr(o) for o in range(ord(body[i]), ord(body[i + 2]) + 1))
                    i += 3
                else:
                    chars.add(body[i])
                    i += 1
            if not chars <= set(DIGITS):
                raise PatternSyntaxError(f"non-digit class [{body}] in {p!r}")
            return ("set", frozenset(set(DIGITS) - chars if negate else chars))
        if c == "(":
            self.pos += 3 if p.startswith("(?:", self.pos) else 1
            inner = self._parse_alt()
            if self._peek() != ")":
                raise PatternSyntaxError(f"unbalanced group in {p!r}")
            self.pos += 1
            return inner
        raise PatternSyntaxError(f"unsupported {c!r} at {self.pos} in {p!r}")

    # Construction -------------------------------------------------------------------------
    def _node(self):
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def _build(self, ast):
        kind = ast[0]
        if kind == "set":
            a, b = self._node(), self._node()
            self.moves[a].append((ast[1], b))
            return a, b
        if kind == "cat":
            a = self._node()
            end = a
            for item in ast[1]:
                s, e = self._build(item)
                self.eps[end].append(s)
                end = e
            return a, end
        if kind == "alt":
            a, b = self._node(), self._node()
            for branch in ast[1]:
                s, e = self._build(branch)
                self.eps[a].append(s)
                self.eps[e].append(b)
            return a, b
        _, inner, low, high = ast  # rep
        a = self._node()
        end = a
        for _ in range(low):
            s, e = self._build(inner)
            self.eps[end].append(s)
            end = e
        b = self._node()
        self.eps[end].append(b)
        if high is None:
            s, e = self._build(inner)
            self.eps[end].append(s)
            self.eps[e].append(s)
            self.eps[e].append(b)
        else:
            for _ in range(high - low):
                s, e = self._build(inner)
                self.eps[end].append(s)
                self.eps[e].append(b)
                end = e
        return a, b

    # Running ------------------------------------------------------------------------------
    def _closure(self, nodes):
        cached = self._closures.get(nodes)
        if cached is None:
            seen = set(nodes)
            stack = list(nodes)
            while stack:
                for n in self.eps[stack.pop()]:
                    if n not in seen:
                        seen.add(n)
                        stack.append(n)
            cached = self._closures[nodes] = frozenset(seen)
        return cached

    def step(self, states, digit):
        key = (states, digit)
        cached = self._steps.get(key)
        if cached is None:
            nxt = frozenset(t for n in states for chars, t in self.moves[n] if digit in chars)
            cached = self._steps[key] = self._closure(nxt) if nxt else nxt
        return cached

    def run(self, digits):
        states = self.start
        for d in digits:
            states = self.step(states, d)
            if not states:
                break
        return states

    def accepts(self, states):
        return self.accept in states


DEFINITE = "definite"  # region state once leading_digits matched: every extension is this region's


class RegionMatcher:
    """What `_region_code_for_number_from_list` asks of one region, over digit prefixes.

    A state summarises a national-number prefix. For a region with leading_digits it is the
    automaton state of that pattern (or DEFINITE once `re.match` succeeds); otherwise it is the
    states of general_desc and of each number type's pattern. None means the region can match no
    number starting with the prefix.
    """

    def __init__(self, region):
        meta = metadata_for(region)
        self.region = region
        self.leading = None
        if meta.leading_digits is not None:
            self.leading_text = meta.leading_digits
            self.leading = Automaton(meta.leading_digits)
            if self.leading.accepts(self.leading.start):
                raise PatternSyntaxError(f"{region}: leading_digits matches the empty string")
            return
        general = meta.general_desc
        self.general = Automaton(general.national_number_pattern)
        self.general_lengths = frozenset(desc_lengths(general))
        self.types = []  # (attr, automaton, lengths)
        for attr in TYPE_ATTRS:
            desc = getattr(meta, attr)
            if desc is None or desc.national_number_pattern is None:
                continue
            lengths = frozenset(desc_lengths(desc) or self.general_lengths)
            if lengths:
                self.types.append((attr, Automaton(desc.national_number_pattern), lengths))
        self.max_length = max(max(lengths) for _, _, lengths in self.types) if self.types else 0
        if self.general_lengths:
            self.max_length = min(self.max_length, max(self.general_lengths))

    def start(self):
        if self.leading is not None:
            return self.leading.start
        return (self.general.start, tuple(a.start for _, a, _ in self.types))

    def step(self, state, digit, length):
        """State after appending digit (length: digits in the new prefix)."""
        if state is None or state is DEFINITE:
            return state
        if self.leading is not None:
            nxt = self.leading.step(state, digit)
            if not nxt:
                return None
            return DEFINITE if self.leading.accepts(nxt) else nxt
        if length > self.max_length:
            return None
        general, types = state
        general = self.general.step(general, digit)
        if not general:
            return None
        nxt = []
        alive = False
        for (_, automaton, lengths), states in zip(self.types, types):
            states = automaton.step(states, digit) if states and length <= max(lengths) else frozenset()
            alive = alive or bool(states)
            nxt.append(states)
        return (general, tuple(nxt)) if alive else None

    def accepts(self, state, length):
        """Whether phonenumbers would pick this region for a national number in this state."""
        if state is None:
            return False
        if state is DEFINITE:
            return True
        if self.leading is not None:
            return False
        general, types = state
        if self.general_lengths and length not in self.general_lengths:
            return False
        if not self.general.accepts(general):
            return False
        return any(
            length in lengths and automaton.accepts(states)
            for (_, automaton, lengths), states in zip(self.types, types)
        )

    def run(self, digits):
        state = self.start()
        for i, d in enumerate(digits):
            state = self.step(state, d, i + 1)
        return state

    # Cross-checks against the regex engines phonenumbers uses -----------------------------
    def verify(self, strings):
        """Asserts that the automata agree with re/regex on the given digit strings."""
        meta = metadata_for(self.region)
        if self.leading is not None:
            full = re.compile(self.leading_text)
            partial = regex.compile(self.leading_text)
            for s in strings:
                state = self.run(s)
                assert (state is DEFINITE) == bool(full.match(s)), (self.region, s)
                assert (state is not None) == bool(partial.match(s, partial=True)), (self.region, s)
            return
        for s in strings:
            national = s
            expected = phonenumbers.phonenumberutil._number_type_helper(national, meta)
            got = self.accepts(self.run(s), len(s))
            assert got == (expected != phonenumbers.PhoneNumberType.UNKNOWN), (self.region, s)
            for attr, automaton, _ in self.types:
                pattern = regex.compile(getattr(meta, attr).national_number_pattern)
                states = automaton.run(s)
                assert bool(states) == bool(pattern.fullmatch(s, partial=True)), (self.region, attr, s)
                assert automaton.accepts(states) == bool(pattern.fullmatch(s)), (self.region, attr, s)


class Stats:
    def __init__(self):
        self.nodes = 0
        self.max_depth_leaves = []  # (calling code, national prefix, chosen, other candidates)


def shared_code_leaves(code, regions, region_ids, stats):
    """Yields (national prefix, region id) leaves covering the national space of a shared code.

    A leaf prefix q stands for the padded interval of every number starting with q. The numbers
    longer than q decide the leaf: q is a leaf once every such number that some region accepts
    goes to the same region (regions are tried in libphonenumber's order, the first accepting one
    wins). A number equal to q (or to q without trailing zeros) pads to the start of the interval
    and only decides the leaf when no longer number starting with q has a region.
    """
    matchers = [RegionMatcher(r) for r in regions]
    winners_memo = {}

    def normalise(states):
        # Regions after a DEFINITE one can never win: drop them so equal futures share a key.
        for i, s in enumerate(states):
            if s is DEFINITE:
                return states[: i + 1] + (None,) * (len(states) - i - 1)
        return states

    def advance(states, digit, length):
        return normalise(tuple(m.step(s, digit, length) for m, s in zip(matchers, states)))

    def terminal(states, length):
        return next((i for i, (m, s) in enumerate(zip(matchers, states)) if m.accepts(s, length)), None)

    def winners(states, length):
        """Regions that win for some number starting with the prefix (prefix itself included)."""
        key = (states, length)
        cached = winners_memo.get(key)
        if cached is not None:
            return cached
        live = [i for i, s in enumerate(states) if s is not None]
        if not live:
            result = frozenset()
        elif states[live[0]] is DEFINITE:
            result = frozenset([live[0]])
        else:
            found = set()
            first = terminal(states, length)
            if first is not None:
                found.add(first)
            if length < 17:
                for d in DIGITS:
                    found |= winners(advance(states, d, length + 1), length + 1)
            result = frozenset(found)
        winners_memo[key] = result
        return result

    def visit(prefix, states, carried):
        # carried: region of a shorter number whose padded value is this interval's start.
        stats.nodes += 1
        length = len(prefix)
        children = [(d, advance(states, d, length + 1)) for d in DIGITS]
        below = set()
        for _, child in children:
            below |= winners(child, length + 1)
        exact = terminal(states, length)
        here = exact if exact is not None else carried
        if not below:
            yield prefix, region_ids[regions[here]] if here is not None else NO_REGION
            return
        if len(below) == 1:
            yield prefix, region_ids[regions[min(below)]]
            return
        if length >= MAX_NATIONAL_DEPTH:
            chosen = min(below)
            others = [regions[i] for i in sorted(below) if i != chosen]
            stats.max_depth_leaves.append((code, prefix, regions[chosen], others))
            yield prefix, region_ids[regions[chosen]]
            return
        for d, child in children:
            yield from visit(prefix + d, child, here if d == "0" else None)

    # Cross-check the automata on every prefix the trie could visit near the top, plus examples.
    rng = random.Random(code)
    probes = {"".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 13))) for _ in range(3000)}
    for region in regions:
        meta = metadata_for(region)
        for attr in TYPE_ATTRS:
            desc = getattr(meta, attr)
            if desc is not None and desc.example_number:
                ex = desc.example_number
                probes.update(ex[:i] for i in range(1, len(ex) + 1))
                for _ in range(50):
                    k = rng.randint(1, len(ex))
                    probes.add(ex[: len(ex) - k] + "".join(rng.choice(DIGITS) for _ in range(k)))
    probes.update(str(i) for i in range(1, 1000))
    probes = sorted(probes)
    for matcher in matchers:
        matcher.verify(probes)

    root = normalise(tuple(m.start() for m in matchers))
    yield from visit("", root, None)


def build_ranges(region_ids, stats):
    """Returns merged (start, region id) pairs covering [0, 10^15)."""
    leaves = []  # (start, end, region id), disjoint
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        regions = COUNTRY_CODE_TO_REGION_CODE[code]
        cc = str(code)
        if len(regions) == 1:
            prefixes = [("", region_ids[regions[0]])]
        else:
            print(f"  +{cc}: {len(regions)} regions {', '.join(regions)}", flush=True)
            prefixes = list(shared_code_leaves(cc, regions, region_ids, stats))
        for national, rid in prefixes:
            digits = cc + national
            scale = 10 ** (TOTAL_DIGITS - len(digits))
            leaves.append((int(digits) * scale, (int(digits) + 1) * scale, rid))
    leaves.sort()
    segments = []  # (start, region id), gaps filled with NO_REGION
    position = 0
    for start, end, rid in leaves:
        assert start >= position, "overlapping prefixes"
        if start > position:
            segments.append((position, NO_REGION))
        segments.append((start, rid))
        position = end
    if position < 10**TOTAL_DIGITS:
        segments.append((position, NO_REGION))
    ranges = []
    for start, rid in segments:
        if not ranges or ranges[-1][1] != rid:
            ranges.append((start, rid))
    assert ranges[0][0] == 0
    assert all(a[0] < b[0] and a[1] != b[1] for a, b in zip(ranges, ranges[1:]))
    return ranges


def all_regions():
    geo = sorted({r for rs in COUNTRY_CODE_TO_REGION_CODE.values() for r in rs if r != NON_GEO_REGION})
    return geo + [NON_GEO_REGION]


def region_facts(regions):
    codes, prefixes = [], []
    for region in regions:
        if region == NON_GEO_REGION:
            codes.append(min(COUNTRY_CODES_FOR_NON_GEO_REGIONS))
            prefixes.append("")
            continue
        meta = metadata_for(region)
        codes.append(meta.country_code)
        prefixes.append(meta.national_prefix or "")
    return codes, prefixes


def code_metadata(code, region):
    if region == NON_GEO_REGION:
        return PhoneMetadata.metadata_for_nongeo_region(code, None)
    return metadata_for(region)


def calling_code_facts(region_ids):
    codes, mains, lengths = [], [], []
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        regions = COUNTRY_CODE_TO_REGION_CODE[code]
        mask = 0
        for region in regions:
            meta = code_metadata(code, region)
            for attr in ("general_desc",) + TYPE_ATTRS:
                for n in desc_lengths(getattr(meta, attr)):
                    assert n < 32
                    mask |= 1 << n
        codes.append(code)
        mains.append(region_ids[regions[0]])
        lengths.append(mask)
    return codes, mains, lengths


# ---------------------------------------------------------------------------------------------
# Sample


def example_nationals(meta):
    examples = set()
    for attr in TYPE_ATTRS:
        desc = getattr(meta, attr)
        if desc is not None and desc.example_number:
            examples.add(desc.example_number)
    return sorted(examples)


def sample_bucket(region, code):
    return f"{NON_GEO_REGION}/+{code}" if region == NON_GEO_REGION else region


def build_sample():
    """Valid numbers near libphonenumber's examples, about SAMPLE_PER_REGION per region.

    Randomising an example of a small region often yields a number of the main region of its
    calling code (a GG example becomes a GB number), so counts are kept per resulting region and
    a region's examples are retried until that region itself has enough numbers.
    """
    rng = random.Random(SAMPLE_SEED)
    sources = []  # (bucket, calling code, example national numbers)
    for region in sorted(r for r in all_regions() if r != NON_GEO_REGION):
        meta = metadata_for(region)
        sources.append((region, meta.country_code, example_nationals(meta)))
    for code in sorted(COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        meta = PhoneMetadata.metadata_for_nongeo_region(code, None)
        sources.append((sample_bucket(NON_GEO_REGION, code), code, example_nationals(meta)))

    rows = {}
    counts = {}
    tried = set()
    for bucket, code, examples in sources:
        candidates = list(examples)
        attempts = 0
        while examples and counts.get(bucket, 0) < SAMPLE_PER_REGION and attempts < SAMPLE_MAX_ATTEMPTS:
            if candidates:
                national = candidates.pop()
            else:
                attempts += 1
                base = rng.choice(examples)
                n = len(base)
                low = min(2, n)
                count = rng.randint(low, max(low, n - 1))  # keep at least one leading digit
                national = base[: n - count] + "".join(rng.choice(DIGITS) for _ in range(count))
            e164 = f"+{code}{national}"
            if e164 in tried:
                continue
            tried.add(e164)
            try:
                number = phonenumbers.parse(e164, None)
            except NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != e164:
                continue
            region = phonenumbers.region_code_for_number(number)
            got = sample_bucket(region, code)
            if counts.get(got, 0) >= SAMPLE_PER_REGION:
                continue
            counts[got] = counts.get(got, 0) + 1
            rows[e164] = region
    return sorted(rows.items()), {bucket: counts.get(bucket, 0) for bucket, _, _ in sources}


# ---------------------------------------------------------------------------------------------
# Output


def swift_int_array(name, swift_type, values, per_line=VALUES_PER_LINE):
    lines = [f"    static let {name}: [{swift_type}] = ["]
    for i in range(0, len(values), per_line):
        lines.append("        " + ", ".join(str(v) for v in values[i : i + per_line]) + ",")
    lines.append("    ]")
    return lines


def swift_string_array(name, values, per_line=16):
    lines = [f"    static let {name}: [String] = ["]
    for i in range(0, len(values), per_line):
        lines.append("        " + ", ".join(f'"{v}"' for v in values[i : i + per_line]) + ",")
    lines.append("    ]")
    return lines


def render_swift(version, regions, region_codes, national_prefixes, ranges, codes, mains, lengths):
    out = [
        f"// Generated by scripts/generate-country-table.py from phonenumbers {version}. Do not edit by hand.",
        "// swift-format-ignore-file",
        "",
        "/// Compiled libphonenumber metadata: destination prefix ranges and per-region facts.",
        "enum CountryTableData {",
        "    /// libphonenumber version the table was generated from.",
        f'    static let metadataVersion = "{version}"',
        '    /// Region codes, sorted; the index is the region id (UInt8). ISO 3166 alpha-2 codes, and "001"'
        " (non-geographic entities like +800/+808/+870/+881/+882/+883/+888/+979) last.",
    ]
    out += swift_string_array("regionCodes", regions)
    out.append("    /// Country calling code of each region (same index as regionCodes).")
    out += swift_int_array("regionCallingCodes", "UInt16", region_codes, 16)
    out.append(
        '    /// National (trunk) prefix of each region, "" if none (e.g. "0" for GB, "1" for US, "8" for RU).'
    )
    out += swift_string_array("regionNationalPrefixes", national_prefixes)
    out.append(
        "    /// Sorted, strictly increasing range starts in the 15-digit padded space (see below)."
        " The first element is 0."
    )
    out += swift_int_array("rangeStarts", "UInt64", [s for s, _ in ranges], 8)
    out.append(
        '    /// Region id for each range (same index as rangeStarts); 255 means "no country" (unassigned prefix).'
    )
    out += swift_int_array("rangeRegions", "UInt8", [r for _, r in ranges], 24)
    out.append("    /// All country calling codes, sorted ascending.")
    out += swift_int_array("callingCodes", "UInt16", codes, 16)
    out.append(
        "    /// Main region id of each calling code (libphonenumber's first region for the code;"
        ' "001" for non-geographic codes).'
    )
    out += swift_int_array("callingCodeMainRegions", "UInt8", mains, 16)
    out.append(
        "    /// Possible national-number lengths for each calling code: bit k set when k digits is a possible"
        " length for some region of the code (union over regions of general_desc possible_length, all types)."
    )
    out += swift_int_array("callingCodePossibleLengths", "UInt32", lengths, 12)
    out.append("}")
    return "\n".join(out) + "\n"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def generate():
    started = time.monotonic()
    version = phonenumbers.__version__
    if version != EXPECTED_PHONENUMBERS_VERSION:
        sys.exit(
            f"phonenumbers {version} installed, expected {EXPECTED_PHONENUMBERS_VERSION}: "
            "python3 -m pip install -r scripts/requirements-country-table.txt"
        )
    regions = all_regions()
    assert len(regions) < NO_REGION, f"{len(regions)} regions do not fit below the 255 sentinel"
    region_ids = {r: i for i, r in enumerate(regions)}
    region_codes, national_prefixes = region_facts(regions)
    codes, mains, lengths = calling_code_facts(region_ids)

    print(f"phonenumbers {version}: {len(regions)} regions, {len(codes)} calling codes", flush=True)
    print("building prefix trie for shared calling codes:", flush=True)
    stats = Stats()
    ranges = build_ranges(region_ids, stats)
    print(f"trie nodes visited: {stats.nodes}; ranges: {len(ranges)}", flush=True)
    if stats.max_depth_leaves:
        print(f"{len(stats.max_depth_leaves)} prefixes hit the max national depth {MAX_NATIONAL_DEPTH}:")
        for code, prefix, chosen, others in stats.max_depth_leaves[:40]:
            print(f"  +{code} {prefix} -> {chosen} (also possible: {', '.join(others)})")
    else:
        print(f"no prefix hit the max national depth {MAX_NATIONAL_DEPTH}")

    swift = render_swift(version, regions, region_codes, national_prefixes, ranges, codes, mains, lengths)
    write(SWIFT_PATH, swift)
    print(f"wrote {os.path.relpath(SWIFT_PATH, ROOT)} ({len(swift.encode())} bytes)", flush=True)

    print("building sample...", flush=True)
    rows, per_source = build_sample()
    lines = ["e164,region"] + [f"{e164},{region}" for e164, region in rows]
    sample_text = "\n".join(lines) + "\n"
    write(SAMPLE_PATH, sample_text)
    thin = sorted((n, label) for label, n in per_source.items() if n < SAMPLE_PER_REGION)
    print(f"wrote {os.path.relpath(SAMPLE_PATH, ROOT)} ({len(rows)} numbers, {len(sample_text)} bytes)")
    if thin:
        print("sources below target: " + ", ".join(f"{label}={n}" for n, label in thin))
    print(f"total entries: {len(ranges)} ranges, {len(rows)} sample rows; {time.monotonic() - started:.1f}s")


# ---------------------------------------------------------------------------------------------
# Check


def parse_swift_arrays(text):
    arrays = {}
    for match in re.finditer(r"static let (\w+): \[(\w+)\] = \[(.*?)\n    \]", text, re.S):
        name, kind, body = match.groups()
        if kind == "String":
            arrays[name] = re.findall(r'"([^"]*)"', body)
        else:
            arrays[name] = [int(v) for v in re.findall(r"\d+", body)]
    return arrays


def lookup(arrays, digits):
    import bisect

    padded = int(digits) * 10 ** (TOTAL_DIGITS - len(digits))
    i = bisect.bisect_right(arrays["rangeStarts"], padded) - 1
    rid = arrays["rangeRegions"][i]
    return None if rid == NO_REGION else arrays["regionCodes"][rid]


SPOT_CHECKS = [
    "+12025550123",
    "+14165550123",
    "+14165550100",
    "+18765550123",
    "+17875550100",
    "+73272123456",
    "+77272123456",
    "+74951234567",
    "+442079460000",
    "+441481123456",
    "+447781123456",
    "+441534123456",
    "+441624123456",
    "+390669812345",
    "+390645678901",
    "+4722123456",
    "+4779123456",
    "+61298765432",
    "+61891641234",
    "+262269612345",
    "+262262161234",
    "+590590271234",
    "+59994612345",
    "+5997151234",
    "+33123456789",
    "+4930123456",
    "+80012345678",
]


def check():
    with open(SWIFT_PATH, encoding="utf-8") as f:
        arrays = parse_swift_arrays(f.read())
    starts = arrays["rangeStarts"]
    assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:]))
    assert len(starts) == len(arrays["rangeRegions"])
    n_regions = len(arrays["regionCodes"])
    assert all(r < n_regions or r == NO_REGION for r in arrays["rangeRegions"])
    with open(SAMPLE_PATH, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    agree = 0
    misses = []
    for row in rows:
        got = lookup(arrays, row["e164"][1:])
        if got == row["region"]:
            agree += 1
        else:
            misses.append((row["e164"], row["region"], got))
    print(
        f"sample agreement: {agree}/{len(rows)} = {100.0 * agree / len(rows):.3f}% "
        f"({len(set(r['region'] for r in rows))} regions in sample; "
        f"{len(starts)} ranges, {n_regions} regions in table)"
    )
    for e164, expected, got in misses[:30]:
        print(f"  MISS {e164}: phonenumbers {expected}, table {got}")
    print("spot checks (number: table / phonenumbers region_code_for_number, valid?):")
    for e164 in SPOT_CHECKS:
        number = phonenumbers.parse(e164, None)
        expected = phonenumbers.region_code_for_number(number)
        got = lookup(arrays, e164[1:])
        flag = "ok " if got == expected else "DIFF"
        print(f"  {flag} {e164}: {got} / {expected}, valid={phonenumbers.is_valid_number(number)}")
    return agree / len(rows) >= 0.999


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the generated files instead of writing")
    args = parser.parse_args()
    if args.check:
        sys.exit(0 if check() else 1)
    generate()


if __name__ == "__main__":
    main()
