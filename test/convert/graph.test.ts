// The graph layer: OnnxGraph's encoding, the Conv+BatchNorm fold, the Keras graph walk (nested
// models, shared layers, layouts, broken graphs), and the pure helpers the layers use.
import onnxProto from 'onnx-proto'
import t from 'tap'
import { kerasMajor } from '../../src/convert/convert.js'
import { foldBatchNorm } from '../../src/convert/fold.js'
import { bool, cfAxis, num, positiveAxis, str, tuple } from '../../src/convert/layer-api.js'
import { lengthDelimited, OnnxGraph } from '../../src/convert/onnx-graph.js'
import { permute, samePads, windowOutput } from '../../src/convert/tensor-math.js'
import { convertConfig, runModel } from '../helpers/keras-graph.js'

const encode = (g: OnnxGraph, inputs: Array<{ name: string, dims: number[] }>, outputs: Array<{ name: string, dims: number[] }>) =>
  g.encode({ name: 'g', inputs, outputs, docString: 'test', producerVersion: 'test' })

t.test('OnnxGraph: unique names, shared constants, every attribute type', async (t) => {
  const g = new OnnxGraph()
  t.same([g.unique('a b'), g.unique('a b'), g.unique('a b')], ['a_b', 'a_b_1', 'a_b_2'])
  t.equal(g.scalar(2), g.scalar(2), 'identical constants are one tensor')
  t.throws(() => g.constant('bad', [2, 2], new Float32Array(3)), { message: 'constant bad: 3 values for [2,2]' })
  t.equal(g.int64Scalar(1), g.int64Scalar(1))
  const c = g.node('Constant', [], { value_floats: { floats: [1.5, -2] } })
  const y = g.nodeAs('Mul', [c, g.scalar(2)], 'y')
  const [out] = await runModel(encode(g, [], [{ name: y, dims: [2] }]), [])
  t.same(out?.data, [3, -4], 'a FLOATS attribute survives encoding')
  t.same(g.opCounts(), { Constant: 1, Mul: 1 })
})

/** x [1,1,1,1] → Conv(1×1, two output channels, `bias`) → `tail` → y; returns the graph and its conv output. */
function convGraph (tail: (g: OnnxGraph, conv: string) => string, bias?: string | number[]): { g: OnnxGraph, w: string } {
  const g = new OnnxGraph()
  g.reserve('x')
  const w = g.constant('w', [2, 1, 1, 1], Float32Array.of(1, 2))
  const b = typeof bias === 'string' ? [bias] : bias === undefined ? [] : [g.constant('b', [2], Float32Array.from(bias))]
  const conv = g.node('Conv', ['x', w, ...b], { kernel_shape: [1, 1] })
  g.nodeAs('Identity', [tail(g, conv)], 'y')
  return { g, w }
}
const run = async (g: OnnxGraph) => (await runModel(encode(g, [{ name: 'x', dims: [1, 1, 1, 1] }], [{ name: 'y', dims: [1, 2, 1, 1] }]), [{ shape: [1, 1, 1, 1], data: [2] }]))[0]?.data

t.test('a per-channel Mul and Add after a Conv fold into its weights, exactly', async (t) => {
  const scaleShift = (g: OnnxGraph, conv: string) => g.node('Add', [g.node('Mul', [conv, g.constant('s', [2, 1, 1], Float32Array.of(3, 4))]), g.constant('t', [1, 2, 1, 1], Float32Array.of(10, 20))])
  const plain = convGraph(scaleShift)
  t.equal(foldBatchNorm(plain.g), 2)
  t.same(plain.g.opCounts(), { Conv: 1, Identity: 1 })
  t.equal(plain.g.constantValue(plain.w), undefined, 'the unfolded weights are released')
  t.same(await run(plain.g), [2 * 1 * 3 + 10, 2 * 2 * 4 + 20])
  const biased = convGraph((g, conv) => g.node('Mul', [conv, g.constant('s', [2, 1, 1], Float32Array.of(3, 4))]), [1, 1])
  t.equal(foldBatchNorm(biased.g), 1)
  t.same(await run(biased.g), [(2 + 1) * 3, (4 + 1) * 4], 'the bias is scaled too')
  const stops = convGraph((g, conv) => g.node('Relu', [g.node('Mul', [conv, g.constant('s', [2, 1, 1], Float32Array.of(-1, 1))])]))
  t.equal(foldBatchNorm(stops.g), 1, 'folding stops at the first other op')
  t.same(await run(stops.g), [0, 4])
  const g = new OnnxGraph()
  const last = g.node('Mul', [g.node('Conv', ['x', g.constant('w', [1, 1, 1, 1], Float32Array.of(2))]), g.constant('s', [1, 1, 1], Float32Array.of(3))])
  t.equal(foldBatchNorm(g), 1, 'a Mul nothing reads still folds')
  t.same([g.nodeList().length, g.nodeList()[0]?.output], [1, [last]], 'the Conv writes the Mul\'s output')
})

