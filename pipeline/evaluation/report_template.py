"""Jinja2 template of the self-contained evaluation report (kept in a module so it ships with
the package; rendered with autoescape, images inline as base64 PNG, no external files or JS)."""

# The page style shared with reports/changes.html (pipeline.changes.report_template).
BASE_CSS = """body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; } th { background: #f3f3f3; }
td.name, th.name { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>medpipe evaluation report: {{ model_name }}</title>
<style>
/* BASE_CSS */
.grid { display: flex; flex-wrap: wrap; gap: 16px; } .grid figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; max-width: 460px; }
code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>Evaluation report: {{ model_name }}</h1>
<table id="header">
<tr><th class="name">model</th><td class="name"><b>{{ header.model_name }}</b> ({{ header.architecture }}); version:
assigned by the register stage after this evaluation, with the gate decision: see
<a href="{{ header.registered_page }}">{{ header.registered_page }}</a></td></tr>
<tr><th class="name">git revision</th><td class="name"><code>{{ header.git_commit }}</code>{% if header.git_dirty %}
(uncommitted code/params changes){% endif %}</td></tr>
<tr><th class="name">params sha256</th><td class="name"><code>{{ header.params_sha256[:16] }}</code></td></tr>
<tr><th class="name">evaluated at</th><td class="name">{{ header.evaluated_at }}</td></tr>
</table>
<p>Task: <b>{{ task_kind }}</b>; classes: {{ classes | join(", ") }}{% if positive %}; positive class:
<b>{{ positive }}</b>{% endif %}. Test set: {{ headline.n_test }} images of {{ headline.n_test_patients }} patients
(manifest sha256 <code>{{ test_sha256[:16] }}</code>).</p>
{% if image_level_warning %}<p class="note" id="image-level"><b>Warning:</b> {{ image_level_warning }}</p>{% endif %}

<h2 id="headline">Headline metrics (test set)</h2>
<p>Operating point: {{ threshold_rule }}{% if headline.threshold is not none %}; threshold
<b>{{ headline.threshold | num }}</b>{% endif %}. 95&nbsp;% CIs: {{ bootstrap }} rounds of patient-level
(cluster) bootstrap{% if not bootstrap %} (disabled){% endif %}.</p>
{{ metric_table(rows) }}

<h2 id="curves">ROC and precision-recall</h2>
<div class="grid">
<figure><img alt="ROC curve" src="data:image/png;base64,{{ figures.roc }}"><figcaption>{{ curve_note }}</figcaption></figure>
<figure><img alt="Precision-recall curve" src="data:image/png;base64,{{ figures.pr }}"></figure>
</div>

<h2 id="confusion">Confusion matrix</h2>
<div class="grid">
<figure><img alt="Confusion matrix" src="data:image/png;base64,{{ figures.confusion }}"></figure>
<div>
<table>
<tr><th class="name">class</th><th>support</th><th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th><th>F1</th></tr>
{% for name, m in per_class.items() %}
<tr><td class="name">{{ name }}</td><td>{{ m.support }}</td><td>{{ m.sensitivity | num }}</td>
<td>{{ m.specificity | num }}</td><td>{{ m.ppv | num }}</td><td>{{ m.npv | num }}</td><td>{{ m.f1 | num }}</td></tr>
{% endfor %}
</table>
</div>
</div>

<h2 id="calibration">Calibration</h2>
<figure><img alt="Reliability diagram" src="data:image/png;base64,{{ figures.calibration }}">
<figcaption>Expected calibration error over 10 equal-width bins: {{ headline.ece | num }}.</figcaption></figure>

<h2 id="training">Training curves</h2>
{% if figures.history %}<figure><img alt="Training curves" src="data:image/png;base64,{{ figures.history }}"></figure>
{% else %}<p>No training history (reports/train/history.csv) was available.</p>{% endif %}

<h2 id="errors">Most confident errors</h2>
{% if figures.errors %}<figure><img alt="Most confident errors" src="data:image/png;base64,{{ figures.errors }}">
<figcaption>Misclassified test images, most confident first (true class, predicted class, probability of the
predicted class).</figcaption></figure>
{% else %}<p>No test image was misclassified.</p>{% endif %}

{% if figures.heatmap %}
<h2 id="heatmap">Slide heat map (patient {{ heatmap_patient }})</h2>
<figure><img alt="IDC heat map" src="data:image/png;base64,{{ figures.heatmap }}">
<figcaption>Patches of the test patient with the most patches, placed by their x/y coordinates: ground truth
(left) and predicted probability of the positive class (right).</figcaption></figure>
{% endif %}

{% if not image_level_warning %}
<h2 id="patients">Patient-level metrics</h2>
<p>{{ patient.rule }}. Operating point: {{ patient.threshold_rule }}{% if patient.threshold is not none %};
threshold {{ patient.threshold | num }}{% endif %}. Test patients: {{ patient.n_patients }}
{% if patient.mode == "fraction" %}(mean true positive share {{ patient.mean_true_fraction | num }}, predicted
{{ patient.mean_predicted_fraction | num }}).</p>
{% else %}({% for name, n in patient.patients_per_class.items() %}{{ name }}: {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}).</p>
{% endif %}
{{ metric_table(patient_rows) }}
{% endif %}

<h2 id="model-card">Model card</h2>
<h3>Intended use</h3>
<p class="note">{{ intended_use }}</p>
{% if image_level_warning %}<p class="note"><b>Warning:</b> {{ image_level_warning }}</p>{% endif %}
<h3>Model</h3>
<table>{% for key, value in train_facts.items() %}<tr><th class="name">{{ key }}</th><td>{{ value | num }}</td></tr>{% endfor %}
<tr><th class="name">input</th><td>{{ image_size }}x{{ image_size }}x{{ channels }}{% if tta %}, test-time augmentation (flips){% endif %}</td></tr>
</table>
<h3>Data</h3>
<table>
<tr><th class="name">split</th><th>images</th><th>patients</th>{% for c in classes %}<th>{{ c }}</th>{% endfor %}<th class="name">manifest sha256</th></tr>
{% for s in data %}<tr><td class="name">{{ s.split }}</td><td>{{ s.images }}</td><td>{{ s.patients }}</td>
{% for c in classes %}<td>{{ s.per_class[c] }}</td>{% endfor %}<td class="name"><code>{{ s.sha256 }}</code></td></tr>{% endfor %}
</table>
<h3>Metrics</h3>
<p>See <a href="#headline">headline metrics</a> (with 95&nbsp;% patient-bootstrap CIs){% if not image_level_warning %} and
<a href="#patients">patient-level metrics</a>{% endif %}. Threshold rule: {{ threshold_rule }}.</p>
<h3>Limitations</h3>
<ul>{% for item in limitations %}<li>{{ item }}</li>{% endfor %}</ul>
</body>
</html>
""".replace("/* BASE_CSS */\n", BASE_CSS)

METRIC_TABLE_MACRO = """{% macro metric_table(rows) %}
<table>
<tr><th class="name">metric</th><th>value</th><th>95% CI</th></tr>
{% for r in rows %}<tr><td class="name">{{ r.label }}</td><td>{{ r.value | num }}</td>
<td>{% if r.ci %}{{ r.ci[0] | num }} - {{ r.ci[1] | num }}{% else %}n/a{% endif %}</td></tr>
{% endfor %}</table>
{% endmacro %}"""
