"""Fuzzy, cross-script matching of a person's or company's name against listed names and aliases.

Pure Python: the caller hands `NameIndex.build` the ListedNames (payments.sanctions.provider does, for the current
list version) and asks `index.search(name)`. docs/compliance.md ("Matching") describes the method; in short:

1. Normalise: NFKC, case-folded, invisible characters (zero-width spaces, joiners) dropped, apostrophes dropped
   (BGN/PCGN writes the soft sign as one), every other non-letter a word break.
2. Fold look-alikes: inside one word, letters of the minority script (Latin or Cyrillic) are replaced by the letter
   of the majority script with the same Unicode TR39 confusable skeleton (ICU's SpoofChecker), so "Ivаn" with a
   Cyrillic "а" is "Ivan" and "Caнкциoнoв" with Latin "C", "a", "o" is "Санкционов". A word in any other script
   (Arabic, CJK, Greek, ...) raises ScreeningInputError: we cannot screen it, so the caller holds.
3. Transliterate every word to one Latin key space: Russian and Kyrgyz Cyrillic through our table (ICAO 9303
   passport style: Ж zh, Х kh, Ц ts, Щ shch, Ю iu, Я ia; ң n, ө o, ү u), other letters through anyascii.
4. Canonicalise romanisation variants, on both sides alike: shch/sch, ch/tch, sh, zh/j/dzh/dj, kh/h, ts/tz, x/ks,
   w/v, y/i (so BGN "Yu", "Ya", "-iy" and ICAO "Iu", "Ia", "-ii" meet), "ye"/"ie" is "e" (Yevgeniy, Vasil'yev), "yo"/"io"
   after a consonant is "e" (Фёдор: Fedor, Fyodor), doubled letters once. Gender endings (-ov/-ova) are kept: they
   differ by an edit, like a typo.
5. Candidates come from an inverted index on word keys and their one-letter deletions (SymSpell: two words one edit
   apart share a key) plus the whole name written without spaces; each candidate collects the inverse document
   frequency of the query words it shares and only the best `CANDIDATES` are scored. Nothing scans the list.
6. Score: query words are aligned one-to-one with the listed name's words (any order). Equal words score 1, words
   one or two edits apart (rapidfuzz's OSA distance, transpositions count one) score 1 - edits/length (less when the
   query word is itself a listed word: likely another name), an initial ("A.", "Zh.") scores 0.9 against a word it
   begins at half weight. The score is the weighted mean over matched and unmatched words: an unmatched patronymic
   weighs MIDDLE_WEIGHT, a middle name MIDDLE_POSITION_WEIGHT, a different word on both sides at least
   CONFLICT_WEIGHT, anything else 1. Date of birth and nationality, when both sides have them, raise or lower it
   (BIRTH_* and NATIONALITY_* below).
"""

import datetime
import functools
import math
import re
import unicodedata
from array import array
from collections import defaultdict
from dataclasses import dataclass

import icu
from anyascii import anyascii
from django.utils.translation import gettext_lazy as _
from rapidfuzz.distance import OSA

from payments.errors import PaymentsError
from payments.sanctions.types import ListedName

CANDIDATES = 64          # candidates scored per query, best first by shared rare words
MIN_SCORE = 0.70         # hits below this are not reported at all
MIDDLE_WEIGHT = 0.10     # an unmatched patronymic or initial, once two words matched
MIDDLE_POSITION_WEIGHT = 0.25  # an unmatched word written between the first and the last
KNOWN_WORD_FACTOR = 0.8  # a near word that is itself on the list (Fedorov for Fedotov) is likely another name
CONFLICT_WEIGHT = 0.35   # an unmatched word on both sides (e.g. another patronymic)
INITIAL_SIM, INITIAL_WEIGHT = 0.90, 0.5
BIRTH_EXACT, BIRTH_YEAR, BIRTH_SAME_YEAR_OTHER_DAY, BIRTH_CONTRADICTS = 0.06, 0.03, -0.04, -0.12
NATIONALITY_MATCHES, NATIONALITY_CONTRADICTS = 0.02, -0.05
ALLOWED_SCRIPTS = frozenset({"Latin", "Cyrillic"})


