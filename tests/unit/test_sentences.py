from plait.readers.sentences import sentences, split_sentences


def test_abbreviations_initials_and_numbers_do_not_end_sentences() -> None:
    text = ("Dr. Smith met U.S. officials on Jan. 5. They agreed! \"Why not?\" he asked. "
            "J. R. Tolkien wrote books. The cost was $3.50 at 5 p.m. today.")
    assert sentences(text) == [
        "Dr. Smith met U.S. officials on Jan. 5.", "They agreed!", "\"Why not?\" he asked.",
        "J. R. Tolkien wrote books.", "The cost was $3.50 at 5 p.m. today.",
    ]


def test_lines_wrap_but_lists_headings_and_paragraphs_split() -> None:
    text = "A sentence that wraps\nonto the next line.\n\nNew paragraph\n- first item\n- second item\n# Title\nEnd."
    assert sentences(text) == ["A sentence that wraps onto the next line.", "New paragraph", "- first item",
                               "- second item", "# Title", "End."]


def test_offsets_point_into_the_text() -> None:
    text = "  First one.  Second one!\nThird?"
    for s in split_sentences(text):
        assert " ".join(text[s.start:s.end].split()) == s.text
    assert sentences("") == [] and sentences("   \n\n ") == []
