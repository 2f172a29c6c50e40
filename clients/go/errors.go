package labelwise

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// FieldViolation names a request field the server rejected and why ("must be X; got Y").
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failed call: the gRPC code and message, and for INVALID_ARGUMENT the request
// fields at fault, read from the server's google.rpc.BadRequest detail. It keeps the status,
// so status.FromError and status.Code work on it too.
type Error struct {
	Code       codes.Code
	Message    string
	Violations []FieldViolation
	// Reason is the google.rpc.ErrorInfo reason, when the server sent one (for example
	// ReasonModelNotCached).
	Reason string
	status *status.Status
}

// ReasonModelNotCached is the ErrorInfo reason of NOT_FOUND for a model sent by its SHA-256
// that the server no longer holds; SelectQueries then resends the model's bytes on its own.
// Every reason is a value name of the proto's ErrorReason (labelwisev1.ErrorReason).
var ReasonModelNotCached = labelwisev1.ErrorReason_MODEL_NOT_CACHED.String()

func (e *Error) Error() string {
	if len(e.Violations) == 0 {
		return fmt.Sprintf("labelwise: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("labelwise: %s: %s (field %s)", e.Code, e.Message, e.Violations[0].Field)
}

// GRPCStatus is the call's status with its details, for status.FromError.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Field is the first violated field's path, or "" when the server named none.
func (e *Error) Field() string {
	if len(e.Violations) == 0 {
		return ""
	}
	return e.Violations[0].Field
}

// asError turns a gRPC error into an *Error; other errors pass through.
func asError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.Violations = append(out.Violations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			out.Reason = d.GetReason()
		}
	}
	return out
}
