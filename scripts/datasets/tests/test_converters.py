"""The converters in scripts/datasets/ on small hand-made originals (no network).

Each fixture under fixtures/<name>/ has the original format and the relative path
that `<name>.py urls` lists (CSV, TSV, JSON, JSON lines, zip). For every set:
`convert` exits 0, writes exactly the expected files, each line is the canonical
`json.dumps(record, ensure_ascii=False)` + "\\n" the loaders read, the records are
the exact ones the fixture should give (labels, splits, dropped rows), and a second
run is byte-identical. Then a damaged original per format family: exit 1, the set
and the file named on stderr, and nothing written into OUT.

Run: python3 -m unittest discover -s scripts/datasets/tests -v   (stdlib only)
"""
import csv
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTERS = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "fixtures")

# Every converter next to _common.py must have a fixture (a new set needs one).
ALL_SETS = sorted(
    f[:-3] for f in os.listdir(CONVERTERS) if f.endswith(".py") and not f.startswith("_")
)

# bitext_customer_support checks that its CSV is the pinned git blob; the fixture is
# not, so the success path runs the converter with BLOBS set to the fixture's blob.
RUN_WITH_FIXTURE_BLOB = """
import sys
sys.path.insert(0, sys.argv[1])
import _common
mod = __import__(sys.argv[2])
mod.BLOBS = {rel: _common.git_blob_sha1(_common.Source(sys.argv[4]).path(rel)) for rel in mod.BLOBS}
sys.argv = [mod.NAME + ".py"] + sys.argv[3:]
_common.main(mod)
"""


def env():
    e = dict(os.environ)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    return e


def run_converter(name, *args, fixture_blob=False):
    script = os.path.join(CONVERTERS, name + ".py")
    if fixture_blob:
        cmd = [sys.executable, "-c", RUN_WITH_FIXTURE_BLOB, CONVERTERS, name] + list(args)
    else:
        cmd = [sys.executable, script] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, encoding="utf-8", env=env(), timeout=60)


def read_jsonl(case, path):
    """Records of a converted file, checking the byte format on the way."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # raises on non-UTF-8
    case.assertTrue(text.endswith("\n"), "%s: no final newline" % path)
    records = []
    for n, line in enumerate(text[:-1].split("\n"), 1):
        r = json.loads(line)
        case.assertEqual(json.dumps(r, ensure_ascii=False), line,
                         "%s line %d is not json.dumps(record, ensure_ascii=False)" % (path, n))
        records.append(r)
    return records


def read_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def tree(root):
    """{relative path: sha256} of every file under root (hidden ones too)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def documented_split(rows, key, fraction, seed):
    """The split as the SOURCE.md files describe it, written out again here (not
    _common.stratified_split) so that a change to either one shows."""
    by = {}
    for i, r in enumerate(rows):
        by.setdefault(key(r), []).append(i)
    rng = random.Random(seed)
    test = set()
    for k in sorted(by):
        idx = by[k][:]
        rng.shuffle(idx)
        test |= set(idx[: round(fraction * len(idx))])
    return ([r for i, r in enumerate(rows) if i not in test], [r for i, r in enumerate(rows) if i in test])


