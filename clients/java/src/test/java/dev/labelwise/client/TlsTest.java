package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.labelwise.v1.ListStrategiesRequest;
import dev.labelwise.v1.ListStrategiesResponse;
import dev.labelwise.v1.QuerySelectionServiceGrpc;
import dev.labelwise.v1.StrategyInfo;
import io.grpc.Grpc;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.TlsServerCredentials;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.TlsTesting;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The TLS option against a TLS server in this JVM (grpc-java's test certificates, issued for
 * *.test.google.fr), since `labelwise serve` itself speaks plaintext behind a mesh or proxy.
 */
class TlsTest {
  /** Answers ListStrategies with one strategy; enough to prove the handshake and the call. */
  private static final class OneStrategy extends QuerySelectionServiceGrpc.QuerySelectionServiceImplBase {
    @Override
    public void listStrategies(ListStrategiesRequest request, StreamObserver<ListStrategiesResponse> response) {
      response.onNext(ListStrategiesResponse.newBuilder()
          .addStrategies(StrategyInfo.newBuilder().setName("random")).build());
      response.onCompleted();
    }
  }

  @Test
  void connectsOverTlsTrustingAGivenCertificate(@TempDir Path dir) throws Exception {
    Path ca = dir.resolve("ca.pem");
    try (InputStream pem = TlsTesting.loadCert("ca.pem")) {
      Files.copy(pem, ca);
    }
    Server server;
    try (InputStream chain = TlsTesting.loadCert("server1.pem");
        InputStream key = TlsTesting.loadCert("server1.key")) {
      server = Grpc.newServerBuilderForPort(0, TlsServerCredentials.create(chain, key))
          .addService(new OneStrategy()).build().start();
    }
    String target = "localhost:" + server.getPort();
    try (LabelwiseClient trusting = LabelwiseClient.builder(target).trustCertificates(ca)
            .overrideAuthority("labelwise.test.google.fr").build();
        LabelwiseClient plaintext = LabelwiseClient.builder(target).build();
        LabelwiseClient systemRoots = LabelwiseClient.builder(target).tls()
            .overrideAuthority("labelwise.test.google.fr").build()) {
      assertEquals(List.of("random"),
          trusting.listStrategies().stream().map(StrategyInfo::getName).toList());
      // Plaintext cannot talk to a TLS port, nor can TLS trust a test CA the system lacks.
      assertEquals(Status.Code.UNAVAILABLE,
          assertThrows(LabelwiseException.class, plaintext::listStrategies).code());
      assertEquals(Status.Code.UNAVAILABLE,
          assertThrows(LabelwiseException.class, systemRoots::listStrategies).code());
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
