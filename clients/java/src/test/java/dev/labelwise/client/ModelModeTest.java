package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonObject;
import dev.labelwise.v1.Model.SourceCase;
import io.grpc.Status;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The hash-first model protocol against real servers: one that caches, one that caches nothing. */
@ExtendWith(LabelwiseServer.class)
class ModelModeTest {
  private static final Path LINEAR = LabelwiseServer.REPOSITORY.resolve("tests/vectors/model/model_linear.json");
  private static final List<SourceCase> BYTES = List.of(SourceCase.ONNX);
  private static final List<SourceCase> HASH = List.of(SourceCase.SHA256);

  /** The softmax-linear model of the model_linear vector and its pool's embeddings [40, 6]. */
  private static byte[] linearModel() throws Exception {
    JsonObject request = VectorsTest.read(LINEAR).getAsJsonObject("request");
    return Base64.getDecoder().decode(request.getAsJsonArray("models").get(0).getAsString());
  }

  private static Tensor linearInputs() throws Exception {
    return VectorsTest.tensor(VectorsTest.read(LINEAR).getAsJsonObject("request")
        .getAsJsonObject("tensors").getAsJsonObject("embeddings"));
  }

  private static void assertSameRanking(SelectResponse want, SelectResponse got) {
    assertEquals(want.selections().size(), got.selections().size());
    for (int i = 0; i < want.selections().size(); i++) {
      assertArrayEquals(want.selections().get(i).indices(), got.selections().get(i).indices());
      assertArrayEquals(want.selections().get(i).scores(), got.selections().get(i).scores());
    }
  }

  @Test
  void aModelGoesAsBytesOnceThenAsItsHash(@TempDir Path dir) throws Exception {
    byte[] model = linearModel();
    Path file = dir.resolve("linear.onnx");
    Files.write(file, model);
    SelectRequest request = SelectRequest.builder().strategy("margin").k(3).model(file)
        .modelInputs(linearInputs()).build();
    ModelLog log = new ModelLog();
    try (LabelwiseClient client = LabelwiseClient.builder(LabelwiseServer.address()).intercept(log)
        .defaultDeadline(Duration.ofSeconds(30)).build()) {
      SelectResponse first = client.select(request);
      SelectResponse second = client.select(request);
      SelectResponse third = client.select(request);
      assertEquals(List.of(BYTES, HASH, HASH), log.calls);
      assertSameRanking(first, second);
      assertSameRanking(first, third);
    }
    String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(model));
    assertEquals(List.of(digest), log.digests.get(1));
  }

  @Test
  void aServerThatNoLongerHoldsTheModelGetsItsBytesAgain() throws Exception {
    SelectRequest request = SelectRequest.builder().strategy("entropy").strategy("margin").k(5)
        .model(linearModel()).embeddings(linearInputs()).build();
    ModelLog unaryLog = new ModelLog();
    MethodLog unaryCalls = new MethodLog();
    ModelLog streamLog = new ModelLog();
    MethodLog streamCalls = new MethodLog();
    // Caching nothing, the server answers every hash NOT_FOUND / MODEL_NOT_CACHED.
    try (LabelwiseServer.Running uncached = LabelwiseServer.startOwn("uncached", "--model-cache-bytes", "0");
        LabelwiseClient unary = LabelwiseClient.builder(uncached.address()).intercept(unaryLog, unaryCalls)
            .defaultDeadline(Duration.ofSeconds(30)).build();
        LabelwiseClient streaming = LabelwiseClient.builder(uncached.address()).intercept(streamLog, streamCalls)
            .maxMessageBytes((64 << 10) + 1).chunkBytes(256).defaultDeadline(Duration.ofSeconds(30)).build()) {
      SelectResponse first = unary.select(request);
      SelectResponse second = unary.select(request);
      assertEquals(List.of(BYTES, HASH, BYTES), unaryLog.calls);
      assertEquals(List.of(MethodLog.UNARY, MethodLog.UNARY, MethodLog.UNARY), unaryCalls.names);
      assertSameRanking(first, second);

      // The same through the stream, the models in its first chunk.
      assertSameRanking(first, streaming.select(request));
      assertSameRanking(first, streaming.select(request));
      assertEquals(List.of(BYTES, HASH, BYTES), streamLog.calls);
      assertEquals(List.of(MethodLog.STREAM, MethodLog.STREAM, MethodLog.STREAM), streamCalls.names);
    }
  }

  @Test
  void aRejectedModelIsNotRetriedNorRememberedAsSent() throws Exception {
    SelectRequest request = SelectRequest.builder().strategy("entropy").k(1)
        .model(new byte[] {1, 2, 3}).modelInputs(linearInputs()).build();
    ModelLog log = new ModelLog();
    try (LabelwiseClient client = LabelwiseClient.builder(LabelwiseServer.address()).intercept(log)
        .defaultDeadline(Duration.ofSeconds(30)).build()) {
      for (int i = 0; i < 2; i++) {
        LabelwiseException error = assertThrows(LabelwiseException.class, () -> client.select(request));
        assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
        assertEquals("MODEL_MALFORMED", error.reason());
        assertEquals("models[0]", error.field().substring(0, "models[0]".length()), error.field());
      }
    }
    assertEquals(List.of(BYTES, BYTES), log.calls);
  }

  @Test
  void anEnsembleGoesModelByModel() throws Exception {
    Path file = LabelwiseServer.REPOSITORY.resolve("tests/vectors/model/model_ensemble_logits.json");
    SelectRequest request = VectorsTest.request(VectorsTest.read(file).getAsJsonObject("request"));
    ModelLog log = new ModelLog();
    try (LabelwiseClient client = LabelwiseClient.builder(LabelwiseServer.address()).intercept(log)
        .defaultDeadline(Duration.ofSeconds(30)).build()) {
      SelectResponse first = client.select(request);
      assertSameRanking(first, client.select(request));
    }
    List<SourceCase> three = List.of(SourceCase.ONNX, SourceCase.ONNX, SourceCase.ONNX);
    assertEquals(List.of(three, List.of(SourceCase.SHA256, SourceCase.SHA256, SourceCase.SHA256)), log.calls);
  }

  @Test
  void theSettingsTravelInTheRequest() {
    SelectRequest request = SelectRequest.builder().strategy("bald").k(2).model(new byte[] {7})
        .modelOutput(dev.labelwise.v1.ModelOutput.MODEL_OUTPUT_LOGITS).embeddingsOutput("hidden")
        .mcDropoutSamples(4).inferenceBatchRows(128).inferenceTimeout(Duration.ofMillis(1500))
        .modelInputs(Tensor.float32(new float[] {1, 2}, 1, 2)).build();
    dev.labelwise.v1.SelectQueriesRequest message = request.toMessage();
    assertEquals(dev.labelwise.v1.ModelOutput.MODEL_OUTPUT_LOGITS, message.getModelOutput());
    assertEquals("hidden", message.getEmbeddingsOutput());
    assertEquals(4, message.getMcDropoutSamples());
    assertEquals(128, message.getInferenceBatchRows());
    assertEquals(1.5, message.getInferenceTimeoutSeconds());
    assertEquals(List.of(1L, 2L), message.getModelInputs().getShapeList());
    assertEquals(1, message.getModelsCount());
    assertEquals(7, message.getModels(0).getOnnx().byteAt(0));
  }
}
