"""scripts/fetch-datasets.sh end to end against a local HTTP mirror (no network).

A ThreadingHTTPServer on 127.0.0.1 (ephemeral port, in a thread) serves the
fixture originals laid out like raw.githubusercontent.com
(<owner>/<repo>/<commit>/<path>) under several prefixes:

  /good/     every fixture original
  /missing/  the same without banking77's banking_data/test.csv (a 404)

The script runs with `--mirror http://127.0.0.1:PORT/<prefix> --retries 0
--timeout 5` and XIAOER_DATASETS_PINS pointing at a pins file made here from
the fixture conversions (test_converters.py checks those conversions).

Cases: (a) success: files and SOURCE.md installed, exit 0; a second run says
"ok NAME", downloads nothing and changes nothing; --check passes.
(b) wrong hash: exit 1, the set, the URLs and what to do on stderr, nothing
installed (no NAME folder, no .fetch-* leftover), an existing folder untouched.
(c) 404: exit 1, the set, the URL and "HTTP error" on stderr, nothing installed;
the other sets of the same run are still installed.
(d) --from: a good tree is copied; a tampered one is refused.
(e) bitext_customer_support: its fixture is not the pinned git blob, so the
conversion step refuses it and nothing is installed.

Needs bash and curl. Run: python3 -m unittest discover -s scripts/datasets/tests -v
"""
import functools
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTERS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CONVERTERS))
SCRIPT = os.path.join(ROOT, "scripts", "fetch-datasets.sh")
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, HERE)
from test_converters import ALL_SETS, RUN_WITH_FIXTURE_BLOB  # noqa: E402

BLOB_CHECKED = "bitext_customer_support"  # its converter insists on the pinned git blob
SETS = [n for n in ALL_SETS if n != BLOB_CHECKED]
MISSING = ("banking77", "banking_data/test.csv")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(root):
    """{relative path: (sha256, mtime_ns, mode)} of everything under root, dirs too."""
    out = {}
    for d, dirs, files in os.walk(root):
        for x in dirs + files:
            p = os.path.join(d, x)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (None if x in dirs else sha256(p), st.st_mtime_ns, st.st_mode)
    return out


def urls(name, mirror=None):
    cmd = [sys.executable, os.path.join(CONVERTERS, name + ".py"), "urls"] + (["--mirror", mirror] if mirror else [])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, universal_newlines=True, encoding="utf-8").stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]


class Handler(http.server.SimpleHTTPRequestHandler):
    requests = []  # paths asked for, in order (reset per test)

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.requests.append(self.path)
        super().do_GET()


