package dev.labelwise.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed call: the gRPC status code and message and, for a rejected request, the fields at
 * fault (the server's {@code google.rpc.BadRequest}) and the reason (its
 * {@code google.rpc.ErrorInfo}, such as {@code OUT_OF_RANGE}). The gRPC exception is the cause.
 */
public class LabelwiseException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;
  private final transient List<FieldViolation> violations;
  private final String reason;

  public LabelwiseException(
      Status.Code code, String message, List<FieldViolation> violations, String reason,
      Throwable cause) {
    super(describe(code, message, violations), cause);
    this.code = code;
    this.violations = List.copyOf(violations);
    this.reason = reason;
  }

  /** The call's status code, for example INVALID_ARGUMENT or DEADLINE_EXCEEDED. */
  public Status.Code code() {
    return code;
  }

  /** The request fields the server rejected; empty when it named none. */
  public List<FieldViolation> violations() {
    return violations;
  }

  /** The first rejected field's path, or null when the server named none. */
  public String field() {
    return violations.isEmpty() ? null : violations.get(0).field();
  }

  /** The server's ErrorInfo reason, or null when it sent none. */
  public String reason() {
    return reason;
  }

  /** The LabelwiseException for a gRPC failure (StatusRuntimeException, StatusException...). */
  static LabelwiseException from(Throwable error) {
    if (error instanceof LabelwiseException already) {
      return already;
    }
    Status status = Status.fromThrowable(error);
    List<FieldViolation> violations = new ArrayList<>();
    String reason = null;
    com.google.rpc.Status details = StatusProto.fromThrowable(error);
    if (details != null) {
      for (Any detail : details.getDetailsList()) {
        try {
          if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (detail.is(ErrorInfo.class) && reason == null) {
            reason = detail.unpack(ErrorInfo.class).getReason();
          }
        } catch (InvalidProtocolBufferException malformed) {
          // A detail that does not parse is left out; the code and message still tell.
        }
      }
    }
    String message = status.getDescription() == null ? "" : status.getDescription();
    return new LabelwiseException(status.getCode(), message, violations, reason, error);
  }

  private static String describe(Status.Code code, String message, List<FieldViolation> violations) {
    String text = code + ": " + message;
    if (!violations.isEmpty() && !message.contains(violations.get(0).field())) {
      FieldViolation first = violations.get(0);
      text += " (field " + first.field() + ": " + first.description() + ")";
    }
    return text;
  }
}
