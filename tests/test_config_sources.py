"""Benchmarks and path sources as configured sources: the forms the config accepts, what each
resolves to, and every bad entry refused at load with a message naming its key path."""

from __future__ import annotations

import json

import pytest

from modomodo.config import ConfigError, config_from_dict, load_config
from modomodo.data.synthetic import BENCHMARKS
from modomodo.stages.curate import source_specs

CHART = "data.benchmarks={chartqa: {path: /data/chartqa.parquet, layout: chartqa}}"


def test_an_empty_benchmark_section_is_every_synthetic_benchmark_with_todays_roles():
    cfg = load_config("smoke")
    assert cfg.data.benchmarks == {}
    roles = cfg.data.benchmark_roles()
    assert roles == {name: ("in" if name in cfg.data.domains else "out") for name in BENCHMARKS}
    assert {n for n, r in roles.items() if r == "in"} == {"ref", "spatial", "sci"}
    specs = source_specs(cfg)
    assert specs["ref"].kind == "synthetic" and specs["ref"].n_train == 256 and specs["ref"].n_test > 0
    assert specs["chart"].kind == "synthetic" and specs["chart"].n_train == 0


def test_a_list_of_names_still_reads_as_synthetic_entries_and_round_trips():
    cfg = load_config("smoke", ["data.benchmarks=[chart, ref]"])
    assert sorted(cfg.data.benchmarks) == ["chart", "ref"]
    assert all(b.synthetic for b in cfg.data.benchmarks.values())
    assert cfg.data.benchmark_roles() == {"chart": "out", "ref": "in"}
    assert config_from_dict(cfg.to_dict()) == cfg


def test_a_synthetic_entry_can_change_its_size_role_and_metric():
    cfg = load_config(
        "smoke", ["data.benchmarks={ref: {role: out, size: 7}, chart: {metric: relaxed_accuracy}}"]
    )
    assert cfg.data.benchmark_roles() == {"ref": "out", "chart": "out"}
    assert source_specs(cfg)["ref"].n_test == 7
    assert cfg.benchmark_metrics() == {"chart": "relaxed_accuracy"}


def test_a_path_benchmark_with_a_layout_resolves_to_a_test_only_source():
    cfg = load_config(
        "smoke",
        ["data.benchmarks={chartqa: {path: /d/c.parquet, layout: chartqa, metric: customary, size: 50},"
         " lisa: {path: /d/lisa, layout: lisa_test, domain: ref, frame: pixel}}"],
    )  # fmt: skip
    assert cfg.data.benchmark_roles() == {"chartqa": "out", "lisa": "in"}
    assert cfg.benchmark_metrics() == {"chartqa": "relaxed_accuracy"}
    specs = source_specs(cfg)
    chart, lisa = specs["chartqa"], specs["lisa"]
    assert (chart.kind, chart.path, chart.test_path, chart.layout) == (
        "path",
        None,
        "/d/c.parquet",
        "chartqa",
    )
    assert chart.steps == (("at_most", {"size": 50}),)
    assert (lisa.layout, lisa.frame, lisa.steps) == ("lisa_test", "pixel", ())
    assert "ref" in specs and "chart" not in specs, "a configured section replaces the synthetic suite"
    assert config_from_dict(cfg.to_dict()) == cfg


def test_a_path_domain_takes_a_layout_frame_and_steps_in_short_and_long_form():
    domains = {
        "ref": {
            "source": "/d/lisa",
            "layout": "lisa",
            "frame": "unit",
            "steps": [{"one_sample_per_question": {"seed": 3}}, "resize_long_side"],
            "rewards": [{"name": "format"}, {"name": "iou_continuous"}],
        }
    }
    cfg = load_config("smoke", [f"data.domains={json.dumps(domains)}", "data.benchmarks=[chart]"])
    assert cfg.data.domains["ref"].steps == [
        {"one_sample_per_question": {"seed": 3}},
        {"resize_long_side": {}},
    ]
    spec = source_specs(cfg)["ref"]
    assert (spec.kind, spec.path, spec.layout, spec.frame) == ("path", "/d/lisa", "lisa", "unit")
    assert spec.steps == (("one_sample_per_question", {"seed": 3}), ("resize_long_side", {}))
    assert config_from_dict(cfg.to_dict()) == cfg


