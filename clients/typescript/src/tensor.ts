import { create } from "@bufbuild/protobuf";
import { DataType, TensorSchema, type Tensor as TensorMessage } from "./gen/labelwise/v1/query_selection_pb.js";

/** The element types a Tensor takes: floats for pool outputs, integers for costs and labels. */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array;

/** A dense array ready for the wire: little-endian elements in C (row-major) order. */
export interface Tensor {
  readonly dtype: DataType.FLOAT32 | DataType.FLOAT64 | DataType.INT32 | DataType.INT64;
  readonly shape: readonly number[];
  /** The elements, little-endian whatever the host. */
  readonly raw: Uint8Array;
}

/** A float64 tensor the server sent back, with its elements decoded. */
export interface Float64Tensor extends Tensor {
  readonly dtype: DataType.FLOAT64;
  readonly data: Float64Array;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function dtypeOf(data: TensorData): Tensor["dtype"] {
  if (data instanceof Float32Array) return DataType.FLOAT32;
  if (data instanceof Float64Array) return DataType.FLOAT64;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof BigInt64Array) return DataType.INT64;
  throw new TypeError("tensor data must be a Float32Array, Float64Array, Int32Array or BigInt64Array");
}

function itemBytes(dtype: Tensor["dtype"]): number {
  return dtype === DataType.FLOAT64 || dtype === DataType.INT64 ? 8 : 4;
}

/**
 * A tensor of data laid out row-major with the given shape, for example
 * `tensor(probs, [n, c])`. Float32Array travels as float32, Float64Array as float64,
 * Int32Array as int32 and BigInt64Array as int64 (class labels for checkStopping, costs).
 * On little-endian hosts the bytes are a view of data (no copy): do not change data
 * before the call returns.
 */
export function tensor(data: TensorData, shape: readonly number[]): Tensor {
  const elements = shape.reduce((product, size) => {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`tensor shape [${shape}] must hold non-negative integers`);
    }
    return product * size;
  }, 1);
  if (elements !== data.length) {
    throw new RangeError(`tensor shape [${shape}] holds ${elements} elements; got ${data.length}`);
  }
  const dtype = dtypeOf(data);
  let raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!hostIsLittleEndian) {
    raw = new Uint8Array(data.byteLength);
    const view = new DataView(raw.buffer);
    const size = itemBytes(dtype);
    for (let i = 0; i < data.length; i++) {
      if (data instanceof BigInt64Array) view.setBigInt64(size * i, data[i], true);
      else if (data instanceof Int32Array) view.setInt32(size * i, data[i], true);
      else if (data instanceof Float32Array) view.setFloat32(size * i, data[i], true);
      else view.setFloat64(size * i, data[i], true);
    }
  }
  return { dtype, shape: [...shape], raw };
}

export function toMessage(t: Tensor): TensorMessage {
  return create(TensorSchema, { dtype: t.dtype, shape: t.shape.map(BigInt), rawData: t.raw });
}

/** A float64 tensor of the response (for example adversarial_points), decoded; field names it in errors. */
export function fromFloat64Message(t: TensorMessage, field: string): Float64Tensor {
  if (t.dtype !== DataType.FLOAT64) {
    throw new RangeError(`${field} must be float64; the server sent dtype ${DataType[t.dtype] ?? t.dtype}`);
  }
  const shape = t.shape.map(Number);
  const elements = shape.reduce((a, b) => a * b, 1);
  if (t.rawData.byteLength !== 8 * elements) {
    throw new RangeError(`${field} must be ${8 * elements} bytes for float64[${shape}]; got ${t.rawData.byteLength}`);
  }
  const data = new Float64Array(elements); // a copy: the received bytes need not be 8-byte aligned
  const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  for (let i = 0; i < elements; i++) data[i] = view.getFloat64(8 * i, true);
  return { ...tensor(data, shape), dtype: DataType.FLOAT64, data };
}

/** Rows [start, end) along axis (a tensor field's pool_axis or labeled_axis option). */
export function slice(t: Tensor, axis: number, start: number, end: number): Tensor {
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, itemBytes(t.dtype));
  const shape = [...t.shape];
  shape[axis] = end - start;
  if (axis === 0) {
    return { dtype: t.dtype, shape, raw: t.raw.subarray(start * inner, end * inner) };
  }
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const stride = t.shape[axis] * inner;
  const raw = new Uint8Array(outer * (end - start) * inner);
  for (let o = 0; o < outer; o++) {
    raw.set(t.raw.subarray(o * stride + start * inner, o * stride + end * inner), o * (end - start) * inner);
  }
  return { dtype: t.dtype, shape, raw };
}
