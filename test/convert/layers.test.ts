// Layer functions one at a time: a tiny Keras config per case, converted in memory and run in
// ONNX Runtime against values worked out by hand; refusals name the layer and the reason.
import t from 'tap'
import { convertConfig, range, round, runLayers, runModel, sequential, type LayerSpec, type Weights } from '../helpers/keras-graph.js'

const X4 = { shape: [1, 4], data: [-2, -0.5, 0.5, 3] }

/** The ConvertError message converting `layers` on an input of `shape` (no batch) gives. */
function refusal (shape: Array<number | null>, layers: LayerSpec[], weights: Weights = {}): string {
  try {
    convertConfig(sequential(shape, layers), weights)
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('the model was converted')
}

t.test('ReLU: max_value, negative_slope and threshold as Keras defines them', async (t) => {
  t.same(round((await runLayers(X4, [{ class_name: 'ReLU', config: { max_value: 1 } }])).data), [0, 0, 0.5, 1])
  t.same(round((await runLayers(X4, [{ class_name: 'ReLU', config: { threshold: 1 } }])).data), [0, 0, 0, 3])
  t.same(round((await runLayers(X4, [{ class_name: 'ReLU', config: { negative_slope: 0.1, threshold: 0.5, max_value: 2 } }])).data), [-0.25, -0.1, 0.5, 2])
})

t.test('LeakyReLU reads Keras 3 negative_slope, Keras 2 alpha, else 0.3', async (t) => {
  t.same(round((await runLayers(X4, [{ class_name: 'LeakyReLU', config: { negative_slope: 0.1 } }])).data), [-0.2, -0.05, 0.5, 3])
  t.same(round((await runLayers(X4, [{ class_name: 'LeakyReLU', config: { alpha: 0.5 } }])).data), [-1, -0.25, 0.5, 3])
  t.same(round((await runLayers(X4, [{ class_name: 'LeakyReLU' }])).data), [-0.6, -0.15, 0.5, 3])
})

t.test('activations: the function form, none at all, and hard_sigmoid per Keras version', async (t) => {
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: { module: 'keras.activations', class_name: 'function', config: 'relu' } } }])).data), [0, 0, 0.5, 3])
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: null } }])).data), X4.data, 'null is linear')
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: 'hard_sigmoid' } }], {}, 2)).data), [0.1, 0.4, 0.6, 1], 'Keras 2: clip(0.2x + 0.5)')
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: 'hard_sigmoid' } }], {}, 3)).data), round([1 / 6, 2.5 / 6, 3.5 / 6, 1]), 'Keras 3: relu6(x + 3) / 6')
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: 'hard_swish' } }])).data), round([-2 / 6, -0.5 * 2.5 / 6, 0.5 * 3.5 / 6, 3]))
  t.same(round((await runLayers(X4, [{ class_name: 'Activation', config: { activation: 'hard_silu' } }])).data), round([-2 / 6, -0.5 * 2.5 / 6, 0.5 * 3.5 / 6, 3]))
})

