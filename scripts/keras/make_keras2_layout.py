"""Synthetic *Keras 2 layout* HDF5 copies of some fixtures: <case>/model-keras2-layout.h5.

Keras 2 cannot be installed here and no permissively licensed real Keras 2 file with NESTED models
(the team's layout) was found, so this rewrites our Keras 3 legacy .h5 in the exact layout tf.keras
2.x writes (checked against the real keras2-* files):
  * root attrs: backend (vlen str), keras_version '2.13.1', model_config (Keras 2 JSON, vlen ascii)
  * /model_weights attrs: backend, keras_version (vlen ascii), layer_names (fixed-length |S array)
  * /model_weights/<layer> attr weight_names: fixed-length |S array of TF variable names with ':0'
    (empty: float64 array of shape (0,)); datasets at <layer>/<var name> ('<inner layer>/<var>:0')
  * DepthwiseConv2D kernel named depthwise_kernel; DepthwiseConv2D/Conv2DTranspose configs carry
    "groups": 1; BatchNormalization axis as the built positive list ([3]); no Keras 3 module keys.
The same expected.json applies. Verified by loading with Keras 3 (after removing "groups", which
Keras 3 refuses - exactly the patch a real tf.keras 2.13 file needs).

  /work/.venv-keras/bin/python scripts/keras/make_keras2_layout.py
"""
import base64
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

common.tf_threads(1)
import keras  # noqa: E402

import tfjs_writer  # noqa: E402
from reference_keras2 import patch_config  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FX = os.path.join(ROOT, "test", "fixtures", "keras")
CASES = ["mini_ensemble", "sequential_cnn", "depthwise_separable", "conv2d_transpose", "batchnorm"]
K2 = tfjs_writer.K2_VERSION


def fixed(names):
    if not names:
        return np.array([], dtype="float64")
    return np.array([n.encode("utf8") for n in names])


def convert(src, dst):
    with h5py.File(src, "r") as f:
        k3 = json.loads(f.attrs["model_config"])
        classes = tfjs_writer._classes(k3)
        k2 = tfjs_writer.keras3_to_keras2(k3)
        mw = f["model_weights"]
        layer_names = [str(n) for n in mw.attrs["layer_names"]]
        with h5py.File(dst, "w") as g:
            g.attrs["backend"] = "tensorflow"
            g.attrs["keras_version"] = K2
            g.attrs["model_config"] = json.dumps(k2).encode("utf8")
            gw = g.create_group("model_weights")
            gw.attrs["backend"] = b"tensorflow"
            gw.attrs["keras_version"] = K2.encode()
            gw.attrs["layer_names"] = fixed(layer_names)
            for ln in layer_names:
                src_g = mw[ln]
                names = [str(n) for n in src_g.attrs["weight_names"].tolist()]
                k2names = [tfjs_writer._k2_weight_name(n, classes) + ":0" for n in names]
                lg = gw.create_group(ln)
                lg.attrs["weight_names"] = fixed(k2names)
                for n, n2 in zip(names, k2names):
                    lg.create_dataset(n2, data=np.asarray(src_g[n]))


def verify(case, path):
    tmp = tempfile.mkdtemp()
    copy = os.path.join(tmp, "m.h5")
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        changes = patch_config(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
    m = keras.models.load_model(copy, compile=False)
    shutil.rmtree(tmp)
    exp = json.load(open(os.path.join(FX, case, "expected.json")))
    xs = [np.frombuffer(base64.b64decode(i["data"]), "<f4").reshape(i["shape"]) for i in exp["inputs"]]
    ys = m(xs if len(xs) > 1 else xs[0], training=False)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    worst = max(float(np.max(np.abs(np.frombuffer(base64.b64decode(o["data"]), "<f4").reshape(o["shape"])
                                    - np.asarray(y)))) for o, y in zip(exp["outputs"], ys))
    return worst, len(changes)


def main():
    for case in CASES:
        src = os.path.join(FX, case, "model.h5")
        dst = os.path.join(FX, case, "model-keras2-layout.h5")
        convert(src, dst)
        worst, n = verify(case, dst)
        print(f"{case:22s} {os.path.getsize(dst):7d} B  groups removed for check: {n:2d}  max|diff| {worst:.1e}",
              "OK" if worst < 1e-5 else "MISMATCH")


if __name__ == "__main__":
    main()