@unittest.skipUnless(shutil.which("curl") and shutil.which("bash"), "needs bash and curl")
class FetchTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xiaoer-fetch-test.")
        www = os.path.join(cls.tmp, "www")
        # the mirror: <prefix>/<owner>/<repo>/<commit>/<path>, from the canonical URLs
        for name in ALL_SETS:
            for rel, url in urls(name):
                tail = url[len("https://raw.githubusercontent.com/"):]
                for prefix in ("good", "missing"):
                    if prefix == "missing" and (name, rel) == MISSING:
                        continue
                    dst = os.path.join(www, prefix, *urllib.parse.unquote(tail).split("/"))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(os.path.join(FIXTURES, name, *rel.split("/")), dst)
        # the converted fixtures (a tree --from can copy) and their pins
        cls.converted = os.path.join(cls.tmp, "converted")
        pins = []
        for name in ALL_SETS:
            out = os.path.join(cls.converted, name)
            src = os.path.join(FIXTURES, name)
            script = os.path.join(CONVERTERS, name + ".py")
            cmd = ([sys.executable, "-c", RUN_WITH_FIXTURE_BLOB, CONVERTERS, name] if name == BLOB_CHECKED
                   else [sys.executable, script]) + ["convert", src, out]
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            for f in sorted(os.listdir(out)):
                pins.append("%s  %s/%s\n" % (sha256(os.path.join(out, f)), name, f))
        cls.pins = os.path.join(cls.tmp, "pins.sha256")
        with open(cls.pins, "w") as f:
            f.writelines(pins)
        # a pins file that disagrees with the fixtures on one banking77 file
        cls.wrong_pins = os.path.join(cls.tmp, "wrong-pins.sha256")
        with open(cls.wrong_pins, "w") as f:
            f.writelines(("0" * 64 + line[64:]) if line.endswith(" banking77/train.jsonl\n") else line for line in pins)

        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=www))
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.base = "http://127.0.0.1:%d" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(5)
        shutil.rmtree(cls.tmp)

    def setUp(self):
        Handler.requests = []
        self.dest = tempfile.mkdtemp(prefix="dest.", dir=self.tmp)

    def fetch(self, *args, pins=None, prefix="good"):
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
               and k not in ("XIAOER_DATASETS_DIR", "XIAOER_DATASETS_MIRROR")}
        env.update(XIAOER_DATASETS_PINS=pins or self.pins, NO_PROXY="127.0.0.1,localhost",
                   no_proxy="127.0.0.1,localhost", PYTHONDONTWRITEBYTECODE="1")
        net = [] if "--from" in args or "--check" in args else [
            "--mirror", "%s/%s" % (self.base, prefix), "--retries", "0", "--timeout", "5"]
        p = subprocess.run(["bash", SCRIPT, "--dir", self.dest] + net + list(args), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           encoding="utf-8", timeout=60)
        self.out, self.err = p.stdout, p.stderr
        return p.returncode

    def assert_installed(self, name):
        d = os.path.join(self.dest, name)
        want = sorted(os.listdir(os.path.join(self.converted, name)))
        self.assertEqual(sorted(os.listdir(d)), sorted(want + ["SOURCE.md"]))
        for f in want:
            self.assertEqual(sha256(os.path.join(d, f)), sha256(os.path.join(self.converted, name, f)), f)
        with open(os.path.join(d, "SOURCE.md"), encoding="utf-8") as f:
            source = f.read()
        self.assertIn("## Download and check (scripts/fetch-datasets.sh)", source)
        for f in want:
            self.assertIn("%s  %s\n" % (sha256(os.path.join(d, f)), f), source)

    def assert_nothing_installed(self):
        self.assertEqual(os.listdir(self.dest), [])  # no NAME folder, no .fetch-* leftover

    # (a)
    def test_success_then_idempotent_then_check(self):
        rc = self.fetch(*SETS)
        self.assertEqual(rc, 0, self.out + self.err)
        self.assertEqual(sorted(os.listdir(self.dest)), SETS)
        for name in SETS:
            self.assert_installed(name)
            self.assertRegex(self.out, r"(?m)^done %s -> /.*/%s/%s$" % (name, re.escape(os.path.basename(self.dest)), name))
        self.assertIn("data sets ready in", self.out)
        # every original was fetched from the mirror, once
        expected = sorted("/good/" + url.split("/", 3)[3] for n in SETS for _, url in urls(n))
        self.assertEqual(sorted(Handler.requests), expected)

        before = snapshot(self.dest)
        Handler.requests = []
        rc = self.fetch(*SETS)
        self.assertEqual(rc, 0, self.out + self.err)
        self.assertEqual([l for l in self.out.splitlines() if l.startswith("ok ")], ["ok %s" % n for n in SETS])
        self.assertNotIn("fetch ", self.out)
        self.assertEqual(Handler.requests, [])
        self.assertEqual(snapshot(self.dest), before)

        rc = self.fetch("--check", *SETS)
        self.assertEqual((rc, self.out), (0, "".join("ok %s\n" % n for n in SETS)), self.err)

        # a damaged installed file is noticed and replaced
        with open(os.path.join(self.dest, "goemotions", "dev.jsonl"), "a") as f:
            f.write("{}\n")
        self.assertEqual(self.fetch("--check", "goemotions"), 1)
        self.assertIn("dev.jsonl: sha256", self.err)
        self.assertEqual(self.fetch("goemotions"), 0, self.err)
        self.assertRegex(self.err, r"goemotions/dev\.jsonl: sha256 [0-9a-f]{64}, pinned [0-9a-f]{64} -> replacing it")
        self.assert_installed("goemotions")

    # (b)
    def test_wrong_hash(self):
        rc = self.fetch("banking77", pins=self.wrong_pins)
        self.assertEqual(rc, 1, self.out + self.err)
        self.assertIn("error: banking77: converted files do not match %s" % self.wrong_pins, self.err)
        self.assertIn("train.jsonl: sha256 %s, pinned %s" % (
            sha256(os.path.join(self.converted, "banking77", "train.jsonl")), "0" * 64), self.err)
        for _, url in urls("banking77", "%s/good" % self.base):
            self.assertIn(url, self.err)
        self.assertIn("what to do:", self.err)
        self.assertIn("nothing was installed into", self.err)
        self.assertIn("1 of 1 set(s) failed: banking77", self.err)
        self.assert_nothing_installed()

    def test_wrong_hash_keeps_the_existing_folder(self):
        old = os.path.join(self.dest, "banking77")
        shutil.copytree(os.path.join(self.converted, "banking77"), old)
        before = snapshot(self.dest)
        self.assertEqual(self.fetch("banking77", pins=self.wrong_pins), 1, self.out + self.err)
        self.assertIn("-> replacing it", self.err)
        self.assertEqual(snapshot(self.dest), before)

    # (c)
    def test_404(self):
        rc = self.fetch("banking77", prefix="missing")
        self.assertEqual(rc, 1, self.out + self.err)
        url = dict(urls("banking77", "%s/missing" % self.base))[MISSING[1]]
        self.assertIn("error: banking77: download failed: %s" % url, self.err)
        self.assertIn("404", self.err)
        self.assertIn("HTTP error", self.err)
        self.assertIn("what to do:", self.err)
        self.assert_nothing_installed()

    def test_404_does_not_stop_the_other_sets(self):
        rc = self.fetch("banking77", "clinc150", prefix="missing")
        self.assertEqual(rc, 1, self.out + self.err)
        self.assertIn("1 of 2 set(s) failed: banking77", self.err)
        self.assertEqual(os.listdir(self.dest), ["clinc150"])
        self.assert_installed("clinc150")

    # (d)
    def test_from_good_tree(self):
        rc = self.fetch("--from", self.converted, *SETS)
        self.assertEqual(rc, 0, self.out + self.err)
        for name in SETS:
            self.assert_installed(name)
        self.assertEqual(Handler.requests, [])
        self.assertEqual(self.fetch("--check", *SETS), 0, self.err)

    def test_from_tampered_tree(self):
        tampered = os.path.join(self.tmp, "tampered")
        shutil.rmtree(tampered, ignore_errors=True)
        shutil.copytree(self.converted, tampered)
        bad = os.path.join(tampered, "stackfaq", "queries.jsonl")
        with open(bad, "rb+") as f:
            data = f.read()
            f.seek(0)
            f.write(data.replace(b'"faq_id": 3', b'"faq_id": 2'))
        rc = self.fetch("--from", tampered, "stackfaq", "clinc150")
        self.assertEqual(rc, 1, self.out + self.err)
        self.assertIn("error: stackfaq: %s/stackfaq does not match" % tampered, self.err)
        self.assertIn("%s: sha256 %s" % (bad, sha256(bad)), self.err)
        self.assertIn("nothing was copied into", self.err)
        self.assertEqual(os.listdir(self.dest), ["clinc150"])  # the good set of the same run is copied

    # (e)
    def test_conversion_refused(self):
        rc = self.fetch(BLOB_CHECKED)
        self.assertEqual(rc, 1, self.out + self.err)
        self.assertIn("error: %s: conversion of the downloaded originals failed" % BLOB_CHECKED, self.err)
        self.assertIn("is not the pinned original: git blob", self.err)
        for _, url in urls(BLOB_CHECKED, "%s/good" % self.base):
            self.assertIn(url, self.err)
        self.assert_nothing_installed()

    def test_usage_errors(self):
        self.assertEqual(self.fetch("no_such_set"), 2)
        self.assertIn("unknown data set 'no_such_set'; known sets: %s" % " ".join(ALL_SETS), self.err)
        self.assertEqual(self.fetch("banking77", pins=os.path.join(self.tmp, "absent.sha256")), 2)
        self.assertIn("pins file", self.err)
        self.assert_nothing_installed()


if __name__ == "__main__":
    unittest.main()