t.test('activations that cannot be converted say why', async (t) => {
  t.match(refusal([4], [{ class_name: 'Activation', config: { activation: 'foo' } }]), /^layer "l0" \(Activation\): activation "foo" is not a Keras built-in this server supports \(linear, relu, /)
  t.match(refusal([4], [{ class_name: 'Activation', config: { activation: { class_name: 'Custom', config: { x: 1 } } } }]), /activation \{"class_name":"Custom","config":\{"x":1\}\} is not a Keras built-in/)
  t.match(refusal([3], [{ class_name: 'Activation', config: { activation: 'glu' } }]), /glu needs an even, known size on the last axis/)
  t.match(refusal([null], [{ class_name: 'Activation', config: { activation: 'sparsemax' } }]), /sparsemax needs a known size on the last axis/)
  t.match(refusal([null], [{ class_name: 'PReLU' }]), /layer "l0" \(PReLU\): PReLU needs a fully known input shape/)
})

// A 1×1 identity convolution: its output is channels-first in ONNX, so what follows sees cf: true.
const IDENTITY_CONV: LayerSpec = { class_name: 'Conv2D', name: 'conv', config: { filters: 2, kernel_size: 1, use_bias: false } }
const IDENTITY_KERNEL: Weights = { conv: { kernel: { dims: [1, 1, 2, 2], data: [1, 0, 0, 1] } } }
const PIXELS = { shape: [1, 1, 2, 2], data: [1, 2, 3, 4] }
const SOFTMAX_PAIRS = round([1 / (1 + Math.E), Math.E / (1 + Math.E), 1 / (1 + Math.E), Math.E / (1 + Math.E)])

t.test('softmax runs over the channels of a channels-first tensor', async (t) => {
  const layer = await runLayers(PIXELS, [IDENTITY_CONV, { class_name: 'Softmax' }], IDENTITY_KERNEL)
  t.same(round(layer.data), SOFTMAX_PAIRS, 'Softmax layer')
  t.same(layer.dims, [1, 1, 2, 2], 'back in Keras layout')
  const activation = await runLayers(PIXELS, [{ ...IDENTITY_CONV, config: { ...IDENTITY_CONV.config, activation: 'softmax' } }], IDENTITY_KERNEL)
  t.same(round(activation.data), SOFTMAX_PAIRS, 'activation="softmax"')
})

t.test('Softmax over one listed axis; several axes are refused', async (t) => {
  const y = await runLayers({ shape: [1, 2, 2], data: [1, 2, 3, 4] }, [{ class_name: 'Softmax', config: { axis: [1] } }])
  const lo = 1 / (1 + Math.exp(2))
  t.same(round(y.data), round([lo, lo, 1 - lo, 1 - lo]))
  t.match(refusal([2, 2], [{ class_name: 'Softmax', config: { axis: [1, 2] } }]), /Softmax over several axes is not supported/)
})

t.test('convolutions refuse inputs and settings they cannot express', async (t) => {
  const conv = (config: Record<string, unknown>): LayerSpec => ({ class_name: 'Conv2D', config: { filters: 1, kernel_size: 1, ...config } })
  t.match(refusal([2, 2], [conv({})]), /layer "l0" \(Conv2D\): expects a rank-4 input, got \[, 2, 2\]/)
  t.match(refusal([2, 2, null], [conv({})]), /needs a known number of input channels/)
  t.match(refusal([2, 2, 1], [conv({ padding: 'causal' })], { l0: { kernel: { dims: [1, 1, 1, 1], data: [1] } } }), /causal padding is for 1-D convolutions/)
  t.match(refusal([2, 2, 1], [conv({ padding: 'full' })], { l0: { kernel: { dims: [1, 1, 1, 1], data: [1] } } }), /padding "full" is not supported \(valid, same, causal\)/)
  t.match(refusal([2, 2, 2], [conv({ filters: 0 })]), /filters 0 and groups 1 do not fit 2 input channels/)
  t.match(refusal([2, 2, 2], [conv({ groups: 3 })]), /filters 1 and groups 3 do not fit 2 input channels/)
  t.match(refusal([null, 2, 1], [{ class_name: 'Conv2DTranspose', config: { filters: 1, kernel_size: 1 } }]), /Conv2DTranspose\): needs known spatial input sizes/)
  t.match(refusal([1, 2, 1], [{ class_name: 'Conv2DTranspose', config: { filters: 1, kernel_size: 1, strides: [1, 2], output_padding: [0, 2] } }], { l0: { kernel: { dims: [1, 1, 1, 1], data: [1] } } }),
    /this padding\/output_padding combination has no ONNX equivalent/)
})

t.test('same padding on an image of unknown size pads as TensorFlow does (SAME_UPPER)', async (t) => {
  const weights = { l0: { kernel: { dims: [3, 3, 1, 1], data: Array<number>(9).fill(1) } } }
  const { onnx, result } = convertConfig(sequential([null, null, 1], [{ class_name: 'Conv2D', config: { filters: 1, kernel_size: 3, padding: 'same', use_bias: false } }]), weights)
  t.same(result.outputs[0]?.dims, ['N', 'l0_d1', 'l0_d2', 1], 'spatial sizes stay unknown')
  const [y] = await runModel(onnx, [{ shape: [1, 3, 3, 1], data: Array<number>(9).fill(1) }])
  t.same(y?.data, [4, 6, 4, 6, 9, 6, 4, 6, 4], 'a 3×3 box sum with zero padding')
})

t.test('Conv2DTranspose with output_padding places each input at stride steps', async (t) => {
  const y = await runLayers({ shape: [1, 1, 2, 1], data: [1, 2] },
    [{ class_name: 'Conv2DTranspose', config: { filters: 1, kernel_size: 1, strides: [1, 2], output_padding: [0, 1], use_bias: false } }],
    { l0: { kernel: { dims: [1, 1, 1, 1], data: [1] } } })
  t.same(y.dims, [1, 1, 4, 1])
  t.same(y.data, [1, 0, 2, 0])
})

