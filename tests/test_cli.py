"""The dirnet entry point: bad user input is one line on stderr and exit code 2."""

from pathlib import Path

from dir_net.cli import main as dirnet

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")


def test_missing_mano_folder_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DIRNET_MANO_DIR", str(tmp_path / "no_such_folder"))
    assert dirnet(["info", "--config", CONFIG]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dirnet: error:") and "no_such_folder" in err and "\n" not in err


def test_truncated_mano_file_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    for side in ("RIGHT", "LEFT"):
        (tmp_path / f"MANO_{side}.npz").write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv("DIRNET_MANO_DIR", str(tmp_path))
    assert dirnet(["info", "--config", CONFIG]) == 2
    err = capsys.readouterr().err.strip()
    assert "MANO_RIGHT.npz" in err and "\n" not in err


def test_an_eval_folder_in_the_working_directory_does_not_shadow_the_toolkit(tmp_path):
    """`dirnet eval` writes `{run}/eval/`; `python -m dir_net` run from that run folder must still
    import the real `eval` package (an editable install resolves it after the working directory)."""
    import subprocess
    import sys

    (tmp_path / "eval").mkdir()
    probe = ("import os, runpy, sys\n"
             "sys.path.insert(0, os.getcwd()); sys.argv = ['dirnet', '--version']\n"
             "try:\n    runpy.run_module('dir_net', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "import eval\nprint(eval.__file__)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1].endswith(str(Path("eval", "__init__.py")))
