import subprocess
import sys

import plait


def test_all_names_exist() -> None:
    for name in plait.__all__:
        assert hasattr(plait, name), name
    assert sorted(plait.__all__) == sorted(set(plait.__all__))


def test_import_and_help_load_no_heavy_library() -> None:
    code = (
        "import sys, plait, plait.cli.main\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'llama_cpp', 'onnxruntime', 'spacy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