class ScreeningInputError(PaymentsError):
    """A name (or date, or country) screening cannot check. Callers hold; nothing is cleared on it."""

    code = "screening-input"
    title = _("This name cannot be screened")


@dataclass(frozen=True)
class Hit:
    listed: ListedName
    score: float
    rule: str
    explanation: str


# 1-4. Normalising and transliterating ---------------------------------------------------------------------------

_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i", "й": "i",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f",
    "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "iu",
    "я": "ia",
    "ң": "n", "ө": "o", "ү": "u",  # Kyrgyz
    "ә": "a", "ғ": "g", "қ": "k", "ұ": "u", "һ": "h", "і": "i", "ї": "i", "є": "e", "ґ": "g", "ў": "u", "ҳ": "h",
    "ҷ": "j", "ӣ": "i", "ӯ": "u", "ӊ": "n",  # Kazakh, Uzbek, Tajik, Ukrainian, Belarusian
}
_APOSTROPHES = "'’ʼʻ`´‘ʹʺ\""
_INVISIBLE = frozenset({"Cf", "Cc", "Co", "Cs", "Cn"})
_CANON_RULES = [(re.compile(p), r) for p, r in [
    (r"w", "v"), (r"x", "ks"), (r"q", "k"), (r"ph", "f"), (r"ck", "k"),
    (r"shch|shtch|sch", "Q"), (r"tch|ch", "X"), (r"sh", "W"), (r"dzh|dj|zh", "J"),
    (r"j(?=[^aeiou]|$)", "i"), (r"j", "J"), (r"kh", "h"),
    (r"ts|tz|tc", "C"), (r"c", "k"), (r"ou", "u"),
    (r"y", "i"), (r"ie", "e"), (r"(?<=[b-df-hk-np-tv-zJQWXC])io", "e"),
    (r"(.)\1+", r"\1"),
]]


@functools.cache
def _spoof_checker():
    return icu.SpoofChecker()


@functools.lru_cache(maxsize=4096)
def _script(char):
    return icu.Script.getScript(char).getName()


@functools.cache
def _by_skeleton():
    """For each allowed script, the letter of that script behind each TR39 skeleton (basic letters first)."""
    checker = _spoof_checker()
    maps = {"Latin": {}, "Cyrillic": {}}
    for script, letters in (("Latin", "abcdefghijklmnopqrstuvwxyz"),
                            ("Cyrillic", "абвгдеёжзийклмнопрстуфхцчшщъыьэюяңөүәғқұһіјѕ")):
        for letter in letters:
            maps[script].setdefault(checker.getSkeleton(0, letter), letter)
    return maps


def _fold_lookalikes(word, original):
    """The word with its minority-script letters replaced by same-skeleton letters of its majority script."""
    counts = defaultdict(int)
    for char in word:
        if char.isalpha():
            script = _script(char)
            if script not in ("Common", "Inherited"):
                counts[script] += 1
    if not counts:
        return word, False
    major = max(counts, key=lambda s: (counts[s], s == "Latin"))
    if len(counts) == 1 and major in ALLOWED_SCRIPTS:
        return word, False
    if major not in ALLOWED_SCRIPTS:
        raise ScreeningInputError(_("“%(name)s” is written in a script screening does not cover (%(script)s); "
                                    "write it in Latin or Cyrillic letters.") % {"name": original, "script": major})
    table = _by_skeleton()[major]
    out = []
    for char in word:
        script = _script(char) if char.isalpha() else "Common"
        if script in (major, "Common", "Inherited"):
            out.append(char)
            continue
        replacement = table.get(_spoof_checker().getSkeleton(0, char))
        if replacement is None and script not in ALLOWED_SCRIPTS:
            raise ScreeningInputError(_("“%(name)s” mixes in letters of a script screening does not cover "
                                        "(%(script)s).") % {"name": original, "script": script})
        out.append(replacement or char)
    return "".join(out), True


@functools.lru_cache(maxsize=65536)
def _latin(word):
    return "".join(_CYRILLIC[c] if c in _CYRILLIC else anyascii(c).lower() for c in word)


