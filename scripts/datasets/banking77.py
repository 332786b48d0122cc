"""banking77: PolyAI BANKING77 intents (CSV) -> JSONL, original train/test split kept.

Conversion (banking77.source.md): each CSV row (csv.DictReader, UTF-8) ->
{"text": text, "label": category}, file order kept, nothing dropped;
labels.txt = categories.json list, one per line.
"""
import sys

import _common

NAME = "banking77"
REPO = "PolyAI-LDN/task-specific-datasets"
COMMIT = "57ec275d8078af65b7731c2a98be812d844a6d6b"
FILES = ["banking_data/train.csv", "banking_data/test.csv", "banking_data/categories.json"]
LICENSE_FILE = "LICENSE"


def split(name):
    rel = "banking_data/%s.csv" % name

    def step(src, out):
        with src.open_text(rel) as f:
            rows = _common.csv_rows(src, f, rel, ["text", "category"])
            out.write_jsonl(name + ".jsonl", ({"text": r["text"], "label": r["category"]} for r in rows))

    step.__name__ = name
    return [rel], step


def labels(src, out):
    cats = _common.load_json(src, "banking_data/categories.json")
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise _common.ConversionError("categories.json is not a list of names")
    out.write_lines("labels.txt", cats)


STEPS = [split("train"), split("test"), (["banking_data/categories.json"], labels)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
