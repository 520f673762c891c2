"""Config keys and values are checked at every depth against what the code accepts (bench/schema.py), and bad
input through the CLI ends in one line that names the key path and what is valid -- never a traceback."""

import pytest

from bench.cli import main
from bench.config import load_config
from bench.schema import ConfigError, check_config


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("bench: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out
    return err[len("bench: error: "):]


def test_shipped_configs_pass():
    for name in ("toy", "coco", "voc2007", "nuswide"):
        check_config(load_config(name))


@pytest.mark.parametrize("option, message", [
    ("coop.train.epoch=2", "unknown config key 'coop.train.epoch'; valid keys of coop.train: batch_size, clip_grad, "
                           "epochs, num_workers, optimizer, paramwise_cfg, per_setting, scheduler, steps_per_epoch, "
                           "warmup_epochs, warmup_lr"),
    ("coop.train.epochs=2.5", "config value coop.train.epochs=2.5 (float): expected int"),
    ("coop.csc=maybe", "config value coop.csc='maybe' (str): expected bool"),
    ("features.mdoe=online", "unknown config key 'features.mdoe'; valid keys of features: augment, batch_size, "
                             "eval_batch_size, mode, num_workers, views"),
    ("features.mode=onlin", "config value features.mode='onlin': expected one of ('cached', 'online')"),
    ("features.augment.flp=true", "unknown config key 'features.augment.flp'; valid keys of features.augment: "),
    ("sweep.seed=[1]", "unknown config key 'sweep.seed'; valid keys of sweep: method_settings, ratios, seeds, "
                       "settings, shots, variants"),
    ("sweep.shots=[1,x]", "shots must be a positive integer (images per class), got 'x'"),
    ("runtime.amp=fp8", "config value runtime.amp='fp8': expected one of (None, 'fp16', 'bf16')"),
    ("runtime.log_interval=x", "config value runtime.log_interval='x' (str): expected int"),
    ("dataset.keep_unanotated=true", "unknown config key 'dataset.keep_unanotated'; valid keys of dataset: "
                                     "captions_per_image, data_root, extra_caption_files, keep_unannotated"),
    ("backbone.quick_gelu=maybe", "config value backbone.quick_gelu='maybe' (str): expected bool or None"),
    ("backbone.pretraind=x", "unknown config key 'backbone.pretraind'; valid keys of backbone: image_size, "
                             "interpolation, model, model_config, pretrained, quick_gelu, resize_mode"),
    ("copo.n_ctx=4", "unknown config key 'copo'; valid keys: backbone, clip_adapter, clip_lora, cocoop, coop, "
                     "dataset, diagnostics, dualcoop, features, fusions, "),
    ("coop.train.optimizer.lrr=1", "unknown config key 'coop.train.optimizer.lrr'; valid keys of "
                                   "coop.train.optimizer: dampening, differentiable, foreach, fused, lr, "),
    ("coop.train.per_setting.fewshot.epochs=1.5", "config value coop.train.per_setting.fewshot.epochs=1.5 (float): "
                                                  "expected int"),
    ("coop.train.per_setting.fewshoot.epochs=1", "unknown config key 'coop.train.per_setting.fewshoot'; valid keys "
                                                 "of coop.train.per_setting: fewshot, partial, zero-shot"),
    ("dualcoop.backbone.image_sze=448", "unknown config key 'dualcoop.backbone.image_sze'; valid keys of "
                                        "dualcoop.backbone: image_size, "),
    ("dualcoop.backbone.resize_mode=crop", "config value dualcoop.backbone.resize_mode='crop': expected one of"),
    ("zsclip.templates=3", "config value zsclip.templates=3 (int): expected str or list"),
])
def test_nested_typos_and_types_refused(tmp_path, tiny_config, capsys, option, message):
    argv = ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--methods", "zsclip", "--quiet",
            "--cfg-options", option]
    assert message in _error(capsys, argv)
    assert not (tmp_path / "w").exists()


def test_variant_sections_checked_against_their_base(tiny_config):
    cfg = load_config(str(tiny_config), {"coop_x": {"type": "coop", "n_ctxx": 4}})
    with pytest.raises(ConfigError, match="unknown config key 'coop_x.n_ctxx'; valid keys of coop_x: backbone, "
                                          "class_token_position, clip, csc, ctx_init, eps, features, gamma_neg"):
        check_config(cfg)
