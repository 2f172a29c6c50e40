package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.labelwise.v1.LabelQualityMethod;
import dev.labelwise.v1.LabelQualityMethodInfo;
import dev.labelwise.v1.StrategyInfo;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The wrapper against the real server: streaming, errors, deadlines, ListStrategies. */
@ExtendWith(LabelwiseServer.class)
class LabelwiseClientTest {
  private static LabelwiseClient client(MethodLog log) {
    return LabelwiseClient.builder(LabelwiseServer.address()).intercept(log)
        .defaultDeadline(Duration.ofSeconds(60)).build();
  }

  /** n rows of c float32 probabilities that differ row by row. */
  static Tensor largePool(int n, int c) {
    float[] data = new float[n * c];
    for (int i = 0; i < n; i++) {
      float top = 0.5f + 0.49f * (float) ((i * 7919L) % n) / n;
      data[i * c] = top;
      for (int j = 1; j < c; j++) {
        data[i * c + j] = (1 - top) / (c - 1);
      }
    }
    return Tensor.float32(data, n, c);
  }

  private static void assertSameAnswer(SelectResponse want, SelectResponse got) {
    assertEquals(want.poolSize(), got.poolSize());
    assertEquals(want.selections().size(), got.selections().size());
    for (int i = 0; i < want.selections().size(); i++) {
      Selection w = want.selections().get(i);
      Selection g = got.selections().get(i);
      assertEquals(w.name(), g.name());
      assertEquals(w.params(), g.params());
      assertArrayEquals(w.indices(), g.indices(), w.name());
      assertArrayEquals(w.scores(), g.scores(), w.name()); // byte for byte
      assertEquals(w.totalCost(), g.totalCost());
    }
  }

  @Test
  void streamsAPoolLargerThanOneMessageWithTheUnaryAnswer() {
    // 300,000 x 4 float32 is 4.8 MB: over a 1 MiB message limit, so the client streams it in
    // ~256 KiB chunks, and 5,000 excluded indices follow in chunks of their own.
    long[] exclude = new long[5_000];
    for (int i = 0; i < exclude.length; i++) {
      exclude[i] = 60L * i + 1;
    }
    SelectRequest request = SelectRequest.builder().strategy("margin").strategy("entropy")
        .k(50).exclude(exclude).exclude(299_999).probabilities(largePool(300_000, 4)).build();
    MethodLog unaryCalls = new MethodLog();
    MethodLog streamCalls = new MethodLog();
    SelectResponse whole;
    SelectResponse chunked;
    try (LabelwiseClient unary = client(unaryCalls);
        LabelwiseClient small = LabelwiseClient.builder(LabelwiseServer.address()).intercept(streamCalls)
            .maxMessageBytes(1 << 20).chunkBytes(256 << 10).build()) {
      whole = unary.select(request);
      chunked = small.select(request, Duration.ofSeconds(60));
    }
    assertEquals(List.of(MethodLog.UNARY), unaryCalls.names);
    assertEquals(List.of(MethodLog.STREAM), streamCalls.names);
    assertEquals(300_000, whole.poolSize());
    assertEquals(50, whole.get("margin").indices().length);
    Set<Long> excluded = java.util.Arrays.stream(exclude).boxed().collect(Collectors.toSet());
    for (long index : whole.get("entropy").indices()) {
      assertTrue(!excluded.contains(index) && index != 299_999, "excluded index " + index + " selected");
    }
    assertSameAnswer(whole, chunked);
  }