_GLIDE_RULES = [(re.compile(p) if p != r"j" else re.compile(r"(?<=.)j"), "i" if p == r"j" else r)
                for p, r in ((rule.pattern, rep) for rule, rep in _CANON_RULES)]


@functools.lru_cache(maxsize=65536)
def _canon(latin, glide=False):
    """The canonical key; with glide, a "j" inside the word reads as the glide of Й/Ю/Я (Zoja, Danijar) rather than
    Ж/Дж (Nurjan, Aijan), which is how Kyrgyz names are usually typed."""
    key = "".join(c for c in latin if c.isascii() and c.isalnum())
    for pattern, replacement in (_GLIDE_RULES if glide else _CANON_RULES):
        key = pattern.sub(replacement, key)
    return key


@dataclass(frozen=True)
class Parsed:
    keys: tuple[str, ...]       # canonical words, in the order written
    latin: str                  # the words transliterated, before canonicalising (tells a respelling apart)
    spelled: tuple[str, ...]    # each word transliterated (typos are also counted on these: "Vyacdheslav")
    initials: tuple[bool, ...]  # the word is an initial: one letter, or a dotted digraph ("A.", "Ю.", "Zh.")
    alts: tuple[str, ...]       # each word's key with a medial "j" read as a glide, or "" when it has none
    firsts: tuple[str, ...]     # each word's possible first letters (canonical and transliterated: Д. for Dzhamshid)
    scripts: frozenset          # scripts of the name's letters after folding
    folded: bool                # look-alike letters were folded

    @property
    def joined(self):
        return "".join(self.keys)


def parse(name):
    """The name's canonical words; ScreeningInputError when it has none or has letters we cannot read."""
    if not isinstance(name, str) or not name.strip():
        raise ScreeningInputError(_("The name is empty."))
    text = unicodedata.normalize("NFKC", name).casefold()
    if text.count(",") == 1:  # "SURNAME, Given Patronymic" (OFAC, UN): written order, so positions mean the same
        surname, given = text.split(",")
        text = f"{given} {surname}"
    text = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE and c not in _APOSTROPHES)
    words = [(m.group(), text[m.end():m.end() + 1] == ".") for m in re.finditer(r"[^\W_]+", text)]
    keys, latin, initials, alts, firsts, scripts, folded = [], [], [], [], [], set(), False
    for word, dotted in words:
        word, was_folded = _fold_lookalikes(word, name)
        folded |= was_folded
        scripts |= {_script(c) for c in word if c.isalpha()} - {"Common", "Inherited"}
        spelled = _latin(word)
        key = _canon(spelled)
        if not key:
            continue
        latin.append(spelled)
        alt = _canon(spelled, glide=True) if "j" in spelled[1:] else ""
        alts.append(alt if alt != key else "")
        firsts.append("".join(sorted({key[0], *spelled[:1]})))
        letters = sum(c.isalpha() for c in word)
        keys.append(key)
        initials.append(letters == 1 or (dotted and letters <= 3 and len(key) <= 2))  # "A", "Zh.", "Yu."
    if not keys or not any(c.isalpha() for c in "".join(keys)):
        raise ScreeningInputError(_("“%(name)s” has no letters to screen.") % {"name": name})
    if all(initials):
        raise ScreeningInputError(_("“%(name)s” has only initials; give at least one full name.") % {"name": name})
    return Parsed(tuple(keys), " ".join(sorted(latin)), tuple(latin), tuple(initials), tuple(alts), tuple(firsts),
                  frozenset(scripts), folded)


def _variants(key):
    """The word's key and, for words of four letters or more, its one-letter deletions."""
    if len(key) < 4:
        return {key}
    return {key} | {key[:i] + key[i + 1:] for i in range(len(key))}


# 6. Scoring ------------------------------------------------------------------------------------------------------

_PATRONYMIC = re.compile(r"(?:viX|vna|iXna|ulu|kizi|ogl[iu])$")


_SURNAME = re.compile(r"(?:ov|ev|in|ova|eva|ina)$")


@functools.lru_cache(maxsize=65536)
def _is_patronymic(key):
    return bool(_PATRONYMIC.search(key))


@functools.lru_cache(maxsize=65536)
def _is_surname(key):
    return bool(_SURNAME.search(key))