t.test('Dense: refusals, and weights read in .keras variable order', async (t) => {
  t.match(refusal([2], [{ class_name: 'Dense', config: {} }]), /layer "l0" \(Dense\): needs a known input size and units \(got input \[, 2\], units 0\)/)
  t.match(refusal([null], [{ class_name: 'Dense', config: { units: 1 } }]), /needs a known input size/)
  const config = sequential([2], [{ class_name: 'Dense', config: { units: 1, use_bias: false } }])
  const { onnx } = convertConfig(config, { l0: { any_name: { dims: [2, 1], data: [3, 4] } } }, 3, true)
  t.same((await runModel(onnx, [{ shape: [1, 2], data: [1, 2] }]))[0]?.data, [11])
  t.match((() => { try { convertConfig(sequential([2], [{ class_name: 'Dense', config: { units: 1 } }]), { l0: { k: { dims: [2, 1], data: [3, 4] } } }, 3, true) } catch (e) { return (e as Error).message } return '' })(),
    /layer "l0" \(Dense\): weight "bias" is missing from the file/, 'use_bias: the second variable is the bias')
})

/** A Keras 2 Functional config: InputLayers a, b… of the given shapes, then one layer on all of them. */
function merged (className: string, shapes: Array<Array<number | null>>, config: Record<string, unknown> = {}): Record<string, unknown> {
  const names = shapes.map((_, i) => String.fromCharCode(97 + i))
  return {
    class_name: 'Functional',
    config: {
      name: 'merge',
      layers: [
        ...shapes.map((s, i) => ({ class_name: 'InputLayer', name: names[i], config: { batch_input_shape: [null, ...s] }, inbound_nodes: [] })),
        { class_name: className, name: 'm', config: { ...config }, inbound_nodes: [names.map((n) => [n, 0, 0, {}])] }
      ],
      input_layers: names.map((n) => [n, 0, 0]),
      output_layers: [['m', 0, 0]]
    }
  }
}

t.test('merge layers: broadcasting, unknown sizes, CustomScaleLayer, refusals', async (t) => {
  const add = convertConfig(merged('Add', [[1], [3]]), {}, 2)
  t.same(add.result.outputs[0]?.dims, ['N', 3], 'a size-1 axis broadcasts')
  t.same((await runModel(add.onnx, [{ shape: [1, 1], data: [10] }, { shape: [1, 3], data: [1, 2, 3] }]))[0]?.data, [11, 12, 13])
  t.same(convertConfig(merged('Multiply', [[1], [1]]), {}, 2).result.outputs[0]?.dims, ['N', 1], 'two size-1 axes stay 1')
  const cat = convertConfig(merged('Concatenate', [[null], [2]]), {}, 2)
  t.same(cat.result.outputs[0]?.dims, ['N', 'm_d1'], 'an unknown size makes the sum unknown')
  t.same((await runModel(cat.onnx, [{ shape: [1, 1], data: [7] }, { shape: [1, 2], data: [8, 9] }]))[0]?.data, [7, 8, 9])
  const scaled = convertConfig(merged('CustomScaleLayer', [[2], [2]], { scale: 0.5 }), {}, 2)
  t.same((await runModel(scaled.onnx, [{ shape: [1, 2], data: [1, 2] }, { shape: [1, 2], data: [4, 6] }]))[0]?.data, [3, 5], 'x₀ + 0.5·x₁')
  t.throws(() => convertConfig(merged('Add', [[2], [2, 1]]), {}, 2), { message: /layer "m" \(Add\): inputs of different ranks \(\[, 2\] and \[, 2, 1\]\)/ })
  t.throws(() => convertConfig(merged('Add', [[2]]), {}, 2), { message: /layer "m" \(Add\): needs at least two inputs, got 1/ })
})

t.test('BatchNormalization without scale and center; refusals', async (t) => {
  const y = await runLayers({ shape: [1, 2], data: [1, 3] }, [{ class_name: 'BatchNormalization', config: { scale: false, center: false, epsilon: 0 } }],
    { l0: { moving_mean: { dims: [2], data: [1, 1] }, moving_variance: { dims: [2], data: [4, 4] } } })
  t.same(round(y.data), [0, 1], '(x − 1) / 2')
  t.match(refusal([2, 2], [{ class_name: 'BatchNormalization', config: { axis: [1, 2] } }]), /normalising over axes \[1, 2\] is not supported \(one axis\)/)
  t.match(refusal([null], [{ class_name: 'BatchNormalization' }]), /BatchNormalization\): needs a known size on axis 1/)
})