def test_an_implicit_synthetic_benchmark_named_like_a_real_domain_is_left_out():
    domains = {"ref": {"source": "/d/lisa", "layout": "lisa", "rewards": [{"name": "format"}]}}
    cfg = load_config("smoke", [f"data.domains={json.dumps(domains)}"])
    assert "ref" not in cfg.data.benchmark_roles() and "chart" in cfg.data.benchmark_roles()


def test_a_store_source_is_fetched_through_the_given_function(tmp_path):
    (tmp_path / "chartqa").mkdir()
    (tmp_path / "chartqa" / "test.parquet").write_bytes(b"")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "state.json").write_text("{}")
    cfg = load_config(
        "smoke",
        ["data.benchmarks={chartqa: {store: datasets/chartqa, layout: chartqa},"
         " docs: {store: datasets/saved, layout: infovqa}}"],
    )  # fmt: skip
    fetched = []

    def fetch(key):
        fetched.append(key)
        return tmp_path / key.split("/")[1]

    specs = source_specs(cfg, fetch)
    assert sorted(fetched) == ["datasets/chartqa", "datasets/saved"]
    assert specs["chartqa"].test_path == str(tmp_path / "chartqa" / "test.parquet"), "one file: that file"
    assert specs["docs"].test_path == str(tmp_path / "saved"), "a saved dataset: its folder"
    with pytest.raises(ValueError, match="data.benchmarks.chartqa.store: 'datasets/chartqa' names a store"):
        source_specs(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.benchmarks=[nope]"], r"data.benchmarks: unknown benchmarks \['nope'\]"),
        (["data.benchmarks=[chart, chart]"], r"data.benchmarks: \['chart'\] listed more than once"),
        (["data.benchmarks=[{chart: 1}]"], r"data.benchmarks\[0\]: expected a benchmark name"),
        (["data.benchmarks={chart: {colour: red}}"], r"data.benchmarks.chart: unknown key\(s\) \['colour'\]"),
        (["data.benchmarks={chart: {role: maybe}}"], r"data.benchmarks.chart.role: must be one of"),
        (["data.benchmarks={chart: {size: -1}}"], r"data.benchmarks.chart.size: must be >= 1"),
        (["data.benchmarks={chart: {steps: [keep_with_image]}}"], r"data.benchmarks.chart: steps, .* apply to path"),
        (
            ["data.benchmarks={chartqa: {layout: chartqa}}"],
            r"data.benchmarks.chartqa: set the path of benchmark 'chartqa' \(--set data.benchmarks.chartqa.path=",
        ),
        (["data.benchmarks={x: {path: /a, layout: nope}}"], r"data.benchmarks.x.layout: unknown layout 'nope'; known: \["),
        (["data.benchmarks={x: {path: /a, store: k}}"], r"data.benchmarks.x: give the path or the store key"),
        (["data.benchmarks={x: {store: ../k}}"], r"data.benchmarks.x.store: key '../k'"),
        (["data.benchmarks={x: {path: s3://b}}"], r"data.benchmarks.x: s3://b: expected s3://BUCKET/KEY"),
        (["data.benchmarks={x: {path: s3://b/a/../k}}"], r"data.benchmarks.x: s3://b/a/../k: key .* '\.\.' segment"),
        (["data.benchmarks={x: {path: /a, frame: pixel}}"], r"data.benchmarks.x.frame: 'pixel' needs a layout"),
        (["data.benchmarks={x: {path: /a, layout: lisa, frame: inch}}"], r"data.benchmarks.x.frame: 'inch'"),
        (["data.benchmarks={x: {path: /a, layout: chartqa, answer_kind: text}}"], r"x.answer_kind: the layout"),
        (["data.benchmarks={ref: {path: /a}}"], r"data.benchmarks.ref: 'ref' is a training domain's name"),
        (["data.benchmarks={x: {path: /a, metric: customary}}"], r"data.benchmarks.x.metric: 'customary' is the layout"),
        (["data.benchmarks={x: {path: /a, layout: chartqa, metric: mean_iou}}"],
         r"data.benchmarks.x.metric: metric 'mean_iou' cannot score \['text'\]"),
        (["data.benchmarks={x: {path: /a, metric: nope}}"], r"data.benchmarks.x.metric: unknown metric 'nope'"),
        (["data.benchmarks={chart: {metric: anls}}", "eval.metrics={chart: anls}"],
         r"eval.metrics.chart: data.benchmarks.chart.metric names the metric too"),
        (["data.benchmarks={x: {path: /a, domain: ../d}}"], r"data.benchmarks.x.domain: name '../d'"),
        (["data.benchmarks={x: {path: /a, steps: [shuffle]}}"], r"data.benchmarks.x.steps\[0\]: unknown step 'shuffle'; steps: \["),
        (["data.benchmarks={x: {path: /a, steps: [{sample: {size: 5, sede: 1}}]}}"],
         r"x.steps\[0\]: sample: unknown parameter\(s\) \['sede'\]; its parameters: \['seed', 'size'\]"),
        (["data.benchmarks={x: {path: /a, steps: [sample]}}"], r"x.steps\[0\]: sample: parameter\(s\) \['size'\] required"),
        (["data.benchmarks={x: {path: /a, steps: [{sample: {size: 0}}]}}"], r"x.steps\[0\]: sample: parameters must be >= 1"),
        (["data.benchmarks={x: {path: /a, steps: [{sample: {size: ten}}]}}"], r"x.steps\[0\].sample.size: expected int"),
        (["data.benchmarks={x: {path: /a, steps: [{keep_with_image: {}, sample: {size: 1}}]}}"],
         r"x.steps\[0\]: one step per entry"),
        (["data.benchmarks={x: {path: /a, steps: [resize_long_side, one_sample_per_question]}}"],
         r"x.steps\[1\]: one_sample_per_question reads the source's raw rows, so it must come before resize_long_side"),
        (["data.benchmarks={x: {path: /a}}", "search.target=y_score"], r"search.target: 'y_score' is not a score"),
    ],
)  # fmt: skip
def test_a_bad_benchmark_entry_is_refused_at_load_naming_its_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", overrides)


