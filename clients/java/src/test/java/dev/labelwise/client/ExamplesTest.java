package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.labelwise.v1.StoppingRule;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's examples against the real server: Example.main, and the "model" and
 * "stopping" regions below, which scripts/docs copies into README.md.
 */
@ExtendWith(LabelwiseServer.class)
class ExamplesTest {
  private Path classifier;

  /** The README shows it as Path.of("classifier.onnx"). */
  private Path exampleModelPath() {
    return classifier;
  }

  @Test
  void theFirstExampleSelects() {
    PrintStream out = System.out;
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
    try {
      Example.main(new String[0]);
    } finally {
      System.setOut(out);
    }
    String text = printed.toString(StandardCharsets.UTF_8);
    assertTrue(text.startsWith("margin [1, 2] "), text);
    assertTrue(text.contains("entropy [1, 2] "), text);
  }

  @Test
  void modelMode(@TempDir Path dir) throws Exception {
    // The softmax-linear model of tests/vectors/model/model_linear.json (6 inputs), as a file.
    String json = Files.readString(
        LabelwiseServer.REPOSITORY.resolve("tests/vectors/model/model_linear.json"));
    Matcher model = Pattern.compile("\"models\":\\s*\\[\\s*\"([^\"]+)\"").matcher(json);
    assertTrue(model.find());
    classifier = dir.resolve("classifier.onnx");
    Files.write(classifier, Base64.getDecoder().decode(model.group(1)));
    try (LabelwiseClient client = LabelwiseClient.builder(LabelwiseServer.address())
        .defaultDeadline(Duration.ofSeconds(30)).build()) {
      // docs:start model
      int n = 200, d = 6; // what the model takes: [n, d] float32 rows
      float[] features = new float[n * d];
      for (int i = 0; i < features.length; i++) {
        features[i] = (float) Math.sin(i);
      }
      SelectResponse response = client.select(SelectRequest.builder()
          .strategy("entropy").strategy("deepfool", Map.of("return_points", true))
          .k(20)
          .model(exampleModelPath()) // or model(byte[]); call it again for an ensemble
          .modelInputs(Tensor.float32(features, n, d)) // what the model takes; else embeddings(...)
          .build());
      Selection deepfool = response.get("deepfool");
      Tensor points = deepfool.adversarialPoints(); // float64 [20, d], aligned with indices()
      double[] flat = points.toDoubleArray(); // row-major
      // docs:end model
      assertEquals(20, deepfool.indices().length);
      assertArrayEquals(new long[] {20, 6}, points.shape());
      assertEquals(20 * 6, flat.length);
    }
  }

  @Test
  void checkStopping() {
    try (LabelwiseClient client = LabelwiseClient.builder(LabelwiseServer.address())
        .defaultDeadline(Duration.ofSeconds(5)).build()) {
      // docs:start stopping
      long[] labels = { // [r = 4, s = 6]: the last 4 rounds' labels on one stop set, oldest first
        0, 1, 2, 0, 1, 1,
        0, 1, 2, 0, 1, 2,
        0, 1, 2, 0, 1, 2,
        0, 1, 2, 0, 1, 2,
      };
      StoppingVerdict verdict = client.checkStopping(StoppingRequest.builder()
          .stopSetPredictions(Tensor.int64(labels, 4, 6)) // or float [r, s, c] probabilities
          .kappaWindow(2).rule(StoppingRule.STOPPING_RULE_ANY) // optional; defaults as the proto says
          .build()); // .poolProbabilities(Tensor.float32(probs, n, c)) is optional too
      System.out.println(verdict.stop()); // true: the last two pairs of rounds agree fully
      System.out.println(verdict.criterion("stabilizing_predictions").map(StoppingCriterion::value));
      System.out.println(java.util.Arrays.toString(verdict.kappas())); // r - 1 successive kappas
      // docs:end stopping
      assertTrue(verdict.stop());
      assertEquals(0.75, verdict.kappas()[0], 1e-9);
    }
  }
}
