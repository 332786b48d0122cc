"""clinc150: CLINC OOS "full" variant (one JSON file) -> one JSONL per split.

Conversion (clinc150.source.md): for each key K of data_full.json
(train, val, test, oos_train, oos_val, oos_test), each [text, label] ->
{"text": text, "label": label} in K.jsonl, order kept, nothing dropped;
labels.txt = sorted set of the in-scope labels (train, val, test).
"""
import sys

import _common

NAME = "clinc150"
REPO = "clinc/oos-eval"
COMMIT = "828f8093932c8fe6ca7936c3d2e52903b1c523de"
FILES = ["data/data_full.json"]
LICENSE_FILE = "LICENSE"
KEYS = ["train", "val", "test", "oos_train", "oos_val", "oos_test"]


def convert(src, out):
    data = _common.load_json(src, "data/data_full.json")
    keys = [k for k in KEYS if k in data] if src.partial else KEYS
    in_scope = set()
    for k in keys:
        if k not in data:
            raise _common.ConversionError("data_full.json has no key %r" % k)
        pairs = data[k]
        for p in pairs:
            if not (isinstance(p, list) and len(p) == 2):
                raise _common.ConversionError("%s: entry is not [text, label]: %r" % (k, p))
        out.write_jsonl(k + ".jsonl", ({"text": t, "label": l} for t, l in pairs))
        if not k.startswith("oos_"):
            in_scope.update(l for _, l in pairs)
    if in_scope:
        out.write_lines("labels.txt", sorted(in_scope))


STEPS = [(FILES, convert)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
