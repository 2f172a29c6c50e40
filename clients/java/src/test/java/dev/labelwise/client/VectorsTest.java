package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.labelwise.v1.LabelQualityMethod;
import dev.labelwise.v1.LabelingKind;
import dev.labelwise.v1.ModelOutput;
import dev.labelwise.v1.StoppingRule;
import dev.labelwise.v1.UncertaintyAggregate;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Replays tests/vectors/*.json, made by the Python reference, through both calls; then the
 * model-mode vectors (tests/vectors/model/) through both calls and the CheckStopping ones
 * (tests/vectors/stopping/).
 */
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

  /** The JSON files directly in dir, sorted. */
  private static Stream<Path> jsonIn(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> f.toString().endsWith(".json")).sorted().toList().stream();
    }
  }

  static Stream<Path> vectors() throws IOException {
    return jsonIn(VECTORS);
  }

  static Stream<Path> modelVectors() throws IOException {
    return jsonIn(VECTORS.resolve("model"));
  }

  static Stream<Path> historyVectors() throws IOException {
    return jsonIn(VECTORS.resolve("history"));
  }

  static Stream<Path> stoppingVectors() throws IOException {
    return jsonIn(VECTORS.resolve("stopping"));
  }

  static Stream<Path> labelVectors() throws IOException {
    return jsonIn(VECTORS.resolve("labels"));
  }

  static JsonObject read(Path file) throws IOException {
    return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
  }

  @Test
  void thereAreVectorsToReplay() throws IOException {
    assertFalse(vectors().toList().isEmpty(), "no vectors in " + VECTORS);
    assertFalse(modelVectors().toList().isEmpty(), "no model-mode vectors");
    assertFalse(stoppingVectors().toList().isEmpty(), "no CheckStopping vectors");
    assertFalse(historyVectors().toList().isEmpty(), "no history vectors");
    assertEquals(2, labelVectors().map(p -> p.getFileName().toString().split("_")[0]).distinct().count(),
        "label-quality vectors of both calls");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("historyVectors")
  void replaysTheHistoryVectorThroughBothCalls(Path file) throws IOException {
    replayThroughBothCalls(read(file));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("labelVectors")
  void replaysTheLabelQualityVector(Path file) throws IOException {
    JsonObject vector = read(file);
    JsonObject in = vector.getAsJsonObject("request");
    JsonObject want = vector.getAsJsonObject("response");
    if (file.getFileName().toString().startsWith("assess")) {
      // "crowdlab", "dawid_skene", "bayes_em": the enum value's suffix.
      LabelQualityMethod method = LabelQualityMethod.valueOf(
          "LABEL_QUALITY_METHOD_" + in.get("method").getAsString().toUpperCase(Locale.ROOT));
      AssessRequest.Builder request = AssessRequest.builder()
          .annotations(tensor(in.getAsJsonObject("annotations")))
          .method(method);
      if (!in.get("labeled_probabilities").isJsonNull()) {
        request.labeledProbabilities(tensor(in.getAsJsonObject("labeled_probabilities")));
      }
      if (!in.get("num_classes").isJsonNull()) {
        request.numClasses(in.get("num_classes").getAsLong());
      }
      if (!in.get("accuracy_prior_strength").isJsonNull()) {
        request.accuracyPriorStrength(in.get("accuracy_prior_strength").getAsDouble());
      }
      LabelAssessment got = unary.assessLabels(request.build());
      assertEquals(LabelQualityMethod.valueOf(
          "LABEL_QUALITY_METHOD_" + want.get("method").getAsString().toUpperCase(Locale.ROOT)), got.method());
      assertArrayEquals(longs(want.getAsJsonArray("consensus_labels")), got.consensusLabels());
      assertArrayEquals(longs(want.getAsJsonArray("majority_vote_labels")), got.majorityVoteLabels());
      double[] quality = doubles(want.getAsJsonArray("consensus_quality"));
      for (int i = 0; i < quality.length; i++) {
        assertClose(quality[i], got.consensusQuality()[i], "consensus quality " + i);
      }
      double[] annotators = doubles(want.getAsJsonArray("annotator_quality"));
      for (int i = 0; i < annotators.length; i++) {
        assertClose(annotators[i], got.annotatorQuality()[i], "annotator quality " + i);
      }
      assertClose(want.get("model_temperature").getAsDouble(), got.modelTemperature(), "model temperature");
      return;
    }
    PlanRequest.Builder request = PlanRequest.builder()
        .annotations(tensor(in.getAsJsonObject("annotations")))
        .labeledProbabilities(tensor(in.getAsJsonObject("labeled_probabilities")))
        .k(in.get("k").getAsLong())
        .clampK(in.get("clamp_k").getAsBoolean())
        .poolStrategy(in.get("pool_strategy").getAsString())
        .excludeLabeled(longs(in.getAsJsonArray("exclude_labeled")))
        .excludePool(longs(in.getAsJsonArray("exclude_pool")));
    if (!in.get("pool_probabilities").isJsonNull()) {
      request.poolProbabilities(tensor(in.getAsJsonObject("pool_probabilities")));
    }
    if (!in.get("annotator_costs").isJsonNull()) {
      request.annotatorCosts(tensor(in.getAsJsonObject("annotator_costs")));
    }
    if (!in.get("budget").isJsonNull()) {
      request.budget(in.get("budget").getAsDouble());
    }
    LabelingPlan got = unary.planLabeling(request.build());
    JsonArray tasks = want.getAsJsonArray("tasks");
    assertEquals(tasks.size(), got.tasks().size(), got.tasks().toString());
    for (int i = 0; i < tasks.size(); i++) {
      JsonObject w = tasks.get(i).getAsJsonObject();
      LabelingTask g = got.tasks().get(i);
      LabelingKind kind = w.get("kind").getAsString().equals("relabel")
          ? LabelingKind.LABELING_KIND_RELABEL
          : LabelingKind.LABELING_KIND_LABEL_FIRST;
      assertEquals(kind, g.kind(), "task " + i);
      assertEquals(w.get("index").getAsLong(), g.index(), "task " + i);
      assertEquals(w.get("annotator").getAsLong(), g.annotator(), "task " + i);
      assertClose(w.get("score").getAsDouble(), g.score(), "task " + i + " score");
      assertClose(w.get("cost").getAsDouble(), g.cost(), "task " + i + " cost");
      assertClose(w.get("expected_accuracy").getAsDouble(), g.expectedAccuracy(), "task " + i);
    }
    assertClose(want.get("total_cost").getAsDouble(), got.totalCost(), "total cost");
    assertClose(want.get("temperature").getAsDouble(), got.temperature(), "temperature");
    assertEquals(want.get("candidates_considered").getAsLong(), got.candidatesConsidered());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("vectors")
  void replaysTheVectorThroughBothCalls(Path file) throws IOException {
    replayThroughBothCalls(read(file));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("modelVectors")
  void replaysTheModelVectorThroughBothCalls(Path file) throws IOException {
    JsonObject vector = read(file);
    assertTrue(vector.getAsJsonObject("request").getAsJsonArray("models").size() > 0, "no models");
    replayThroughBothCalls(vector);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("stoppingVectors")
  void replaysTheStoppingVector(Path file) throws IOException {
    JsonObject vector = read(file);
    StoppingVerdict got = unary.checkStopping(stoppingRequest(vector.getAsJsonObject("request")));
    JsonObject want = vector.getAsJsonObject("response");
    assertEquals(want.get("stop").getAsBoolean(), got.stop(), "stop");
    JsonArray criteria = want.getAsJsonArray("criteria");
    assertEquals(criteria.size(), got.criteria().size(), got.criteria().toString());
    for (int i = 0; i < criteria.size(); i++) {
      JsonObject w = criteria.get(i).getAsJsonObject();
      StoppingCriterion g = got.criteria().get(i);
      String name = w.get("name").getAsString();
      assertEquals(name, g.name());
      assertEquals(w.get("stop").getAsBoolean(), g.stop(), name + " stop");
      assertEquals(w.get("evaluated").getAsBoolean(), g.evaluated(), name + " evaluated");
      assertEquals(w.get("detail").getAsString(), g.detail(), name + " detail");
      assertClose(w.get("value").getAsDouble(), g.value(), name + " value");
      assertClose(w.get("threshold").getAsDouble(), g.threshold(), name + " threshold");
      assertEquals(g, got.criterion(name).orElseThrow());
    }
    double[] kappas = doubles(want.getAsJsonArray("kappas"));
    assertEquals(kappas.length, got.kappas().length, "kappa count");
    for (int i = 0; i < kappas.length; i++) {
      assertClose(kappas[i], got.kappas()[i], "kappa " + i);
    }
  }

  private static void replayThroughBothCalls(JsonObject vector) {
    SelectRequest request = request(vector.getAsJsonObject("request"));
    JsonObject expected = vector.getAsJsonObject("response");

    int unaryBefore = UNARY_CALLS.names.size();
    check(unary.select(request), expected);
    assertEquals(List.of(MethodLog.UNARY), UNARY_CALLS.names.subList(unaryBefore, UNARY_CALLS.names.size()));

    int streamBefore = STREAM_CALLS.names.size();
    check(streaming.select(request), expected);
    assertEquals(List.of(MethodLog.STREAM), STREAM_CALLS.names.subList(streamBefore, STREAM_CALLS.names.size()));
  }

  static SelectRequest request(JsonObject in) {
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
    if (in.has("history")) {
      for (JsonElement r : in.getAsJsonArray("history")) {
        JsonObject round = r.getAsJsonObject();
        List<String> names = new java.util.ArrayList<>();
        round.getAsJsonArray("strategies").forEach(name -> names.add(name.getAsString()));
        request.round(names, longs(round.getAsJsonArray("labels")), doubles(round.getAsJsonArray("probabilities")));
      }
    }
    if (!in.get("budget").isJsonNull()) {
      request.budget(in.get("budget").getAsDouble());
    }
    if (!in.get("temperature").isJsonNull()) {
      request.temperature(in.get("temperature").getAsDouble());
    }
    if (in.has("models")) {
      for (JsonElement model : in.getAsJsonArray("models")) {
        request.model(Base64.getDecoder().decode(model.getAsString()));
      }
      request.modelOutput(switch (in.get("model_output").getAsString()) {
        case "probabilities" -> ModelOutput.MODEL_OUTPUT_PROBABILITIES;
        case "logits" -> ModelOutput.MODEL_OUTPUT_LOGITS;
        default -> throw new AssertionError("unknown model_output " + in.get("model_output"));
      });
      request.embeddingsOutput(in.get("embeddings_output").getAsString());
      request.mcDropoutSamples(in.get("mc_dropout_samples").getAsInt());
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
        case "model_inputs" -> request.modelInputs(tensor);
        default -> throw new AssertionError(
            "vector tensor " + entry.getKey() + " is not a request field this client knows");
      }
    }
    return request.build();
  }

  private static StoppingRequest stoppingRequest(JsonObject in) {
    StoppingRequest.Builder request = StoppingRequest.builder();
    if (!in.get("stop_set_predictions").isJsonNull()) {
      request.stopSetPredictions(tensor(in.getAsJsonObject("stop_set_predictions")));
    }
    if (!in.get("pool_probabilities").isJsonNull()) {
      request.poolProbabilities(tensor(in.getAsJsonObject("pool_probabilities")));
    }
    if (!in.get("kappa_threshold").isJsonNull()) {
      request.kappaThreshold(in.get("kappa_threshold").getAsDouble());
    }
    if (!in.get("kappa_window").isJsonNull()) {
      request.kappaWindow(in.get("kappa_window").getAsLong());
    }
    if (!in.get("uncertainty_threshold").isJsonNull()) {
      request.uncertaintyThreshold(in.get("uncertainty_threshold").getAsDouble());
    }
    if (!in.get("max_change_fraction").isJsonNull()) {
      request.maxChangeFraction(in.get("max_change_fraction").getAsDouble());
    }
    if (!in.get("uncertainty_aggregate").isJsonNull()) {
      request.uncertaintyAggregate(switch (in.get("uncertainty_aggregate").getAsString()) {
        case "mean" -> UncertaintyAggregate.UNCERTAINTY_AGGREGATE_MEAN;
        case "max" -> UncertaintyAggregate.UNCERTAINTY_AGGREGATE_MAX;
        default -> throw new AssertionError("unknown aggregate " + in.get("uncertainty_aggregate"));
      });
    }
    if (!in.get("rule").isJsonNull()) {
      request.rule(switch (in.get("rule").getAsString()) {
        case "all" -> StoppingRule.STOPPING_RULE_ALL;
        case "any" -> StoppingRule.STOPPING_RULE_ANY;
        default -> throw new AssertionError("unknown rule " + in.get("rule"));
      });
    }
    return request.build();
  }

  static Tensor tensor(JsonObject t) {
    long[] shape = longs(t.getAsJsonArray("shape"));
    JsonArray data = t.getAsJsonArray("data");
    String dtype = t.get("dtype").getAsString();
    if (dtype.equals("int64")) {
      return Tensor.int64(longs(data), shape);
    }
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

  private static double[] doubles(JsonArray array) {
    double[] out = new double[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).getAsDouble();
    }
    return out;
  }

  static boolean closeRelative(double got, double want) {
    return got == want || Math.abs(got - want) <= 1e-6 * Math.max(Math.abs(got), Math.abs(want));
  }

  /** Within 1e-6 relative, or 1e-9 absolute for values near zero (NumPy's allclose). */
  private static void assertClose(double want, double got, String what) {
    assertTrue(closeRelative(got, want) || Math.abs(got - want) <= 1e-9, what + " is " + got + "; want " + want);
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
      if (w.has("candidates_considered")) {
        assertEquals(w.get("candidates_considered").getAsLong(), g.candidatesConsidered(), name + " candidates");
      }
      if (w.has("auto_selection")) {
        checkAuto(name, w.get("auto_selection"), g.autoSelection());
      }
      if (w.has("adversarial_method")) {
        assertEquals(w.get("adversarial_method").getAsString(), g.adversarialMethod(), name + " adversarial method");
      }
      if (w.has("adversarial_points")) {
        if (w.get("adversarial_points").isJsonNull()) {
          assertEquals(null, g.adversarialPoints(), name + " adversarial points");
        } else {
          JsonObject points = w.getAsJsonObject("adversarial_points");
          assertTrue(g.adversarialPoints() != null, name + " has no adversarial points");
          assertEquals(dev.labelwise.v1.DataType.DATA_TYPE_FLOAT64, g.adversarialPoints().dtype());
          assertArrayEquals(longs(points.getAsJsonArray("shape")), g.adversarialPoints().shape(), name + " point shape");
          double[] wantPoints = doubles(points.getAsJsonArray("data"));
          double[] gotPoints = g.adversarialPoints().toDoubleArray();
          assertEquals(wantPoints.length, gotPoints.length);
          for (int j = 0; j < wantPoints.length; j++) {
            assertClose(wantPoints[j], gotPoints[j], name + " adversarial point element " + j);
          }
        }
      }
    }
  }

  private static void checkAuto(String name, JsonElement want, dev.labelwise.v1.AutoSelection got) {
    if (want.isJsonNull()) {
      assertEquals(null, got, name + " auto selection");
      return;
    }
    JsonObject w = want.getAsJsonObject();
    assertTrue(got != null, name + " has no auto selection");
    List<String> strategies = new java.util.ArrayList<>();
    w.getAsJsonArray("strategies").forEach(s -> strategies.add(s.getAsString()));
    assertEquals(strategies, got.getStrategiesList(), name + " arm of each pick");
    assertEquals(w.get("reward").getAsString(), got.getReward());
    assertEquals(w.get("history_rounds").getAsLong(), got.getHistoryRounds());
    assertEquals(w.get("history_items").getAsLong(), got.getHistoryItems());
    JsonArray arms = w.getAsJsonArray("arms");
    assertEquals(arms.size(), got.getArmsCount(), name + " arms");
    for (int i = 0; i < arms.size(); i++) {
      JsonObject arm = arms.get(i).getAsJsonObject();
      dev.labelwise.v1.AutoArm ours = got.getArms(i);
      assertEquals(arm.get("name").getAsString(), ours.getName());
      assertEquals(arm.get("picks").getAsLong(), ours.getPicks(), ours.getName() + " picks");
      assertClose(arm.get("weight").getAsDouble(), ours.getWeight(), ours.getName() + " weight");
      assertClose(arm.get("expected_reward").getAsDouble(), ours.getExpectedReward(), ours.getName() + " reward");
      assertClose(arm.get("evidence").getAsDouble(), ours.getEvidence(), ours.getName() + " evidence");
    }
  }
}
