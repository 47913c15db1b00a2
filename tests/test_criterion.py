import pytest
import torch
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)

from conftest import load_task
from ssvp_plugin.criterions.label_smoothed_ce import SltLabelSmoothedCrossEntropy, SltLabelSmoothedCrossEntropyConfig
from ssvp_plugin.models.mae_vit_slt import MaeVitSltConfig, MaeVitSltModel


@pytest.fixture(scope="module")
def setup(synthetic_root):
    task = load_task(synthetic_root)
    task.load_dataset("test")
    ds = task.datasets["test"]
    torch.manual_seed(0)
    model = MaeVitSltModel.build_model(MaeVitSltConfig(preset="tiny", max_target_positions=128), task).eval()
    return task, model, ds.collater([ds[i] for i in range(4)])


def test_matches_fairseq_label_smoothed_cross_entropy(setup):
    task, model, sample = setup
    ours = SltLabelSmoothedCrossEntropy(task, sentence_avg=False, label_smoothing=0.1, report_accuracy=True)
    ref = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1, report_accuracy=True)
    with torch.no_grad():
        loss, size, log = ours(model, sample)
        ref_loss, ref_size, ref_log = ref(model, sample)
    assert torch.allclose(loss, ref_loss) and size == ref_size == sample["ntokens"]
    for key in ("loss", "nll_loss", "n_correct", "total"):
        assert log[key] == pytest.approx(ref_log[key])
    assert log["total"] == sample["ntokens"]
    assert 0 <= log["n_correct"] <= log["total"]


def test_smoothing_changes_the_loss_but_not_the_nll(setup):
    task, model, sample = setup
    with torch.no_grad():
        _, _, smooth = SltLabelSmoothedCrossEntropy(task, False, 0.1, report_accuracy=True)(model, sample)
        _, _, plain = SltLabelSmoothedCrossEntropy(task, False, 0.0, report_accuracy=True)(model, sample)
    assert smooth["nll_loss"] == pytest.approx(plain["nll_loss"])
    assert plain["loss"] == pytest.approx(plain["nll_loss"])
    assert smooth["loss"] != pytest.approx(plain["loss"])


def test_defaults_report_accuracy_with_smoothing():
    cfg = SltLabelSmoothedCrossEntropyConfig()
    assert cfg.report_accuracy is True and cfg.label_smoothing == 0.1
    assert LabelSmoothedCrossEntropyCriterionConfig().report_accuracy is False