  @Test
  void multiLabelRegressionAndStructuredInputsStreamWithTheUnaryAnswer() {
    // n = 40 items; every kind of pool tensor, split along axis 0 or 1, plus two labeled-set
    // tensors, through 256-byte chunks.
    int n = 40;
    int m = 3;
    int labels = 4;
    int tokens = 5;
    int d = 3;
    int l = 6;
    java.util.Random random = new java.util.Random(7);
    float[] multilabel = new float[n * labels];
    for (int i = 0; i < multilabel.length; i++) {
      multilabel[i] = random.nextFloat();
    }
    float[] multilabelCommittee = new float[m * n * labels];
    for (int i = 0; i < multilabelCommittee.length; i++) {
      multilabelCommittee[i] = random.nextFloat();
    }
    double[] samples = new double[m * n];
    for (int i = 0; i < samples.length; i++) {
      samples[i] = random.nextGaussian();
    }
    float[] structured = new float[m * n * 2 * tokens]; // [m, n, c=2, T]
    for (int member = 0; member < m; member++) {
      for (int item = 0; item < n; item++) {
        for (int t = 0; t < tokens; t++) {
          float p = 0.05f + 0.9f * random.nextFloat();
          int base = ((member * n + item) * 2) * tokens + t;
          structured[base] = p;
          structured[base + tokens] = 1 - p;
        }
      }
    }
    float[] mask = new float[n * tokens];
    for (int i = 0; i < mask.length; i++) {
      mask[i] = i % tokens < 1 + (i / tokens) % tokens ? 1 : 0;
    }
    float[] embeddings = new float[n * d];
    for (int i = 0; i < embeddings.length; i++) {
      embeddings[i] = (float) random.nextGaussian();
    }
    float[] labeledEmbeddings = new float[l * d];
    for (int i = 0; i < labeledEmbeddings.length; i++) {
      labeledEmbeddings[i] = (float) random.nextGaussian();
    }
    double[] targets = new double[l];
    for (int i = 0; i < l; i++) {
      targets[i] = random.nextGaussian();
    }
    SelectRequest request = SelectRequest.builder()
        .strategy("multilabel_entropy").strategy("label_cardinality_inconsistency")
        .strategy("multilabel_bald").strategy("regression_variance").strategy("igs")
        .strategy("structured_bald").strategy("structured_mean_std")
        .k(5).exclude(0, 39).labeledLabelCardinality(1.5)
        .multilabelProbabilities(Tensor.float32(multilabel, n, labels))
        .multilabelCommittee(Tensor.float32(multilabelCommittee, m, n, labels))
        .regressionSamples(Tensor.float64(samples, m, n))
        .embeddings(Tensor.float32(embeddings, n, d))
        .labeledEmbeddings(Tensor.float32(labeledEmbeddings, l, d))
        .labeledTargets(Tensor.float64(targets, l))
        .structuredCommittee(Tensor.float32(structured, m, n, 2, tokens))
        .structuredMask(Tensor.float32(mask, n, tokens))
        .build();
    MethodLog streamCalls = new MethodLog();
    try (LabelwiseClient unary = client(new MethodLog());
        LabelwiseClient small = LabelwiseClient.builder(LabelwiseServer.address()).intercept(streamCalls)
            .maxMessageBytes((64 << 10) + 1).chunkBytes(256).build()) {
      SelectResponse whole = unary.select(request);
      assertEquals(n, whole.poolSize());
      for (Selection selection : whole.selections()) {
        assertEquals(5, selection.indices().length, selection.name());
      }
      assertSameAnswer(whole, small.select(request, Duration.ofSeconds(30)));
      assertEquals(List.of(MethodLog.STREAM), streamCalls.names);
    }
  }

  @Test
  void aMaxMessageSizeAloneKeepsStreamChunksUnderIt() {
    // The default 4 MiB chunks would not fit a 1 MiB message; the client shrinks them.
    MethodLog calls = new MethodLog();
    try (LabelwiseClient small = LabelwiseClient.builder(LabelwiseServer.address()).intercept(calls)
        .maxMessageBytes(1 << 20).build()) {
      SelectResponse response = small.select(SelectRequest.builder().strategy("least_confidence")
          .k(3).probabilities(largePool(200_000, 4)).build(), Duration.ofSeconds(60));
      assertEquals(List.of(MethodLog.STREAM), calls.names);
      assertEquals(3, response.get("least_confidence").indices().length);
    }
  }

