import { create } from "@bufbuild/protobuf";
import { DataType, TensorSchema, type Tensor as TensorMessage } from "./gen/labelwise/v1/query_selection_pb.js";

/** A dense array ready for the wire: little-endian elements in C (row-major) order. */
export interface Tensor {
  readonly dtype: DataType.FLOAT32 | DataType.FLOAT64;
  readonly shape: readonly number[];
  /** The elements, little-endian whatever the host. */
  readonly raw: Uint8Array;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A tensor of data laid out row-major with the given shape, for example
 * `tensor(probs, [n, c])`. Float32Array travels as float32, Float64Array as float64.
 * On little-endian hosts the bytes are a view of data (no copy): do not change data
 * before the call returns.
 */
export function tensor(data: Float32Array | Float64Array, shape: readonly number[]): Tensor {
  const elements = shape.reduce((product, size) => {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`tensor shape [${shape}] must hold non-negative integers`);
    }
    return product * size;
  }, 1);
  if (elements !== data.length) {
    throw new RangeError(`tensor shape [${shape}] holds ${elements} elements; got ${data.length}`);
  }
  const dtype = data instanceof Float32Array ? DataType.FLOAT32 : DataType.FLOAT64;
  let raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!hostIsLittleEndian) {
    raw = new Uint8Array(data.byteLength);
    const view = new DataView(raw.buffer);
    data.forEach((value, i) =>
      dtype === DataType.FLOAT32 ? view.setFloat32(4 * i, value, true) : view.setFloat64(8 * i, value, true),
    );
  }
  return { dtype, shape: [...shape], raw };
}

export function toMessage(t: Tensor): TensorMessage {
  return create(TensorSchema, { dtype: t.dtype, shape: t.shape.map(BigInt), rawData: t.raw });
}

/** Rows [start, end) along axis 0 or 1 (the committee tensors' pool axis). */
export function slice(t: Tensor, axis: 0 | 1, start: number, end: number): Tensor {
  const itemBytes = t.dtype === DataType.FLOAT64 ? 8 : 4;
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, itemBytes);
  const shape = [...t.shape];
  shape[axis] = end - start;
  if (axis === 0) {
    return { dtype: t.dtype, shape, raw: t.raw.subarray(start * inner, end * inner) };
  }
  const outer = t.shape[0];
  const stride = t.shape[1] * inner;
  const raw = new Uint8Array(outer * (end - start) * inner);
  for (let o = 0; o < outer; o++) {
    raw.set(t.raw.subarray(o * stride + start * inner, o * stride + end * inner), o * (end - start) * inner);
  }
  return { dtype: t.dtype, shape, raw };
}
