"""Item keys as file names: one file per item, even for long keys that share a beginning."""

from __future__ import annotations

from plait.workflows.templates import KEY_SLUG_CHARS, key_slug, slug


def test_long_keys_that_share_their_first_80_characters_get_different_names() -> None:
    base = "feed:https://news.example.org/2026/12/03/a-long-article-title-about-the-budget-and-the-"
    keys = [base + "council", base + "mayor"]
    names = [key_slug(k) for k in keys]
    assert slug(keys[0], 80) == slug(keys[1], 80)  # what the names were: one file for both
    assert names[0] != names[1] and all(len(n) <= KEY_SLUG_CHARS for n in names)
    assert key_slug(keys[0]) == names[0]  # the same key, the same name


def test_short_keys_keep_the_names_they_had() -> None:
    for key in ("maildir:1796308032.M7853P26834Q292.vm", "manual:3f2a", "webhook:abc"):
        assert key_slug(key) == slug(key, 80)
