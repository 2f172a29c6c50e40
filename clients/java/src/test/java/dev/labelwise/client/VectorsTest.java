package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Replays tests/vectors/*.json, made by the Python reference, through both calls. */
@ExtendWith(LabelwiseServer.class)
class VectorsTest {
  private static final Path VECTORS = LabelwiseServer.REPOSITORY.resolve("tests/vectors");
  private static final MethodLog UNARY_CALLS = new MethodLog();
  private static final MethodLog STREAM_CALLS = new MethodLog();
  private static LabelwiseClient unary;
  private static LabelwiseClient streaming;

  @BeforeAll
  static void connect() {
    unary = LabelwiseClient.builder(LabelwiseServer.address()).intercept(UNARY_CALLS)
        .defaultDeadline(Duration.ofSeconds(30)).build();
    // A tiny message limit sends every vector through the stream, in several chunks.
    streaming = LabelwiseClient.builder(LabelwiseServer.address()).intercept(STREAM_CALLS)
        .maxMessageBytes((64 << 10) + 1).chunkBytes(256)
        .defaultDeadline(Duration.ofSeconds(30)).build();
  }

  @AfterAll
  static void close() {
    unary.close();
    streaming.close();
  }

  static Stream<Path> vectors() throws IOException {
    try (Stream<Path> files = Files.list(VECTORS)) {
      return files.filter(f -> f.toString().endsWith(".json")).sorted().toList().stream();
    }
  }

  @Test
  void thereAreVectorsToReplay() throws IOException {
    assertFalse(vectors().toList().isEmpty(), "no vectors in " + VECTORS);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("vectors")
  void replaysTheVectorThroughBothCalls(Path file) throws IOException {
    JsonObject vector = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8))
        .getAsJsonObject();
    SelectRequest request = request(vector.getAsJsonObject("request"));
    JsonObject expected = vector.getAsJsonObject("response");

    int unaryBefore = UNARY_CALLS.names.size();
    check(unary.select(request), expected);
    assertEquals(List.of(MethodLog.UNARY), UNARY_CALLS.names.subList(unaryBefore, UNARY_CALLS.names.size()));

    int streamBefore = STREAM_CALLS.names.size();
    check(streaming.select(request), expected);
    assertEquals(List.of(MethodLog.STREAM), STREAM_CALLS.names.subList(streamBefore, STREAM_CALLS.names.size()));
  }

  private static SelectRequest request(JsonObject in) {
    SelectRequest.Builder request = SelectRequest.builder()
        .k(in.get("k").getAsLong())
        .seed(in.get("seed").getAsBigInteger().longValue())
        .clampK(in.get("clamp_k").getAsBoolean());
    for (JsonElement s : in.getAsJsonArray("strategies")) {
      JsonObject spec = s.getAsJsonObject();
      request.strategy(spec.get("name").getAsString(), params(spec.getAsJsonObject("params")));
    }
    for (JsonElement index : in.getAsJsonArray("exclude")) {
      request.exclude(index.getAsLong());
    }
    if (!in.get("budget").isJsonNull()) {
      request.budget(in.get("budget").getAsDouble());
    }
    if (!in.get("temperature").isJsonNull()) {
      request.temperature(in.get("temperature").getAsDouble());
    }
    for (Map.Entry<String, JsonElement> entry : in.getAsJsonObject("tensors").entrySet()) {
      Tensor tensor = tensor(entry.getValue().getAsJsonObject());
      switch (entry.getKey()) {
        case "probabilities" -> request.probabilities(tensor);
        case "logits" -> request.logits(tensor);
        case "committee" -> request.committee(tensor);
        case "committee_logits" -> request.committeeLogits(tensor);
        case "embeddings" -> request.embeddings(tensor);
        case "labeled_embeddings" -> request.labeledEmbeddings(tensor);
        case "costs" -> request.costs(tensor);
        default -> throw new AssertionError(
            "vector tensor " + entry.getKey() + " is not a request field this client knows");
      }
    }
    return request.build();
  }

  private static Tensor tensor(JsonObject t) {
    long[] shape = longs(t.getAsJsonArray("shape"));
    JsonArray data = t.getAsJsonArray("data");
    String dtype = t.get("dtype").getAsString();
    if (dtype.equals("float32")) {
      float[] values = new float[data.size()];
      for (int i = 0; i < values.length; i++) {
        values[i] = data.get(i).getAsFloat();
      }
      return Tensor.float32(values, shape);
    }
    assertEquals("float64", dtype);
    double[] values = new double[data.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = data.get(i).getAsDouble();
    }
    return Tensor.float64(values, shape);
  }

  /** {"int": 3} / {"double": 0.5} / {"string": "max"} / {"bool": true} as Java values. */
  private static Map<String, Object> params(JsonObject params) {
    Map<String, Object> out = new HashMap<>();
    for (Map.Entry<String, JsonElement> entry : params.entrySet()) {
      Map.Entry<String, JsonElement> value = entry.getValue().getAsJsonObject().entrySet().iterator().next();
      out.put(entry.getKey(), switch (value.getKey()) {
        case "int" -> value.getValue().getAsLong();
        case "double" -> value.getValue().getAsDouble();
        case "string" -> value.getValue().getAsString();
        case "bool" -> value.getValue().getAsBoolean();
        default -> throw new AssertionError("unknown parameter kind " + value.getKey());
      });
    }
    return out;
  }

  private static long[] longs(JsonArray array) {
    long[] out = new long[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).getAsLong();
    }
    return out;
  }

  static boolean closeRelative(double got, double want) {
    return got == want || Math.abs(got - want) <= 1e-6 * Math.max(Math.abs(got), Math.abs(want));
  }

  private static void check(SelectResponse got, JsonObject want) {
    assertEquals(want.get("pool_size").getAsLong(), got.poolSize());
    JsonArray results = want.getAsJsonArray("results");
    assertEquals(results.size(), got.selections().size());
    for (int i = 0; i < results.size(); i++) {
      JsonObject w = results.get(i).getAsJsonObject();
      Selection g = got.selections().get(i);
      String name = w.get("name").getAsString();
      assertEquals(name, g.name());
      assertEquals(params(w.getAsJsonObject("params")), g.params(), name + " params");
      assertArrayEquals(longs(w.getAsJsonArray("indices")), g.indices(), name + " indices");
      JsonArray scores = w.getAsJsonArray("scores");
      assertEquals(scores.size(), g.scores().length, name + " score count");
      for (int j = 0; j < scores.size(); j++) {
        double expected = scores.get(j).getAsDouble();
        assertTrue(closeRelative(g.scores()[j], expected),
            name + " score " + j + " is " + g.scores()[j] + "; want " + expected);
      }
      assertTrue(closeRelative(g.totalCost(), w.get("total_cost").getAsDouble()), name + " total cost");
    }
  }
}
