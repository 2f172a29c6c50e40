package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.labelwise.v1.DataType;
import dev.labelwise.v1.SelectQueriesRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Tensor encoding and the stream's chunking, without a server. */
class TensorTest {
  private static final byte[] ONE_MINUS_TWO = {0x00, 0x00, (byte) 0x80, 0x3f, 0x00, 0x00, 0x00, (byte) 0xc0};

  @Test
  void float32IsLittleEndianFromArraysAndBuffersOfEitherOrder() {
    assertArrayEquals(ONE_MINUS_TWO, Tensor.float32(new float[] {1, -2}, 2).rawData().toByteArray());
    FloatBuffer bigEndian = ByteBuffer.allocateDirect(8).order(ByteOrder.BIG_ENDIAN).asFloatBuffer();
    bigEndian.put(1).put(-2).flip();
    assertArrayEquals(ONE_MINUS_TWO, Tensor.float32(bigEndian, 2).rawData().toByteArray());
    assertEquals(0, bigEndian.position(), "the buffer's position moved");
    FloatBuffer little = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    little.put(1).put(-2).flip();
    assertArrayEquals(ONE_MINUS_TWO, Tensor.float32(little, 2).rawData().toByteArray());
  }

  @Test
  void float64IsLittleEndian() {
    Tensor t = Tensor.float64(DoubleBuffer.wrap(new double[] {9, 1.0, 9}, 1, 1), 1, 1);
    assertEquals(DataType.DATA_TYPE_FLOAT64, t.dtype());
    assertArrayEquals(new byte[] {0, 0, 0, 0, 0, 0, (byte) 0xf0, 0x3f}, t.rawData().toByteArray());
    assertEquals(List.of(1L, 1L), t.toMessage().getShapeList());
  }

  @Test
  void int64IsLittleEndian() {
    Tensor t = Tensor.int64(new long[] {1, -2}, 1, 2);
    assertEquals(DataType.DATA_TYPE_INT64, t.dtype());
    assertArrayEquals(new byte[] {1, 0, 0, 0, 0, 0, 0, 0, -2, -1, -1, -1, -1, -1, -1, -1},
        t.rawData().toByteArray());
    LongBuffer bigEndian = ByteBuffer.allocateDirect(16).order(ByteOrder.BIG_ENDIAN).asLongBuffer();
    bigEndian.put(1).put(-2).flip();
    assertEquals(t.rawData(), Tensor.int64(bigEndian, 2).rawData());
  }

  @Test
  void aServerTensorReadsBackAsDoubles() {
    Tensor sent = Tensor.float64(new double[] {1.5, -2, 3e300, 0}, 2, 2);
    Tensor back = Tensor.fromMessage(sent.toMessage());
    assertArrayEquals(new long[] {2, 2}, back.shape());
    assertArrayEquals(new double[] {1.5, -2, 3e300, 0}, back.toDoubleArray());
    assertArrayEquals(new double[] {0.5, -1}, Tensor.float32(new float[] {0.5f, -1}, 2).toDoubleArray());
    assertThrows(IllegalStateException.class, () -> Tensor.int64(new long[] {1}, 1).toDoubleArray());
    dev.labelwise.v1.Tensor truncated = sent.toMessage().toBuilder()
        .setRawData(sent.rawData().substring(0, 8)).build();
    assertThrows(IllegalArgumentException.class, () -> Tensor.fromMessage(truncated));
  }

