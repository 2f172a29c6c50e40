package labelwise

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// modelLog records, per SelectQueries call (unary or streamed), how each model was sent:
// "onnx" (its bytes) or "sha256" (its hash).
type modelLog struct {
	mu    sync.Mutex
	calls [][]string
}

func (l *modelLog) add(m any) {
	request, ok := m.(*labelwisev1.SelectQueriesRequest)
	if !ok {
		if chunk, isChunk := m.(*labelwisev1.SelectQueriesStreamRequest); isChunk {
			request = chunk.GetChunk()
		}
	}
	if len(request.GetModels()) == 0 {
		return // a stream chunk after the first, or a call without models
	}
	var sources []string
	for _, model := range request.GetModels() {
		switch model.GetSource().(type) {
		case *labelwisev1.Model_Onnx:
			sources = append(sources, "onnx")
		case *labelwisev1.Model_Sha256:
			sources = append(sources, "sha256")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, sources)
}

func (l *modelLog) options() Option {
	return WithDialOptions(
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			l.add(req)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc,
			cc *grpc.ClientConn, method string, streamer grpc.Streamer,
			opts ...grpc.CallOption) (grpc.ClientStream, error) {
			stream, err := streamer(ctx, desc, cc, method, opts...)
			return loggedStream{stream, l}, err
		}))
}

type loggedStream struct {
	grpc.ClientStream
	log *modelLog
}

func (s loggedStream) SendMsg(m any) error {
	s.log.add(m)
	return s.ClientStream.SendMsg(m)
}

func loadModelVectors(t *testing.T) map[string]vector {
	vectors := loadJSON[vector](t, "../../tests/vectors/model/*.json")
	for name, v := range vectors {
		if len(v.Request.Models) == 0 {
			t.Fatalf("model vector %s has no models", name)
		}
	}
	return vectors
}

func TestModelVectors(t *testing.T) {
	for name, v := range loadModelVectors(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Each client sends the models' bytes on its first call and their hashes after;
			// the small-message one streams, with the models in the first chunk.
			var unary, streamed modelLog
			var unaryMethods, streamMethods methodLog
			clients := []*Client{
				dial(t, unary.options(), unaryMethods.options()),
				dial(t, streamed.options(), streamMethods.options(),
					WithMaxMessageBytes(headerRoom+1), WithChunkBytes(256)),
			}
			for _, client := range clients {
				for range 2 {
					got, err := client.SelectQueries(ctx, v.request(t))
					if err != nil {
						t.Fatal(err)
					}
					checkResponse(t, got, v)
				}
			}
			m := len(v.Request.Models)
			want := [][]string{slices.Repeat([]string{"onnx"}, m), slices.Repeat([]string{"sha256"}, m)}
			if !reflect.DeepEqual(unary.calls, want) || !reflect.DeepEqual(streamed.calls, want) {
				t.Errorf("models sent unary %v, streamed %v; want %v each", unary.calls, streamed.calls, want)
			}
			if !reflect.DeepEqual(unaryMethods.names, []string{unaryMethod, unaryMethod}) ||
				!reflect.DeepEqual(streamMethods.names, []string{streamMethod, streamMethod}) {
				t.Errorf("calls %v and %v", unaryMethods.names, streamMethods.names)
			}
		})
	}
}

func TestModelVectorsHaveDeepFoolPoints(t *testing.T) {
	// The replay above must check adversarial points somewhere, not only their absence.
	for _, v := range loadModelVectors(t) {
		for _, r := range v.Response.Results {
			if len(r.AdversarialPoints) > 0 && string(r.AdversarialPoints) != "null" {
				return
			}
		}
	}
	t.Fatal("no model vector has adversarial points")
}

