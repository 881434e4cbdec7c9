"""Passwords in storage URLs never reach files or messages; ${VAR} is read when used."""

import pytest

from nas.config import expand_env, redact
from nas.errors import ConfigError


def test_redact_hides_url_passwords_in_text_and_data():
    url = "postgresql+psycopg2://nas:s3cr%2Et@db.example:5432/nas"
    assert redact(url) == "postgresql+psycopg2://nas:***@db.example:5432/nas"
    assert redact(f"cannot open storage {url!r}: refused") == \
        "cannot open storage 'postgresql+psycopg2://nas:***@db.example:5432/nas': refused"
    data = {"search": {"storage": url, "evaluations": 10}, "list": [url, 3]}
    assert redact(data) == {"search": {"storage": "postgresql+psycopg2://nas:***@db.example:5432/nas",
                                       "evaluations": 10},
                            "list": ["postgresql+psycopg2://nas:***@db.example:5432/nas", 3]}
    # nothing to hide: no password, a file name, an environment reference
    for text in ("sqlite:///runs/x/study.db", "postgresql://nas@db/nas", "study.db",
                 "postgresql://nas:${PGPASSWORD}@db/nas"):
        assert redact(text) == text


def test_expand_env_reads_the_environment_when_used(monkeypatch):
    monkeypatch.setenv("HWNAS_TEST_PW", "pw")
    assert expand_env("postgresql://nas:${HWNAS_TEST_PW}@db/nas") == "postgresql://nas:pw@db/nas"
    monkeypatch.delenv("HWNAS_TEST_PW")
    with pytest.raises(ConfigError, match="search.storage: environment variable HWNAS_TEST_PW is not set"):
        expand_env("postgresql://nas:${HWNAS_TEST_PW}@db/nas", "search.storage")


def test_run_folder_and_messages_never_hold_the_password(tmp_path, capsys, monkeypatch):
    import yaml

    from nas.cli import main
    from nas.experiment import load_experiment
    from nas.run._pipeline import make_context

    secret = "s3cr3tPW"
    url = f"sqlite+pysqlite://nas:{secret}@/{tmp_path / 'x.db'}"
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "secret", "search": {"storage": url}}))
    exp = load_experiment(path)
    ctx = make_context(exp, tmp_path / "run", echo=True)
    ctx.log(f"[search] storage {url}")
    for file in (tmp_path / "run").rglob("*"):
        if file.is_file():
            assert secret not in file.read_text(errors="ignore"), file
    assert secret not in capsys.readouterr().out
    # an error that echoes the URL
    monkeypatch.setenv("HWNAS_PW", secret)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "secret", "search": {"storage": f"nosuchdb://nas:{secret}@h/db"}}))
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nosuchdb://nas:***@h/db" in err or "not a database URL" in err
    assert secret not in err