t.test('LayerNormalization over two trailing axes without scale or center; refusals', async (t) => {
  const y = await runLayers({ shape: [1, 2, 2], data: [1, 2, 3, 4] }, [{ class_name: 'LayerNormalization', config: { axis: [-1, 1], scale: false, center: false, epsilon: 0 } }])
  const s = Math.sqrt(1.25)
  t.same(round(y.data), round([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]))
  t.match(refusal([2], [{ class_name: 'LayerNormalization', config: { rms_scaling: true } }]), /rms_scaling is not supported/)
  t.match(refusal([2, 2], [{ class_name: 'LayerNormalization', config: { axis: [1] } }]), /normalising over axes \[1\] is not supported \(the trailing axes only\)/)
  t.match(refusal([2], [{ class_name: 'LayerNormalization', config: {} }], { l0: { gamma: { dims: [3], data: [1, 1, 1] }, beta: { dims: [2], data: [0, 0] } } }),
    /weight "gamma" has shape \[3\] but the layer needs 2 values/)
})

t.test('Normalization: statistics from the config or the weights, inverted or not', async (t) => {
  const norm = async (config: Record<string, unknown>, data: number[], weights: Weights = {}) =>
    round((await runLayers({ shape: [1, 2], data }, [{ class_name: 'Normalization', config }], weights)).data)
  t.same(await norm({ mean: 1, variance: [[4]] }, [3, 5]), [1, 2], 'one mean and one variance for every channel')
  t.same(await norm({ mean: [1, 2], variance: [4, 1] }, [3, 4]), [1, 2], 'per-channel statistics in the config')
  t.same(await norm({ mean: 1, variance: 4, invert: true }, [3, 5]), [7, 11], 'invert: x·σ + μ')
  t.same(await norm({}, [3, 5], { l0: { mean: { dims: [2], data: [1, 3] }, variance: { dims: [2], data: [4, 1] } } }), [1, 2], 'per-channel weights')
  t.match(refusal([2], [{ class_name: 'Normalization', config: { mean: [1, 2, 3], variance: 1 } }]), /Normalization\): mean has 3 values for 2 channels/)
})

t.test('Rescaling: per-channel scale, scalar offset, and the identity', async (t) => {
  const rescale = async (config: Record<string, unknown>) => round((await runLayers({ shape: [1, 2], data: [1, 1] }, [{ class_name: 'Rescaling', config }])).data)
  t.same(await rescale({ scale: [2, 3], offset: 1 }), [3, 4])
  t.same(await rescale({ scale: 1, offset: [0.5, -1] }), [1.5, 0])
  t.same(await rescale({ offset: 0.5 }), [1.5, 1.5])
  t.same(await rescale({ scale: 1, offset: 0 }), [1, 1])
})

t.test('pooling: channels_first, explicit strides, global keepdims, refusals', async (t) => {
  const cfMax = await runLayers({ shape: [1, 1, 2, 2], data: [1, 2, 3, 4] }, [{ class_name: 'MaxPooling2D', config: { data_format: 'channels_first' } }])
  t.same([cfMax.dims, cfMax.data], [[1, 1, 1, 1], [4]])
  const avg = await runLayers({ shape: [1, 3, 1], data: [1, 2, 3] }, [{ class_name: 'AveragePooling1D', config: { pool_size: 2, strides: 1 } }])
  t.same([avg.dims, avg.data], [[1, 2, 1], [1.5, 2.5]])
  const cfGap = await runLayers({ shape: [1, 2, 1, 2], data: [1, 2, 3, 4] }, [{ class_name: 'GlobalAveragePooling2D', config: { data_format: 'channels_first', keepdims: true } }])
  t.same([cfGap.dims, cfGap.data], [[1, 2, 1, 1], [1.5, 3.5]])
  const gmp = await runLayers({ shape: [1, 2, 2], data: [1, 5, 3, 2] }, [{ class_name: 'GlobalMaxPooling1D', config: { keepdims: true } }])
  t.same([gmp.dims, gmp.data], [[1, 1, 2], [3, 5]])
  t.match(refusal([2, 2], [{ class_name: 'MaxPooling2D' }]), /MaxPooling2D\): expects a rank-4 input, got \[, 2, 2\]/)
  t.match(refusal([2, 2], [{ class_name: 'GlobalAveragePooling2D' }]), /GlobalAveragePooling2D\): expects a rank-4 input/)
})

