"""The image-level split warning (split.allow_image_level) in report.html, its model card and registered.html."""

from __future__ import annotations

from helpers.report_inputs import render_synthetic

from pipeline import config
from pipeline.config.split_level import IMAGE_LEVEL_WARNING
from pipeline.evaluation import model_card, report_header

SAID = "images of the same patient may be in train and test"


def test_report_and_model_card_carry_the_warning_and_drop_patient_figures(in_tmp):
    html, _ = render_synthetic(in_tmp, params={"split": {"allow_image_level": True}})
    assert html.count(SAID) == 3  # under the test-set line, in the model card's notes and its limitations
    assert 'id="image-level"' in html
    assert 'id="patients"' not in html and "Patient-level metrics</h2>" not in html
    assert "The test set holds" not in html  # no patient-level claim left in the limitations


def test_patient_split_report_has_no_warning(in_tmp):
    html, _ = render_synthetic(in_tmp)
    assert SAID not in html and 'id="image-level"' not in html
    assert 'id="patients"' in html


def test_model_card_limitations_lead_with_the_warning():
    cfg = config.from_dict({"split": {"allow_image_level": True}})
    notes = model_card.limitations(cfg, {"format": "imagefolder"}, 2)
    assert notes[0].startswith(IMAGE_LEVEL_WARNING)
    assert not any("patients; patient-level metrics" in n for n in notes)


def test_registered_page_shows_the_warning_only_when_recorded():
    record = {"model_name": "m", "version": "1", "gate": {}, "image_level_warning": IMAGE_LEVEL_WARNING}
    page = report_header.registered_page(record, "abc", False)
    assert SAID in page and "<b>Warning:</b>" in page
    assert SAID not in report_header.registered_page(record | {"image_level_warning": None}, "abc", False)
