"""goemotions: GoEmotions (TSV, label ids) -> JSONL with emotion names, original split kept.

Conversion (goemotions.source.md): each non-empty TSV line split on tab into
(text, ids, id); ids (comma-separated) mapped to names via labels.txt
(0-based line index) -> {"text", "label": [names], "id"}; order kept,
nothing dropped; labels.txt = the 28 names, one per line.
"""
import sys

import _common

NAME = "goemotions"
REPO = "monologg/GoEmotions-pytorch"
COMMIT = "b75f9d3a8b76bc1060687925b04ca98a1b8ea66b"
FILES = [
    "data/original/train.tsv",
    "data/original/dev.tsv",
    "data/original/test.tsv",
    "data/original/labels.txt",
]
LICENSE_FILE = "LICENSE"
LABELS = "data/original/labels.txt"


def read_labels(src):
    with src.open_text(LABELS) as f:
        names = [l.strip() for l in f.read().splitlines() if l.strip()]
    if len(names) != 28:
        raise _common.ConversionError("labels.txt has %d names, expected 28" % len(names))
    return names


def split(name):
    rel = "data/original/%s.tsv" % name

    def step(src, out):
        names = read_labels(src)

        def records():
            with src.open_text(rel, encoding="utf-8") as f:
                for n, line in enumerate(src.lines(f), 1):
                    line = line.rstrip("\r\n")
                    if not line:
                        continue
                    parts = line.split("\t")
                    if len(parts) != 3:
                        raise _common.ConversionError("%s line %d: %d tab-separated fields, expected 3" % (rel, n, len(parts)))
                    text, ids, cid = parts
                    yield {"text": text, "label": [names[int(i)] for i in ids.split(",")], "id": cid}

        out.write_jsonl(name + ".jsonl", records())

    step.__name__ = name
    return [rel, LABELS], step


def labels(src, out):
    out.write_lines("labels.txt", read_labels(src))


STEPS = [split("train"), split("dev"), split("test"), ([LABELS], labels)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