def _domain(**fields) -> str:
    entry = {"rewards": [{"name": "format"}, {"name": "accuracy"}], **fields}
    return f"data.domains={json.dumps({'geo': entry})}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"layout": "geoqav"}, r"data.domains.geo: set the path of domain 'geo' \(--set data.domains.geo.source="),
        ({"steps": ["keep_with_image"]}, r"data.domains.geo: steps and frame apply to path or store sources only"),
        ({"source": "/g", "layout": "geoqav", "steps": [{"resize_long_side": {"side": 640}}]},
         r"data.domains.geo.steps\[0\]: resize_long_side: unknown parameter\(s\) \['side'\]; its parameters: \['max_side'\]"),
        ({"source": "/g", "steps": [{"keep_multiple_choice": {"seed": 1}}]},
         r"data.domains.geo.steps\[0\]: keep_multiple_choice: unknown parameter\(s\) \['seed'\]; its parameters: none"),
        ({"source": "/g", "store": "datasets/geo"}, r"data.domains.geo: give the path or the store key"),
        ({"store": "datasets/geo", "layout": "geoqav", "rewards": [{"name": "iou_continuous"}], "gate_on_format": False},
         r"data.domains.geo.rewards\[0\].name: 'iou_continuous' cannot score mc, text answers"),
    ],
)  # fmt: skip
def test_a_bad_path_domain_is_refused_at_load_naming_its_key(fields, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [_domain(**fields), "data.benchmarks=[chart]"])


def test_a_synthetic_benchmark_named_like_a_real_domain_is_refused_when_named():
    domains = {"ref": {"source": "/d/lisa", "layout": "lisa", "rewards": [{"name": "format"}]}}
    with pytest.raises(
        ConfigError, match=r"data.benchmarks.ref: the synthetic benchmark 'ref' is the test split"
    ):
        load_config("smoke", [f"data.domains={json.dumps(domains)}", "data.benchmarks=[ref, chart]"])


def test_a_store_domain_loads():
    cfg = load_config(
        "smoke", [_domain(store="datasets/geo", layout="geoqav", steps=["keep_multiple_choice"])]
    )
    assert not cfg.data.domains["geo"].synthetic
    assert cfg.data.benchmark_roles()["chart"] == "out"
