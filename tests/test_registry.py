"""Registries and external plug-ins through the `bench.methods` entry-point group."""

import textwrap

import pytest

from bench import registry
from bench.cli import main
from bench.grid.sweep import resolve_methods
from bench.registry import DATASETS, METHODS, PluginError, build, list_names, load_plugins, lookup

PLUGIN = '''
from bench.method import Method


class EchoMethod(Method):
    """A zero-shot plug-in that scores every class by the first feature dimension."""
    name = "echo"
    trains_on = None

    def logits(self, feats):
        return feats["global"][:, :1].expand(-1, len(self.classnames))
'''


def _install_plugin(root, entry_name: str, target: str = "echo_plugin:EchoMethod"):
    """A minimal installed distribution on sys.path: a module plus a dist-info with entry_points.txt."""
    (root / "echo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[bench.methods]\n{entry_name} = {target}\n")


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    METHODS.module_dict.pop("echo", None)
    load_plugins(force=True)


def test_external_plugin_appears_in_list_and_all(plugin_path, capsys):
    _install_plugin(plugin_path, "echo")
    load_plugins(force=True)
    assert lookup(METHODS, "echo").__module__ == "echo_plugin"
    assert "echo" in resolve_methods("all") and "zsclip" in resolve_methods("all")
    assert main(["list", "methods"]) == 0
    assert "echo         plug-in echo_plugin" in capsys.readouterr().out


def test_plugin_clash_with_builtin_is_an_error(plugin_path):
    _install_plugin(plugin_path, "zsclip")
    with pytest.raises(PluginError, match="plug-in method 'zsclip' from echo_plugin:EchoMethod clashes with .*"
                                          "bench\\.methods\\.zsclip\\.ZSCLIP"):
        load_plugins(force=True)
    # leave the registry usable for later tests
    (plugin_path / "echo_plugin-0.1.dist-info" / "entry_points.txt").write_text("[bench.methods]\n")


def test_broken_plugin_names_itself(plugin_path):
    _install_plugin(plugin_path, "broken", target="no_such_module:Thing")
    with pytest.raises(PluginError, match="plug-in 'broken' \\(no_such_module:Thing\\) failed to import"):
        load_plugins(force=True)
    (plugin_path / "echo_plugin-0.1.dist-info" / "entry_points.txt").write_text("[bench.methods]\n")


def test_lookup_and_build_errors():
    with pytest.raises(KeyError, match="unknown dataset 'cocoa'; valid names: coco2014, nuswide, toy, voc2007"):
        lookup(DATASETS, "cocoa")
    with pytest.raises(TypeError, match="must be a dict with a 'type' key, got 'coco2014'"):
        build(DATASETS, "coco2014")
    assert list_names(DATASETS, "voc*") == ["voc2007"]
    assert registry.ENTRY_POINT_GROUP == "bench.methods"