  @Test
  void aBadRequestNamesTheField() {
    try (LabelwiseClient client = client(new MethodLog())) {
      LabelwiseException error = assertThrows(LabelwiseException.class, () -> client.select(
          SelectRequest.builder().strategy("entropy").k(1).temperature(-1)
              .logits(Tensor.float32(new float[] {1, 2, 3, 4, 5, 6}, 3, 2)).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
      assertEquals("temperature", error.field());
      assertTrue(error.violations().get(0).description().contains("-1"), error.violations().toString());
      assertTrue(error.reason() != null && !error.reason().isEmpty(), "no ErrorInfo reason");
      assertTrue(error.getMessage().contains("temperature"), error.getMessage());
      assertEquals(Status.Code.INVALID_ARGUMENT, Status.fromThrowable(error.getCause()).getCode());
    }
  }

  @Test
  void aStreamedBadRequestNamesTheFieldToo() {
    try (LabelwiseClient small = LabelwiseClient.builder(LabelwiseServer.address())
        .maxMessageBytes((64 << 10) + 1).chunkBytes(256).build()) {
      LabelwiseException error = assertThrows(LabelwiseException.class, () -> small.select(
          SelectRequest.builder().strategy("entropy").k(1).temperature(0)
              .logits(largePool(1_000, 2)).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
      assertEquals("temperature", error.field());
    }
  }

  @Test
  void anUnknownParameterNamesItsPath() {
    try (LabelwiseClient client = client(new MethodLog())) {
      LabelwiseException error = assertThrows(LabelwiseException.class, () -> client.select(
          SelectRequest.builder().strategy("entropy").strategy("bald", Map.of("nope", 1)).k(1)
              .probabilities(Tensor.float32(new float[] {0.5f, 0.5f, 0.9f, 0.1f}, 2, 2)).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
      assertTrue(error.field().startsWith("strategies[1]"), error.field());
    }
  }

  @Test
  void aDeadlineEndsTheCall() {
    SelectRequest request = SelectRequest.builder().strategy("entropy").k(10)
        .probabilities(largePool(200_000, 4)).build();
    try (LabelwiseClient client = client(new MethodLog());
        LabelwiseClient hurried = LabelwiseClient.builder(LabelwiseServer.address())
            .defaultDeadline(Duration.ofMillis(1)).build()) {
      LabelwiseException perCall = assertThrows(LabelwiseException.class,
          () -> client.select(request, Duration.ofMillis(1)));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, perCall.code());
      LabelwiseException byDefault = assertThrows(LabelwiseException.class, () -> hurried.select(request));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, byDefault.code());
    }
  }

  @Test
  void aBadStoppingRequestNamesTheField() {
    Tensor labels = Tensor.int64(new long[] {0, 1, 1, 0, 1, 1}, 2, 3);
    try (LabelwiseClient client = client(new MethodLog())) {
      LabelwiseException threshold = assertThrows(LabelwiseException.class, () -> client.checkStopping(
          StoppingRequest.builder().stopSetPredictions(labels).kappaThreshold(1.5).build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, threshold.code());
      assertEquals("kappa_threshold", threshold.field());
      assertTrue(threshold.violations().get(0).description().contains("1.5"), threshold.violations().toString());
      LabelwiseException negative = assertThrows(LabelwiseException.class, () -> client.checkStopping(
          StoppingRequest.builder().stopSetPredictions(Tensor.int64(new long[] {0, -1}, 1, 2)).build(),
          Duration.ofSeconds(10)));
      assertEquals("stop_set_predictions", negative.field());
      // And the server still answers a good one.
      StoppingVerdict verdict = client.checkStopping(StoppingRequest.builder().stopSetPredictions(labels).build());
      assertEquals(List.of("classification_change"), verdict.criteria().stream()
          .filter(StoppingCriterion::evaluated).map(StoppingCriterion::name).toList());
      assertEquals(1, verdict.kappas().length);
    }
  }

  @Test
  void listsTheStrategies() {
    try (LabelwiseClient client = client(new MethodLog())) {
      List<StrategyInfo> strategies = client.listStrategies();
      Set<String> names = strategies.stream().map(StrategyInfo::getName).collect(Collectors.toSet());
      assertTrue(names.containsAll(Set.of("random", "entropy", "margin", "bald")), names.toString());
      StrategyInfo margin = strategies.stream().filter(s -> s.getName().equals("margin")).findFirst().orElseThrow();
      assertEquals("uncertainty", margin.getFamily());
    }
  }

  @Test
  void listsTheLabelQualityMethods() {
    try (LabelwiseClient client = client(new MethodLog())) {
      List<LabelQualityMethodInfo> methods = client.labelQualityMethods();
      assertEquals(List.of("crowdlab", "dawid_skene", "bayes_em", "activelab", "interval_estimation"),
          methods.stream().map(LabelQualityMethodInfo::getName).toList());
      assertEquals(List.of("AssessLabels"), methods.get(1).getRpcsList());
      assertEquals("max_iterations", methods.get(1).getParams(0).getName());
      assertEquals("accuracy_prior_strength", methods.get(2).getParams(2).getName());
    }
  }

  @Test
  void bayesEmNeedsNoModel() {
    // num_classes alone gives c; the prior is then the class priors, with no model temperature.
    Tensor annotations = Tensor.int64(new long[] {0, 0, -1, 1, 1, 2, 2, -1, 2, 0, 1, 0}, 4, 3);
    try (LabelwiseClient client = client(new MethodLog())) {
      LabelAssessment got = client.assessLabels(AssessRequest.builder().annotations(annotations)
          .method(LabelQualityMethod.LABEL_QUALITY_METHOD_BAYES_EM).numClasses(3)
          .accuracyPriorStrength(2).build());
      assertEquals(LabelQualityMethod.LABEL_QUALITY_METHOD_BAYES_EM, got.method());
      assertEquals(4, got.consensusLabels().length);
      assertEquals(0, got.consensusLabels()[0]);
      assertEquals(2, got.consensusLabels()[2]);
      assertEquals(3, got.classPriors().length);
      assertTrue(got.iterations() >= 1, "iterations " + got.iterations());
      assertEquals(0.0, got.modelTemperature());
      assertNull(got.confusion());
      assertEquals(0, got.annotatorWeights().length);
      LabelwiseException error = assertThrows(LabelwiseException.class, () -> client.assessLabels(
          AssessRequest.builder().annotations(annotations)
              .method(LabelQualityMethod.LABEL_QUALITY_METHOD_BAYES_EM).numClasses(3)
              .accuracyPriorStrength(-1).build()));
      assertEquals("accuracy_prior_strength", error.field());
    }
  }

  @Test
  void aParameterOfAnUnsupportedTypeIsRefusedBeforeTheCall() {
    IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
        () -> SelectRequest.builder().strategy("core_set", Map.of("metric", List.of("cosine"))));
    assertTrue(error.getMessage().contains("metric"), error.getMessage());
  }
}
