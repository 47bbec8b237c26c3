"""The re-free pattern matcher used by the generated validators agrees with re.search."""

from __future__ import annotations

import random
import re

import pytest

from ocirt.config.patterns import _compile, search

SPEC_PATTERNS = ["^RLIMIT_[A-Z]+$", "^[0-9, -]*$", "^[rwm]*$", "^[1-9][0-9]*[KMG]B$",
                 "^MB:[^\\n]*$", "^CAP_[A-Z_]+$"]


@pytest.mark.parametrize("pattern", SPEC_PATTERNS)
def test_every_spec_pattern_is_compiled_without_re(pattern):
    _compile(pattern)  # raises for anything it would hand to re


@pytest.mark.parametrize("pattern", SPEC_PATTERNS)
def test_matches_exactly_what_re_search_matches(pattern):
    rnd = random.Random(pattern)
    alphabet = "RLIMT_ABCZaz019,- rwmKMGB:\nCP"
    samples = ["", "RLIMIT_NOFILE", "RLIMIT_", "rwm", "rwm\n", "rwm\n\n", "2MB", "0MB", "MB:x",
               "MB:a\n", "CAP_SYS_ADMIN", "1-3,5"]
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
                for _ in range(2000)]
    for s in samples:
        assert bool(search(pattern, s)) == bool(re.search(pattern, s)), repr(s)


def test_other_patterns_fall_back_to_re():
    assert search("^a(b|c)$", "ac")
    assert not search("^a(b|c)$", "ad")
