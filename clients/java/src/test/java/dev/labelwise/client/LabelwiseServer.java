package dev.labelwise.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The real {@code labelwise serve --port 0} of this repository ($LABELWISE_PYTHON, else
 * python3), started once for the whole test run and stopped (SIGTERM) at its end. Its log is
 * target/labelwise-server.log. {@link #startOwn} starts another with flags of its own.
 */
public final class LabelwiseServer implements BeforeAllCallback {
  static final Path REPOSITORY = Path.of("../..").toAbsolutePath().normalize();

  private static volatile String address;

  /** "127.0.0.1:port" of the running server. */
  static String address() {
    return address;
  }

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    ExtensionContext.Store store = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL);
    store.computeIfAbsent(LabelwiseServer.class.getName(), key -> {
      Running running = start("labelwise-server.log");
      address = running.address();
      return running;
    }, Running.class);
  }

  /**
   * A server of the caller's own, with extra serve flags (such as --model-cache-bytes 0); its
   * log is target/labelwise-server-NAME.log. Close it to stop it.
   */
  static Running startOwn(String name, String... flags) {
    return start("labelwise-server-" + name + ".log", flags);
  }

  /** A running server; closing it stops it (the shared one closes with the whole run). */
  record Running(Process process, Path dir, String address) implements AutoCloseable {
    @Override
    public void close() throws IOException {
      process.destroy(); // SIGTERM: the server drains and exits
      try {
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor();
        }
      } catch (InterruptedException interrupted) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      Files.deleteIfExists(dir.resolve("port"));
      Files.deleteIfExists(dir);
    }
  }

  private static Running start(String logName, String... flags) {
    try {
      Path dir = Files.createTempDirectory("labelwise-java-test");
      Path portFile = dir.resolve("port");
      String python = System.getenv().getOrDefault("LABELWISE_PYTHON", "python3");
      List<String> arguments = new ArrayList<>(List.of(python, "-m", "labelwise_server.cli",
          "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
          "--compute-threads", "1", "--grace-seconds", "1", "--port-file", portFile.toString()));
      arguments.addAll(List.of(flags));
      ProcessBuilder command = new ProcessBuilder(arguments);
      command.environment().put("PYTHONPATH", REPOSITORY.resolve("service") + java.io.File.pathSeparator
          + REPOSITORY.resolve("clients/python/src"));
      Path log = Path.of("target", logName);
      command.redirectErrorStream(true).redirectOutput(log.toFile());
      Process process = command.start();
      Instant deadline = Instant.now().plus(Duration.ofSeconds(60));
      while (Instant.now().isBefore(deadline)) {
        if (Files.exists(portFile)) {
          String port = Files.readString(portFile, StandardCharsets.UTF_8).trim();
          if (!port.isEmpty()) {
            return new Running(process, dir, "127.0.0.1:" + Integer.parseInt(port));
          }
        }
        if (!process.isAlive()) {
          break;
        }
        Thread.sleep(50);
      }
      new Running(process, dir, null).close();
      throw new IllegalStateException("the labelwise server did not start; its log:\n"
          + Files.readString(log, StandardCharsets.UTF_8));
    } catch (IOException | InterruptedException e) {
      throw new IllegalStateException("could not start the labelwise server", e);
    }
  }
}
