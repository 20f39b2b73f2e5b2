// A deterministic ONNX classifier of a chosen size, for the boot benchmark: a tiny network
// plus one large weight matrix that every inference really uses (so ONNX Runtime loads and
// packs it like the weights of a real 128 MB model, instead of pruning an unused initializer).
import onnxProto from 'onnx-proto'
import { IR_VERSION, OPSET_VERSION, mulberry32, node, tensor } from './onnx-builder.js'

const { onnx } = onnxProto
const FLOAT = onnx.TensorProto.DataType.FLOAT

export interface BigModelOptions {
  /** Approximate file size; the large matrix takes all of it but a few hundred bytes. */
  bytes: number
  classes: number
  /** Input side in pixels (NCHW, 3 channels). */
  size: number
  seed: number
}

function valueInfo (name: string, dims: Array<number | string>) {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } }
  }
}

/**
 * input [N,3,size,size] → GlobalAveragePool → [N,3] → MatMul [3,K] → ReduceMean → [N,1]
 *                                          ↘ MatMul [3,classes] → + → logits [N,classes]
 */
export function buildBigModel (o: BigModelOptions): Uint8Array {
  const k = Math.max(1, Math.floor(o.bytes / 4 / 3))
  const rng = mulberry32(o.seed)
  const big = new Float32Array(3 * k)
  for (let i = 0; i < big.length; i++) big[i] = (rng() * 2 - 1) * 0.01
  const fc = Array.from({ length: 3 * o.classes }, () => rng() * 2 - 1)
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'shine-inference scripts/bench-model.ts',
    docString: `BENCHMARK model: ${o.bytes} bytes of deterministic weights (seed ${o.seed}); predictions are meaningless`,
    graph: {
      name: 'bench_big',
      initializer: [tensor('big', [3, k], big), tensor('fc', [3, o.classes], fc)],
      node: [
        node('GlobalAveragePool', ['input'], ['pooled']),
        node('Flatten', ['pooled'], ['features'], { axis: 1 }),
        node('MatMul', ['features', 'big'], ['wide']),
        node('ReduceMean', ['wide'], ['bias'], { axes: [1], keepdims: 1 }),
        node('MatMul', ['features', 'fc'], ['scores']),
        node('Add', ['scores', 'bias'], ['logits'])
      ],
      input: [valueInfo('input', ['N', 3, o.size, o.size])],
      output: [valueInfo('logits', ['N', o.classes])]
    }
  })
  return new Uint8Array(onnx.ModelProto.encode(model).finish())
}
