"""Nothing bench reads can run code (issue 25, item 1): checkpoints in a work dir and user-given weights load with
``weights_only=True``, a TorchScript archive only through ``torch.jit.load``, and no process-wide switch.

Each attack plants a crafted pickle whose ``__reduce__`` creates a marker file when unpickled, where bench reads
a checkpoint, and checks that the marker never appears and that the user gets one line.
"""

import builtins
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.testing import ProbeMethod

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickled by a full unpickler, it opens (creates) ``marker``: arbitrary code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _plant(path: Path, marker: Path, state: dict | None = None) -> Path:
    torch.save({"meta": {"epoch": 99, "iter": 999}, "state_dict": state or {}, "evil": Payload(marker)}, path)
    assert zipfile.is_zipfile(path) and not marker.exists()
    return path


def _run(config, work, *extra):
    return ["run", "--dataset", str(config), "--work-dir", str(work), "--quiet", *extra]


def test_no_process_wide_switch_in_the_code():
    found = subprocess.run(["grep", "-rn", "TORCH_FORCE_NO_WEIGHTS_ONLY" + "_LOAD", "bench", "methods"], cwd=ROOT,
                           capture_output=True, text=True)
    assert found.returncode == 1 and found.stdout == ""


PROBE_ARGS = ["--methods", "probe", "--settings", "partial", "--ratios", "0.5", "--cfg-options",
              "probe.train.epochs=4"]


def _killed_in_epoch_3(config, work, args, monkeypatch):
    """Run the probe cell and kill it in its third epoch (12 images, batch 4: 3 steps an epoch); its state folder,
    holding epoch_1.pth and epoch_2.pth."""
    monkeypatch.setenv("BENCH_PROBE_INTERRUPT_AT", str(ProbeMethod.loss_calls + 8))
    with pytest.raises(KeyboardInterrupt):
        main(_run(config, work, *args))
    monkeypatch.delenv("BENCH_PROBE_INTERRUPT_AT")
    [state] = (work / "tiny" / "cells" / "coco2014" / "probe__partial_r0.5__s1").iterdir()
    return state


def test_crafted_epoch_checkpoint_never_runs_and_training_resumes_before_it(tmp_path, tiny_config, probe,
                                                                           monkeypatch, caplog):
    args = PROBE_ARGS
    assert main(_run(tiny_config, tmp_path / "clean", *args)) == 0
    [clean] = [json.loads(p.read_text()) for p in (tmp_path / "clean").glob("**/records/**/probe*.json")]

    state = _killed_in_epoch_3(tiny_config, tmp_path / "w", args, monkeypatch)
    real = state / "epoch_2.pth"
    # what bench writes is plain data: nothing a weights_only load refuses (mmengine's HistoryBuffers, numpy)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(real)) == []
    marker = tmp_path / "pwned"
    evil = _plant(state / "epoch_3.pth", marker)  # newer than the real one: tried first
    before = ProbeMethod.loss_calls
    with caplog.at_level("WARNING", logger="bench"):
        assert main(_run(tiny_config, tmp_path / "w", *args)) == 0
    assert not marker.exists()
    assert ProbeMethod.loss_calls - before == 6  # resumed after epoch 2: epochs 3 and 4 ran
    [line] = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert line == (f"ignoring checkpoint {evil} is not a plain checkpoint bench can load safely (it would unpickle "
                    "io.open, which could run code); resuming from an earlier epoch or from the start")
    [resumed] = [json.loads(p.read_text()) for p in (tmp_path / "w").glob("**/records/**/probe*.json")]
    assert resumed["mAP"] == clean["mAP"] and resumed["per_class_AP"] == clean["per_class_AP"]
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ  # training set no switch for the process