t.test('anything but a constant per-channel Mul/Add on a Conv\'s only consumer is left alone', async (t) => {
  const vector = (g: OnnxGraph, dims: number[], data: number[]) => g.constant('v', dims, Float32Array.from(data))
  const cases: Record<string, { g: OnnxGraph, w: string }> = {
    'a scalar': convGraph((g, c) => g.node('Mul', [c, g.scalar(3)])),
    'a [2,2,1] constant': convGraph((g, c) => g.node('Mul', [c, vector(g, [2, 2, 1], [1, 2, 3, 4])])),
    'a non-constant operand': convGraph((g, c) => g.node('Mul', [c, 'x'])),
    'the conv times itself': convGraph((g, c) => g.node('Mul', [c, c])),
    'three inputs': convGraph((g, c) => g.node('Add', [c, vector(g, [2, 1, 1], [1, 2]), vector(g, [2, 1, 1], [1, 2])])),
    'two consumers': convGraph((g, c) => g.node('Add', [g.node('Mul', [c, vector(g, [2, 1, 1], [1, 2])]), c])),
    'another op': convGraph((g, c) => g.node('Relu', [c])),
    'a non-constant bias': convGraph((g, c) => g.node('Mul', [c, vector(g, [2, 1, 1], [1, 2])]), 'x'),
    'non-constant weights': (() => {
      const g = new OnnxGraph()
      const conv = g.node('Conv', ['x', 'w_in'], { kernel_shape: [1, 1] })
      g.node('Mul', [conv, g.constant('v', [2, 1, 1], Float32Array.of(1, 2))])
      return { g, w: 'w_in' }
    })()
  }
  for (const [what, { g }] of Object.entries(cases)) {
    const before = g.opCounts()
    t.equal(foldBatchNorm(g), 0, what)
    t.same(g.opCounts(), before, `${what}: the graph is unchanged`)
  }
})

t.test('weights shared by two Convs stay when one of them is folded', async (t) => {
  const g = new OnnxGraph()
  g.reserve('x')
  const w = g.constant('w', [2, 1, 1, 1], Float32Array.of(1, 2))
  const folded = g.node('Mul', [g.node('Conv', ['x', w], { kernel_shape: [1, 1] }), g.constant('s', [2, 1, 1], Float32Array.of(3, 4))])
  const plain = g.node('Conv', ['x', w], { kernel_shape: [1, 1] })
  g.nodeAs('Add', [folded, plain], 'y')
  t.equal(foldBatchNorm(g), 1)
  t.ok(g.constantValue(w), 'the second Conv still reads the original weights')
  t.same(await run(g), [2 * 3 + 2, 4 * 4 + 4])
})

const inputLayer = (name: string, shape: unknown[]) => ({ class_name: 'InputLayer', name, config: { batch_input_shape: shape }, inbound_nodes: [] })
const layer = (className: string, name: string, inbound: unknown[], config: Record<string, unknown> = {}) => ({ class_name: className, name, config, inbound_nodes: inbound })
const functional = (layers: unknown[], inputs: string[], outputs: Array<[string, number, number]>) =>
  ({ class_name: 'Functional', config: { name: 'f', layers, input_layers: inputs.map((n) => [n, 0, 0]), output_layers: outputs } })
