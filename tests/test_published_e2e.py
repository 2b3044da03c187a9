"""Every published layout end to end, the way a user runs it: fixture files (``published_layouts``)
named in an experiment config (``data.domains`` and ``data.benchmarks`` with their ``layout`` and
the paper's ``steps``) -> ``curate_stage`` (each step counted in ``curation.json``) -> a few GRPO
steps of the tiny model on the five training sets (``rl_stage``) -> ``evaluate_stage`` with each
benchmark's customary metric and with the paper's default.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from published_layouts import PUBLISHED, Published, write_all
from tiny import SPEC, build_test_model

from modomodo.config import ExperimentConfig, load_config
from modomodo.data.curate import REPORT_FILE, CurationReport, read_curated
from modomodo.data.curated import CuratedData, load_curated
from modomodo.data.layouts import get_layout, read_layout
from modomodo.data.prompts import reference_completion
from modomodo.data.schema import Example
from modomodo.evaluation.evaluate import score_benchmark
from modomodo.evaluation.metrics import default_metric
from modomodo.stages.curate import curate_stage

SEED = 7
SAT_SIZE = 4
"""SAT is sampled (the paper: 15,000 of the train split) to this many of its 6 fixture rows."""
TRAINING = ("coco", "lisa", "geoqav", "sat", "scienceqa")
STEPS: dict[str, list] = {
    "lisa": [{"one_sample_per_question": {"seed": SEED}}, "resize_long_side"],
    "lisa_test": ["resize_long_side"],
    "geoqav": ["keep_multiple_choice", "resize_long_side"],
    "scienceqa_hub": ["keep_with_image"],
    "sat": [{"sample": {"size": SAT_SIZE, "seed": SEED}}],
}
"""The paper's preprocessing (digest 2.1) by layout, as a config lists it: LISA one sample per
question, LISA and GeoQAV shrunk to 640 px, GeoQAV multiple choice only, ScienceQA with an image,
SAT sampled."""
REWARDS = {
    "coco": [{"name": "format"}, {"name": "iou_visual_rft", "weight": 2}],
    "lisa": [{"name": "format"}, {"name": "iou_continuous", "weight": 2}],
    **{d: [{"name": "format"}, {"name": "accuracy", "weight": 2}] for d in ("geoqav", "sat", "scienceqa")},
}
TRAIN = [
    "train.steps=3",  # 15 draws: the seeded uniform schedule reaches all five sets
    "train.prompts_per_step=5",
    "train.num_generations=2",
    "train.max_completion_length=8",
    "train.checkpoint_every=100",
    "eval.max_new_tokens=8",
    "eval.batch_size=16",
]


def source_name(published: Published) -> str:
    """The config's name for a fixture: a training set by its domain, the test split of a training
    set as ``<domain>_test`` (a benchmark may not share a domain's name), other benchmarks by theirs."""
    if published.split == "train":
        return published.domain
    return f"{published.domain}_test" if published.domain in TRAINING else published.domain


BENCHMARKS = {source_name(p): p for p in PUBLISHED if p.split == "test"}
IN_DOMAIN = ("lisa_test", "sat_test", "scienceqa_test")


def experiment(fixtures: dict[str, Path], *, metric: str = "") -> ExperimentConfig:
    """The config a user writes for the fixtures: every training set and benchmark a path with its
    layout and steps, the In benchmarks tied to their training domain; ``metric`` for every
    benchmark (``customary``: the layout's; empty: the paper's)."""
    domains = {
        p.domain: {"source": str(fixtures[p.layout]), "layout": p.layout, "steps": STEPS.get(p.layout, []),
                   "rewards": REWARDS[p.domain]}
        for p in PUBLISHED
        if p.split == "train"
    }  # fmt: skip
    benchmarks = {
        name: {"path": str(fixtures[p.layout]), "layout": p.layout, "steps": STEPS.get(p.layout, []),
               **({"domain": p.domain} if p.domain in TRAINING else {}),
               **({"metric": metric} if metric else {})}
        for name, p in BENCHMARKS.items()
    }  # fmt: skip
    overrides = [f"data.domains={json.dumps(domains)}", f"data.benchmarks={json.dumps(benchmarks)}"]
    return load_config("smoke", [*overrides, f"data.seed={SEED}", *TRAIN])


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def curated(fixtures, tmp_path_factory) -> tuple[CurationReport, CuratedData, Path]:
    out = tmp_path_factory.mktemp("curation") / "curated"
    report = curate_stage(experiment(fixtures), out)
    return report, load_curated(out), out


def test_every_registered_layout_has_a_fixture():
    from modomodo.data.layouts import LAYOUTS

    assert {p.layout for p in PUBLISHED} == set(LAYOUTS)


# --- curation through the config ---------------------------------------------------------------


def step(name: str, rows_in: int, rows_out: int, dropped=None, changed=None) -> dict:
    return {"step": name, "rows_in": rows_in, "rows_out": rows_out, "dropped": dropped or {},
            "changed": changed or {}, "errors": 0}  # fmt: skip


def test_each_preprocessing_step_is_counted_in_the_curation_report(curated):
    _, data, out = curated
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved["format"] == "modomodo-curation/2"
    assert saved["steps"] == {
        # 3 image-box pairs with 2, 3 and 1 questions: 6 samples, each 800x600 shrunk to 640x480
        "lisa": {"train": [step("one_sample_per_question", 3, 6, changed={"questions": 6, "rows_split": 3}),
                           step("resize_long_side", 6, 6, changed={"resized": 6})]},
        "lisa_test": {"test": [step("resize_long_side", 3, 3, changed={"resized": 3})]},  # 1000x500
        # 3 multiple choice, 2 free form; only the 900x660 figure is above 640 px
        "geoqav": {"train": [step("keep_multiple_choice", 5, 3, dropped={"not_multiple_choice": 2}),
                             step("resize_long_side", 3, 3, changed={"resized": 1})]},
        "scienceqa_test": {"test": [step("keep_with_image", 5, 3, dropped={"no_image": 2})]},
        "sat": {"train": [step("sample", 6, SAT_SIZE, dropped={"not_sampled": 6 - SAT_SIZE})]},
        **{name: {} for name in ("coco", "scienceqa", "sat_test", "chartqa", "chartqa_lmms", "infovqa",
                                 "docvqa", "mathvista", "mmmu")},
    }  # fmt: skip
    assert {e.meta["resized_from"] for e in data.train["lisa"]} == {"800x600"}
    assert {e.meta["resized_from"] for e in data.benchmarks["lisa_test"]} == {"1000x500"}


def test_the_same_config_curates_the_same_rows_again(curated, fixtures, tmp_path):
    _, _, out = curated
    curate_stage(experiment(fixtures), tmp_path / "again")
    for name in ("sat", "lisa"):  # the seeded sample, the seeded question order
        first, again = read_curated(out, name, "train"), read_curated(tmp_path / "again", name, "train")
        assert [e.id for e in again] == [e.id for e in first] and len(first) > 1, name
    shards = [json.loads((d / REPORT_FILE).read_text())["shards"] for d in (out, tmp_path / "again")]
    assert shards[0] == shards[1], "byte-identical shards"


EXPECTED_ROWS = {  # source -> (train, test), after the paper's preprocessing
    "coco": (4, 0),
    "lisa": (6, 0),
    "lisa_test": (0, 3),
    "geoqav": (3, 0),
    "sat": (SAT_SIZE, 0),
    "sat_test": (0, 3),
    "scienceqa": (4, 0),
    "scienceqa_test": (0, 3),
    "chartqa": (0, 3),
    "chartqa_lmms": (0, 3),
    "infovqa": (0, 3),
    "docvqa": (0, 3),
    "mathvista": (0, 4),
    "mmmu": (0, 3),
}


def test_curation_keeps_every_prepared_row_with_its_configured_role(curated):
    report, data, out = curated
    assert {d: (r["train"], r["test"]) for d, r in report.rows.items()} == EXPECTED_ROWS
    assert all(not q for q in report.quarantined.values()), report.quarantined
    assert sorted(data.train) == sorted(TRAINING) and sorted(data.benchmarks) == sorted(BENCHMARKS)
    roles = {b: "in" if b in IN_DOMAIN else "out" for b in BENCHMARKS}
    assert data.splits == roles and CurationReport.load(out).benchmarks == roles


def _pick(examples: list[Example], key: str) -> Example:
    """The one example whose id is ``key`` or whose problem contains it."""
    found = [e for e in examples if e.id == key or key in e.problem]
    assert len(found) == 1, f"{key!r} matches {len(found)} examples"
    return found[0]


def test_curated_examples_hold_the_published_answers_in_the_schemas_forms(curated):
    _, data, _ = curated
    coco = _pick(data.train["coco"], "category 'car'")
    assert coco.solution == (
        "[{'Position': [10, 50, 70, 90], 'Confidence': 1}, {'Position': [120, 10, 190, 50], 'Confidence': 1}]"
    ), "two boxes on the 0-1000 grid become pixels of the 200x100 image"
    assert "in pixels of the image" in coco.problem
    ball = _pick(data.train["lisa"], "the red ball")
    assert ball.solution == "[{'Position': [64, 48, 256, 240], 'Confidence': 1}]", "(80,60,320,300) px at 0.8"
    assert _pick(data.train["geoqav"], "angle A = 40°").solution == "C"
    hub = _pick(data.benchmarks["scienceqa_test"], "Context: Two magnets")
    assert (hub.solution, hub.options) == ("A", ("repel", "attract"))
    assert _pick(data.benchmarks["mathvista"], "How many sides").solution == "B", (
        "choice text 4 -> its letter"
    )
    bar = _pick(data.benchmarks["mathvista"], "How long is the blue bar")
    assert (bar.solution, bar.meta["precision"], bar.meta["unit"]) == ("2.5", "1", "cm")
    assert json.loads(_pick(data.benchmarks["infovqa"], "population").meta["answers"]) == [
        "3.2 million",
        "3.2m",
    ]
    dots = _pick(data.benchmarks["mmmu"], "How many dots")
    assert dots.id == "mmmu-validation_Math_1" and dots.meta["images"] == "image_1,image_2,image_3"
    assert _pick(data.benchmarks["mmmu"], "more sides").options == ("<image 1>", "<image 2>")


def test_an_mmmu_item_with_three_images_keeps_them_in_order(curated, fixtures):
    from published_layouts import MMMU_ROWS

    _, data, _ = curated
    dots = _pick(data.benchmarks["mmmu"], "How many dots")
    published = next(images for item, *_, images in MMMU_ROWS if item == "validation_Math_1")
    assert dots.images == tuple(published), "the three published PNGs, in order, none pasted together"
    assert dots.problem == "How many dots are in <image 1>, <image 2> and <image 3> together?"
    assert len(_pick(data.benchmarks["mmmu"], "What colour").images) == 1


def test_the_evaluate_stage_gives_the_model_all_three_images_of_an_mmmu_item(
    curated, fixtures, tmp_path, monkeypatch
):
    """The tiny Qwen2-VL evaluated on the curated benchmarks: the processor gets the 3-image item's
    three images, each expanded into its own run of image tokens in that item's prompt row."""
    import modomodo.policy.inputs as inputs
    from modomodo.stages.evaluate import evaluate_stage

    _, data, out = curated
    model_dir = build_test_model(tmp_path / "tiny", [e for b in data.benchmarks.values() for e in b])
    seen: dict[str, tuple[int, int, int]] = {}  # id -> (vision starts, image tokens, grid tokens)
    real = inputs.generation_batch

    def recording(processor, examples, device=None):
        batch = real(processor, examples, device)
        merge = processor.image_processor.merge_size**2
        grids = iter(int(t.prod()) // merge for t in batch["image_grid_thw"])
        start = processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        for ex, row in zip(examples, batch["input_ids"], strict=True):
            grid_tokens = sum(next(grids) for _ in ex.images)
            seen[ex.id] = (
                int((row == start).sum()),
                int((row == processor.image_token_id).sum()),
                grid_tokens,
            )
        assert next(grids, None) is None, "one image_grid_thw row per image of the batch"
        return batch

    monkeypatch.setattr(inputs, "generation_batch", recording)
    evaluate_stage(experiment(fixtures, metric="customary"), out, model_dir, tmp_path / "eval")
    starts, image_tokens, grid_tokens = seen["mmmu-validation_Math_1"]
    assert starts == 3 and image_tokens == grid_tokens > 0, "three images, each with its tokens"
    every = [e for b in data.benchmarks.values() for e in b]
    assert {e.id: seen[e.id][0] for e in every} == {e.id: len(e.images) for e in every}
    assert all(image == grid for _, image, grid in seen.values())
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    (record,) = [r for r in samples if r["id"] == "mmmu-validation_Math_1"]
    assert record["benchmark"] == "mmmu" and record["solution"] == "6"


# --- scoring through the whole path --------------------------------------------------------------


def think(answer: str) -> str:
    return f"<think> I read it from the image. </think> <answer>{answer}</answer>"


# layout -> (source, split, example key, right completion, wrong completion, {metric: (completion, score)})
HAND_WRITTEN: dict[str, tuple[str, str, str, str, str, dict[str, tuple[str, float]]]] = {
    "visual_rft_coco": (
        "coco",
        "train",
        "category 'dog'",
        think("[{'Position': [20, 10, 80, 60], 'Confidence': 1}]"),
        think("[{'Position': [120, 40, 180, 90], 'Confidence': 1}]"),
        {},
    ),
    "lisa": (
        "lisa",
        "train",
        "the red ball",
        think("[{'Position': [64, 48, 256, 240], 'Confidence': 1}]"),
        think("[{'Position': [320, 240, 576, 432], 'Confidence': 1}]"),
        {},
    ),
    "lisa_test": (
        "lisa_test",
        "test",
        "the yellow lamp",
        think("[{'Position': [64, 32, 192, 288], 'Confidence': 1}]"),
        think("[{'Position': [384, 128, 576, 256], 'Confidence': 1}]"),
        {},
    ),
    "geoqav": ("geoqav", "train", "angle A = 40°", think("C"), think("A"), {}),
    "sat": (
        "sat",
        "train",
        "the blue box to the left or to the right of the yellow",
        think("left"),
        think("right"),
        {},
    ),
    "sat_test": ("sat_test", "test", "sat_test-testrow000000", think("left"), think("right"), {}),
    "scienceqa": ("scienceqa", "train", "scienceqa-row000000", think("B"), think("A"), {}),
    "scienceqa_hub": ("scienceqa_test", "test", "Context: Two magnets", think("A"), think("B"), {}),
    "chartqa": (
        "chartqa",
        "test",
        "value of the blue bar",
        think("52"),
        think("80"),
        {"relaxed_accuracy": (think("51"), 1.0), "exact_match": (think("51"), 0.0)},
    ),
    "chartqa_lmms": (
        "chartqa_lmms",
        "test",
        "value of the blue bar",
        think("12"),
        think("30"),
        {"relaxed_accuracy": (think("12.5"), 1.0), "exact_match": (think("12.5"), 0.0)},
    ),
    "infovqa": (
        "infovqa",
        "test",
        "population",
        think("3.2m"),
        think("Parks"),
        {"anls": (think("3.2 millon"), 1 - 1 / 11), "exact_match": (think("3.2 millon"), 0.0)},
    ),
    "docvqa": ("docvqa", "test", "invoice number", think("4711"), think("12 May 1998"), {}),
    "mathvista": (
        "mathvista",
        "test",
        "How long is the blue bar",
        think("2.5"),
        think("3.5"),
        {"mathvista": (think("2.50 cm"), 1.0)},
    ),
    "mmmu": (
        "mmmu",
        "test",
        "What colour is the shape",
        think("(B)"),
        think("(A)"),
        {"mmmu": (think("The shape is green, so the answer is B."), 1.0)},
    ),
}
"""A right and a wrong completion for one example of each layout (read from its drawn picture), and
completions whose score depends on the metric (ChartQA's 5% tolerance, ANLS's partial credit)."""


def _examples(data: CuratedData, source: str, split: str) -> list[Example]:
    return data.train[source] if split == "train" else data.benchmarks[source]


@pytest.mark.parametrize("layout", sorted(HAND_WRITTEN))
def test_hand_written_completions_score_through_the_whole_path(curated, layout):
    _, data, _ = curated
    source, split, key, right, wrong, extra = HAND_WRITTEN[layout]
    example = _pick(_examples(data, source, split), key)
    customary, paper = get_layout(layout).metric, default_metric(example.answer_kind)
    role = data.splits.get(source, "in")
    for metric in (customary, paper, None):  # None: the paper's scoring as evaluation runs it by default
        assert score_benchmark(source, role, [example], [right], metric)[0].score == 1.0, metric
        assert score_benchmark(source, role, [example], [wrong], metric)[0].score == 0.0, metric
    reference = reference_completion(example)
    assert score_benchmark(source, role, [example], [reference], customary)[0].score == 1.0
    for metric, (completion, expected) in extra.items():
        score = score_benchmark(source, role, [example], [completion], metric)[0].score
        assert score == pytest.approx(expected), (metric, completion)


def test_the_default_score_accepts_every_reference_as_the_exact_match_it_is_named_by(curated):
    # InfoVQA keeps all its answers in meta["answers"]; the default scoring compared against the
    # first only, so "3.2m" scored 0 while scores.json named the metric exact_match, which gives 1.
    _, data, _ = curated
    example = _pick(data.benchmarks["infovqa"], "population")
    for completion in (think("3.2 million"), think("3.2m"), think("140")):
        default, _ = score_benchmark("infovqa", "out", [example], [completion], None)
        named, _ = score_benchmark("infovqa", "out", [example], [completion], default.metric)
        assert default.metric == "exact_match" and default.score == named.score, completion


# --- GRPO on the five training sets, then evaluation ----------------------------------------------


@pytest.fixture(scope="module")
def trained(curated, fixtures, tmp_path_factory):
    from modomodo.policy.tiny import build_tiny_model
    from modomodo.stages.base_policy import tokenizer_corpus
    from modomodo.stages.rl import rl_stage

    _, data, out = curated
    cfg = experiment(fixtures)
    # The tokenizer learns training prompts and answers and benchmark prompts, never benchmark answers.
    model = build_tiny_model(tmp_path_factory.mktemp("tiny"), tokenizer_corpus(data), SPEC)
    result = rl_stage(cfg, out, model, tmp_path_factory.mktemp("grpo") / "published", run_id="published")
    return cfg, result


@pytest.mark.slow
def test_grpo_trains_on_the_mixture_of_the_five_published_training_sets(curated, trained):
    from modomodo.rewards import RewardContext
    from modomodo.rewards.domains import reward_sets

    _, data, _ = curated
    cfg, result = trained
    assert result.steps == 3 and Path(result.model_dir, "model.safetensors").is_file()
    assert sum(result.realised_counts.values()) == 15 and set(result.realised_counts) == set(TRAINING)
    logged = {k.split("/", 1)[1] for h in result.log_history for k in h if k.startswith("reward/")}
    assert logged == set(TRAINING), "every published training set is rewarded by its own reward set"
    # The reward sets the run used give a curated example's reference answer full marks (format 1 +
    # accuracy or IoU 2) and a completion without the format nothing, on every training set.
    sets = reward_sets(cfg)
    for domain in TRAINING:
        for ex in data.train[domain]:
            ctx = RewardContext(ex.solution, ex.answer_kind, ex.options)
            assert sets[domain].score(reference_completion(ex), ctx).total == pytest.approx(3.0), ex.id
            assert sets[domain].score(ex.solution, ctx).total == 0.0, ex.id


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["customary", ""], ids=["customary", "paper"])
def test_the_trained_policy_is_evaluated_on_every_benchmark_with_the_configured_metric(
    curated, trained, fixtures, tmp_path, metric
):
    from modomodo.stages.evaluate import evaluate_stage

    _, data, out = curated
    evaluate_stage(experiment(fixtures, metric=metric), out, trained[1].model_dir, tmp_path)
    scores = json.loads((tmp_path / "scores.json").read_text())
    named = {s["benchmark"]: s["metric"] for s in scores["scores"]}
    if metric:
        assert named == {b: get_layout(p.layout).metric for b, p in BENCHMARKS.items()}
        assert (named["chartqa"], named["infovqa"], named["mmmu"]) == ("relaxed_accuracy", "anls", "mmmu")
    else:
        paper = {b: "+".join(sorted({default_metric(e.answer_kind) for e in data.benchmarks[b]}))
                 for b in data.benchmarks}  # fmt: skip
        assert named == paper and (named["chartqa"], named["lisa_test"]) == ("exact_match", "mean_iou")
    assert {s["benchmark"]: s["n"] for s in scores["scores"]} == {b: EXPECTED_ROWS[b][1] for b in BENCHMARKS}
    for s in scores["scores"]:
        assert 0.0 <= s["score"] <= 1.0 and s["split"] == data.splits[s["benchmark"]]
    assert 0.0 <= scores["in_score"] <= 1.0 and 0.0 <= scores["out_score"] <= 1.0
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == sum(len(e) for e in data.benchmarks.values())


def test_every_fixture_reads_the_same_after_the_store_round_trip_docs_datasets_describes(fixtures, tmp_path):
    """docs/datasets.md: a prepared folder goes into the store with ``put_dir`` and a run reads it
    back with ``fetch_dataset`` (checksums verified); a file is stored with its folder."""
    from modomodo.data.layouts import fetch_dataset
    from modomodo.store import ArtifactStore

    store = ArtifactStore.from_uri(f"file://{tmp_path / 'store'}")
    for p in PUBLISHED:
        path = fixtures[p.layout]
        folder = path if path.is_dir() else path.parent
        store.put_dir(folder, f"datasets/{p.layout}")
        fetched = fetch_dataset(store, f"datasets/{p.layout}", tmp_path / "cache")
        local = fetched if path.is_dir() else fetched / path.name
        here, there = (
            list(read_layout(path, get_layout(p.layout))),
            list(read_layout(local, get_layout(p.layout))),
        )
        assert [(r.fields, r.error) for r in there] == [(r.fields, r.error) for r in here], p.layout


def _docs_example() -> dict:
    """The YAML block of docs/datasets.md's "In a config" section."""
    import yaml

    text = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text()
    section = text[text.index("## In a config") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    return yaml.safe_load(section[start : section.index("```", start)])


def test_the_config_example_of_docs_datasets_curates_from_the_store(fixtures, tmp_path):
    from modomodo.store import ArtifactStore

    example = _docs_example()
    assert example["store"].startswith("s3://"), "the example is the cluster's; here a file:// store"
    uri = f"file://{tmp_path / 'store'}"
    store = ArtifactStore.from_uri(uri)
    store.put_dir(fixtures["lisa"].parent, "datasets/lisa")  # the JSONL with its image folder
    store.put_dir(fixtures["chartqa_lmms"], "datasets/chartqa_lmms")  # a saved dataset
    data = example["data"]
    sections = [f"data.{k}={json.dumps(data[k])}" for k in ("domains", "benchmarks")]
    cfg = load_config("smoke", [f"store={uri}", *sections])
    report = curate_stage(cfg, tmp_path / "curated", cache_dir=tmp_path / "cache")
    assert report.rows == {"ref": {"train": 6, "test": 0}, "chartqa": {"train": 0, "test": 3}}
    steps = json.loads((tmp_path / "curated" / REPORT_FILE).read_text())["steps"]
    assert [(s["step"], s["rows_out"]) for s in steps["ref"]["train"]] == [
        ("one_sample_per_question", 6),
        ("resize_long_side", 6),
    ]
    assert steps["chartqa"]["test"] == [step("at_most", 3, 3)], "3 rows: fewer than the paper's 2500"
    assert load_curated(tmp_path / "curated").splits == {"chartqa": "out"}
    assert cfg.benchmark_metrics() == {"chartqa": "relaxed_accuracy"}


def _other_encoding(path: Path, out: Path) -> Path:
    """The same rows in the other Hub encoding: a Parquet export of a saved dataset (images as
    ``{bytes, path}`` structs), or a saved dataset (``Image`` features) of a Parquet file."""
    import datasets

    if path.is_dir():
        out = out / "export.parquet"
        datasets.load_from_disk(str(path)).to_parquet(str(out))
        return out
    loaded = datasets.Dataset.from_parquet(str(path))
    for name, feature in loaded.features.items():
        if isinstance(feature, dict) and set(feature) == {"bytes", "path"}:
            loaded = loaded.cast_column(name, datasets.Image(decode=False))
    loaded.save_to_disk(str(out / "saved"))
    return out / "saved"


JSONL_FIXTURES = ("lisa", "sat_test")
"""The fixtures written as JSONL (no other Hub encoding to compare with)."""


def test_the_jsonl_fixtures_are_the_ones_named(fixtures):
    assert {layout for layout, path in fixtures.items() if path.suffix == ".jsonl"} == set(JSONL_FIXTURES)


@pytest.mark.parametrize("layout", [p.layout for p in PUBLISHED if p.layout not in JSONL_FIXTURES])
def test_a_saved_dataset_and_its_parquet_export_read_the_same(fixtures, tmp_path, layout):
    path = fixtures[layout]
    other = _other_encoding(path, tmp_path)
    here, there = list(read_layout(path, get_layout(layout))), list(read_layout(other, get_layout(layout)))
    assert [(r.fields, r.error) for r in there] == [(r.fields, r.error) for r in here]