def _patronymic_for_surname(q, c):
    """One is a patronymic and the other a surname ("Vladimirovna", "Vladimirova"): never the same word."""
    return _is_patronymic(q) != _is_patronymic(c) and (_is_surname(q) or _is_surname(c))


def _word_sim(q, q_initial, q_firsts, c, c_initial, c_firsts, known, q_spelled="", c_spelled="", q_alt="", c_alt=""):
    """(similarity, weight, how) of a query word and a listed word (canonical keys)."""
    if q == c or (q_alt and q_alt in (c, c_alt)) or (c_alt and c_alt == q):
        return 1.0, (INITIAL_WEIGHT if q_initial and c_initial else 1.0), "same"
    if q_initial != c_initial:
        short_firsts, long_ = (q_firsts, c) if q_initial else (c_firsts, q)
        if len(long_) > 2 and (long_.startswith(q if q_initial else c) or set(short_firsts) & set(
                c_firsts if q_initial else q_firsts)):
            return INITIAL_SIM, INITIAL_WEIGHT, "initial"
        return 0.0, 1.0, ""
    if q_initial or _patronymic_for_surname(q, c):
        return 0.0, 1.0, ""  # a patronymic never stands for a surname ("Vladimirova" is not "Vladimirovna")
    length = max(len(q), len(c))
    edits = OSA.distance(q, c, score_cutoff=2)
    if edits > 1 and q_spelled and c_spelled:  # a typo inside a digraph ("cdh") is one edit as written
        spelled_edits = OSA.distance(q_spelled, c_spelled, score_cutoff=2)
        if spelled_edits < edits:
            edits, length = spelled_edits, max(len(q_spelled), len(c_spelled))
    if edits > 2 or (edits == 2 and length < 8) or min(len(q), len(c)) < 3:
        return 0.0, 1.0, ""
    sim = 1.0 - edits / length
    if q in known:  # the query word is itself a listed word: more likely another name than a typo
        return sim * KNOWN_WORD_FACTOR, 1.0, f"{edits} edit" + ("s" if edits > 1 else "") + ", another listed word"
    return sim, 1.0, f"{edits} edit" + ("s" if edits > 1 else "")


def _loose_weight(parsed, k):
    """How much an unmatched word of a name counts against the match, once two words matched."""
    key = parsed.keys[k]
    if parsed.initials[k] or _is_patronymic(key):
        return MIDDLE_WEIGHT
    if 0 < k < len(parsed.keys) - 1:
        return MIDDLE_POSITION_WEIGHT  # a middle name, as written
    return 1.0


def _align(query, cand, known=frozenset()):
    """Score of two parsed names, and what matched (for the explanation)."""
    pairs = []
    for i in range(len(query.keys)):
        for j in range(len(cand.keys)):
            sim, weight, how = _word_sim(query.keys[i], query.initials[i], query.firsts[i],
                                         cand.keys[j], cand.initials[j], cand.firsts[j], known,
                                         query.spelled[i], cand.spelled[j], query.alts[i], cand.alts[j])
            if sim > 0:
                pairs.append((sim * weight, sim, weight, how, i, j))
    pairs.sort(key=lambda p: (-p[0], abs(p[4] - p[5])))
    used_q, used_c, matched = set(), set(), []
    for _product, sim, weight, how, i, j in pairs:
        if i not in used_q and j not in used_c:
            used_q.add(i)
            used_c.add(j)
            matched.append((sim, weight, how, i, j))
    full = [m for m in matched if m[2] != "initial" and not query.initials[m[3]]]
    if not full or max(m[0] for m in full) < 0.8:
        return 0.0, [], [], []
    loose_q = [i for i in range(len(query.keys)) if i not in used_q]
    loose_c = [j for j in range(len(cand.keys)) if j not in used_c]
    if len(matched) >= 2:
        floor = CONFLICT_WEIGHT if loose_q and loose_c else 0.0
        loose = (sum(max(floor, _loose_weight(query, i)) for i in loose_q)
                 + sum(max(floor, _loose_weight(cand, j)) for j in loose_c))
    else:
        loose = len(loose_q) + len(loose_c)
    total = sum(m[1] for m in matched) + loose
    score = sum(m[0] * m[1] for m in matched) / total
    return score, matched, loose_q, loose_c