  @Test
  void modelsTravelInTheFirstChunkAloneWhenTheyOutgrowIt() {
    byte[] model = new byte[100];
    SelectRequest request = SelectRequest.builder().strategy("entropy").k(1).model(model)
        .modelInputs(Tensor.float32(new float[] {1, 2, 3, 4}, 2, 2)).exclude(1).build();
    List<SelectQueriesRequest> chunks = new ArrayList<>();
    new LabelwiseClient.Chunks(request, 8).forEachRemaining(chunks::add);
    // The header with its 100-byte model and exclude, then one 8-byte row a chunk.
    assertEquals(3, chunks.size(), chunks.toString());
    assertEquals(1, chunks.get(0).getModelsCount());
    assertEquals(false, chunks.get(0).hasModelInputs());
    assertEquals(List.of(1L), chunks.get(0).getExcludeList());
    assertEquals(List.of(1L, 2L), chunks.get(1).getModelInputs().getShapeList());
    assertEquals(0, chunks.get(1).getModelsCount());
    // Without exclude, a small model shares the first chunk with the first rows.
    SelectRequest plain = SelectRequest.builder().strategy("entropy").k(1).model(model)
        .modelInputs(Tensor.float32(new float[] {1, 2, 3, 4}, 2, 2)).build();
    List<SelectQueriesRequest> roomy = new ArrayList<>();
    new LabelwiseClient.Chunks(plain, 1024).forEachRemaining(roomy::add);
    assertEquals(1, roomy.size());
    assertEquals(List.of(2L, 2L), roomy.get(0).getModelInputs().getShapeList());
    assertEquals(1, roomy.get(0).getModelsCount());
  }

