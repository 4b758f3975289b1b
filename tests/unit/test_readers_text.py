from pathlib import Path

import pytest

from plait.errors import InputError
from plait.readers import decode_bytes, read_document, read_text


def test_decodes_common_encodings() -> None:
    assert decode_bytes("café".encode()) == "café"
    assert decode_bytes("\ufeffcafé".encode("utf-8")) == "café"
    assert decode_bytes("café".encode("utf-16")) == "café"
    assert "caf" in decode_bytes("café au lait, s'il vous plaît".encode("cp1252"))


def test_binary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.txt"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(InputError, match="binary"):
        read_text(path)


def test_missing_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_text(tmp_path / "nope.txt")
    odd = tmp_path / "data.xyz123"
    odd.write_text("x")
    with pytest.raises(InputError, match="cannot read"):
        read_document(odd)