def _joined_score(query, cand):
    """The names written without spaces, when their word counts differ (a zero-width space or a hyphen may stand
    in for a word break: "Abdul-Aziz", "Abdulaziz")."""
    if len(query.keys) == len(cand.keys):
        return 0.0
    a, b = query.joined, cand.joined
    if a == b:
        return 1.0
    if min(len(a), len(b)) < 8:
        return 0.0
    edits = OSA.distance(a, b, score_cutoff=1)
    return 1.0 - edits / max(len(a), len(b)) if edits <= 1 else 0.0


def _birth_adjustment(birth_date, listed_dates):
    if not birth_date or not listed_dates:
        return 0.0, ""
    year = birth_date[:4]
    if birth_date in listed_dates:
        return BIRTH_EXACT, "date of birth matches"
    if any(d == year or (len(birth_date) == 4 and d[:4] == year) for d in listed_dates):
        return BIRTH_YEAR, "year of birth matches"
    if any(d[:4] == year for d in listed_dates):
        return BIRTH_SAME_YEAR_OTHER_DAY, "same year of birth, another day"
    return BIRTH_CONTRADICTS, f"listed date of birth {', '.join(listed_dates)} differs"


def _nationality_adjustment(nationality, listed):
    if not nationality or not listed:
        return 0.0, ""
    if nationality in listed:
        return NATIONALITY_MATCHES, "nationality matches"
    return NATIONALITY_CONTRADICTS, f"listed nationality {', '.join(listed)} differs"


def _check_birth_date(value):
    if value is None or value == "":
        return None
    value = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}", value):
            datetime.date(int(value), 1, 1)
        else:
            datetime.date.fromisoformat(value)
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError(value)
    except ValueError:
        raise ScreeningInputError(_("“%(value)s” is not a date of birth (YYYY-MM-DD or YYYY).")
                                  % {"value": value}, field="birth_date") from None
    return value


def _check_nationality(value):
    if value is None or value == "":
        return None
    value = str(value).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ScreeningInputError(_("“%(value)s” is not a two-letter country code (ISO 3166).") % {"value": value},
                                  field="nationality")
    return value


# 5. The index ----------------------------------------------------------------------------------------------------