class Base:
    """Mixin: one converter's checks (subclasses add unittest.TestCase)."""
    maxDiff = None
    NAME = None
    FILES = None  # expected output files
    FIXTURE_BLOB = False

    @classmethod
    def setUpClass(cls):
        cls.class_tmp = tempfile.mkdtemp(prefix="xiaoer-conv-test.")
        cls.first = None  # (out dir, stdout) of the first conversion of the fixture

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.class_tmp)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.class_tmp)

    def convert(self, fresh=False):
        """Converts the fixture (once per class unless fresh) and checks the file list."""
        if self.first is None or fresh:
            out = os.path.join(self.tmp, "again" if fresh else "out")
            p = run_converter(self.NAME, "convert", os.path.join(FIXTURES, self.NAME), out,
                              fixture_blob=self.FIXTURE_BLOB)
            self.assertEqual(p.returncode, 0, "convert failed:\n%s%s" % (p.stdout, p.stderr))
            if self.first is None:
                type(self).first = (out, p.stdout)
        else:
            out = self.first[0]
        self.assertEqual(sorted(os.listdir(out)), sorted(self.FILES))
        self.stdout = self.first[1]
        return out

    def jsonl(self, out, name):
        return read_jsonl(self, os.path.join(out, name))

    def test_deterministic(self):
        a = self.convert()
        b = self.convert(fresh=True)
        self.assertNotEqual(a, b)
        self.assertEqual(tree(a), tree(b))

    def damaged(self, rel, content):
        """A copy of the fixture with `rel` replaced by `content` (bytes, or None to delete it)."""
        src = os.path.join(self.tmp, "src")
        shutil.copytree(os.path.join(FIXTURES, self.NAME), src)
        path = os.path.join(src, *rel.split("/"))
        if content is None:
            os.remove(path)
        else:
            with open(path, "wb") as f:
                f.write(content)
        return src

    def truncated(self, rel, cut):
        """The fixture with the last `cut` bytes of `rel` removed."""
        with open(os.path.join(FIXTURES, self.NAME, *rel.split("/")), "rb") as f:
            data = f.read()
        return self.damaged(rel, data[:-cut])

    def assert_refused(self, src, *phrases):
        out = os.path.join(self.tmp, "bad-out")
        p = run_converter(self.NAME, "convert", src, out)
        self.assertEqual(p.returncode, 1, "expected a failure:\n%s%s" % (p.stdout, p.stderr))
        self.assertIn("%s: conversion failed" % self.NAME, p.stderr)
        for phrase in phrases:
            self.assertIn(phrase, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        # Nothing that could pass for a (partial) conversion: no file at all under OUT.
        self.assertEqual(tree(out) if os.path.isdir(out) else {}, {})
        return p


class TestCoverage(unittest.TestCase):
    def test_every_converter_has_a_fixture_and_a_test(self):
        tested = {c.NAME for c in Base.__subclasses__()}
        self.assertEqual(sorted(tested), ALL_SETS)
        for name in ALL_SETS:
            p = run_converter(name, "urls")
            self.assertEqual(p.returncode, 0, p.stderr)
            for line in p.stdout.splitlines():
                rel, url = line.split("\t")
                self.assertTrue(url.startswith("https://raw.githubusercontent.com/"), url)
                self.assertTrue(os.path.isfile(os.path.join(FIXTURES, name, *rel.split("/"))),
                                "no fixture for %s %s" % (name, rel))

    def test_urls_mirror_and_quoting(self):
        p = run_converter("smp2017_ecdt_task1", "urls", "--mirror", "http://127.0.0.1:9/raw/")
        self.assertEqual(p.stdout, "dataSet/往年数据.zip\thttp://127.0.0.1:9/raw/OnionWang/SMP2019-ECDT-NLU/"
                         "8a014cc516484257af71d5957e656fc51236501a/dataSet/%E5%BE%80%E5%B9%B4%E6%95%B0%E6%8D%AE.zip\n")

    def test_provenance_lists_the_pins(self):
        pins = os.path.join(tempfile.mkdtemp(prefix="xiaoer-conv-test."), "pins")
        self.addCleanup(shutil.rmtree, os.path.dirname(pins))
        with open(pins, "w") as f:
            f.write("%s  banking77/train.jsonl\n%s  clinc150/train.jsonl\n" % ("a" * 64, "b" * 64))
        p = run_converter("banking77", "provenance", pins)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("## Download and check (scripts/fetch-datasets.sh)", p.stdout)
        self.assertIn("%s  train.jsonl" % ("a" * 64), p.stdout)
        self.assertNotIn("b" * 64, p.stdout)
        self.assertIn("https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/"
                      "57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data/test.csv", p.stdout)


class TestBanking77(Base, unittest.TestCase):
    NAME = "banking77"
    FILES = ["train.jsonl", "test.jsonl", "labels.txt"]

    def test_records(self):
        out = self.convert()
        train = self.jsonl(out, "train.jsonl")
        self.assertEqual(len(train), 8)
        self.assertEqual([r["label"] for r in train], ["card_arrival"] * 3 + ["lost_or_stolen_card"] * 2
                         + ["request_refund"] * 2 + ["top_up_failed"])
        self.assertEqual(train[1], {"text": "My card never showed up, what now?", "label": "card_arrival"})
        self.assertEqual(train[6]["text"], 'The shop said "refund issued" but I see nothing')
        test = self.jsonl(out, "test.jsonl")
        self.assertEqual(len(test), 5)
        self.assertEqual(test[2], {"text": "How long does a refund take, roughly?", "label": "request_refund"})
        self.assertEqual(read_lines(os.path.join(out, "labels.txt")),
                         ["card_arrival", "lost_or_stolen_card", "request_refund", "top_up_failed"])
        self.assertIn("wrote train.jsonl (8 rows)", self.stdout)

    def test_csv_cut_mid_line(self):
        # the last row lost its category: must not become {"label": null}
        self.assert_refused(self.truncated("banking_data/train.csv", len("not go through,top_up_failed\n")),
                            "banking_data/train.csv line 9")

    def test_json_truncated(self):
        self.assert_refused(self.truncated("banking_data/categories.json", 5),
                            "banking_data/categories.json", "not valid JSON")

    def test_original_missing(self):
        self.assert_refused(self.damaged("banking_data/test.csv", None),
                            "original file missing: banking_data/test.csv")

    def test_wrong_columns(self):
        self.assert_refused(self.damaged("banking_data/test.csv", b"query,intent\nhi,greeting\n"),
                            "banking_data/test.csv", "category")


class TestAfqmc(Base, unittest.TestCase):
    NAME = "afqmc"
    FILES = ["train.jsonl", "dev.jsonl", "test_unlabeled.jsonl"]

    def test_records(self):
        out = self.convert()
        train = self.jsonl(out, "train.jsonl")
        self.assertEqual([r["label"] for r in train], [1, 1, 0, 1, 0, 1])
        self.assertEqual(train[3], {"a": "花呗,借呗有什么区别", "b": "借呗和花呗的区别", "label": 1})
        self.assertTrue(all(set(r) == {"a", "b", "label"} for r in train))
        dev = self.jsonl(out, "dev.jsonl")
        self.assertEqual([r["label"] for r in dev], [1, 0, 1])
        test = self.jsonl(out, "test_unlabeled.jsonl")
        self.assertEqual([r["id"] for r in test], [0, 1, 2])
        self.assertEqual(test[2], {"id": 2, "a": "花呗账单日是几号", "b": "花呗每月几号出账", "label": None})

    def test_csv_cut_mid_line(self):
        # dev.csv is converted after train.csv: train.jsonl must not be left behind either
        self.assert_refused(self.truncated("data/dev.csv", len(",1\r\n")), "data/dev.csv line 4")

    def test_json_lines_truncated(self):
        self.assert_refused(self.truncated("data/test.json", len('"}\n')), "data/test.json line 3", "not valid JSON")

    def test_cut_inside_a_character(self):
        # the last bytes of 账 are gone: the decoder fails; the error still names the file
        self.assert_refused(self.truncated("data/test.json", len('账"}\n') + 1), "data/test.json", "UnicodeDecodeError")


class TestClinc150(Base, unittest.TestCase):
    NAME = "clinc150"
    FILES = ["train.jsonl", "val.jsonl", "test.jsonl", "oos_train.jsonl", "oos_val.jsonl",
             "oos_test.jsonl", "labels.txt"]

    def test_records(self):
        out = self.convert()
        counts = {k: len(self.jsonl(out, k + ".jsonl"))
                  for k in ["train", "val", "test", "oos_train", "oos_val", "oos_test"]}
        self.assertEqual(counts, {"train": 6, "val": 3, "test": 3, "oos_train": 2, "oos_val": 1, "oos_test": 2})
        self.assertEqual(self.jsonl(out, "val.jsonl")[1], {"text": "move 20 dollars to my savings", "label": "transfer"})
        self.assertEqual({r["label"] for r in self.jsonl(out, "oos_test.jsonl")}, {"oos"})
        self.assertEqual(read_lines(os.path.join(out, "labels.txt")), ["balance", "transfer", "translate"])

    def test_json_truncated(self):
        self.assert_refused(self.truncated("data/data_full.json", 40), "data/data_full.json", "not valid JSON")

    def test_key_missing(self):
        self.assert_refused(self.damaged("data/data_full.json", b'{"train": [["hi", "greeting"]]}'),
                            "data_full.json has no key 'val'")


class TestGoEmotions(Base, unittest.TestCase):
    NAME = "goemotions"
    FILES = ["train.jsonl", "dev.jsonl", "test.jsonl", "labels.txt"]

    def test_records(self):
        out = self.convert()
        train = self.jsonl(out, "train.jsonl")
        self.assertEqual(len(train), 6)  # the blank line is skipped
        self.assertEqual(train[0], {"text": "This little robot made my whole day", "label": ["amusement", "joy"], "id": "fx0001a"})
        self.assertEqual([r["label"] for r in train[1:]],
                         [["annoyance"], ["gratitude"], ["neutral"], ["fear"], ["surprise", "excitement"]])
        self.assertEqual([r["id"] for r in self.jsonl(out, "dev.jsonl")], ["fx0101a", "fx0102b", "fx0103c"])
        self.assertEqual([r["label"] for r in self.jsonl(out, "test.jsonl")],
                         [["pride", "joy"], ["disgust"], ["sadness", "grief"]])
        labels = read_lines(os.path.join(out, "labels.txt"))
        self.assertEqual((len(labels), labels[0], labels[27]), (28, "admiration", "neutral"))

    def test_tsv_cut_mid_line(self):
        self.assert_refused(self.truncated("data/original/test.tsv", len("25,16\tfx0203c\n")),
                            "data/original/test.tsv line 3: 2 tab-separated fields, expected 3")

    def test_labels_incomplete(self):
        self.assert_refused(self.truncated("data/original/labels.txt", len("neutral\n")),
                            "labels.txt has 27 names, expected 28")


class TestStackFAQ(Base, unittest.TestCase):
    NAME = "stackfaq"
    FILES = ["faqs.jsonl", "queries.jsonl"]

    def test_records(self):
        out = self.convert()
        faqs = self.jsonl(out, "faqs.jsonl")
        self.assertEqual([r["faq_id"] for r in faqs], [0, 1, 2, 3])
        self.assertEqual(faqs[0]["answers"], ["Wrap the words in ~~double tildes~~.",
                                              "Some renderers accept <del>...</del> too."])  # "" dropped
        self.assertEqual(faqs[1], {"faq_id": 1, "question": "How do I remove my account permanently?",
                                   "answers": ["Open the settings page and choose delete."]})  # single -> list
        self.assertEqual(faqs[3]["answers"], [])  # null
        queries = self.jsonl(out, "queries.jsonl")
        self.assertEqual([(q["query"], q["faq_id"]) for q in queries], [
            ("how to cross out words in a readme", 0), ("strike text markdown", 0),
            ("close my social network profile for good", 1), ("undo last git commit keep changes", 2),
            ("why is my laptop fan loud", 3)])
        self.assertIn("skipped 3 empty or '*' paraphrases", self.stdout)

    def test_json_truncated(self):
        self.assert_refused(self.truncated("data/StackFAQ/stackExchange-FAQ.json", 30),
                            "data/StackFAQ/stackExchange-FAQ.json", "not valid JSON")

    def test_wrong_shape(self):
        self.assert_refused(self.damaged("data/StackFAQ/stackExchange-FAQ.json", b'{"qapair": []}'),
                            "has no root.qapair")


class TestBitext(Base, unittest.TestCase):
    NAME = "bitext_customer_support"
    FILES = ["train.jsonl", "test.jsonl"]
    FIXTURE_BLOB = True
    CSV = "data/train/Bitext_Sample_Customer_Support_Training_Dataset.csv"

    def test_records(self):
        out = self.convert()
        train, test = self.jsonl(out, "train.jsonl"), self.jsonl(out, "test.jsonl")
        self.assertEqual((len(train), len(test)), (9, 3))  # round(0.2 * n) of 5, 4, 3 rows per intent
        self.assertEqual([r["text"] for r in test],
                         ["how do I cancel a purchase", "i want a refund, the item broke", "when will my order arrive"])
        self.assertEqual(set(train[0]), {"text", "label", "category", "response", "tags"})
        self.assertEqual(train[0]["response"], "Sure, I can help you cancel order {{Order Number}}.\r\n\r\n"
                         "1. Sign in.\r\n2. Open {{Online Order Interaction}}.\r\nAnything else?")
        self.assertEqual((train[0]["label"], train[0]["category"], train[0]["tags"]), ("cancel_order", "ORDER", "BQZ"))
        # the split as documented, recomputed from the source rows
        with open(os.path.join(FIXTURES, self.NAME, *self.CSV.split("/")), encoding="utf-8", newline="") as f:
            rows = [{"text": r["instruction"], "label": r["intent"], "category": r["category"],
                     "response": r["response"], "tags": r["tags"]} for r in csv.DictReader(f)]
        self.assertEqual((train, test), documented_split(rows, lambda r: r["label"], 0.2, 13))

    def test_not_the_pinned_blob(self):
        # the real converter refuses any CSV that is not the pinned git blob
        self.assert_refused(os.path.join(FIXTURES, self.NAME), "is not the pinned original: git blob",
                            "expected 9e56c982621d2b33f406d7ced07938f9dabe9e92")


class TestChineseOnlineShopping(Base, unittest.TestCase):
    NAME = "chinese_online_shopping_10_cats"
    FILES = ["train.jsonl", "test.jsonl"]
    ZIP = "datasets/online_shopping_10_cats/online_shopping_10_cats.zip"

    def test_records(self):
        out = self.convert()
        train, test = self.jsonl(out, "train.jsonl"), self.jsonl(out, "test.jsonl")
        # 19 rows, 2 with an empty review dropped; strata (书籍,1)=6 (书籍,0)=4 (水果,1)=6 (水果,0)=1
        # -> round(0.1 * n) = 1, 0, 1, 0 in test
        self.assertEqual((len(train), len(test)), (15, 2))
        self.assertEqual(test, [{"text": "值得一读,推荐", "label": 1, "cat": "书籍"},
                                {"text": "价格实惠，味道好", "label": 1, "cat": "水果"}])
        texts = [r["text"] for r in train]
        self.assertIn("物流很快，书也是正版", texts)  # stripped
        self.assertIn("收到时烂了好几个", texts)  # U+FEFF removed
        self.assertEqual(sum(r["label"] == 0 for r in train), 5)
        self.assertTrue(all(isinstance(r["label"], int) and set(r) == {"text", "label", "cat"} for r in train))
        # documented split on the kept rows in source order
        rows = [r for r in self.jsonl(out, "train.jsonl") + self.jsonl(out, "test.jsonl")]
        order = ["这本书写得很好，孩子很喜欢", "印刷清楚，纸张不错", "内容太空洞了", "物流很快，书也是正版", "有几页是破的",
                 "苹果很甜，下次还买", "翻译很生硬，看不下去", "橙子新鲜多汁", "收到时烂了好几个", "值得一读,推荐",
                 "个头很大", "和描述不符", "送给朋友的，很满意", "包装很用心", "故事很感人", "价格实惠，味道好", "第二次购买了"]
        rows.sort(key=lambda r: order.index(r["text"]))
        self.assertEqual((train, test), documented_split(rows, lambda r: (r["cat"], r["label"]), 0.1, 13))

    def test_zip_truncated(self):
        self.assert_refused(self.truncated(self.ZIP, 100), self.ZIP, "is not a zip file")


class TestSMP2017(Base, unittest.TestCase):
    NAME = "smp2017_ecdt_task1"
    FILES = ["train.jsonl", "dev.jsonl", "test.jsonl", "labels.txt"]
    ZIP = "dataSet/往年数据.zip"

    def test_records(self):
        out = self.convert()
        train = self.jsonl(out, "train.jsonl")
        # files in name order (app, chat, weather); BOM, CRLF, blank lines and the
        # __MACOSX / data.json / misplaced test_app.txt members ignored
        self.assertEqual([(r["label"], r["text"]) for r in train], [
            ("app", "打开地图"), ("app", "帮我打开音乐播放器"), ("chat", "你好呀"), ("chat", "你叫什么名字"),
            ("chat", "讲个笑话吧"), ("weather", "明天会下雨吗"), ("weather", "北京今天多少度"), ("weather", "周末天气怎么样")])
        self.assertEqual([r["label"] for r in self.jsonl(out, "dev.jsonl")], ["chat", "weather", "weather"])
        self.assertEqual(self.jsonl(out, "test.jsonl"), [{"text": "打开相机", "label": "app"},
                                                         {"text": "你喜欢什么颜色", "label": "chat"},
                                                         {"text": "晚安", "label": "chat"}])
        self.assertEqual(read_lines(os.path.join(out, "labels.txt")), ["app", "chat", "weather"])

    def test_html_instead_of_zip(self):
        self.assert_refused(self.damaged(self.ZIP, b"<!DOCTYPE html><html>Sign in to continue</html>\n"),
                            self.ZIP, "is not a zip file")


if __name__ == "__main__":
    unittest.main()
