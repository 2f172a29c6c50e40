package dev.labelwise.client;

// The README's first example, run by ExamplesTest against the real server. scripts/docs
// copies the "select" regions into README.md, showing serverAddress() as "localhost:50051".
// docs:start select
import dev.labelwise.client.*;
import java.time.Duration;
import java.util.Arrays;

public class Example {
  public static void main(String[] args) {
    float[] probs = {0.9f, 0.1f, 0.55f, 0.45f, 0.7f, 0.3f}; // [n=3, c=2], row-major
    try (LabelwiseClient client = LabelwiseClient.builder(serverAddress()) // .tls() for TLS
        .defaultDeadline(Duration.ofSeconds(5)).build()) {
      SelectResponse response = client.select(SelectRequest.builder().strategy("margin")
          .strategy("entropy").k(2).probabilities(Tensor.float32(probs, 3, 2)).build());
      for (Selection s : response.selections()) { // margin [1, 2] [-0.1, -0.4] ...
        System.out.println(
            s.name() + " " + Arrays.toString(s.indices()) + " " + Arrays.toString(s.scores()));
      }
    } catch (LabelwiseException e) {
      System.err.println(e.code() + " field " + e.field() + ": " + e.violations());
    }
  }
  // docs:end select

  static String serverAddress() {
    return LabelwiseServer.address();
  }
  // docs:start select
}
// docs:end select
