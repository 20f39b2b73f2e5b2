"""Tiny files the converter must REFUSE with a clear message (test/fixtures/keras/errors/):

  lambda/model.h5              Functional model with a Lambda layer (code in the file: never run it)
  weights-only/model.weights.h5  Keras 3 save_weights(): no model_config, layers/<…>/vars layout
  weights-only/legacy.h5       Keras 3 legacy-format weights (save_weights to .h5 via legacy API): model_weights-like
                               root with layer_names but no model_config
  savedmodel/saved_model.pb    TF SavedModel protobuf only (variables/ dropped to keep it tiny)
  tfjs-graph/model.json        TF.js *graph* model ("format": "graph-model"), hand-written, + its shard

  /work/.venv-keras/bin/python scripts/keras/make_error_fixtures.py
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402

common.tf_threads(1)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "keras", "errors")


def tiny():
    keras.utils.set_random_seed(5)
    i = keras.Input((4,), name="x")
    return keras.Model(i, L.Dense(2, activation="softmax", name="dense")(L.Dense(3, name="hidden")(i)), name="tiny")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    notes = {}

    # 1. Lambda layer (Keras 3 legacy h5 stores the function as marshalled Python bytecode)
    keras.utils.set_random_seed(5)
    i = keras.Input((4,), name="x")
    x = L.Dense(3, name="hidden")(i)
    x = L.Lambda(lambda t: t * 2.0 + 1.0, name="lambda")(x)
    m = keras.Model(i, L.Dense(2, name="dense")(x), name="with_lambda")
    d = os.path.join(OUT, "lambda")
    os.makedirs(d)
    m.save(os.path.join(d, "model.h5"))
    notes["lambda/model.h5"] = "Lambda layer: config has the function as base64 marshalled bytecode; must be refused, never executed"

    # 2. weights only
    d = os.path.join(OUT, "weights-only")
    os.makedirs(d)
    t = tiny()
    t.save_weights(os.path.join(d, "model.weights.h5"))
    notes["weights-only/model.weights.h5"] = "Keras 3 save_weights(): HDF5 with layers/<class>/vars/<i>, no model_config"
    from keras.src.legacy.saving import legacy_h5_format
    import h5py

    with h5py.File(os.path.join(d, "legacy.h5"), "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, t)
    notes["weights-only/legacy.h5"] = ("legacy weights-only HDF5 (what Keras 2 save_weights('x.h5') wrote): root attrs "
                                       "layer_names/backend/keras_version, groups per layer, but no model_config")

    # 3. SavedModel: only saved_model.pb
    d = os.path.join(OUT, "savedmodel")
    os.makedirs(d)
    tmp = tempfile.mkdtemp()
    t = tiny()
    tf.saved_model.save(t, os.path.join(tmp, "sm"))
    shutil.copyfile(os.path.join(tmp, "sm", "saved_model.pb"), os.path.join(d, "saved_model.pb"))
    shutil.rmtree(tmp)
    notes["savedmodel/saved_model.pb"] = "TF SavedModel protobuf (variables/ omitted): not a Keras file; must be refused"

    # 4. TF.js graph model (hand-written, minimal but in the shape tensorflowjs_converter writes)
    d = os.path.join(OUT, "tfjs-graph")
    os.makedirs(d)
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (4, 2)).astype("<f4")
    b = rng.normal(0, 0.1, (2,)).astype("<f4")
    with open(os.path.join(d, "group1-shard1of1.bin"), "wb") as f:
        f.write(w.tobytes() + b.tobytes())
    dt = {"type": {"type": "DT_FLOAT"}}
    graph = {
        "format": "graph-model",
        "generatedBy": "2.13.0",
        "convertedBy": "TensorFlow.js Converter v4.22.0",
        "signature": {
            "inputs": {"x:0": {"name": "x:0", "dtype": "DT_FLOAT",
                                "tensorShape": {"dim": [{"size": "-1"}, {"size": "4"}]}}},
            "outputs": {"Identity:0": {"name": "Identity:0", "dtype": "DT_FLOAT",
                                       "tensorShape": {"dim": [{"size": "-1"}, {"size": "2"}]}}},
        },
        "modelTopology": {
            "node": [
                {"name": "x", "op": "Placeholder",
                 "attr": {"dtype": {"type": "DT_FLOAT"},
                          "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}}},
                {"name": "StatefulPartitionedCall/tiny/dense/MatMul/ReadVariableOp", "op": "Const",
                 "attr": {"value": {"tensor": {"dtype": "DT_FLOAT",
                                               "tensorShape": {"dim": [{"size": "4"}, {"size": "2"}]}}},
                          "dtype": {"type": "DT_FLOAT"}}},
                {"name": "StatefulPartitionedCall/tiny/dense/BiasAdd/ReadVariableOp", "op": "Const",
                 "attr": {"value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}}},
                          "dtype": {"type": "DT_FLOAT"}}},
                {"name": "StatefulPartitionedCall/tiny/dense/BiasAdd", "op": "_FusedMatMul",
                 "input": ["x", "StatefulPartitionedCall/tiny/dense/MatMul/ReadVariableOp",
                           "StatefulPartitionedCall/tiny/dense/BiasAdd/ReadVariableOp"],
                 "device": "/device:CPU:0",
                 "attr": {"T": {"type": "DT_FLOAT"}, "transpose_a": {"b": False}, "transpose_b": {"b": False},
                          "num_args": {"i": "1"}, "epsilon": {"f": 0.0},
                          "fused_ops": {"list": {"s": ["Qmlhc0FkZA=="]}}}},
                {"name": "StatefulPartitionedCall/tiny/dense/Softmax", "op": "Softmax",
                 "input": ["StatefulPartitionedCall/tiny/dense/BiasAdd"], "attr": {"T": {"type": "DT_FLOAT"}}},
                {"name": "Identity", "op": "Identity", "input": ["StatefulPartitionedCall/tiny/dense/Softmax"],
                 "attr": {"T": {"type": "DT_FLOAT"}}},
            ],
            "library": {},
            "versions": {"producer": 1482},
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [
            {"name": "StatefulPartitionedCall/tiny/dense/MatMul/ReadVariableOp", "shape": [4, 2], "dtype": "float32"},
            {"name": "StatefulPartitionedCall/tiny/dense/BiasAdd/ReadVariableOp", "shape": [2], "dtype": "float32"},
        ]}],
    }
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(graph, f)
    notes["tfjs-graph/model.json"] = "TF.js graph model (format graph-model, GraphDef JSON); not a layers model: refuse"

    sizes = {}
    for root, _, files in os.walk(OUT):
        for fn in files:
            p = os.path.join(root, fn)
            sizes[os.path.relpath(p, OUT)] = os.path.getsize(p)
    common.write_json(os.path.join(OUT, "index.json"), {**common.versions(), "files": {
        k: {"bytes": sizes.get(k), "why": v} for k, v in notes.items()}})
    for k, v in sorted(sizes.items()):
        print(f"{k:36s} {v:8d}")


if __name__ == "__main__":
    main()
