"""bitext_customer_support: Bitext customer-support sample (CSV) -> stratified 80/20 JSONL split.

Conversion (bitext_customer_support.source.md): csv.DictReader (UTF-8; responses
keep their "\\r\\n"); each row -> {"text": instruction, "label": intent,
"category": category, "response": response, "tags": tags}; no official split, so
80/20 stratified by intent with random.Random(13) (_common.stratified_split).
"""
import sys

import _common

NAME = "bitext_customer_support"
REPO = "bitext/customer-support-llm-chatbot-training-dataset"
COMMIT = "cf857859a4653c49c4cf0f134712ec95bab34d0c"
CSV = "data/train/Bitext_Sample_Customer_Support_Training_Dataset.csv"
FILES = [CSV]
LICENSE_FILE = "LICENSE.txt"
# The file as it stood at COMMIT (deleted from the repository later).
BLOBS = {CSV: "9e56c982621d2b33f406d7ced07938f9dabe9e92"}
SEED = 13
TEST_FRACTION = 0.2


def convert(src, out):
    with src.open_text(CSV) as f:
        rows = [
            {
                "text": r["instruction"],
                "label": r["intent"],
                "category": r["category"],
                "response": r["response"],
                "tags": r["tags"],
            }
            for r in _common.csv_rows(src, f, CSV, ["instruction", "intent", "category", "response", "tags"])
        ]
    train, test = _common.stratified_split(rows, lambda r: r["label"], TEST_FRACTION, SEED)
    out.write_jsonl("train.jsonl", train)
    out.write_jsonl("test.jsonl", test)


STEPS = [(FILES, convert)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