const message = (f: () => unknown): string => { try { f() } catch (err) { return (err as Error).message } return 'no error' }

t.test('graph inputs and outputs keep Keras\' sizes and name the unknown ones', async (t) => {
  const { result } = convertConfig(functional([inputLayer('a', [2, null]), layer('Dropout', 'd', [[['a', 0, 0, {}]]])], ['a'], [['d', 0, 0]]), {}, 2)
  t.same(result.inputs, [{ name: 'a', dims: [2, 'a_d1'] }])
  t.same(result.outputs.map((o) => o.dims), [['N', 'd_d1']], 'the batch is N once it passes a layer')
  t.match(message(() => convertConfig(functional([inputLayer('a', [null, 1])], ['ghost'], [['a', 0, 0]]), {}, 2)), /^input "ghost" of model "f" has no shape$/)
  t.match(message(() => convertConfig(functional([{ class_name: 'InputLayer', name: 'a', config: {} }], ['a'], [['a', 0, 0]]), {}, 2)), /input "a" of model "f" has no shape/)
})

t.test('a broken graph names what is missing', async (t) => {
  const a = inputLayer('a', [null, 2])
  t.match(message(() => convertConfig(functional([a, layer('Add', 'add', [[['a', 0, 0, {}], ['ghost', 0, 0, {}]]])], ['a'], [['add', 0, 0]]), {}, 2)),
    /^model "f": layer "add" reads "ghost", which no layer of the model produces$/)
  const kt = (l: string) => ({ class_name: '__keras_tensor__', config: { keras_history: [l, 0, 0] } })
  t.match(message(() => convertConfig(functional([a, layer('Add', 'add', [{ args: [3, kt('ghost')] }])], ['a'], [['add', 0, 0]]), {}, 3)),
    /layer "add" reads "ghost"/, 'a constant operand is not what is missing')
  t.match(message(() => convertConfig(functional([a], ['a'], [['ghost', 0, 0]]), {}, 2)), /^model "f": output "ghost" is never computed$/)
  t.match(message(() => convertConfig(functional([a, layer('Dense', 'd', [[['a', 0, 0, {}]]], { units: 1 })], ['a'], [['d', 0, 0]]), {}, 2)),
    /^layer "d" \(Dense\): weight "kernel" is missing from the file \(its architecture and weights do not match\)$/)
  const inner = { class_name: 'Functional', name: 'inner', config: { name: 'inner', layers: [inputLayer('p', [null, 2]), inputLayer('q', [null, 2]), layer('Add', 's', [[['p', 0, 0, {}], ['q', 0, 0, {}]]])], input_layers: [['p', 0, 0], ['q', 0, 0]], output_layers: [['s', 0, 0]] }, inbound_nodes: [[['a', 0, 0, {}]]] }
  t.match(message(() => convertConfig(functional([a, inner], ['a'], [['inner', 1, 0]]), {}, 2)), /^model "inner" expects 2 inputs, got 1$/)
})

t.test('a shared layer runs once per call and counts its weights once', async (t) => {
  const config = functional([inputLayer('a', [null, 2]), layer('Dense', 'd', [[['a', 0, 0, {}]], [['d', 0, 0, {}]]], { units: 2 })], ['a'], [['d', 1, 0]])
  const { onnx, result } = convertConfig(config, { d: { kernel: { dims: [2, 2], data: [1, 0, 0, 1] }, bias: { dims: [2], data: [1, 1] } } }, 2)
  t.same([result.parameters, result.layerCounts], [6, { Dense: 2 }])
  t.same((await runModel(onnx, [{ shape: [1, 2], data: [1, 2] }]))[0]?.data, [3, 4], 'x + 1 + 1')
})

