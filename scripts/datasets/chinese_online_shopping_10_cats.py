"""chinese_online_shopping_10_cats: review sentiment (zipped CSV) -> stratified 90/10 JSONL split.

Conversion (chinese_online_shopping_10_cats.source.md): CSV decoded utf-8-sig,
csv.DictReader; review: U+FEFF removed, whitespace-stripped; empty reviews
dropped; -> {"text": review, "label": int(label), "cat": cat}; 90/10 split
stratified by (cat, label) with random.Random(13) (_common.stratified_split).
"""
import io
import sys

import _common

NAME = "chinese_online_shopping_10_cats"
REPO = "SophonPlus/ChineseNlpCorpus"
COMMIT = "a0b781d72158bde242c0626c9e354d2b328865ff"
ZIP = "datasets/online_shopping_10_cats/online_shopping_10_cats.zip"
MEMBER = "online_shopping_10_cats.csv"
FILES = [ZIP]
LICENSE_FILE = None  # the repository states no licence
SEED = 13
TEST_FRACTION = 0.1


def read_rows(fh, src):
    rows = []
    # a row without a review (None) is dropped like an empty one
    for r in _common.csv_rows(src, fh, ZIP + ":" + MEMBER, ["cat", "label", "review"], may_be_short=["review"]):
        review = (r["review"] or "").replace("\ufeff", "").strip()
        if not review:
            continue
        rows.append({"text": review, "label": int(r["label"]), "cat": r["cat"]})
    return rows


def convert(src, out):
    with _common.open_zip(src, ZIP) as zf:
        names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == MEMBER and "__MACOSX" not in n]
        if len(names) != 1:
            raise _common.ConversionError("%s: expected one %s inside, found %r" % (ZIP, MEMBER, names))
        with zf.open(names[0]) as raw:
            fh = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            rows = read_rows(fh, src)
    train, test = _common.stratified_split(rows, lambda r: (r["cat"], r["label"]), TEST_FRACTION, SEED)
    out.write_jsonl("train.jsonl", train)
    out.write_jsonl("test.jsonl", test)


STEPS = [(FILES, convert)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
