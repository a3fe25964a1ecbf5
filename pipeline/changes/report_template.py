"""Jinja2 template of reports/changes.html: self-contained (inline CSS, PNGs as data URIs, no JS,
no external file). The first screen (#headline) holds the status, the counts, every flag, any
relabelled batch and vanished class; the details follow."""

from pipeline.evaluation.report_template import BASE_CSS

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>medpipe: what changed since the champion</title>
<style>
/* BASE_CSS */
.counts { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0; }
.count { border: 1px solid #ccc; border-radius: 6px; padding: 6px 14px; min-width: 90px; text-align: center; }
.count b { display: block; font-size: 1.5em; }
.flag { background: #fdecea; border-left: 4px solid #d93025; padding: 6px 12px; margin: 4px 0; }
.ok { background: #e8f5e9; border-left: 4px solid #2e7d32; padding: 8px 12px; }
figure { margin: 0 0 12px; } img { max-width: 100%; }
</style>
</head>
<body>
<section id="headline">
<h1>What changed since the champion</h1>
<p id="status" class="{{ 'ok' if doc.status == 'compared' else 'note' }}"><b>{{ status_word }}</b>: {{ doc.reason }}</p>
{% if doc.champion %}
<p>Champion: <b>{{ doc.champion.name }} v{{ doc.champion.version }}</b> (run <code>{{ doc.champion.run_id }}</code>),
threshold {{ doc.champion.threshold | num }}, classes {{ doc.champion.classes | join(", ") }}.</p>
{% endif %}
<div class="counts">
{% for key, label in counts %}<div class="count" id="count-{{ key }}"><b>{{ values[key] }}</b>{{ label }}</div>
{% endfor %}
</div>
{% for name in doc.vanished_classes %}<div class="flag vanished">Vanished class: <b>{{ name }}</b> has no images now
(it had {{ (doc.balance.then or {}).get(name, "?") }} under the champion).</div>
{% endfor %}
{% for name in doc.new_classes %}<div class="flag">New class: <b>{{ name }}</b> (the champion never saw it; its images are not scored).</div>
{% endfor %}
{% for r in doc.relabels %}<div class="flag relabelled">Relabelled batch: <b>{{ r.n }}</b> image(s) with the same bytes moved
from <b>{{ r.from }}</b> to <b>{{ r.to }}</b>.</div>
{% endfor %}
{% for line in flags %}<div class="flag drift">Flag: {{ line }}</div>
{% endfor %}
{% if doc.status == 'compared' and not flags and not doc.relabels and not doc.vanished_classes %}
<p class="ok">No drift flag, no relabelled batch, no vanished class.</p>
{% endif %}
{% if scored %}<p>Champion on {{ scored.n }} new labelled image(s) of {{ scored.n_patients }} patient(s):
{{ gate_metric }} {{ (scored.metrics.get(gate_metric) or {}).get('value') | num }}
{% set ci = (scored.metrics.get(gate_metric) or {}).get('ci') %}{% if ci %}(95 % CI {{ ci[0] | num }}-{{ ci[1] | num }}){% endif %}.</p>{% endif %}
</section>

<h2 id="classes">Per class, then and now</h2>
{% if doc.by_class %}
<table><tr><th class="name">class</th><th>then</th><th>now</th><th>added</th><th>removed</th><th>changed</th><th>relabelled</th></tr>
{% for cls, row in doc.by_class | dictsort %}<tr><td class="name">{{ cls }}</td><td>{{ row.then }}</td><td>{{ row.now }}</td>
<td>{{ row.added }}</td><td>{{ row.removed }}</td><td>{{ row.changed }}</td><td>{{ row.relabelled }}</td></tr>
{% endfor %}</table>
{% else %}
<table><tr><th class="name">class</th><th>images now</th></tr>
{% for cls, n in doc.profile.by_class | dictsort %}<tr><td class="name">{{ cls }}</td><td>{{ n }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if doc.by_split %}<table><tr><th class="name">split</th><th>then</th><th>now</th><th>added</th><th>removed</th><th>changed</th><th>relabelled</th></tr>
{% for split, row in doc.by_split | dictsort %}<tr><td class="name">{{ split }}</td><td>{{ row.then }}</td><td>{{ row.now }}</td>
<td>{{ row.added }}</td><td>{{ row.removed }}</td><td>{{ row.changed }}</td><td>{{ row.relabelled }}</td></tr>
{% endfor %}</table>{% endif %}
<p>Patients: {% for k, v in doc.patients | dictsort %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>

<h2 id="drift">Image properties, then and now</h2>
{% if doc.drift %}
<table><tr><th class="name">property</th><th class="name">class</th><th>distance</th><th>p-value</th><th class="name">flag</th><th class="name">detail</th></tr>
{% for d in doc.drift %}<tr><td class="name">{{ d.name }}</td><td class="name">{{ d.get('class') }}</td><td>{{ d.distance | num }}</td>
<td>{{ d.p_value | num }}</td><td class="name">{{ 'FLAG' if d.flag else '' }}</td><td class="name">{{ d.get('detail', '') }}</td></tr>
{% endfor %}</table>
{% else %}<p>No new images: no property comparison.</p>{% endif %}
{% for f in figures %}<figure><img alt="properties of {{ f['class'] }} then and now" src="data:image/png;base64,{{ f.png }}">
<figcaption>{{ f['class'] }}: the champion's reference sample (then) against the new images.</figcaption></figure>
{% endfor %}

<h2 id="embedding">Embedding test</h2>
{% if doc.embedding %}
<p>The champion's penultimate-layer embeddings of {{ doc.embedding.n_new }} new image(s) against {{ doc.embedding.n_ref }} of its
training images: MMD<sup>2</sup> {{ doc.embedding.mmd2 | num }}, permutation p-value {{ doc.embedding.p_value | num }}
(alpha {{ doc.embedding.alpha }}, the false-alarm rate): <b>{{ 'FLAG: the new images look different to the champion' if doc.embedding.flag else 'no flag' }}</b>.</p>
{% else %}<p>Not run (no new images, or too few training images of the champion in reach).</p>{% endif %}

<h2 id="champion-on-new">The champion on the new data</h2>
{% if scored %}
<p>{{ scored.n }} new labelled image(s), {{ scored.n_patients }} patient(s), threshold {{ scored.threshold | num }};
95 % CIs by patient bootstrap. Per class: {% for c, n in scored.per_class | dictsort %}{{ c }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
<table><tr><th class="name">metric</th><th>value</th><th>95 % CI</th></tr>
{% for name, m in scored.metrics | dictsort %}<tr><td class="name">{{ name }}</td><td>{{ m.value | num }}</td>
<td>{% if m.ci %}{{ m.ci[0] | num }} - {{ m.ci[1] | num }}{% else %}n/a{% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p>No new labelled image the champion could score.</p>{% endif %}
</body>
</html>
""".replace("/* BASE_CSS */\n", BASE_CSS)
