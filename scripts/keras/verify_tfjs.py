"""Checks our hand-written TF.js layers fixtures: rebuilds each model from model.json's
Keras-2-style topology with Keras 3's legacy deserialiser, loads the shard by weight name and
compares with expected.json.   /work/.venv-keras/bin/python scripts/keras/verify_tfjs.py
"""
import base64
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras.src.legacy.saving import saving_utils  # noqa: E402

from reference_keras2 import patch_config  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_tfjs(d):
    doc = json.load(open(os.path.join(d, "model.json")))
    topo = doc["modelTopology"]
    cfg = topo.get("model_config", topo)
    cfg = {"class_name": cfg["class_name"], "config": cfg["config"]}
    patch_config(cfg)  # Keras 3 refuses the "groups": 1 that tf.keras 2 writes on DepthwiseConv2D
    model = saving_utils.model_from_config(cfg)
    values = {}
    for group in doc["weightsManifest"]:
        blob = b"".join(open(os.path.join(d, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            dt = "<i4" if w["dtype"] == "int32" else "<f4"
            values[w["name"]] = np.frombuffer(blob, dt, n, off).reshape(w["shape"])
            off += 4 * n
        assert off == len(blob)

    used = set()

    def walk(m):
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
                continue
            if not layer.weights:
                continue
            new = []
            for v in layer.weights:
                var = v.path.split("/")[-1]
                if isinstance(layer, keras.layers.DepthwiseConv2D) and var == "kernel":
                    var = "depthwise_kernel"
                key = layer.name + "/" + var
                new.append(values[key])
                used.add(key)
            layer.set_weights(new)

    walk(model)
    assert used == set(values), set(values) - used
    return model


def main():
    for d in sorted(glob.glob(os.path.join(ROOT, "test/fixtures/keras/*/tfjs"))):
        exp = json.load(open(os.path.join(d, "..", "expected.json")))
        m = load_tfjs(d)
        xs = [np.frombuffer(base64.b64decode(i["data"]), "<f4").reshape(i["shape"]) for i in exp["inputs"]]
        ys = m(xs if len(xs) > 1 else xs[0], training=False)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        worst = 0.0
        for o, y in zip(exp["outputs"], ys):
            ref = np.frombuffer(base64.b64decode(o["data"]), "<f4").reshape(o["shape"])
            worst = max(worst, float(np.max(np.abs(ref - np.asarray(y)))))
        print(f"{os.path.basename(os.path.dirname(d)):20s} max|diff|={worst:.2e}", "OK" if worst < 1e-5 else "MISMATCH")


if __name__ == "__main__":
    main()
