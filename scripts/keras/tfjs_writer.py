"""Writes a TF.js *layers* model (model.json + group1-shard1of1.bin) by hand.

There is no tensorflowjs package here, so this follows what tfjs-converter does
(tensorflowjs/converters/keras_h5_conversion.py + write_weights.py, Apache-2.0):

* style "converter" (tensorflowjs_converter --input_format keras):
    modelTopology = {"keras_version", "backend", "model_config": {"class_name", "config"}}
  weights = h5py iteration order of /model_weights (alphabetical by layer name), then each
  group's weight_names, with a trailing ":0" stripped.
* style "layers-js" (tfjs-layers `model.save()` in the browser/Node):
    modelTopology = {"class_name", "config", "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"}
  weights in model.weights order.

tensorflowjs_converter refuses Keras 3 files, so real layers models always carry Keras-2-style
configs: we convert Keras 3's config to the Keras 2 shape (see keras3_to_keras2) so the fixture
looks like a real file.
"""
import json
import os

import h5py
import numpy as np

K2_VERSION = "2.13.1"  # what the team's TF 2.13 would write
CONVERTER = "TensorFlow.js Converter v4.22.0"


def _clean(obj):
    """Drop Keras 3-only serialisation keys; DTypePolicy -> 'float32'."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "DTypePolicy":
            return obj["config"]["name"]
        out = {}
        for k, v in obj.items():
            if k in ("module", "registered_name", "build_config", "compile_config", "shared_object_id"):
                continue
            out[k] = _clean(v)
        return out
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _k2_tensor(t, nested=()):
    h = t["config"]["keras_history"]
    # tf.keras 2 counts a nested model's own construction node, so its first call is node 1
    # (_should_skip_first_node in tf.keras functional.py); Keras 3's call args are 0-based.
    return [h[0], h[1] + (1 if h[0] in nested else 0), h[2], {}]


def _k2_node(node, nested=()):
    args = node["args"]
    first = args[0]
    if isinstance(first, list):
        tensors = [_k2_tensor(t, nested) for t in first]
    else:
        tensors = [_k2_tensor(first, nested)]
    kwargs = {k: v for k, v in node.get("kwargs", {}).items() if v is not None}
    if kwargs:
        for t in tensors:
            t[3] = kwargs
    return tensors


def _triples(x):
    if x and isinstance(x[0], str):
        return [x]
    return x


def _strip_initializer_axes(cfg):
    for k, v in cfg.items():
        if k.endswith("_initializer") and isinstance(v, dict) and isinstance(v.get("config"), dict):
            v["config"].pop("input_axes", None)
            v["config"].pop("output_axes", None)


def _input_rank(l):
    try:
        a = l["inbound_nodes"][0]["args"][0]
        return len(a["config"]["shape"])
    except (KeyError, IndexError, TypeError):
        return None


def keras3_to_keras2(model_config):
    """Keras 3 legacy-h5 model_config (dict) -> the Keras 2 (tf.keras 2.13) shape."""

    def layer(l, nested=()):
        cfg = _clean(l["config"])
        cls = l["class_name"]
        _strip_initializer_axes(cfg)
        if cls in ("DepthwiseConv2D", "Conv2DTranspose", "Conv1DTranspose"):
            cfg["groups"] = 1  # tf.keras 2.x writes this (inherited from Conv); Keras 3 rejects it
        if cls == "BatchNormalization" and isinstance(cfg.get("axis"), int):
            rank = _input_rank(l)
            if rank:  # tf.keras 2 stores the built, positive axis list, e.g. [3]
                cfg["axis"] = [cfg["axis"] % rank]
        if cls == "InputLayer":
            cfg["batch_input_shape"] = cfg.pop("batch_shape")
            cfg.pop("optional", None)
        elif cls in ("Functional", "Sequential", "Model"):
            cfg = graph(l)["config"]
        elif cls == "BatchNormalization":
            cfg.pop("synchronized", None)
        elif cls in ("Dense", "Conv2D", "Conv1D", "DepthwiseConv2D", "SeparableConv2D"):
            cfg.pop("lora_rank", None)
            cfg.pop("lora_alpha", None)
            cfg.pop("quantization_config", None)
        out = {"class_name": cls, "config": cfg, "name": l.get("name", cfg.get("name"))}
        if "inbound_nodes" in l:
            out["inbound_nodes"] = [_k2_node(n, nested) for n in l["inbound_nodes"]]
        return out

    def graph(m):
        c = m["config"]
        if m["class_name"] == "Sequential":
            return {"class_name": "Sequential",
                    "config": {"name": c["name"], "layers": [
                        {"class_name": x["class_name"], "config": layer(x)["config"]} for x in c["layers"]]}}
        # Nested models whose first node tf.keras 2 skips: Functional ones, and Sequential
        # ones that start with an InputLayer (tf.keras 2's Sequential is a Functional).
        nested = {x["name"] for x in c["layers"] if x["class_name"] in ("Functional", "Model")
                  or (x["class_name"] == "Sequential" and x["config"]["layers"][0]["class_name"] == "InputLayer")}
        # Keras 3 already writes input/output_layers of a nested Functional 1-based; not a Sequential's.
        seq = {x["name"] for x in c["layers"] if x["class_name"] == "Sequential"} & nested
        ends = lambda refs: [[r[0], r[1] + (1 if r[0] in seq else 0), r[2]] for r in _triples(refs)]
        return {"class_name": "Functional",
                "config": {"name": c["name"], "trainable": c.get("trainable", True),
                           "layers": [layer(x, nested) for x in c["layers"]],
                           "input_layers": ends(c["input_layers"]),
                           "output_layers": ends(c["output_layers"])}}

    return graph(model_config)


def _h5_weights_converter_order(h5_path):
    """(name, array) list in tensorflowjs_converter order."""
    out = []
    with h5py.File(h5_path, "r") as f:
        mw = f["model_weights"]
        for lname in mw:  # h5py iterates groups in name order
            if lname == "top_level_model_weights":
                continue
            g = mw[lname]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["weight_names"].tolist()]
            for n in names:
                arr = np.asarray(g[n])
                arr = arr.astype("int32" if np.issubdtype(arr.dtype, np.integer) else "float32")
                out.append((n[:-2] if n.endswith(":0") else n, arr))
    return out


def _classes(cfg, out=None):
    out = {} if out is None else out
    for l in cfg["config"]["layers"]:
        out[l["config"]["name"]] = l["class_name"]
        if l["class_name"] in ("Functional", "Sequential", "Model"):
            _classes(l, out)
    return out


def _k2_weight_name(name, classes):
    """Keras 3 calls DepthwiseConv2D's kernel 'kernel'; Keras 2 / tfjs-layers call it 'depthwise_kernel'."""
    # Keras 2 variable names are '<layer>/<var>'; Keras 3 paths may carry the enclosing model's
    # name too (Sequential: 'sequential_cnn/conv1/kernel')
    layer, _, var = "/".join(name.split("/")[-2:]).rpartition("/")
    name = layer + "/" + var
    if classes.get(layer) == "DepthwiseConv2D" and var == "kernel":
        return layer + "/depthwise_kernel"
    return name


