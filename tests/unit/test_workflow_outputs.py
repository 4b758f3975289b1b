"""Reading back what workflows made: the listing and the files of an output folder."""

from __future__ import annotations

from pathlib import Path

from plait.workflows.outputs import list_outputs


def test_outputs_are_listed_in_a_home_whose_name_starts_with_a_dot(tmp_path: Path) -> None:
    folder = tmp_path / ".plait" / "output" / "feed-reader"  # the default home is ~/.plait
    (folder / "digests").mkdir(parents=True)
    (folder / "digest.md").write_text("# Reading list")
    (folder / "digests" / "2024-05-02.md").write_text("# May")
    (folder / ".digest.md.a1b2c3d4.tmp").write_text("half")  # hidden files stay hidden
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.json").write_text("{}")
    assert sorted(f.path for f in list_outputs(folder)) == ["digest.md", "digests/2024-05-02.md"]
