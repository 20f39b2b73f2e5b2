"""Builds the team's ensemble (MODELS.md, hare_run_v6_facial) with untrained, seeded weights:
Input(224,224,3) -> EfficientNetB0 & ResNet50 (include_top=False, weights=None, nested, frozen)
-> GAP each -> Concatenate(3328) -> Dense(512, relu) -> Dropout(0.4) -> Dense(256, relu)
-> Dropout(0.4) -> Dense(8, softmax).  Writes DIR/best_facial_model.h5 (Keras 3 legacy HDF5) + DIR/facial_results.json
[+ DIR/best_facial_model.keras2-layout.h5 with --keras2-layout].

  /work/.venv-keras/bin/python scripts/keras/build_ensemble.py --out .scratch/ensemble
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CLASS_NAMES = ["healthy", "acne", "bags", "redness", "rosacea", "eczema", "hyperpigmentation", "other"]


def build(seed=42):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    inp = keras.Input((224, 224, 3), name="input_layer")
    eff = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(224, 224, 3))
    res = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(224, 224, 3))
    eff.trainable = False
    res.trainable = False
    a = L.GlobalAveragePooling2D(name="global_average_pooling2d")(eff(inp))
    b = L.GlobalAveragePooling2D(name="global_average_pooling2d_1")(res(inp))
    x = L.Concatenate(name="concatenate")([a, b])
    x = L.Dense(512, activation="relu", name="dense")(x)
    x = L.Dropout(0.4, name="dropout")(x)
    x = L.Dense(256, activation="relu", name="dense_1")(x)
    x = L.Dropout(0.4, name="dropout_1")(x)
    x = L.Dense(8, activation="softmax", name="dense_2")(x)
    return keras.Model(inp, x, name="facial_ensemble")


def write(model, out):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "best_facial_model.h5")
    model.save(path)
    common.write_json(os.path.join(out, "facial_results.json"), {
        "class_names": CLASS_NAMES,
        "note": "untrained, seeded weights built by scripts/keras/build_ensemble.py (architecture of hare_run_v6_facial)",
    })
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keras2-layout", action="store_true",
                    help="also write best_facial_model.keras2-layout.h5: the same model in the tf.keras 2.13 HDF5 "
                         "layout the team's real file has (see make_keras2_layout.py)")
    args = ap.parse_args()
    common.tf_threads(1)
    m = build(args.seed)
    path = write(m, args.out)
    print(path, m.count_params())
    if args.keras2_layout:
        import make_keras2_layout

        k2 = os.path.join(args.out, "best_facial_model.keras2-layout.h5")
        make_keras2_layout.convert(path, k2)
        print(k2)


if __name__ == "__main__":
    main()