def test_config_code_in_a_plain_checkpoint_is_never_run(tmp_path, tiny_config, probe, monkeypatch):
    """mmengine's resume executes ``meta["config"]`` as a Python config file: a checkpoint of plain data (it passes
    weights_only) can still carry code that way. bench drops it unread."""
    args = PROBE_ARGS
    state = _killed_in_epoch_3(tiny_config, tmp_path / "w", args, monkeypatch)
    marker = tmp_path / "pwned"
    checkpoint = torch.load(state / "epoch_2.pth", weights_only=True)
    checkpoint["meta"]["config"] = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ngpu_ids = []\n"
    torch.save(checkpoint, state / "epoch_2.pth")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(state / "epoch_2.pth")) == []  # plain data
    assert main(_run(tiny_config, tmp_path / "w", *args)) == 0
    assert not marker.exists()


def test_crafted_backbone_checkpoint_is_one_line_before_any_work(tmp_path, tiny_config, tiny_rn_cfg, capsys):
    from safetensors.torch import load_file

    marker = tmp_path / "pwned"
    evil = _plant(tmp_path / "weights.pt", marker, load_file(tiny_rn_cfg["pretrained"]))
    work = tmp_path / "w"
    code = main(_run(tiny_config, work, "--methods", "zsclip", "--cfg-options", f"backbone.pretrained={evil}"))
    captured = capsys.readouterr()
    assert code == 2 and not marker.exists() and "Traceback" not in captured.err + captured.out
    assert captured.err == (f"bench: error: CLIP checkpoint {evil} (backbone.pretrained) holds Python objects besides "
                            "tensors (io.open); bench never unpickles those (they could run code): save the "
                            "weights as a state dict (torch.save(model.state_dict(), path)) or a .safetensors file\n")
    assert not list(work.glob("**/records/**/*.json"))


def test_load_backbone_refuses_the_payload_itself(tmp_path, tiny_rn_cfg):
    """Behind the check before the run: the loader itself never unpickles it (weights_only=True)."""
    from bench.errors import BackboneError
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec

    marker = tmp_path / "pwned"
    evil = _plant(tmp_path / "weights.pt", marker)
    with pytest.raises(BackboneError) as info:
        load_backbone(resolve_spec({**tiny_rn_cfg, "pretrained": str(evil)}))
    assert not marker.exists()
    assert str(info.value) == (
        f"checkpoint {evil} holds Python objects besides tensors (io.open); bench never unpickles those (they could "
        "run code). Save the weights as a state dict (torch.save(model.state_dict(), path) or a .safetensors file), "
        "or pass OpenAI's TorchScript .pt release as it is")


def test_torchscript_lookalike_is_never_unpickled(tmp_path, tiny_rn_cfg):
    """A zip that looks like a TorchScript archive to bench (a code/ folder) but not to torch (no constants.pkl)
    would be unpickled in full by torch.load(weights_only=False); bench reads archives with torch.jit.load only."""
    from bench.errors import BackboneError
    from bench.features.backbone import load_backbone
    from bench.features.quickgelu import is_torchscript_archive
    from bench.features.spec import resolve_spec

    marker = tmp_path / "pwned"
    plain = _plant(tmp_path / "plain.pt", marker)
    fake = tmp_path / "fake.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(fake, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("plain/code/__torch__.py", "")
    assert is_torchscript_archive(fake)
    with pytest.raises(BackboneError):
        load_backbone(resolve_spec({**tiny_rn_cfg, "pretrained": str(fake)}))
    assert not marker.exists()


def test_history_buffers_round_trip_as_plain_data():
    from mmengine.logging import HistoryBuffer

    from bench.cell.checkpoints import from_plain, to_plain

    buffer = HistoryBuffer([0.5, 0.25], [1, 1], max_length=7)
    hub = {"log_scalars": {"train/loss": buffer}, "runtime_info": {"eta": __import__("numpy").float64(1.5)}}
    plain = to_plain(hub)
    assert plain["runtime_info"]["eta"] == 1.5 and type(plain["runtime_info"]["eta"]) is float
    back = from_plain(plain)["log_scalars"]["train/loss"]
    assert isinstance(back, HistoryBuffer) and back.max_length == 7
    assert back.data[0].tolist() == [0.5, 0.25] and back.data[1].tolist() == [1, 1] and back.mean() == 0.375
