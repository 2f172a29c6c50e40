/**
 * The Java client of labelwise, the active-learning query selection service: send what your
 * model says about an unlabeled pool, get back for each strategy the pool indices to label
 * next, best first, with their scores.
 *
 * <pre>{@code
 * try (LabelwiseClient client = LabelwiseClient.builder("localhost:50051").build()) {
 *   SelectResponse response = client.select(SelectRequest.builder()
 *       .strategy("entropy").k(10).probabilities(Tensor.float32(p, n, c)).build());
 *   long[] picks = response.get("entropy").indices();
 * }
 * }</pre>
 *
 * <p>{@link LabelwiseClient} wraps the generated stubs of {@code dev.labelwise.v1}; pools whose
 * request would exceed the maximum message size go through the streaming call on their own.
 * Requests may carry ONNX models instead ({@link SelectRequest.Builder#model(byte[])}: model
 * mode), and {@link LabelwiseClient#checkStopping} asks whether labeling should stop. A failed
 * call throws the unchecked {@link LabelwiseException}.
 */
package dev.labelwise.client;
