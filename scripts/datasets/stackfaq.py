"""stackfaq: StackFAQ (JSON form of the TakeLab XML) -> FAQ list and query JSONL.

Conversion (stackfaq.source.md): root.qapair[i] -> faqs.jsonl
{"faq_id": i, "question", "answers": [...]} and, for each paraphrase,
queries.jsonl {"query", "faq_id": i}; rephr/answer normalised to lists;
empty answers dropped; empty or "*" paraphrases skipped; text verbatim.
"""
import sys

import _common

NAME = "stackfaq"
REPO = "ML-Recipes/BERT-FAQ"
COMMIT = "3c184030c1819b462e29f665465ab4968657440e"
JSON = "data/StackFAQ/stackExchange-FAQ.json"
FILES = [JSON]
LICENSE_FILE = "LICENSE"


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def empty(s):
    return s is None or (isinstance(s, str) and not s.strip())


def convert(src, out):
    data = _common.load_json(src, JSON)
    try:
        pairs = as_list(data["root"]["qapair"])
    except (KeyError, TypeError):
        raise _common.ConversionError("%s has no root.qapair" % JSON)
    faqs, queries, skipped = [], [], 0
    for i, qa in enumerate(pairs):
        answers = [a for a in as_list(qa.get("answer")) if not empty(a)]
        faqs.append({"faq_id": i, "question": qa["question"], "answers": answers})
        for r in as_list(qa.get("rephr")):
            if empty(r) or r == "*":
                skipped += 1
                continue
            queries.append({"query": r, "faq_id": i})
    out.write_jsonl("faqs.jsonl", faqs)
    out.write_jsonl("queries.jsonl", queries)
    print("  skipped %d empty or '*' paraphrases" % skipped)


STEPS = [(FILES, convert)]

if __name__ == "__main__":
    _common.main(sys.modules[__name__])
