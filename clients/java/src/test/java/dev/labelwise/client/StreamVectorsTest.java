package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Replays tests/vectors/stream/*.json with the token-carrying StreamSelector. */
@ExtendWith(LabelwiseServer.class)
class StreamVectorsTest {
  private static final Path STREAM = LabelwiseServer.REPOSITORY.resolve("tests/vectors/stream");
  private static LabelwiseClient client;

  @BeforeAll
  static void connect() {
    client = LabelwiseClient.builder(LabelwiseServer.address())
        .defaultDeadline(Duration.ofSeconds(30)).build();
  }

  @AfterAll
  static void close() {
    client.close();
  }

  static Stream<Path> streamVectors() throws IOException {
    try (Stream<Path> files = Files.list(STREAM)) {
      return files.filter(f -> f.toString().endsWith(".json")).sorted().toList().stream();
    }
  }

  private static StreamSelector.Config config(JsonObject v) {
    JsonObject strategy = v.getAsJsonObject("strategy");
    StreamSelector.Config config = StreamSelector.config(strategy.get("name").getAsString())
        .seed(v.get("seed").getAsLong());
    for (Map.Entry<String, JsonElement> p : strategy.getAsJsonObject("params").entrySet()) {
      Map.Entry<String, JsonElement> value =
          p.getValue().getAsJsonObject().entrySet().iterator().next();
      config.param(p.getKey(), switch (value.getKey()) {
        case "int" -> value.getValue().getAsLong();
        case "double" -> value.getValue().getAsDouble();
        case "string" -> value.getValue().getAsString();
        default -> value.getValue().getAsBoolean();
      });
    }
    if (!v.get("budget").isJsonNull()) {
      config.budget(v.get("budget").getAsDouble());
    }
    if (!v.get("window_cap").isJsonNull()) {
      JsonObject cap = v.getAsJsonObject("window_cap");
      config.windowCap(cap.get("window_items").getAsLong(), cap.get("max_labels").getAsLong());
    }
    return config;
  }

  private static StreamSelector.Items items(JsonObject step) {
    Map.Entry<String, JsonElement> only = step.getAsJsonObject("tensors").entrySet().iterator().next();
    Tensor t = VectorsTest.tensor(only.getValue().getAsJsonObject());
    StreamSelector.Items items = switch (only.getKey()) {
      case "probabilities" -> StreamSelector.Items.probabilities(t);
      case "logits" -> StreamSelector.Items.logits(t);
      case "committee" -> StreamSelector.Items.committee(t);
      case "committee_logits" -> StreamSelector.Items.committeeLogits(t);
      case "utilities" -> StreamSelector.Items.utilities(t);
      case "frequencies" -> StreamSelector.Items.frequencies(t);
      default -> throw new AssertionError("unknown item field " + only.getKey());
    };
    if (!step.get("temperature").isJsonNull()) {
      items.temperature(step.get("temperature").getAsDouble());
    }
    return items;
  }

  private static boolean close(double got, double want) {
    return got == want || Math.abs(got - want) <= 1e-6 * Math.max(Math.abs(got), Math.abs(want));
  }

  @ParameterizedTest
  @MethodSource("streamVectors")
  void replaysTheVector(Path file) throws IOException {
    JsonObject v = VectorsTest.read(file);
    StreamSelector selector = client.streamSelector(config(v));
    for (JsonElement element : v.getAsJsonArray("steps")) {
      JsonObject step = element.getAsJsonObject();
      StreamSelector.Decisions got = selector.decide(items(step));
      JsonObject want = step.getAsJsonObject("response");
      JsonArray label = want.getAsJsonArray("label");
      assertEquals(label.size(), got.label().length);
      for (int i = 0; i < label.size(); i++) {
        assertEquals(label.get(i).getAsBoolean(), got.label()[i], file + " item " + i);
        assertTrue(close(got.utilities()[i], want.getAsJsonArray("utilities").get(i).getAsDouble()));
        assertTrue(close(got.labelProbabilities()[i],
            want.getAsJsonArray("label_probabilities").get(i).getAsDouble()));
      }
      assertEquals(want.get("items_seen").getAsLong(), got.itemsSeen());
      assertEquals(want.get("items_labeled").getAsLong(), got.itemsLabeled());
      byte[] token = Base64.getDecoder().decode(want.get("token").getAsString());
      assertArrayEquals(token, got.token());
      assertArrayEquals(token, selector.token());
    }
  }

  @Test
  void decideStreamAnswersAsDecide() throws IOException {
    JsonObject v = VectorsTest.read(STREAM.resolve("stream_split_logits_window_cap.json"));
    List<StreamSelector.Items> batches = new ArrayList<>();
    List<String> tokens = new ArrayList<>();
    for (JsonElement element : v.getAsJsonArray("steps")) {
      batches.add(items(element.getAsJsonObject()));
      tokens.add(element.getAsJsonObject().getAsJsonObject("response").get("token").getAsString());
    }
    List<String> got = client.streamSelector(config(v)).decideStream(batches).stream()
        .map(d -> Base64.getEncoder().encodeToString(d.token())).toList();
    assertEquals(tokens, got);
  }

  @Test
  void refusesAnAlteredTokenNamingTheField() {
    StreamSelector selector = client.streamSelector(StreamSelector.config("quantile_filter"));
    StreamSelector.Items items = StreamSelector.Items.utilities(
        Tensor.float64(new double[] {0.1, 0.9, 0.5}, 3));
    selector.decide(items);
    byte[] token = selector.token();
    token[token.length - 1] ^= 1;
    selector.token(token);
    LabelwiseException error = assertThrows(LabelwiseException.class, () -> selector.decide(items));
    assertEquals("token", error.field());
  }
}
