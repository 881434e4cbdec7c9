"""The one registry implementation and plugin loading."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from search_spaces import Registry, SearchSpaceError, UnknownNameError, as_generator, load_plugin
from search_spaces import _registry as registry_module


def make() -> Registry:
    reg = Registry("widget", SearchSpaceError, UnknownNameError)

    @reg.register("box")
    def box(size: int = 1, colour: str = "red"):
        return ("box", size, colour)

    @reg.register("buggy")
    def buggy(size: int = 1):
        return len(size)  # a bug inside the factory: TypeError

    return reg


def test_create_checks_option_names_before_calling():
    reg = make()
    assert reg.create("box", size=3) == ("box", 3, "red")
    with pytest.raises(SearchSpaceError, match=r"widget 'box' has no option 'colur' \(did you mean "
                                               r"'colour'\?\); valid options: size, colour"):
        reg.create("box", colur="blue")


def test_a_bug_inside_a_factory_is_not_reported_as_a_bad_option():
    with pytest.raises(TypeError, match="has no len"):
        make().create("buggy", size=3)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match=r"unknown widget 'bx' \(did you mean 'box'\?\); "
                                               r"valid widgets: box, buggy"):
        make().get("bx")


def test_replace_and_name_pattern():
    reg = make()
    with pytest.raises(SearchSpaceError, match="already registered"):
        reg.add("box", lambda: None)
    reg.add("box", lambda: "new", replace=True)
    assert reg.create("box") == "new"
    for bad in ("", "1box", "my box", None):
        with pytest.raises(SearchSpaceError, match="name must match"):
            reg.add(bad, lambda: None)
    assert reg.names() == ["box", "buggy"] and "box" in reg and len(reg) == 2


def test_positional_arguments_are_not_options():
    reg = Registry("engine")
    reg.add("e", lambda space, seed=0: (space, seed))
    assert reg.options("e", skip=1) == ["seed"]
    assert reg.create("e", "S", seed=2) == ("S", 2)
    with pytest.raises(SearchSpaceError, match="valid options: seed"):
        reg.create("e", "S", space="T")


def test_as_generator():
    gen = np.random.default_rng(3)
    assert as_generator(gen) is gen
    assert as_generator(3).random() == np.random.default_rng(3).random()


def test_load_plugin_from_a_file_registers_once(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(textwrap.dedent("""
        from search_spaces import SPACES
        import search_spaces
        search_spaces.register_space("plugin_space_for_test")(lambda: None)
    """))
    from search_spaces import SPACES

    try:
        name = load_plugin("my_plugin.py", base_dir=tmp_path)
        assert "plugin_space_for_test" in SPACES
        assert load_plugin(str(plugin)) == name  # already loaded: not run twice
    finally:
        SPACES.remove("plugin_space_for_test")


def test_load_plugin_errors_name_the_plugin(tmp_path):
    with pytest.raises(SearchSpaceError, match="plugin file .*nope.py' does not exist"):
        load_plugin("nope.py", base_dir=tmp_path)
    with pytest.raises(SearchSpaceError, match="plugin module 'no_such_module_xyz' cannot be found"):
        load_plugin("no_such_module_xyz")


def test_entry_point_plugins_load_on_a_miss(monkeypatch, tmp_path):
    (tmp_path / "ep_plugin_for_test.py").write_text(
        "import search_spaces\nsearch_spaces.register_space('ep_space_for_test')(lambda: None)\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class Entry:
        value = "ep_plugin_for_test:unused"

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [Entry()] if group == "hwnas.plugins" else [])
    monkeypatch.setattr(registry_module, "_ENTRY_POINTS_LOADED", False)
    from search_spaces import SPACES

    try:
        assert SPACES.get("ep_space_for_test") is not None
    finally:
        SPACES.remove("ep_space_for_test")


def test_register_can_name_the_registered_class():
    reg = Registry("engine")

    @reg.register("greedy", name_attribute="name")
    class Greedy:
        name = ""

    assert reg.get("greedy") is Greedy and Greedy.name == "greedy"