  @Test
  void aShapeThatDoesNotMatchTheDataIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> Tensor.float32(new float[3], 2, 2));
    assertThrows(IllegalArgumentException.class, () -> Tensor.float64(new double[0], -1, 0));
  }

  @Test
  void committeeTensorsSplitAlongAxisOne() {
    // [m=2, n=3, c=1]: rows 1..2 of each member.
    Tensor committee = Tensor.float64(new double[] {0, 1, 2, 10, 11, 12}, 2, 3, 1);
    Tensor part = committee.slice(1, 1, 3);
    assertArrayEquals(new long[] {2, 2, 1}, part.shape());
    assertEquals(Tensor.float64(new double[] {1, 2, 11, 12}, 2, 2, 1).rawData(), part.rawData());
  }

  @Test
  void chunksReassembleToTheRequest() {
    // 7 pool rows: committee [2, 7, 2] float32 (16 bytes a row) + costs [7] float64 (8 bytes),
    // so 48-byte chunks carry 2 rows; then 3 labeled rows (8 bytes each, all in one chunk), then
    // exclude, 48 / 10 = 4 indices at a time.
    float[] committee = new float[28];
    for (int i = 0; i < committee.length; i++) {
      committee[i] = i;
    }
    double[] costs = {1, 2, 3, 4, 5, 6, 7};
    float[] labeled = {1, 2, 3, 4, 5, 6};
    long[] exclude = {0, 1, 2, 3, 4, 5, 6};
    SelectRequest request = SelectRequest.builder().strategy("bald").k(2).seed(7).budget(3)
        .committee(Tensor.float32(committee, 2, 7, 2)).costs(Tensor.float64(costs, 7))
        .labeledEmbeddings(Tensor.float32(labeled, 3, 2)).exclude(exclude).build();
    List<SelectQueriesRequest> chunks = new ArrayList<>();
    new LabelwiseClient.Chunks(request, 48).forEachRemaining(chunks::add);
    // 2 exclude chunks (4+3, the first with the header), 4 pool chunks (2+2+2+1 rows), 1
    // labeled chunk: exclude goes before the rows, for a server that scores them as they arrive.
    assertEquals(2 + 4 + 1, chunks.size(), chunks.toString());
    SelectQueriesRequest first = chunks.get(0);
    assertEquals("bald", first.getStrategies(0).getName());
    assertEquals(7, first.getSeed());
    assertEquals(List.of(0L, 1L, 2L, 3L), first.getExcludeList());
    assertEquals(false, first.hasCommittee());
    assertEquals(List.of(4L, 5L, 6L), chunks.get(1).getExcludeList());
    assertEquals(List.of(2L, 2L, 2L), chunks.get(2).getCommittee().getShapeList());
    for (SelectQueriesRequest later : chunks.subList(1, chunks.size())) {
      assertEquals(0, later.getStrategiesCount());
    }
    // Concatenate back along each tensor's pool axis and compare with the whole.
    ByteBuffer member0 = ByteBuffer.allocate(56);
    ByteBuffer member1 = ByteBuffer.allocate(56);
    ByteBuffer costBytes = ByteBuffer.allocate(56);
    ByteBuffer labeledBytes = ByteBuffer.allocate(24);
    List<Long> excluded = new ArrayList<>();
    for (SelectQueriesRequest chunk : chunks) {
      if (chunk.hasCommittee()) {
        byte[] raw = chunk.getCommittee().getRawData().toByteArray();
        member0.put(raw, 0, raw.length / 2);
        member1.put(raw, raw.length / 2, raw.length / 2);
        costBytes.put(chunk.getCosts().getRawData().toByteArray());
      }
      if (chunk.hasLabeledEmbeddings()) {
        labeledBytes.put(chunk.getLabeledEmbeddings().getRawData().toByteArray());
      }
      excluded.addAll(chunk.getExcludeList());
    }
    ByteBuffer wholeCommittee = ByteBuffer.allocate(112).put(member0.array()).put(member1.array());
    assertArrayEquals(request.toMessage().getCommittee().getRawData().toByteArray(), wholeCommittee.array());
    assertArrayEquals(request.toMessage().getCosts().getRawData().toByteArray(), costBytes.array());
    assertArrayEquals(request.toMessage().getLabeledEmbeddings().getRawData().toByteArray(), labeledBytes.array());
    assertEquals(request.toMessage().getExcludeList(), excluded);
  }

  @Test
  void labeledSetTensorsStreamOneAfterTheOther() {
    SelectRequest request = SelectRequest.builder().strategy("igs").k(1)
        .regressionMean(Tensor.float64(new double[] {1, 2, 3}, 3))
        .labeledEmbeddings(Tensor.float32(new float[] {1, 2, 3, 4}, 2, 2))
        .labeledTargets(Tensor.float64(new double[] {5, 6}, 2)).build();
    List<SelectQueriesRequest> chunks = new ArrayList<>();
    new LabelwiseClient.Chunks(request, 8).forEachRemaining(chunks::add);
    // 3 pool chunks of one 8-byte row, labeled_embeddings in 8-byte rows (2), then targets (2).
    assertEquals(7, chunks.size(), chunks.toString());
    assertEquals(List.of(1L), chunks.get(2).getRegressionMean().getShapeList());
    assertEquals(List.of(1L, 2L), chunks.get(3).getLabeledEmbeddings().getShapeList());
    assertEquals(List.of(1L), chunks.get(6).getLabeledTargets().getShapeList());
    assertEquals(false, chunks.get(6).hasLabeledEmbeddings());
  }

  @Test
  void anEmptyLabeledSetIsStillSent() {
    SelectRequest request = SelectRequest.builder().strategy("core_set").k(1)
        .embeddings(Tensor.float32(new float[] {1, 2}, 1, 2))
        .labeledEmbeddings(Tensor.float32(new float[0], 0, 2)).build();
    List<SelectQueriesRequest> chunks = new ArrayList<>();
    new LabelwiseClient.Chunks(request, 1024).forEachRemaining(chunks::add);
    assertEquals(2, chunks.size());
    assertEquals(List.of(0L, 2L), chunks.get(1).getLabeledEmbeddings().getShapeList());
  }

  @Test
  void aRequestWithoutTensorsIsOneHeaderChunk() {
    SelectRequest request = SelectRequest.builder().strategy("random").k(1).build();
    List<SelectQueriesRequest> chunks = new ArrayList<>();
    new LabelwiseClient.Chunks(request, 1024).forEachRemaining(chunks::add);
    assertEquals(List.of(request.toMessage()), chunks);
  }
}