class NameIndex:
    """Listed names parsed once, and an inverted index from word keys (and their one-letter deletions) to them."""

    def __init__(self, names, parsed, postings, skipped, known):
        self.known = known
        self.names = names
        self.parsed = parsed
        self.postings = postings
        self.skipped = skipped
        count = max(len(names), 1)
        self.idf = {key: math.log(1 + count / len(ids)) for key, ids in postings.items()}

    @classmethod
    def build(cls, listed_names):
        names, parsed, postings, skipped, known = [], [], defaultdict(list), [], set()
        for listed in listed_names:
            try:
                p = parse(listed.name)
            except ScreeningInputError:
                skipped.append(listed)  # e.g. an alias in Arabic script: its Latin aliases are indexed
                continue
            rid = len(names)
            names.append(listed)
            parsed.append(p)
            keys = set()
            for i, (key, initial) in enumerate(zip(p.keys, p.initials, strict=True)):
                if not initial:
                    keys |= _variants(key)
                    if p.alts[i]:
                        keys |= _variants(p.alts[i])
                    known.add(key)
                    # "A. Usenov": the first letters of the other words, each paired with this word
                    keys |= {f"{letter}>{key}" for j, firsts in enumerate(p.firsts) if j != i for letter in firsts}
            keys.add("#" + p.joined)
            for key in keys:
                postings[key].append(rid)
        # Arrays, not lists: compact, and the garbage collector never walks them (no pauses on a large index).
        return cls(names, parsed, {key: array("i", ids) for key, ids in postings.items()}, skipped, frozenset(known))

    def __len__(self):
        return len(self.names)

    def _candidates(self, query):
        """The listed names sharing the most (and rarest) words with the query, best first."""
        weights = defaultdict(float)
        full = [k for k, initial in zip(query.keys, query.initials, strict=True) if not initial]
        full += [alt for alt, initial in zip(query.alts, query.initials, strict=True) if alt and not initial]
        for key in full:
            exact = self.postings.get(key, ())
            weight = self.idf.get(key, 1.0)
            for rid in exact:
                weights[rid] += weight
            near = set()
            for variant in _variants(key) - {key}:
                near.update(self.postings.get(variant, ()))
            near.difference_update(exact)
            near_weight = 0.7 * min((self.idf.get(v, 1.0) for v in _variants(key) if v in self.postings),
                                    default=1.0)
            for rid in near:
                weights[rid] += near_weight
        for firsts, initial in zip(query.firsts, query.initials, strict=True):
            if initial:
                for key in full:
                    for rid in {r for letter in firsts for r in self.postings.get(f"{letter}>{key}", ())}:
                        weights[rid] += 0.5
        for rid in self.postings.get("#" + query.joined, ()):
            weights[rid] += 100.0
        return sorted(weights, key=weights.__getitem__, reverse=True)[:CANDIDATES]

    def search(self, name, *, birth_date=None, nationality=None, limit=10, min_score=MIN_SCORE):
        """Hits for `name`, best first, at most one per listed entry (its best-scoring name or alias)."""
        birth_date = _check_birth_date(birth_date)
        nationality = _check_nationality(nationality)
        query = parse(name)
        best = {}
        for rid in self._candidates(query):
            cand = self.parsed[rid]
            listed = self.names[rid]
            score, matched, loose_q, loose_c = _align(query, cand, self.known)
            joined = _joined_score(query, cand)
            rule = _rule(query, cand, matched, loose_q, loose_c)
            if joined > score:
                score, rule = joined, "joined"
            if score <= 0:
                continue
            notes = []
            for delta, note in (_birth_adjustment(birth_date, listed.birth_dates),
                                _nationality_adjustment(nationality, listed.nationalities)):
                if note:
                    score += delta
                    notes.append(note)
            score = round(min(max(score, 0.0), 1.0), 4)
            if score < min_score:
                continue
            hit = Hit(listed, score, rule, _explain(name, listed, query, cand, matched, loose_q, loose_c, rule, notes))
            previous = best.get(listed.entry_id)
            if previous is None or hit.score > previous.score:
                best[listed.entry_id] = hit
        hits = sorted(best.values(), key=lambda h: (-h.score, h.listed.name))
        return hits[:limit]


def _rule(query, cand, matched, loose_q, loose_c):
    """Which variant classes explain the match, e.g. "transliteration+reordered+middle-name"."""
    labels = []
    if query.scripts != cand.scripts:
        labels.append("transliteration")
    if query.folded:
        labels.append("look-alike")
    order = [j for *_, j in sorted(matched, key=lambda m: m[3])]
    if order != sorted(order):
        labels.append("reordered")
    if loose_q or loose_c:
        labels.append("middle-name" if len(matched) >= 2 and not (loose_q and loose_c) else "partial")
    hows = {m[2] for m in matched}
    if "initial" in hows:
        labels.append("initials")
    if any("edit" in h for h in hows):
        labels.append("typo")
    if not labels and query.latin != cand.latin:
        labels.append("romanisation")
    return "+".join(labels) or "exact"


def _explain(name, listed, query, cand, matched, loose_q, loose_c, rule, notes):
    if rule == "joined":
        parts = [f"“{name}” written without word breaks equals “{listed.name}”"]
    else:
        words = [f"{query.keys[i]}={cand.keys[j]}" if how == "same" else f"{query.keys[i]}~{cand.keys[j]} ({how})"
                 for _sim, _weight, how, i, j in sorted(matched, key=lambda m: m[3])]
        parts = [f"“{name}” ~ “{listed.name}”: " + ", ".join(words)]
        if loose_c:
            parts.append("not given: " + ", ".join(cand.keys[j] for j in loose_c))
        if loose_q:
            parts.append("not listed: " + ", ".join(query.keys[i] for i in loose_q))
    if listed.is_alias:
        parts.append(f"alias of “{listed.primary_name}”")
    return "; ".join(parts + notes)
