from pathlib import Path

import pytest

from plait.errors import ConfigError
from plait.settings import resolve_settings, write_setting


def test_defaults_and_sources(tmp_path: Path) -> None:
    r = resolve_settings(environ={}, home=tmp_path)
    assert r.settings.chat_model == "smollm2"
    assert r.sources["chat_model"] == "default"
    assert r.sources["home"] == "argument"
    assert r.settings.database_path == tmp_path / "plait.db"


def test_resolution_order_argument_over_config_over_env(tmp_path: Path) -> None:
    env = {"PLAIT_CHAT_MODEL": "from-env", "PLAIT_MAX_TOKENS": "99", "PLAIT_TEMPERATURE": "0.1"}
    (tmp_path / "config.toml").write_text('chat_model = "from-config"\nmax_tokens = 42\n')
    r = resolve_settings(environ=env, home=tmp_path, chat_model="from-arg")
    assert r.settings.chat_model == "from-arg" and r.sources["chat_model"] == "argument"
    assert r.settings.max_tokens == 42 and r.sources["max_tokens"] == "config file"
    assert r.settings.temperature == 0.1 and r.sources["temperature"] == "environment"


def test_home_from_environment(tmp_path: Path) -> None:
    r = resolve_settings(environ={"PLAIT_HOME": str(tmp_path)})
    assert r.settings.home == tmp_path and r.sources["home"] == "environment"


def test_invalid_values_name_the_setting_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'threads' from the environment"):
        resolve_settings(environ={"PLAIT_THREADS": "many"}, home=tmp_path)
    (tmp_path / "config.toml").write_text("max_tokens = -3\n")
    with pytest.raises(ConfigError, match="'max_tokens' from the config file"):
        resolve_settings(environ={}, home=tmp_path)


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("chat_model = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_settings(environ={}, home=tmp_path)
    (tmp_path / "config.toml").write_text('chat_modle = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting.*chat_modle"):
        resolve_settings(environ={}, home=tmp_path)


def test_write_setting_validates_and_persists(tmp_path: Path) -> None:
    write_setting(tmp_path, "max_tokens", "128")
    assert resolve_settings(environ={}, home=tmp_path).settings.max_tokens == 128
    with pytest.raises(ConfigError):
        write_setting(tmp_path, "max_tokens", "lots")
    with pytest.raises(ConfigError, match="unknown setting"):
        write_setting(tmp_path, "nope", "1")
    assert resolve_settings(environ={}, home=tmp_path).settings.max_tokens == 128
