"""afqmc: Ant Financial Question Matching Corpus (CSV + JSON lines) -> sentence-pair JSONL.

Conversion (afqmc.source.md): train/dev: each CSV row (csv.DictReader) ->
{"a": sentence1, "b": sentence2, "label": int(label)}; test: each JSON line ->
{"id": id, "a": sentence1, "b": sentence2, "label": null}. Order kept, nothing dropped.
"""
import sys

import _common

NAME = "afqmc"
REPO = "LeslieOverfitting/nlp_AFQMC"
COMMIT = "c5ab1362720637c3cd10e48ef0ac3523d84ac057"
FILES = ["data/train.csv", "data/dev.csv", "data/test.json"]
LICENSE_FILE = None  # the repository states no licence


def split(name):
    rel = "data/%s.csv" % name

    def step(src, out):
        with src.open_text(rel) as f:
            rows = _common.csv_rows(src, f, rel, ["sentence1", "sentence2", "label"])
            out.write_jsonl(
                name + ".jsonl",
                ({"a": r["sentence1"], "b": r["sentence2"], "label": int(r["label"])} for r in rows),
            )

    step.__name__ = name
    return [rel], step


def test(src, out):
    records = _common.json_lines(src, "data/test.json")
    out.write_jsonl(
        "test_unlabeled.jsonl",
        ({"id": r["id"], "a": r["sentence1"], "b": r["sentence2"], "label": None} for r in records),
    )


STEPS = [split("train"), split("dev"), (["data/test.json"], test)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