def _tfjs_dtype(a):
    return "int32" if np.issubdtype(a.dtype, np.integer) else "float32"


def write_tfjs(model, h5_path, out_dir, style="converter"):
    os.makedirs(out_dir, exist_ok=True)
    with h5py.File(h5_path, "r") as f:
        k3cfg = json.loads(f.attrs["model_config"])
    k2cfg = keras3_to_keras2(k3cfg)
    if style == "converter":
        weights = _h5_weights_converter_order(h5_path)
        topology = {"keras_version": K2_VERSION, "backend": "tensorflow", "model_config": k2cfg}
        head = {"format": "layers-model", "generatedBy": "keras v" + K2_VERSION, "convertedBy": CONVERTER}
    elif style == "layers-js":
        # tfjs-layers names variables '<layer>/<var>' and saves model.weights order
        weights = []
        for v in model.weights:
            weights.append((v.path, np.asarray(v.numpy(), dtype="float32")))
    else:
        raise ValueError(style)
    classes = _classes(k3cfg)
    weights = [(_k2_weight_name(n, classes), a) for n, a in weights]
    if style == "layers-js":
        topology = dict(k2cfg)
        topology.update({"keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"})
        head = {"format": "layers-model", "generatedBy": "TensorFlow.js tfjs-layers v4.22.0", "convertedBy": None}
    blob = b"".join(np.ascontiguousarray(a, dtype="<i4" if _tfjs_dtype(a) == "int32" else "<f4").tobytes()
                    for _, a in weights)
    shard = "group1-shard1of1.bin"
    with open(os.path.join(out_dir, shard), "wb") as f:
        f.write(blob)
    manifest = [{"paths": [shard],
                 "weights": [{"name": n, "shape": list(a.shape), "dtype": _tfjs_dtype(a)} for n, a in weights]}]
    doc = dict(head)
    doc["modelTopology"] = topology
    doc["weightsManifest"] = manifest
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(doc, f)
    return doc
