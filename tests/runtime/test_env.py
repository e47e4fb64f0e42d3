"""runtime.env.switch: one spelling of on and off for every GRADC_* on/off variable."""

from __future__ import annotations

import pytest

from runtime.env import switch

NAME = "GRADC_TEST_SWITCH"


@pytest.mark.parametrize("raw", ["1", "true", "Yes", " ON ", "TRUE"])
def test_switch_reads_on(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    assert switch(NAME, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", " off", "FALSE"])
def test_switch_reads_off(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    assert switch(NAME, True) is False


@pytest.mark.parametrize("default", [True, False])
def test_switch_unset_or_empty_is_the_default(monkeypatch, default):
    monkeypatch.delenv(NAME, raising=False)
    assert switch(NAME, default) is default
    monkeypatch.setenv(NAME, "  ")
    assert switch(NAME, default) is default


@pytest.mark.parametrize("raw", ["2", "enabled", "of", "y"])
def test_switch_rejects_other_values_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ValueError, match=f"{NAME}='{raw}': expected 1, true, yes or on"):
        switch(NAME, True)
