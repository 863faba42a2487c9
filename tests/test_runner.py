import logging
import os
import sys

import pytest

from diffaug.runner import run_step


def test_progress_and_records_go_to_the_log(tmp_path):
    with run_step(tmp_path / "logs" / "step.log"):
        print("stdout line")
        print("progress bar", file=sys.stderr)
        logging.getLogger("diffaug.test").info("a record")
    text = (tmp_path / "logs" / "step.log").read_text()
    assert "stdout line" in text and "progress bar" in text and "a record" in text


def test_a_failure_is_logged_with_its_traceback_and_told_on_the_terminal(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop, run_step(tmp_path / "step.log"):
        raise ValueError("metadata.csv: row 3 is wrong")
    assert stop.value.code == 1
    log = (tmp_path / "step.log").read_text()
    assert "Traceback" in log and "ValueError: metadata.csv: row 3 is wrong" in log
    terminal = capsys.readouterr().err
    assert "error: metadata.csv: row 3 is wrong" in terminal and "Traceback" not in terminal


@pytest.mark.parametrize("gpu", [0, 1])
def test_a_job_given_a_gpu_that_finds_none_warns_in_its_log_and_on_the_terminal(tmp_path, capsys, monkeypatch, gpu):
    import torch

    from diffaug.devices import GPU_REQUESTED, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(GPU_REQUESTED, "0")  # restored after the test
    with run_step(tmp_path / "step.log", gpu=gpu):
        device = resolve_device("auto", "generate.device")
    assert device.type == "cpu"
    log, terminal = (tmp_path / "step.log").read_text(), capsys.readouterr().err
    warned = "generate.device is 'auto' and this job asked for a GPU, but it sees no CUDA device"
    assert (warned in log) == (warned in terminal) == bool(gpu)
    assert str(tmp_path / "step.log") in terminal or not gpu


def test_a_gpu_job_on_a_machine_with_several_gpus_gets_one_of_its_own_and_logs_it(tmp_path, monkeypatch):
    from diffaug.gpu_slots import LOCK_DIR_VARIABLE

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path / "locks"))
    with run_step(tmp_path / "gpu.log", gpu=1):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "this job uses GPU 0 of 0, 1" in (tmp_path / "gpu.log").read_text()
    with run_step(tmp_path / "cpu.log", gpu=0):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "GPU" not in (tmp_path / "cpu.log").read_text()
