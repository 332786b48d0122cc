"""Shared code for the data-set converters in this folder (Python 3.6+, stdlib only).

Each converter `<name>.py` names its origin (repository, commit, original files)
and a list of steps; this module gives them one command line:

    <name>.py urls                      original files: "<path in repo>\\t<url>"
    <name>.py convert SRC OUT [--partial]
                                        read SRC/<path in repo>, write OUT/<file>
    <name>.py provenance PINS           SOURCE.md for the converted folder

`--partial` runs only the steps whose originals are present (used to check a
converter on a prefix of the originals); it also drops a CSV/TSV line that was
cut in the middle. It is never used by scripts/fetch-datasets.sh.

Output format (what the loaders read and the pins were taken from): UTF-8,
one `json.dumps(record, ensure_ascii=False)` per line, "\\n" line ends.

`convert` writes into a hidden staging folder inside OUT and moves the files into
OUT only when every step succeeded: a failed conversion leaves no file behind
(not even the outputs of the steps that ran before the failure). Any error exits 1
with the set's name and the original file(s) the failing step read.

Tests (fixture originals, a local HTTP mirror, no network): scripts/datasets/tests/.
"""

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import urllib.parse
import zipfile

RAW_GITHUB = "https://raw.githubusercontent.com"


class ConversionError(Exception):
    """A problem with the original files (missing, not the expected format)."""


class Missing(ConversionError):
    pass


def github_url(repo, commit, path, mirror=None):
    base = (mirror or RAW_GITHUB).rstrip("/")
    return "%s/%s/%s/%s" % (base, repo, commit, urllib.parse.quote(path))


class Source:
    """The downloaded originals, laid out as in the origin repository."""

    def __init__(self, root, partial=False):
        self.root = root
        self.partial = partial

    def path(self, rel):
        p = os.path.join(self.root, *rel.split("/"))
        if not os.path.isfile(p):
            raise Missing("original file missing: %s" % rel)
        return p

    def has(self, rel):
        return os.path.isfile(os.path.join(self.root, *rel.split("/")))

    def open_text(self, rel, encoding="utf-8-sig"):
        # newline="" keeps "\r\n" inside quoted CSV fields as it is in the source.
        return open(self.path(rel), encoding=encoding, newline="")

    def lines(self, fh):
        """Iterate text lines; in partial mode drop a last line without its "\\n"."""
        pending = None
        for line in fh:
            if pending is not None:
                yield pending
            pending = line
        if pending is not None and not (self.partial and not pending.endswith("\n")):
            yield pending


def csv_rows(src, fh, rel, columns, may_be_short=()):
    """csv.DictReader rows of the text stream fh (read through src.lines).

    The header must name every column in `columns`; a row without a value for
    one of them (a line cut off, or not the original CSV) is an error naming
    `rel` and the line, except for the columns in `may_be_short`, which come
    through as None as csv.DictReader gives them.
    """
    reader = csv.DictReader(src.lines(fh))
    header = reader.fieldnames or []
    absent = [c for c in columns if c not in header]
    if absent:
        raise ConversionError("%s: no column %s in the header %r (not the original CSV?)"
                              % (rel, ", ".join(absent), ",".join(header)))
    required = [c for c in columns if c not in may_be_short]
    for row in reader:
        short = [c for c in required if row[c] is None]
        if short:
            raise ConversionError("%s line %d: no value for %s (a cut-off or malformed line)"
                                  % (rel, reader.line_num, ", ".join(short)))
        yield row


def load_json(src, rel):
    """The JSON document in the original `rel`."""
    with src.open_text(rel) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConversionError("%s: not valid JSON (cut off, or not the original?): %s" % (rel, e))


