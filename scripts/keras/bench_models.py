"""Keras half of the conversion benchmark: builds keras.applications models (weights=None,
seeded) and the team's ensemble, saves DIR/<model>/model.h5 (ensemble: best_facial_model.h5 +
facial_results.json), seeded inputs + Keras outputs (expected.json, batch 1 and 2) and
DIR/<model>/keras-timing.json: ms/image on ONE thread for model.predict(x) and for a compiled
tf.function(model)(x, training=False), batch 1, median of N after warm-up.

  /work/.venv-keras/bin/python scripts/keras/bench_models.py --out .scratch/bench [--models a,b] [--quick]
"""
import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402

common.tf_threads(1)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import build_ensemble  # noqa: E402

A = keras.applications
MODELS = {
    "MobileNetV2": lambda: A.MobileNetV2(weights=None),
    "MobileNetV3Small": lambda: A.MobileNetV3Small(weights=None, input_shape=(224, 224, 3)),  # default is (None, None, 3)
    "EfficientNetB0": lambda: A.EfficientNetB0(weights=None),
    "EfficientNetV2B0": lambda: A.EfficientNetV2B0(weights=None, input_shape=(224, 224, 3)),  # default (None, None, 3)
    "ResNet50": lambda: A.ResNet50(weights=None),
    "ResNet50V2": lambda: A.ResNet50V2(weights=None),
    "DenseNet121": lambda: A.DenseNet121(weights=None),
    "InceptionV3": lambda: A.InceptionV3(weights=None),
    "Xception": lambda: A.Xception(weights=None),
    "NASNetMobile": lambda: A.NASNetMobile(weights=None),
    "ensemble": lambda: build_ensemble.build(),
}


def timed(fn, n, warm):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(ts), "min_ms": min(ts), "max_ms": max(ts), "runs": n}


def bench_one(name, out, n, warm, seed):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    model = MODELS[name]()
    build_s = time.perf_counter() - t0
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if name == "ensemble":
        path = build_ensemble.write(model, d)
        import make_keras2_layout

        make_keras2_layout.convert(path, os.path.join(d, "best_facial_model.keras2-layout.h5"))
    else:
        path = os.path.join(d, "model.h5")
        model.save(path)
    shape = tuple(224 if s is None else s for s in model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    x2 = rng.uniform(0, 1, (2,) + shape).astype("float32")
    x1 = x2[:1].copy()
    y1 = np.asarray(model(x1, training=False), dtype="float32")
    y2 = np.asarray(model(x2, training=False), dtype="float32")
    iname = model.inputs[0].name
    oname = model.output_names[0] if getattr(model, "output_names", None) else "output_0"
    desc = (f"keras.applications {name}, weights=None, seed {seed}; inputs uniform 0..1" if name != "ensemble"
            else "team ensemble (build_ensemble.py), untrained seeded weights; inputs uniform 0..1")
    for fn, x, y in (("expected.json", x2, y2), ("expected-batch1.json", x1, y1)):
        exp = dict(common.versions())
        exp.update({
            "case": name, "description": desc + f"; batch {x.shape[0]} (expected-batch1.json holds image 0 alone)",
            "layers": common.layer_classes(model),
            "inputs": [common.tensor_entry(iname, x)],
            "outputs": [common.tensor_entry(oname, y)],
        })
        common.write_json(os.path.join(d, fn), exp)

    predict = timed(lambda: model.predict(x1, verbose=0), n, warm)
    fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
    fn(x1)  # trace
    compiled = timed(lambda: fn(x1).numpy(), n, warm)
    timing = {
        "model": name, "params": int(model.count_params()), "file": os.path.basename(path),
        "file_bytes": os.path.getsize(path), "build_s": round(build_s, 2),
        "threads": {"intra_op": 1, "inter_op": 1},
        "predict_batch1_ms": predict, "tf_function_batch1_ms": compiled,
        "loadavg_after_runs": os.getloadavg(), "machine": platform.processor() or platform.machine(),
        **common.versions(),
    }
    common.write_json(os.path.join(d, "keras-timing.json"), timing)
    print(f"{name:18s} params={timing['params']:9d} predict={predict['median_ms']:8.1f} ms  "
          f"tf.function={compiled['median_ms']:8.1f} ms  load={os.getloadavg()[0]:.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="", help="comma list; default all: " + ",".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="3 timed runs, 1 warm-up")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m] or list(MODELS)
    for m in names:
        if m not in MODELS:
            sys.exit(f"unknown model {m}; known: {', '.join(MODELS)}")
    n, warm = (3, 1) if args.quick else (max(10, args.runs), 3)
    for m in names:
        bench_one(m, args.out, n, warm, args.seed)


if __name__ == "__main__":
    main()