func TestModelIsResentWhenTheServerNoLongerHoldsIt(t *testing.T) {
	// A server that caches no model: every call by hash misses with MODEL_NOT_CACHED and the
	// client resends the bytes, once, and the call succeeds; unary and streamed alike. The
	// model is read from a file.
	uncached, err := uncachedServer()
	if err != nil {
		t.Fatal(err)
	}
	v := loadModelVectors(t)["model_linear"]
	path := filepath.Join(t.TempDir(), "linear.onnx")
	if err := os.WriteFile(path, v.Request.Models[0], 0o600); err != nil {
		t.Fatal(err)
	}
	models, err := ReadModels(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, opts := range [][]Option{nil, {WithMaxMessageBytes(headerRoom + 1), WithChunkBytes(256)}} {
		var log modelLog
		client := dialTo(t, uncached, append(opts, log.options())...)
		for range 2 {
			req := v.request(t)
			req.Models = models
			got, err := client.SelectQueries(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, got, v)
		}
		want := [][]string{{"onnx"}, {"sha256"}, {"onnx"}}
		if !reflect.DeepEqual(log.calls, want) {
			t.Errorf("models sent %v; want %v", log.calls, want)
		}
	}
	if _, err := ReadModels(filepath.Join(t.TempDir(), "missing.onnx")); err == nil {
		t.Error("a missing model file was read")
	}
}

func TestAModelTheServerRejectsIsNotResent(t *testing.T) {
	// Bytes that are no ONNX model: INVALID_ARGUMENT naming models[0], after one call.
	var log modelLog
	embeddings, _ := Float32Tensor([]float32{1, 2, 3, 4}, 2, 2)
	_, err := dial(t, log.options()).SelectQueries(context.Background(), &Request{
		Strategies: []Strategy{{Name: "entropy"}}, K: 1, Models: [][]byte{[]byte("not onnx")},
		Embeddings: embeddings})
	var lwErr *Error
	if !errors.As(err, &lwErr) || !strings.HasPrefix(lwErr.Field(), "models[0]") {
		t.Fatalf("got %v; want a violation of models[0]", err)
	}
	if !reflect.DeepEqual(log.calls, [][]string{{"onnx"}}) {
		t.Fatalf("models sent %v; want one call with the bytes", log.calls)
	}
}

func TestAnUnknownModelOutputIsRefusedBeforeSending(t *testing.T) {
	var calls methodLog
	_, err := dial(t, calls.options()).SelectQueries(context.Background(), &Request{
		Strategies: []Strategy{{Name: "entropy"}}, K: 1, Models: [][]byte{{1}}, ModelOutput: "scores"})
	if err == nil || !strings.Contains(err.Error(), "ModelOutput") || len(calls.names) != 0 {
		t.Fatalf("got %v after calls %v; want a ModelOutput error and no call", err, calls.names)
	}
}

func TestModelSettingsReachTheHeader(t *testing.T) {
	req := &Request{ModelOutput: OutputLogits, EmbeddingsOutput: "hidden", MCDropoutSamples: 4,
		InferenceBatchRows: 128, InferenceTimeout: 1500 * time.Millisecond}
	header, err := req.header()
	if err != nil {
		t.Fatal(err)
	}
	if header.GetModelOutput() != labelwisev1.ModelOutput_MODEL_OUTPUT_LOGITS ||
		header.GetEmbeddingsOutput() != "hidden" || header.GetMcDropoutSamples() != 4 ||
		header.GetInferenceBatchRows() != 128 || header.GetInferenceTimeoutSeconds() != 1.5 {
		t.Fatalf("header %v", header)
	}
	if unset, _ := (&Request{}).header(); unset.InferenceTimeoutSeconds != nil {
		t.Fatal("a zero InferenceTimeout was sent")
	}
}

func TestAnInferenceTimeoutIsDeadlineExceeded(t *testing.T) {
	// 1 ns of inference is over before the first batch of rows is done.
	v := loadModelVectors(t)["model_linear"]
	req := v.request(t)
	req.InferenceTimeout = time.Nanosecond
	req.InferenceBatchRows = 1
	_, err := dial(t).SelectQueries(context.Background(), req)
	var lwErr *Error
	if !errors.As(err, &lwErr) || lwErr.Code != codes.DeadlineExceeded {
		t.Fatalf("got %v; want DEADLINE_EXCEEDED", err)
	}
}

func TestConcurrentCallsShareTheSentModels(t *testing.T) {
	// One client from several goroutines: every call succeeds, and once the bytes have gone
	// through the calls after them go by hash (run with -race to check the digest set).
	v := loadModelVectors(t)["model_linear"]
	var log modelLog
	client := dial(t, log.options())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := v.request(t) // shared too: a call only reads its request
	if _, err := client.SelectQueries(ctx, req); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := client.SelectQueries(ctx, req)
			if err == nil && !reflect.DeepEqual(got.Results[0].Indices, v.Response.Results[0].Indices) {
				err = errors.New("a concurrent call ranked differently")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{{"onnx"}}
	for range 8 {
		want = append(want, []string{"sha256"})
	}
	if !reflect.DeepEqual(log.calls, want) {
		t.Fatalf("models sent %v; want the bytes once, then the hash", log.calls)
	}
}

func TestModelSettingsOutOfRangeNameTheirFields(t *testing.T) {
	// Each setting reaches the server, unary and in the stream's first chunk alike.
	v := loadModelVectors(t)["model_linear"]
	cases := map[string]func(*Request){
		"mc_dropout_samples":        func(r *Request) { r.MCDropoutSamples = 1 },
		"inference_batch_rows":      func(r *Request) { r.InferenceBatchRows = -1 },
		"inference_timeout_seconds": func(r *Request) { r.InferenceTimeout = -time.Second },
		"embeddings_output":         func(r *Request) { r.EmbeddingsOutput = "no_such_output" },
	}
	clients := []*Client{dial(t), dial(t, WithMaxMessageBytes(headerRoom+1), WithChunkBytes(256))}
	for field, change := range cases {
		for _, client := range clients {
			req := v.request(t)
			change(req)
			_, err := client.SelectQueries(context.Background(), req)
			var lwErr *Error
			if !errors.As(err, &lwErr) || lwErr.Code != codes.InvalidArgument || lwErr.Field() != field {
				t.Errorf("%s: got %v; want INVALID_ARGUMENT on %s", field, err, field)
			}
		}
	}
}
