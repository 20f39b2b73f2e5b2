/** A model the converter cannot turn into ONNX; the message names the layer or the file part. */
export class ConvertError extends Error {
  override name = 'ConvertError'
}
