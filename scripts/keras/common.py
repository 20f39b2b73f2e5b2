"""Shared helpers for the Keras reference scripts (never imported by tests).

Run with the Keras venv, e.g. `/work/.venv-keras/bin/python scripts/keras/make_fixtures.py`.
"""
import base64
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def tf_threads(n=1):
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # already initialised


def b64(a):
    import numpy as np

    a = np.ascontiguousarray(a, dtype="<f4")
    return base64.b64encode(a.tobytes()).decode("ascii")


def tensor_entry(name, a):
    return {"name": name, "shape": list(a.shape), "data": b64(a)}


def versions():
    import keras
    import tensorflow as tf

    return {"keras_version": keras.__version__, "tensorflow_version": tf.__version__}


def layer_classes(model):
    """Sorted class names of every layer, recursing into nested models."""
    import keras

    out = set()

    def walk(m):
        for l in m.layers:
            out.add(type(l).__name__)
            if isinstance(l, keras.Model):
                walk(l)

    walk(model)
    return sorted(out)


def input_names(model):
    return [t.name if hasattr(t, "name") else str(t) for t in model.inputs]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
