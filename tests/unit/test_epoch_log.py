"""Training log lines: `epoch n/N`, img/s, time per epoch and an ETA (no model is trained here)."""

from __future__ import annotations

import logging

import pytest

from pipeline.training import epoch_log


def test_eta_text():
    assert epoch_log.eta_text(7.4) == "7s"
    assert epoch_log.eta_text(369) == "6m09s"
    assert epoch_log.eta_text(7500) == "2h05m"


def test_epoch_lines_count_to_n_with_an_eta(monkeypatch, caplog):
    clock = iter([0.0, 9.0, 10.0, 10.0, 13.0, 14.0, 14.0, 17.0, 18.0])  # begin, last batch, end, ...
    monkeypatch.setattr(epoch_log.time, "perf_counter", lambda: next(clock))
    timer = epoch_log.EpochLog(n_images=300, total_epochs=5)
    caplog.set_level(logging.INFO, logger=epoch_log.log.name)
    for epoch in (2, 3, 4):  # a resumed run: epochs 3-5 of 5
        timer.on_epoch_begin(epoch)
        timer.on_train_batch_end(0)
        timer.on_epoch_end(epoch, {"loss": 0.5})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "epoch 3/5: loss=0.5 (33 img/s, 10s/epoch, ETA <= 20s)"  # 2 left x 10 s
    assert (
        lines[1] == "epoch 4/5: loss=0.5 (100 img/s, 4s/epoch, ETA <= 4s)"
    )  # first (tracing) epoch left out
    assert lines[2] == "epoch 5/5: loss=0.5 (100 img/s, 4s/epoch)"  # last: no ETA
    assert timer.epochs == [3, 4, 5]
    assert timer.images_per_second() == pytest.approx(100.0)


def test_reproduce_shows_these_lines_while_a_rebuild_trains():
    from pipeline.registry import reproduce

    assert f"{epoch_log.log.name}: epoch" in reproduce._PROGRESS


def test_an_epoch_cut_short_by_a_budget_counts_only_the_images_it_ran(monkeypatch, caplog):
    """10 steps an epoch; the last epoch of a train.budget_images run stops after 4: 40 % of 300."""
    clock = iter([0.0, 3.0, 3.0, 3.0, 6.0, 6.0, 6.0, 7.2, 7.2])  # begin, last batch, end, ...
    monkeypatch.setattr(epoch_log.time, "perf_counter", lambda: next(clock))
    timer = epoch_log.EpochLog(n_images=300, total_epochs=3, steps_per_epoch=10)
    caplog.set_level(logging.INFO, logger=epoch_log.log.name)
    for epoch, steps in ((0, 10), (1, 10), (2, 4)):
        timer.on_epoch_begin(epoch)
        timer.on_train_batch_end(steps - 1)
        timer.on_epoch_end(epoch, {})
    assert timer.epoch_images == [300, 300, 120]
    assert caplog.records[-1].getMessage().startswith("epoch 3/3:  (100 img/s")
    assert timer.images_per_second() == pytest.approx(420 / 4.2)
