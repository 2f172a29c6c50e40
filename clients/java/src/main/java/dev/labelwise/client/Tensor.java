package dev.labelwise.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.labelwise.v1.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/**
 * A dense array ready for the wire: its elements little-endian in C (row-major) order,
 * whatever the host's byte order. Immutable; build one with {@link #float32},
 * {@link #float64} or {@link #int64} (class labels), for example
 * {@code Tensor.float32(probabilities, n, c)}. Tensors the server answers with (such as
 * {@link Selection#adversarialPoints()}) read back with {@link #toDoubleArray()}.
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

  /** An int64 tensor of {@code data} (class labels, say), laid out row-major, with the given shape. */
  public static Tensor int64(long[] data, long... shape) {
    return int64(LongBuffer.wrap(data), shape);
  }

  /**
   * An int64 tensor of the {@code remaining()} elements of {@code data} (any byte order,
   * heap or direct); the buffer's position is left unchanged.
   */
  public static Tensor int64(LongBuffer data, long... shape) {
    long[] dims = checkShape(data.remaining(), shape);
    ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(8, data.remaining()));
    bytes.order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().put(data.duplicate());
    return new Tensor(DataType.DATA_TYPE_INT64, dims, UnsafeByteOperations.unsafeWrap(bytes.array()));
  }

  /**
   * The tensor of a wire message, as the server sent it (its bytes are shared, not copied).
   *
   * @throws IllegalArgumentException when the message's bytes do not match its dtype and shape
   */
  static Tensor fromMessage(dev.labelwise.v1.Tensor message) {
    long[] dims = message.getShapeList().stream().mapToLong(Long::longValue).toArray();
    long elements = 1;
    for (long size : dims) {
      if (size < 0) {
        throw new IllegalArgumentException("tensor shape " + Arrays.toString(dims) + " has a negative size");
      }
      elements = Math.multiplyExact(elements, size);
    }
    int itemBytes = elementBytes(message.getDtype());
    if (itemBytes == 0 || message.getRawData().size() != Math.multiplyExact(elements, itemBytes)) {
      throw new IllegalArgumentException("tensor " + message.getDtype() + Arrays.toString(dims)
          + " must have " + elements + " elements of " + itemBytes + " bytes; got "
          + message.getRawData().size() + " bytes");
    }
    return new Tensor(message.getDtype(), dims, message.getRawData());
  }

  /**
   * The elements as doubles, row-major (a new array).
   *
   * @throws IllegalStateException for a tensor that is neither float32 nor float64
   */
  public double[] toDoubleArray() {
    ByteBuffer bytes = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    if (dtype == DataType.DATA_TYPE_FLOAT64) {
      double[] out = new double[bytes.remaining() / 8];
      bytes.asDoubleBuffer().get(out);
      return out;
    }
    if (dtype == DataType.DATA_TYPE_FLOAT32) {
      float[] values = new float[bytes.remaining() / 4];
      bytes.asFloatBuffer().get(values);
      double[] out = new double[values.length];
      for (int i = 0; i < values.length; i++) {
        out[i] = values[i];
      }
      return out;
    }
    throw new IllegalStateException("toDoubleArray needs a float32 or float64 tensor; this is " + dtype);
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
    long inner = elementBytes(dtype);
    for (int i = axis + 1; i < shape.length; i++) {
      inner *= shape[i];
    }
    if (axis == 0) {
      return new Tensor(dtype, dims, raw.substring(Math.toIntExact(start * inner), Math.toIntExact(end * inner)));
    }
    long stride = shape[axis] * inner;
    long outers = 1; // the product of the sizes before axis
    for (int i = 0; i < axis; i++) {
      outers *= shape[i];
    }
    ByteString joined = ByteString.EMPTY;
    for (long outer = 0; outer < outers; outer++) {
      long base = outer * stride;
      joined = joined.concat(raw.substring(
          Math.toIntExact(base + start * inner), Math.toIntExact(base + end * inner)));
    }
    return new Tensor(dtype, dims, joined);
  }

  /** Bytes per element of a dtype; 0 for one not on the wire. */
  private static int elementBytes(DataType dtype) {
    return switch (dtype) {
      case DATA_TYPE_FLOAT16, DATA_TYPE_BFLOAT16 -> 2;
      case DATA_TYPE_FLOAT32, DATA_TYPE_INT32 -> 4;
      case DATA_TYPE_FLOAT64, DATA_TYPE_INT64 -> 8;
      default -> 0;
    };
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
