// parseModelConfig on hand-written Keras 2 and Keras 3 architecture JSON: the one shape the walker
// sees, and a refusal naming what is wrong for everything else.
import t from 'tap'
import { parseModelConfig, type KerasGraph } from '../../src/convert/keras-model.js'

const refusal = (config: unknown, kerasMajor = 3): string => {
  try {
    parseModelConfig(config, kerasMajor)
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('the config was parsed')
}

const input = (name: string, shape: unknown[] = [null, 2]) => ({ class_name: 'InputLayer', name, config: { name, batch_input_shape: shape }, inbound_nodes: [] })
const functional = (layers: unknown[], extra: Record<string, unknown> = {}) =>
  ({ class_name: 'Functional', config: { name: 'f', layers, input_layers: [['a', 0, 0]], output_layers: [['d', 0, 0]], ...extra } })
const dense = (inbound: unknown) => ({ class_name: 'Dense', name: 'd', config: { name: 'd', units: 1 }, inbound_nodes: inbound })

t.test('what is not a Sequential or Functional model is refused by what it is', async (t) => {
  t.match(refusal(null), /the model architecture is not a Keras model config \(no class_name\)/)
  t.match(refusal([]), /no class_name/)
  t.match(refusal({ config: {} }), /no class_name/)
  t.match(refusal({ class_name: 'MyResNet', config: {} }), /the file holds a MyResNet, not a Sequential or Functional model: subclassed models carry Python code/)
  t.match(refusal({ class_name: 'Functional' }), /model "Functional" has no config/)
  t.match(refusal({ class_name: 'Model', config: { layers: 'x' } }), /model "model" has no layers list/)
  t.match(refusal(functional([1])), /model "f": a layer entry is not an object/)
  t.match(refusal(functional([{ class_name: 'Dense', config: {} }])), /a layer of class Dense has no name/)
  t.match(refusal(functional([{ class_name: 'Dense', name: '' }])), /a layer of class Dense has no name/)
  t.match(refusal(functional([{ class_name: 'Dense' }])), /a layer of class Dense has no name/)
  t.match(refusal(functional([{ name: 'x' }])), /a layer has no class_name/)
})

t.test('inbound nodes in a format this server does not read are refused', async (t) => {
  t.match(refusal(functional([input('a'), dense([['a', 0, 0]])])), /layer "d": an inbound node is not in a Keras format this server reads/)
  t.match(refusal(functional([input('a'), dense([[[0, 0, 0]]])])), /layer "d": an inbound node is not/)
  t.match(refusal(functional([input('a'), dense(['a'])])), /layer "d": an inbound node is not/)
  t.match(refusal(functional([input('a'), dense([[['a', 0, 0, { y: 2, training: false }]]])]), 2),
    /layer "d" is called with extra arguments \(y, training\), which Keras writes for TensorFlow operator layers/)
})

t.test('Keras 2 calls: mask/training kwargs are fine, node and index default to 0', async (t) => {
  const g = parseModelConfig(functional([input('a'), dense([[['a', 0, 0, { training: false, mask: null }]], [['a']]])]), 2)
  t.same(g.layers[1]?.calls, [[{ layer: 'a', node: 0, index: 0 }], [{ layer: 'a', node: 0, index: 0 }]])
  t.same(g.inputs, [{ layer: 'a', node: 0, index: 0 }])
  t.same(g.layers[0]?.calls, [], 'an InputLayer has no calls')
})

t.test('Keras 3 calls: tensors anywhere in args, numbers as constants, other values ignored', async (t) => {
  const kt = (layer: string, node = 0, index = 0) => ({ class_name: '__keras_tensor__', config: { shape: [null, 2], keras_history: [layer, node, index] } })
  const add = {
    class_name: 'Add',
    name: 'd',
    config: { name: 'd' },
    inbound_nodes: [{ args: [[kt('a'), { nested: kt('b', 1, 2) }], 3, 'str', null, { class_name: '__keras_tensor__', config: 'odd' }], kwargs: { ignored: kt('c') } }]
  }
  const g = parseModelConfig(functional([input('a'), input('b'), add], { input_layers: ['a', 0, 0], output_layers: [['d']] }), 3)
  t.same(g.layers[2]?.calls, [[{ layer: 'a', node: 0, index: 0 }, { layer: 'b', node: 1, index: 2 }, 3]])
  t.same(g.inputs, [{ layer: 'a', node: 0, index: 0 }], 'one [name, node, index] as well as a list of them')
  t.same(g.outputs, [{ layer: 'd', node: 0, index: 0 }])
  t.same([g.name, g.ownNode], ['f', true])
})

t.test('input_layers/output_layers that are missing or malformed are refused', async (t) => {
  t.match(refusal(functional([input('a')], { input_layers: [] })), /model "f" has no inputs/)
  t.match(refusal(functional([input('a')], { output_layers: undefined })), /model "f" has no outputs/)
  t.match(refusal(functional([input('a')], { output_layers: [[1, 0, 0]] })), /model "f": outputs are not in a Keras format this server reads/)
})

t.test('Sequential: a list config, build_input_shape, a leading InputLayer', async (t) => {
  const list = parseModelConfig({ class_name: 'Sequential', config: [{ class_name: 'Dense', config: { name: 'd', batch_input_shape: [null, 3] } }] }, 2)
  t.same(list.layers.map((l) => [l.className, l.name, l.calls]), [['InputLayer', 'sequential_input', []], ['Dense', 'd', [[{ layer: 'sequential_input', node: 0, index: 0 }]]]])
  t.same(list.layers[0]?.config, { batch_shape: [null, 3] })
  t.same([list.ownNode, list.inputs[0]?.layer, list.outputs[0]?.layer], [false, 'sequential_input', 'd'])

  const built = parseModelConfig({ class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', name: 'd' }], build_input_shape: ['None', 4] } }, 3)
  t.same(built.layers[0]?.config, { batch_shape: [null, 4] }, 'build_input_shape, non-numbers as unknown')

  const withInput = parseModelConfig({
    class_name: 'Sequential',
    config: { name: 's', layers: [{ class_name: 'InputLayer', config: { name: 'x', batch_shape: [null, 2] } }, { class_name: 'InputLayer', config: { name: 'x2' } }, { class_name: 'Dense', config: { name: 'd' } }] }
  }, 3)
  t.same(withInput.layers.map((l) => l.name), ['x', 'd'], 'a later InputLayer is skipped')
  t.same([withInput.ownNode, withInput.layers[1]?.calls], [true, [[{ layer: 'x', node: 0, index: 0 }]]])
})

t.test('Sequential models that cannot be read are refused', async (t) => {
  t.match(refusal({ class_name: 'Sequential' }), /Sequential model "sequential" has no layers/)
  t.match(refusal({ class_name: 'Sequential', config: { name: 's', layers: [] } }), /Sequential model "s" has no layers/)
  t.match(refusal({ class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd' } }] } }), /Sequential model "s" does not record its input shape/)
  t.match(refusal({ class_name: 'Sequential', config: { name: 's', layers: [input('a'), 7] } }), /model "s": a layer entry is not an object/)
})

t.test('a config declaring more than 20000 layers is refused before walking it', async (t) => {
  const layers = [input('a'), ...Array.from({ length: 20000 }, (_, i) => ({ class_name: 'Dropout', config: { name: `d${i}` } }))]
  t.match(refusal({ class_name: 'Sequential', config: { name: 's', layers } }), /the model declares more than 20000 layers/)
  t.equal(parseModelConfig({ class_name: 'Sequential', config: { name: 's', layers: layers.slice(0, 20000) } }, 3).layers.length, 20000, '20000 is fine')
})

/** An outer Functional calling nested model `inner` (of `innerClass`) on input a, output from `out`. */
function nestedModel (innerClass: 'Functional' | 'Sequential', inbound: unknown, output: unknown[], withInput = true): Record<string, unknown> {
  const innerConfig = innerClass === 'Sequential'
    ? { name: 'inner', layers: withInput ? [input('i'), { class_name: 'Dense', config: { name: 'id' } }] : [{ class_name: 'Dense', config: { name: 'id', batch_input_shape: [null, 2] } }] }
    : { name: 'inner', layers: [input('i'), { class_name: 'Dense', name: 'id', config: { name: 'id' }, inbound_nodes: [[['i', 0, 0, {}]]] }], input_layers: [['i', 0, 0]], output_layers: [['id', 0, 0]] }
  return {
    class_name: 'Functional',
    config: {
      name: 'outer',
      layers: [input('a'), { class_name: innerClass, name: 'inner', config: innerConfig, inbound_nodes: inbound }, { class_name: 'Dense', name: 'd', config: { name: 'd' }, inbound_nodes: [[['inner', 1, 0, {}]]] }],
      input_layers: [['a', 0, 0]],
      output_layers: [output]
    }
  }
}
const callsOf = (g: KerasGraph, name: string) => g.layers.find((l) => l.name === name)?.calls

t.test('nested models: tf.keras 2 counts their construction node everywhere', async (t) => {
  const g = parseModelConfig(nestedModel('Functional', [[['a', 0, 0, {}]]], ['inner', 1, 0]), 2)
  t.same(callsOf(g, 'd'), [[{ layer: 'inner', node: 0, index: 0 }]], 'a call of the nested model is renumbered from 0')
  t.same(g.outputs, [{ layer: 'inner', node: 0, index: 0 }])
  t.equal(g.layers[1]?.inner?.name, 'inner')
  const noInput = parseModelConfig(nestedModel('Sequential', [[['a', 0, 0, {}]]], ['inner', 1, 0], false), 2)
  t.same(callsOf(noInput, 'd'), [[{ layer: 'inner', node: 1, index: 0 }]], 'a Sequential without InputLayer has no construction node')
  const atZero = parseModelConfig(nestedModel('Functional', [[['a', 0, 0, {}]]], ['inner', 0, 0]), 2)
  t.same(atZero.outputs, [{ layer: 'inner', node: 0, index: 0 }], 'node 0 stays 0')
})

t.test('nested models: Keras 3 shifts only input/output ends, and only for Functional', async (t) => {
  const kt = (layer: string, node: number) => ({ class_name: '__keras_tensor__', config: { keras_history: [layer, node, 0] } })
  const functionalInner = parseModelConfig(nestedModel('Functional', [{ args: [kt('a', 0)], kwargs: {} }], ['inner', 1, 0]), 3)
  t.same(callsOf(functionalInner, 'd'), [[{ layer: 'inner', node: 1, index: 0 }]], 'calls keep their numbers')
  t.same(functionalInner.outputs, [{ layer: 'inner', node: 0, index: 0 }], 'outputs count the construction node')
  const sequentialInner = parseModelConfig(nestedModel('Sequential', [{ args: [kt('a', 0)], kwargs: {} }], ['inner', 1, 0]), 3)
  t.same(sequentialInner.outputs, [{ layer: 'inner', node: 1, index: 0 }], 'a nested Sequential is not shifted')
})