def json_lines(src, rel):
    """The JSON value of each non-blank line of the original `rel` (JSON lines)."""
    with src.open_text(rel) as f:
        for n, line in enumerate(src.lines(f), 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as e:
                raise ConversionError("%s line %d: not valid JSON (cut off, or not the original?): %s" % (rel, n, e))


def open_zip(src, rel):
    """The original zip file `rel` as a zipfile.ZipFile."""
    try:
        return zipfile.ZipFile(src.path(rel))
    except zipfile.BadZipFile:
        raise ConversionError(
            "%s is not a zip file (an HTML page from a proxy, or a Git LFS pointer?)" % rel
        )


class Out:
    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def write_jsonl(self, name, records):
        n = 0
        with open(os.path.join(self.root, name), "w", encoding="utf-8", newline="\n") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False))
                f.write("\n")
                n += 1
        print("  wrote %s (%d rows)" % (name, n))

    def write_lines(self, name, lines):
        lines = list(lines)
        with open(os.path.join(self.root, name), "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        print("  wrote %s (%d lines)" % (name, len(lines)))


def stratified_split(rows, key, test_fraction, seed):
    """The split described in the SOURCE.md of the sets without an official split.

    Group rows by key(row); iterate strata in Python sorted() order of the key;
    take the stratum's row indices in source order, shuffle them with ONE shared
    random.Random(seed) (random.shuffle); the first round(test_fraction * n)
    indices go to test, the rest to train; each output keeps source order.
    """
    strata = {}
    for i, row in enumerate(rows):
        strata.setdefault(key(row), []).append(i)
    rng = random.Random(seed)
    test = set()
    for k in sorted(strata):
        idx = list(strata[k])
        rng.shuffle(idx)
        test.update(idx[: round(test_fraction * len(idx))])
    train_rows = [r for i, r in enumerate(rows) if i not in test]
    test_rows = [r for i, r in enumerate(rows) if i in test]
    return train_rows, test_rows


def git_blob_sha1(path):
    h = hashlib.sha1()
    h.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_pins(pins_path, name):
    pins = []
    with open(pins_path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1].startswith(name + "/"):
                pins.append((parts[0], parts[1][len(name) + 1:]))
    return pins


def provenance(mod, pins_path):
    here = os.path.dirname(os.path.abspath(mod.__file__))
    with open(os.path.join(here, mod.NAME + ".source.md"), encoding="utf-8") as f:
        text = f.read().rstrip("\n")
    out = [text, "", "## Download and check (scripts/fetch-datasets.sh)", ""]
    out.append("Original files, fetched at the pinned commit %s of %s:" % (mod.COMMIT, mod.REPO))
    for rel in mod.FILES:
        out.append("- %s" % github_url(mod.REPO, mod.COMMIT, rel))
    blobs = getattr(mod, "BLOBS", {})
    for rel, blob in sorted(blobs.items()):
        out.append("  (`%s` must be git blob %s)" % (rel, blob))
    lic = getattr(mod, "LICENSE_FILE", None)
    if lic:
        out.append("")
        out.append("Licence file of the origin repository at that commit: https://github.com/%s/blob/%s/%s"
                   % (mod.REPO, mod.COMMIT, lic))
    else:
        out.append("")
        out.append("The origin repository states no licence (see License above); use accordingly.")
    out.append("")
    out.append(
        "Converted by `scripts/datasets/%s.py` (Python stdlib, the conversion above); "
        "each converted file must match its sha256 pin in `scripts/datasets/pins.sha256`:" % mod.NAME
    )
    out.append("")
    out.append("```")
    for sha, rel in read_pins(pins_path, mod.NAME):
        out.append("%s  %s" % (sha, rel))
    out.append("```")
    return "\n".join(out) + "\n"


def convert(mod, src_dir, out_dir, partial):
    """Runs the steps into a staging folder inside out_dir; moves the files into
    out_dir only when all steps succeeded, and removes the staging folder (and
    out_dir, when this call created it and it is empty) either way."""
    created = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".convert-", dir=out_dir)
    try:
        run_steps(mod, Source(src_dir, partial=partial), Out(staging))
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)


def run_steps(mod, src, out):
    partial = src.partial
    for rel, blob in sorted(getattr(mod, "BLOBS", {}).items()):
        if partial and not src.has(rel):
            continue
        got = git_blob_sha1(src.path(rel))
        if got != blob and not partial:
            raise ConversionError(
                "%s is not the pinned original: git blob %s, expected %s" % (rel, got, blob)
            )
    ran = 0
    for inputs, step in mod.STEPS:
        absent = [rel for rel in inputs if not src.has(rel)]
        if absent:
            if partial:
                print("  skipped %s (absent: %s)" % (step.__name__, ", ".join(absent)))
                continue
            raise Missing("original file missing: %s" % ", ".join(absent))
        try:
            step(src, out)
        except ConversionError:
            raise
        except Exception as e:  # noqa: BLE001 - name the originals this step read
            raise ConversionError("%s: %s: %s" % (", ".join(inputs), type(e).__name__, e))
        ran += 1
    if partial and ran == 0:
        raise Missing("no step could run: none of its originals are present")


def main(mod):
    p = argparse.ArgumentParser(prog=mod.NAME + ".py", description=(mod.__doc__ or "").strip().splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    u = sub.add_parser("urls", help="original files and their URLs at the pinned commit")
    u.add_argument("--mirror", help="base URL replacing %s" % RAW_GITHUB)
    c = sub.add_parser("convert", help="convert the originals in SRC into OUT")
    c.add_argument("src")
    c.add_argument("out")
    c.add_argument("--partial", action="store_true", help="only the steps whose originals are present")
    v = sub.add_parser("provenance", help="print the SOURCE.md of the converted folder")
    v.add_argument("pins")
    a = p.parse_args()
    if a.cmd == "urls":
        for rel in mod.FILES:
            print("%s\t%s" % (rel, github_url(mod.REPO, mod.COMMIT, rel, a.mirror)))
    elif a.cmd == "convert":
        try:
            convert(mod, a.src, a.out, a.partial)
        except ConversionError as e:
            # the message names the original file (and line) that is not as expected
            print("%s: conversion failed: %s" % (mod.NAME, e), file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - any failure is reported with the set's name
            print("%s: conversion failed: %s: %s" % (mod.NAME, type(e).__name__, e), file=sys.stderr)
            sys.exit(1)
    elif a.cmd == "provenance":
        sys.stdout.write(provenance(mod, a.pins))
    else:
        p.print_help()
        sys.exit(2)
