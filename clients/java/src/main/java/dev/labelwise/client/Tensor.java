package dev.labelwise.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.labelwise.v1.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A dense array ready for the wire: its elements little-endian in C (row-major) order,
 * whatever the host's byte order. Immutable; build one with {@link #float32} or
 * {@link #float64}, for example {@code Tensor.float32(probabilities, n, c)}.
 */
public final class Tensor {
  private final DataType dtype;
  private final long[] shape;
  private final ByteString raw;

  private Tensor(DataType dtype, long[] shape, ByteString raw) {
    this.dtype = dtype;
    this.shape = shape;
    this.raw = raw;
  }

  /** A float32 tensor of {@code data}, laid out row-major, with the given shape. */
  public static Tensor float32(float[] data, long... shape) {
    return float32(FloatBuffer.wrap(data), shape);
  }

  /**
   * A float32 tensor of the {@code remaining()} elements of {@code data} (any byte order,
   * heap or direct); the buffer's position is left unchanged.
   */
  public static Tensor float32(FloatBuffer data, long... shape) {
    long[] dims = checkShape(data.remaining(), shape);
    ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(4, data.remaining()));
    bytes.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(data.duplicate());
    return new Tensor(DataType.DATA_TYPE_FLOAT32, dims, UnsafeByteOperations.unsafeWrap(bytes.array()));
  }

  /** A float64 tensor of {@code data}, laid out row-major, with the given shape. */
  public static Tensor float64(double[] data, long... shape) {
    return float64(DoubleBuffer.wrap(data), shape);
  }

  /**
   * A float64 tensor of the {@code remaining()} elements of {@code data} (any byte order,
   * heap or direct); the buffer's position is left unchanged.
   */
  public static Tensor float64(DoubleBuffer data, long... shape) {
    long[] dims = checkShape(data.remaining(), shape);
    ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(8, data.remaining()));
    bytes.order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().put(data.duplicate());
    return new Tensor(DataType.DATA_TYPE_FLOAT64, dims, UnsafeByteOperations.unsafeWrap(bytes.array()));
  }

  /** The element type. */
  public DataType dtype() {
    return dtype;
  }

  /** The size of each dimension, outermost first (a copy). */
  public long[] shape() {
    return shape.clone();
  }

  /** The elements as little-endian bytes in row-major order. */
  public ByteString rawData() {
    return raw;
  }

  /** The message sent on the wire. */
  public dev.labelwise.v1.Tensor toMessage() {
    dev.labelwise.v1.Tensor.Builder message = dev.labelwise.v1.Tensor.newBuilder()
        .setDtype(dtype).setRawData(raw);
    for (long size : shape) {
      message.addShape(size);
    }
    return message.build();
  }

  @Override
  public String toString() {
    return "Tensor(" + dtype + ", " + Arrays.toString(shape) + ")";
  }

  int rank() {
    return shape.length;
  }

  long size(int axis) {
    return shape[axis];
  }

  /**
   * Rows [start, end) of axis 0 or 1 (the committee tensors' pool axis). The bytes are shared
   * with this tensor; along axis 1 the blocks of every outer index are joined without copying.
   */
  Tensor slice(int axis, long start, long end) {
    long[] dims = shape.clone();
    dims[axis] = end - start;
    long inner = elementBytes();
    for (int i = axis + 1; i < shape.length; i++) {
      inner *= shape[i];
    }
    if (axis == 0) {
      return new Tensor(dtype, dims, raw.substring(Math.toIntExact(start * inner), Math.toIntExact(end * inner)));
    }
    long stride = shape[axis] * inner;
    ByteString joined = ByteString.EMPTY;
    for (long outer = 0; outer < shape[0]; outer++) {
      long base = outer * stride;
      joined = joined.concat(raw.substring(
          Math.toIntExact(base + start * inner), Math.toIntExact(base + end * inner)));
    }
    return new Tensor(dtype, dims, joined);
  }

  private long elementBytes() {
    return dtype == DataType.DATA_TYPE_FLOAT64 ? 8 : 4;
  }

  private static long[] checkShape(int elements, long[] shape) {
    long product = 1;
    for (long size : shape) {
      if (size < 0) {
        throw new IllegalArgumentException(
            "tensor shape " + Arrays.toString(shape) + " has a negative size");
      }
      product = Math.multiplyExact(product, size);
    }
    if (product != elements) {
      throw new IllegalArgumentException("tensor shape " + Arrays.toString(shape) + " holds "
          + product + " elements; got " + elements);
    }
    return shape.clone();
  }
}