t.test('a channels-first tensor goes back to Keras\' layout once, however many layers read it', async (t) => {
  const config = functional([
    inputLayer('a', [null, 1, 2, 2]),
    layer('Conv2D', 'conv', [[['a', 0, 0, {}]]], { filters: 2, kernel_size: 1, use_bias: false }),
    layer('Flatten', 'f1', [[['conv', 0, 0, {}]]]),
    layer('Flatten', 'f2', [[['conv', 0, 0, {}]]])
  ], ['a'], [['f1', 0, 0], ['f2', 0, 0]])
  const { onnx, g } = convertConfig(config, { conv: { kernel: { dims: [1, 1, 2, 2], data: [0, 1, 1, 0] } } }, 2)
  t.equal(g.opCounts().Transpose, 2, 'one into channels-first for the Conv, one back for both Flattens')
  const outs = await runModel(onnx, [{ shape: [1, 1, 2, 2], data: [1, 2, 3, 4] }])
  t.same(outs.map((o) => o.data), [[2, 1, 4, 3], [2, 1, 4, 3]], 'channels swapped, in Keras order')
})

t.test('the small pure helpers', async (t) => {
  t.same([kerasMajor('2.13.1'), kerasMajor('3.15.1'), kerasMajor('tfjs-layers 4.22.0'), kerasMajor('unknown')], [2, 3, 2, 2])
  t.same([tuple(3, 2, 1), tuple([2, 3], 2, 1), tuple([2], 2, 1), tuple(['a', 1], 2, 1), tuple(undefined, 3, 7)], [[3, 3], [2, 3], [1, 1], [1, 1], [7, 7, 7]])
  t.same([num('1', 5), num(2, 5), bool('yes', false), bool(true, false), str(1, 'd'), str('s', 'd')], [5, 2, false, true, 'd', 's'])
  t.same([positiveAxis(-1, 4), positiveAxis(2, 4)], [3, 2])
  t.same([0, 1, 2, 3].map((a) => cfAxis(a, 4)), [0, 2, 3, 1], 'NHWC axis → NCHW axis')
  t.same([cfAxis(1, 2), cfAxis(1, 3), cfAxis(2, 3)], [1, 2, 1])
  t.same([samePads(5, 3, 1), samePads(4, 3, 2), samePads(5, 3, 2, 2), samePads(4, 1, 4)], [[1, 1], [0, 1], [2, 2], [0, 0]])
  t.same([windowOutput(null, 3, 1, 1, 'valid'), windowOutput(5, 3, 2, 1, 'same'), windowOutput(5, 3, 2, 1, 'causal'), windowOutput(5, 3, 1, 2, 'valid')], [null, 3, 3, 1])
  t.same(Array.from(permute(Float32Array.from([0, 1, 2, 3, 4, 5]), [2, 3], [1, 0])), [0, 3, 1, 4, 2, 5])
  t.same(Array.from(permute(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [2, 2, 2], [2, 0, 1])), [0, 2, 4, 6, 1, 3, 5, 7])
})

t.test('the file in pieces decodes as one ModelProto: the graph, its nodes and every initializer\'s values', async (t) => {
  t.same([...lengthDelimited(5, 3)], [0x2a, 3])
  t.same([...lengthDelimited(7, 300)], [0x3a, 0xac, 0x02], 'lengths over 127 take more varint bytes')
  const g = new OnnxGraph()
  const w = g.constant('w', [2, 100], Float32Array.from({ length: 200 }, (_, i) => i / 7))
  const shape = g.int64([1, 200])
  const out = g.node('Reshape', [g.node('Add', ['x', w]), shape])
  g.reserve('x')
  const parts = g.encodeParts({ name: 'g', inputs: [{ name: 'x', dims: [2, 100] }], outputs: [{ name: out, dims: [1, 200] }], docString: 'test', producerVersion: 'test' })
  t.ok(parts.length > 4, 'weights are separate pieces')
  const model = onnxProto.onnx.ModelProto.decode(Buffer.concat(parts))
  t.equal(model.producerName, 'shine-inference')
  t.same(model.graph?.node?.map((n) => n.opType), ['Add', 'Reshape'])
  const [floats, ints] = model.graph?.initializer ?? []
  const raw = floats?.rawData as Uint8Array
  t.same([...new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))], Array.from({ length: 200 }, (_, i) => Math.fround(i / 7)))
  t.same(ints?.int64Data?.map(Number), [1, 200])
  t.same(model.graph?.output?.map((o) => o.name), [out])
})
