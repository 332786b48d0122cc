"""smp2017_ecdt_task1: SMP2017-ECDT task 1 (zipped per-class text files) -> JSONL.

Conversion (smp2017_ecdt_task1.source.md): inside 往年数据.zip, for each split
(train, develop -> dev, test) the files Task1data/<split>/<split>_<label>.txt in
sorted file-name order; each line decoded utf-8-sig, U+FEFF removed, stripped,
empty lines skipped -> {"text": line, "label": <label from the file name>};
labels.txt = sorted label names.
"""
import io
import re
import sys

import _common

NAME = "smp2017_ecdt_task1"
REPO = "OnionWang/SMP2019-ECDT-NLU"
COMMIT = "8a014cc516484257af71d5957e656fc51236501a"
ZIP = "dataSet/往年数据.zip"
FILES = [ZIP]
LICENSE_FILE = None  # the repository states no licence
SPLITS = [("train", "train"), ("develop", "dev"), ("test", "test")]
MEMBER = re.compile(r"(?:^|/)Task1data/(train|develop|test)/(train|develop|test)_([A-Za-z]+)\.txt$")


def convert(src, out):
    with _common.open_zip(src, ZIP) as zf:
        by_split = {}
        for n in zf.namelist():
            if "__MACOSX" in n:
                continue
            m = MEMBER.search(n)
            if m and m.group(1) == m.group(2):
                by_split.setdefault(m.group(1), []).append((n.rsplit("/", 1)[-1], m.group(3), n))
        labels = set()
        for split, name in SPLITS:
            files = sorted(by_split.get(split, []))
            if not files:
                if src.partial:
                    continue
                raise _common.ConversionError("%s: no Task1data/%s/%s_<label>.txt inside" % (ZIP, split, split))
            records = []
            for _, label, member in files:
                labels.add(label)
                with zf.open(member) as raw:
                    for line in io.TextIOWrapper(raw, encoding="utf-8-sig"):
                        text = line.replace("\ufeff", "").strip()
                        if text:
                            records.append({"text": text, "label": label})
            out.write_jsonl(name + ".jsonl", records)
        out.write_lines("labels.txt", sorted(labels))


STEPS = [(FILES, convert)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
