"""Reference outputs for REAL Keras 2 .h5 files (written by tf.keras 2.x, from public repositories).

The model files themselves are third-party data: they are NOT committed to this repository
(see test/fixtures/keras/README.md). This script takes them from a local directory
(default .scratch/keras2-src, or the search tool's bare mirrors under /work/.mirror when
present), checks their sha256 against SOURCES, copies the original bytes to
<out>/keras2-<name>/model.h5 and writes expected.json next to it and under
test/fixtures/keras/keras2-<name>/expected.json (which is committed).

Where Keras 3 refuses a config key tf.keras 2.x wrote, a patched COPY is loaded: only the
model_config JSON attribute changes, never the weights; the patch is recorded in
expected.json ("reference_note", "patched_config_keys").

  /work/.venv-keras/bin/python scripts/keras/reference_keras2.py [--src DIR] [--out DIR]
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

common.tf_threads(1)
import keras  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SOURCES = {
    "mlperf-tiny-resnet8": {
        "repo": "mlcommons/tiny",
        "commit": "1bbcf37fac1b0c4be0bada2d7ddfb1e0bb4cb6a0",
        "path": "benchmark/training/image_classification/trained_models/pretrainedResnet.h5",
        "sha256": None,  # filled from the file on first run, then pinned below
        "licence": "Apache-2.0 (repository LICENSE.md)",
        "description": "MLPerf Tiny image classification reference: ResNet-8 for CIFAR-10 (32x32x3 -> 10 softmax), "
                       "Conv2D + BatchNormalization + Activation relu + Add residuals + AveragePooling2D + Flatten + Dense",
    },
    "mlperf-tiny-vww-mobilenet": {
        "repo": "mlcommons/tiny",
        "commit": "bceb91c5ad2e2deb295547d81505721d3a87d578",
        "path": "benchmark/training/visual_wake_words/trained_models/vww_96.h5",
        "sha256": None,
        "licence": "Apache-2.0 (repository LICENSE.md)",
        "description": "MLPerf Tiny visual wake words reference: MobileNetV1 alpha 0.25, 96x96x3 -> 2 softmax, "
                       "Conv2D + DepthwiseConv2D + BatchNormalization + relu + AveragePooling2D + Flatten + Dense",
    },
}
PINNED = os.path.join(ROOT, "test", "fixtures", "keras", "keras2-sources.json")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def find_source(name, spec, src_dir):
    p = os.path.join(src_dir, name + ".h5")
    if os.path.exists(p):
        return p
    mirror = "/work/.mirror/" + spec["repo"].replace("/", "+") + "/repo"
    if os.path.isdir(mirror):
        os.makedirs(src_dir, exist_ok=True)
        with open(p, "wb") as f:
            f.write(subprocess.check_output(["git", "-C", mirror, "show", f"{spec['commit']}:{spec['path']}"]))
        return p
    raise SystemExit(f"{name}: put {spec['repo']}@{spec['commit']}:{spec['path']} at {p}")


def patch_config(cfg):
    """Remove keys Keras 3 rejects but which do not change the meaning. Returns the list of changes."""
    changes = []

    def walk(layers):
        for l in layers:
            c = l.get("config", {})
            cls = l.get("class_name")
            if cls in ("DepthwiseConv2D", "Conv2DTranspose", "Conv1DTranspose") and c.get("groups", 1) == 1 \
                    and "groups" in c:
                del c["groups"]
                changes.append(f"{cls} '{c.get('name')}': removed \"groups\": 1")
            if isinstance(c, dict) and "layers" in c:
                walk(c["layers"])

    walk(cfg["config"]["layers"])
    renumber_nested_nodes(cfg, changes)
    return changes


def renumber_nested_nodes(cfg, changes):
    """tf.keras 2 numbers a nested model's calls from 1 (its construction node is node 0, skipped
    in the config); Keras 3 reading a list-format config numbers them from 0. Same graph, other
    numbering: shift the references so Keras 3 can load the copy."""
    c = cfg["config"]
    if not isinstance(c, dict) or "layers" not in c:
        return
    nested = {l["name"] for l in c["layers"] if l.get("class_name") in ("Functional", "Model")
              or (l.get("class_name") == "Sequential" and l["config"]["layers"][0]["class_name"] == "InputLayer")}
    for l in c["layers"]:
        for node in l.get("inbound_nodes", []):
            if isinstance(node, list):
                for t in node:
                    if t[0] in nested and t[1] >= 1:
                        t[1] -= 1
                        changes.append(f"inbound node of '{l['name']}': '{t[0]}' node {t[1] + 1} -> {t[1]}")
        if l.get("class_name") in ("Functional", "Model"):
            renumber_nested_nodes(l, changes)
    # Keras 3 subtracts 1 itself for a nested Functional in input/output_layers.
    seq = {l["name"] for l in c["layers"] if l.get("class_name") == "Sequential"} & nested
    for key in ("input_layers", "output_layers"):
        refs = c.get(key) or []
        for r in (refs if refs and isinstance(refs[0], list) else [refs]):
            if r and r[0] in seq and r[1] >= 1:
                r[1] -= 1


def load(path):
    try:
        return keras.models.load_model(path, compile=False), [], None
    except Exception as e:  # noqa: BLE001
        first_error = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
    tmp = tempfile.mkdtemp()
    copy = os.path.join(tmp, "patched.h5")
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        changes = patch_config(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
    return keras.models.load_model(copy, compile=False), changes, first_error


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=os.path.join(ROOT, ".scratch", "keras2-src"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".scratch", "keras2"))
    args = ap.parse_args()
    pinned = json.load(open(PINNED)) if os.path.exists(PINNED) else {}
    record = {}
    for name, spec in SOURCES.items():
        src = find_source(name, spec, args.src)
        digest = sha256(src)
        want = pinned.get(name, {}).get("sha256")
        if want and want != digest:
            raise SystemExit(f"{name}: sha256 {digest} != pinned {want}")
        with h5py.File(src, "r") as f:
            kv = f.attrs["keras_version"]
            kv = kv.decode() if isinstance(kv, bytes) else str(kv)
            backend = f.attrs.get("backend")
        model, changes, first_error = load(src)
        shape = tuple(model.inputs[0].shape[1:])
        rng = np.random.default_rng(2024)
        x = rng.uniform(0, 1, (2,) + shape).astype("float32")
        y = np.asarray(model(x, training=False), dtype="float32")
        exp = dict(common.versions())
        exp.update({
            "case": "keras2-" + name,
            "description": spec["description"],
            "file_keras_version": kv,
            "source": {k: spec[k] for k in ("repo", "commit", "path", "licence")},
            "sha256": digest,
            "bytes": os.path.getsize(src),
            "layers": common.layer_classes(model),
            "inputs": [common.tensor_entry(model.inputs[0].name, x)],
            "outputs": [common.tensor_entry(model.output_names[0] if hasattr(model, "output_names") else "output_0", y)],
        })
        if changes:
            exp["patched_config_keys"] = changes
            exp["reference_note"] = ("Keras 3 refused the original config (" + first_error + "); the reference was "
                                     "computed from a copy whose model_config JSON had only these keys removed "
                                     "(weights untouched): " + "; ".join(changes[:3]) +
                                     (f" … ({len(changes)} layers)" if len(changes) > 3 else ""))
        else:
            exp["reference_note"] = "loaded unmodified by Keras " + keras.__version__
        out_dir = os.path.join(args.out, "keras2-" + name)
        os.makedirs(out_dir, exist_ok=True)
        shutil.copyfile(src, os.path.join(out_dir, "model.h5"))
        common.write_json(os.path.join(out_dir, "expected.json"), exp)
        fx = os.path.join(ROOT, "test", "fixtures", "keras", "keras2-" + name)
        os.makedirs(fx, exist_ok=True)
        common.write_json(os.path.join(fx, "expected.json"), exp)
        record[name] = {**exp["source"], "sha256": digest, "bytes": exp["bytes"], "keras_version": kv,
                        "backend": str(backend), "patched": changes}
        print(f"keras2-{name}: keras_version={kv} sha256={digest[:12]} patched={len(changes)} out={y.shape}")
    common.write_json(PINNED, record)


if __name__ == "__main__":
    main()