t.test('Flatten, Reshape and Permute, with unknown sizes; refusals', async (t) => {
  const flat = convertConfig(sequential([null, 2], [{ class_name: 'Flatten' }]))
  t.same(flat.result.outputs[0]?.dims, ['N', 'l0_d1'])
  t.same((await runModel(flat.onnx, [{ shape: [1, 3, 2], data: range(6) }]))[0]?.data, range(6))
  const unknown = convertConfig(sequential([null], [{ class_name: 'Reshape', config: { target_shape: [-1, 1] } }]))
  t.same(unknown.result.outputs[0]?.dims, ['N', 'l0_d1', 1])
  const re = await runLayers({ shape: [1, 4], data: range(4) }, [{ class_name: 'Reshape', config: { target_shape: [2, -1] } }])
  t.same([re.dims, re.data], [[1, 2, 2], range(4)])
  const perm = await runLayers({ shape: [1, 2, 3], data: range(6) }, [{ class_name: 'Permute', config: { dims: [2, 1] } }])
  t.same([perm.dims, perm.data], [[1, 3, 2], [0, 3, 1, 4, 2, 5]])
  t.match(refusal([4], [{ class_name: 'Reshape', config: {} }]), /Reshape\): has no target_shape/)
  t.match(refusal([4], [{ class_name: 'Permute', config: {} }]), /Permute\): has no dims/)
})

t.test('ZeroPadding and Cropping in all of Keras\' argument forms', async (t) => {
  const px = { shape: [1, 1, 1, 1], data: [5] }
  t.same((await runLayers(px, [{ class_name: 'ZeroPadding2D', config: {} }])).data, [0, 0, 0, 0, 5, 0, 0, 0, 0], 'default 1')
  const p2 = await runLayers(px, [{ class_name: 'ZeroPadding2D', config: { padding: [[1, 0], [0, 1]] } }])
  t.same([p2.dims, p2.data], [[1, 2, 2, 1], [0, 0, 5, 0]], 'per-axis (before, after)')
  const p2sym = await runLayers(px, [{ class_name: 'ZeroPadding2D', config: { padding: [1, 0] } }])
  t.same([p2sym.dims, p2sym.data], [[1, 3, 1, 1], [0, 5, 0]], 'one symmetric amount per axis')
  const cf = await runLayers(px, [{ class_name: 'ZeroPadding2D', config: { padding: 1, data_format: 'channels_first' } }])
  t.same([cf.dims, cf.data], [[1, 1, 3, 3], [0, 0, 0, 0, 5, 0, 0, 0, 0]], 'channels_first pads the last two axes')
  t.same((await runLayers({ shape: [1, 3, 1, 1], data: [1, 2, 3] }, [{ class_name: 'Cropping2D', config: { cropping: [[1, 0], [0, 0]] } }])).data, [2, 3], 'an end of 0 keeps the end')
  const crop = await runLayers({ shape: [1, 1, 3, 3], data: range(9) }, [{ class_name: 'Cropping2D', config: { cropping: [[0, 1], [1, 1]], data_format: 'channels_first' } }])
  t.same([crop.dims, crop.data], [[1, 1, 2, 1], [1, 4]])
  t.match(refusal([2], [{ class_name: 'ZeroPadding2D' }]), /ZeroPadding2D\): expects a rank-4 input, got \[, 2\]/)
})

t.test('UpSampling2D: bilinear with half-pixel centres; other interpolations refused', async (t) => {
  const { onnx, result } = convertConfig(sequential([null, null, 1], [{ class_name: 'UpSampling2D', config: { size: [2, 2], interpolation: 'bilinear' } }]))
  t.same(result.outputs[0]?.dims, ['N', 'l0_d1', 'l0_d2', 1])
  const [y] = await runModel(onnx, [{ shape: [1, 1, 2, 1], data: [1, 3] }])
  t.same([y?.dims, y?.data], [[1, 2, 4, 1], [1, 1.5, 2.5, 3, 1, 1.5, 2.5, 3]])
  t.match(refusal([2, 2, 1], [{ class_name: 'UpSampling2D', config: { interpolation: 'bicubic' } }]), /UpSampling2D\): interpolation "bicubic" is not supported \(nearest, bilinear\)/)
})
