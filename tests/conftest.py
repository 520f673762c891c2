"""Shared fixtures: tiny random-init open_clip models and tiny datasets in real formats (bench.testing)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_rn_cfg(tmp_path_factory):
    """Backbone config dict of a tiny ModifiedResNet CLIP saved as a local checkpoint."""
    from bench.testing import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny_rn"), name="tiny-rn")


@pytest.fixture(scope="session")
def tiny_vit_cfg(tmp_path_factory):
    from bench.testing import TINY_VIT, write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny_vit"), name="tiny-vit", arch=TINY_VIT)


@pytest.fixture(scope="session")
def tiny_rn(tiny_rn_cfg):
    """The tiny ResNet CLIP loaded through bench's backbone path (local checkpoint + model config)."""
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec

    return load_backbone(resolve_spec(tiny_rn_cfg))


@pytest.fixture(scope="session")
def tiny_vit(tiny_vit_cfg):
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec

    return load_backbone(resolve_spec(tiny_vit_cfg))


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory):
    """(root, scenes) of a tiny dataset in the MS-COCO 2014 layout (12 train / 8 test images, 4 classes)."""
    from bench.testing import write_coco

    root = tmp_path_factory.mktemp("coco")
    return root, write_coco(root)


@pytest.fixture
def tiny_config(tmp_path, tiny_coco, tiny_rn_cfg):
    """Path of a sweep config over the tiny COCO dataset with the tiny ResNet CLIP."""
    from bench.testing import write_tiny_config

    return write_tiny_config(tmp_path / "tiny.py", {"type": "coco2014", "data_root": str(tiny_coco[0])}, tiny_rn_cfg)


@pytest.fixture
def probe(tmp_path_factory, monkeypatch):
    """ProbeMethod installed as an external plug-in (also visible to subprocesses via PYTHONPATH)."""
    from bench.registry import METHODS, load_plugins
    from bench.testing import install_probe_plugin

    folder = install_probe_plugin(tmp_path_factory.mktemp("plugin"))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    load_plugins(force=True)
    yield folder
    METHODS.module_dict.pop("probe", None)
