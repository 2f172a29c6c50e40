package labelwise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// address is the server TestMain starts: the real `labelwise serve` on a free port.
var address string

// uncachedServer is a second server, one that caches no model (for the hash-first protocol's
// resend); it starts beside the first so that its start-up overlaps the tests.
var uncachedServer = sync.OnceValues(func() (string, error) {
	target, stop, err := startServer("--model-cache-bytes", "0")
	if err == nil {
		stopUncached = stop
	}
	return target, err
})

var stopUncached = func() {}

func TestMain(m *testing.M) {
	go func() { _, _ = uncachedServer() }()
	var stop func()
	var err error
	address, stop, err = startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	_, _ = uncachedServer() // started: stop it too
	stopUncached()
	os.Exit(code)
}

// startServer runs `python -m labelwise_server.cli serve --port 0 --port-file F` (plus
// flags) from the repository ($LABELWISE_PYTHON, else python3), waits until F names the
// bound port and returns the server's address and how to stop it. One worker process: each
// worker has its own model cache, and the tests count when a model goes by hash.
func startServer(flags ...string) (string, func(), error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "labelwise-go-test")
	if err != nil {
		return "", nil, err
	}
	portFile := filepath.Join(dir, "port")
	python := os.Getenv("LABELWISE_PYTHON")
	if python == "" {
		python = "python3"
	}
	cmd := exec.Command(python, append([]string{"-m", "labelwise_server.cli", "serve",
		"--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--compute-threads", "1",
		"--port-file", portFile, "--grace-seconds", "1", "--workers", "1"}, flags...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "service")+
		string(os.PathListSeparator)+filepath.Join(root, "clients/python/src"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if text, err := os.ReadFile(portFile); err == nil {
			port, err := strconv.Atoi(strings.TrimSpace(string(text)))
			if err != nil {
				stop()
				return "", nil, err
			}
			return fmt.Sprintf("127.0.0.1:%d", port), stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, errors.New("the labelwise server did not write its port within 60 s")
}

func dial(t *testing.T, opts ...Option) *Client {
	t.Helper()
	return dialTo(t, address, opts...)
}

func dialTo(t *testing.T, target string, opts ...Option) *Client {
	t.Helper()
	client, err := Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

type vectorTensor struct {
	DType string    `json:"dtype"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

type vectorResult struct {
	Name      string                    `json:"name"`
	Params    map[string]map[string]any `json:"params"`
	Indices   []int64                   `json:"indices"`
	Scores    []float64                 `json:"scores"`
	TotalCost float64                   `json:"total_cost"`
	// Model-mode vectors only: a tensor or null, absent elsewhere.
	AdversarialPoints    json.RawMessage `json:"adversarial_points"`
	CandidatesConsidered *int64          `json:"candidates_considered"`
	// History vectors only: auto's report, or null.
	AutoSelection     json.RawMessage `json:"auto_selection"`
	AdversarialMethod *string         `json:"adversarial_method"`
}

type vector struct {
	Request struct {
		Strategies []struct {
			Name   string                    `json:"name"`
			Params map[string]map[string]any `json:"params"`
		} `json:"strategies"`
		K           int64                   `json:"k"`
		Seed        uint64                  `json:"seed"`
		Exclude     []int64                 `json:"exclude"`
		ClampK      bool                    `json:"clamp_k"`
		Budget      *float64                `json:"budget"`
		Temperature *float64                `json:"temperature"`
		Tensors     map[string]vectorTensor `json:"tensors"`
		// Model mode (tests/vectors/model): ONNX bytes, base64 in the JSON.
		Models           [][]byte `json:"models"`
		ModelOutput      string   `json:"model_output"`
		EmbeddingsOutput string   `json:"embeddings_output"`
		MCDropoutSamples uint32   `json:"mc_dropout_samples"`
		// History vectors (tests/vectors/history): the past rounds for auto.
		History []struct {
			Strategies    []string  `json:"strategies"`
			Labels        []int64   `json:"labels"`
			Probabilities []float64 `json:"probabilities"`
		} `json:"history"`
	} `json:"request"`
	Response struct {
		PoolSize int64          `json:"pool_size"`
		Results  []vectorResult `json:"results"`
	} `json:"response"`
}

func (v vectorTensor) tensor(t *testing.T) *Tensor {
	var tensor *Tensor
	var err error
	switch v.DType {
	case "float32":
		data := make([]float32, len(v.Data))
		for i, x := range v.Data {
			data[i] = float32(x)
		}
		tensor, err = Float32Tensor(data, v.Shape...)
	case "int64":
		data := make([]int64, len(v.Data))
		for i, x := range v.Data {
			data[i] = int64(x)
		}
		tensor, err = Int64Tensor(data, v.Shape...)
	default:
		tensor, err = Float64Tensor(v.Data, v.Shape...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tensor
}

// vectorParam turns {"int": 3} / {"double": 0.5} / {"string": "max"} / {"bool": true} into
// the Go value the wrapper sends.
func vectorParam(value map[string]any) any {
	for kind, v := range value {
		switch kind {
		case "int":
			return int64(v.(float64))
		case "double":
			return v.(float64)
		case "string":
			return v.(string)
		case "bool":
			return v.(bool)
		}
	}
	return nil
}

func (v vector) request(t *testing.T) *Request {
	in := v.Request
	req := &Request{K: in.K, Seed: in.Seed, Exclude: in.Exclude, ClampK: in.ClampK,
		Budget: in.Budget, Temperature: in.Temperature, Models: in.Models,
		ModelOutput: ModelOutput(in.ModelOutput), EmbeddingsOutput: in.EmbeddingsOutput,
		MCDropoutSamples: in.MCDropoutSamples}
	for _, s := range in.Strategies {
		params := map[string]any{}
		for name, value := range s.Params {
			params[name] = vectorParam(value)
		}
		req.Strategies = append(req.Strategies, Strategy{Name: s.Name, Params: params})
	}
	for _, round := range in.History {
		req.History = append(req.History, Round{Strategies: round.Strategies, Labels: round.Labels,
			Probabilities: round.Probabilities})
	}
	targets := map[string]**Tensor{
		"probabilities": &req.Probabilities, "logits": &req.Logits, "committee": &req.Committee,
		"committee_logits": &req.CommitteeLogits, "embeddings": &req.Embeddings,
		"labeled_embeddings": &req.LabeledEmbeddings, "costs": &req.Costs,
		"multilabel_probabilities": &req.MultilabelProbabilities, "multilabel_logits": &req.MultilabelLogits,
		"multilabel_committee": &req.MultilabelCommittee, "multilabel_committee_logits": &req.MultilabelCommitteeLogits,
		"regression_mean": &req.RegressionMean, "regression_std": &req.RegressionStd,
		"regression_samples": &req.RegressionSamples, "labeled_targets": &req.LabeledTargets,
		"structured_probabilities": &req.StructuredProbabilities, "structured_logits": &req.StructuredLogits,
		"structured_committee": &req.StructuredCommittee, "structured_committee_logits": &req.StructuredCommitteeLogits,
		"structured_mask": &req.StructuredMask, "model_inputs": &req.ModelInputs,
	}
	for name, tensor := range in.Tensors {
		target, ok := targets[name]
		if !ok {
			t.Fatalf("vector tensor %q is not a request field this client knows", name)
		}
		*target = tensor.tensor(t)
	}
	return req
}

func closeRelative(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-6*math.Max(math.Abs(got), math.Abs(want))
}

func checkResponse(t *testing.T, got *Response, v vector) {
	t.Helper()
	want := v.Response
	if got.PoolSize != want.PoolSize || len(got.Results) != len(want.Results) {
		t.Fatalf("pool_size %d with %d results; want %d with %d", got.PoolSize, len(got.Results),
			want.PoolSize, len(want.Results))
	}
	for i, w := range want.Results {
		g := got.Results[i]
		wantParams := map[string]any{}
		for name, value := range w.Params {
			wantParams[name] = vectorParam(value)
		}
		if g.Name != w.Name || !reflect.DeepEqual(g.Params, wantParams) {
			t.Errorf("result %d is %s%v; want %s%v", i, g.Name, g.Params, w.Name, wantParams)
		}
		if !reflect.DeepEqual(g.Indices, w.Indices) {
			t.Errorf("%s indices %v; want %v", w.Name, g.Indices, w.Indices)
		}
		if len(g.Scores) != len(w.Scores) {
			t.Fatalf("%s has %d scores; want %d", w.Name, len(g.Scores), len(w.Scores))
		}
		for j := range w.Scores {
			if !closeRelative(g.Scores[j], w.Scores[j]) {
				t.Errorf("%s score %d is %v; want %v", w.Name, j, g.Scores[j], w.Scores[j])
			}
		}
		if !closeRelative(g.TotalCost, w.TotalCost) {
			t.Errorf("%s total cost %v; want %v", w.Name, g.TotalCost, w.TotalCost)
		}
		if w.AdversarialMethod != nil && g.AdversarialMethod != *w.AdversarialMethod {
			t.Errorf("%s ran method %q; want %q", w.Name, g.AdversarialMethod, *w.AdversarialMethod)
		}
		if w.CandidatesConsidered != nil && g.CandidatesConsidered != *w.CandidatesConsidered {
			t.Errorf("%s considered %d candidates; want %d", w.Name, g.CandidatesConsidered,
				*w.CandidatesConsidered)
		}
		checkAdversarialPoints(t, w.Name, g.AdversarialPoints, w.AdversarialPoints)
		checkAutoSelection(t, w.Name, g, w.AutoSelection)
	}
}

// checkAdversarialPoints compares a result's points with the vector's (absent: not checked;
// null: there must be none), each within 1e-6 relative (1e-9 absolute near zero).
func checkAdversarialPoints(t *testing.T, name string, got *Tensor, want json.RawMessage) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	var points *vectorTensor
	if err := json.Unmarshal(want, &points); err != nil {
		t.Fatalf("%s adversarial_points: %v", name, err)
	}
	if points == nil || got == nil {
		if points != nil || got != nil {
			t.Errorf("%s adversarial points %v; want %v", name, got != nil, points != nil)
		}
		return
	}
	values, err := got.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	shape := make([]int64, len(points.Shape))
	for i, size := range points.Shape {
		shape[i] = int64(size)
	}
	if !reflect.DeepEqual(got.Shape(), shape) || len(values) != len(points.Data) {
		t.Fatalf("%s adversarial points have shape %v; want %v", name, got.Shape(), shape)
	}
	for i, w := range points.Data {
		if math.Abs(values[i]-w) > 1e-9 && !closeRelative(values[i], w) {
			t.Errorf("%s adversarial point element %d is %v; want %v", name, i, values[i], w)
		}
	}
}

func loadVectors(t *testing.T) map[string]vector {
	return loadJSON[vector](t, "../../tests/vectors/*.json")
}

// loadJSON reads every file the pattern matches, keyed by its name without .json.
func loadJSON[V any](t *testing.T, pattern string) map[string]V {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test vectors match %s (%v)", pattern, err)
	}
	vectors := map[string]V{}
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v V
		if err := json.Unmarshal(text, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		vectors[strings.TrimSuffix(filepath.Base(path), ".json")] = v
	}
	return vectors
}

// methodLog records the full method name of every call made through a client.
type methodLog struct {
	mu    sync.Mutex
	names []string
}

func (l *methodLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

func (l *methodLog) options() Option {
	return WithDialOptions(
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			l.add(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc,
			cc *grpc.ClientConn, method string, streamer grpc.Streamer,
			opts ...grpc.CallOption) (grpc.ClientStream, error) {
			l.add(method)
			return streamer(ctx, desc, cc, method, opts...)
		}))
}

const (
	unaryMethod  = "/labelwise.v1.QuerySelectionService/SelectQueries"
	streamMethod = "/labelwise.v1.QuerySelectionService/SelectQueriesStream"
)

func TestVectors(t *testing.T) {
	var unary, streamed methodLog
	client := dial(t, unary.options())
	// A tiny message limit sends every vector through the stream, in several chunks.
	streaming := dial(t, streamed.options(), WithMaxMessageBytes(headerRoom+1), WithChunkBytes(256))
	for name, v := range loadVectors(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := client.SelectQueries(ctx, v.request(t))
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, got, v)
			got, err = streaming.SelectQueries(ctx, v.request(t))
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, got, v)
		})
	}
	for _, name := range unary.names {
		if name != unaryMethod {
			t.Errorf("the default client called %s; want only %s", name, unaryMethod)
		}
	}
	for _, name := range streamed.names {
		if name != streamMethod {
			t.Errorf("the small-message client called %s; want only %s", name, streamMethod)
		}
	}
}

// largePool is n rows of c float32 probabilities that differ row by row.
func largePool(t *testing.T, n, c int) *Tensor {
	data := make([]float32, n*c)
	for i := 0; i < n; i++ {
		top := 0.5 + 0.49*float32((i*7919)%n)/float32(n)
		data[i*c] = top
		for j := 1; j < c; j++ {
			data[i*c+j] = (1 - top) / float32(c-1)
		}
	}
	tensor, err := Float32Tensor(data, n, c)
	if err != nil {
		t.Fatal(err)
	}
	return tensor
}

func TestLargePoolStreams(t *testing.T) {
	// 300,000 x 4 float32 is 4.8 MB: over a 1 MiB message limit, so the client streams it
	// in ~256 KiB chunks; the answer must equal the unary call's.
	// 5,000 excluded indices precede the rows, in chunks of their own.
	pool := largePool(t, 300_000, 4)
	exclude := []int64{299_999}
	for i := int64(0); i < 5_000; i++ {
		exclude = append(exclude, 60*i+1)
	}
	req := &Request{Strategies: []Strategy{{Name: "margin"}, {Name: "entropy"}}, K: 50,
		Exclude: exclude, Probabilities: pool}
	var unary, streamed methodLog
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	whole, err := dial(t, unary.options()).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	chunked, err := dial(t, streamed.options(), WithMaxMessageBytes(1<<20),
		WithChunkBytes(256<<10)).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(unary.names, []string{unaryMethod}) ||
		!reflect.DeepEqual(streamed.names, []string{streamMethod}) {
		t.Fatalf("calls: default client %v, 1 MiB client %v", unary.names, streamed.names)
	}
	if whole.PoolSize != 300_000 || !reflect.DeepEqual(whole, chunked) {
		t.Fatalf("streamed answer differs from the unary one")
	}
	if len(whole.Results[0].Indices) != 50 {
		t.Fatalf("got %d indices; want 50", len(whole.Results[0].Indices))
	}
	excluded := map[int64]bool{}
	for _, i := range exclude {
		excluded[i] = true
	}
	for _, i := range whole.Results[1].Indices {
		if excluded[i] {
			t.Fatalf("excluded index %d selected", i)
		}
	}
}

func TestMultiLabelRegressionAndStructuredInputsStream(t *testing.T) {
	// n = 40 items; every kind of pool tensor, split along axis 0 or 1, plus both labeled-set
	// tensors, through 256-byte chunks; the answer must equal the unary call's.
	const n, m, labels, tokens, d, l = 40, 3, 4, 5, 3, 6
	random := rand.New(rand.NewPCG(7, 7))
	floats := func(size int, draw func() float32) []float32 {
		out := make([]float32, size)
		for i := range out {
			out[i] = draw()
		}
		return out
	}
	must := func(tensor *Tensor, err error) *Tensor {
		if err != nil {
			t.Fatal(err)
		}
		return tensor
	}
	gauss := func() float32 { return float32(random.NormFloat64()) }
	structured := make([]float32, m*n*2*tokens) // [m, n, c=2, T]
	for member := 0; member < m; member++ {
		for item := 0; item < n; item++ {
			for tok := 0; tok < tokens; tok++ {
				p := 0.05 + 0.9*random.Float32()
				base := (member*n+item)*2*tokens + tok
				structured[base], structured[base+tokens] = p, 1-p
			}
		}
	}
	mask := make([]float32, n*tokens)
	for i := range mask {
		if i%tokens < 1+(i/tokens)%tokens {
			mask[i] = 1
		}
	}
	targets := make([]float64, l)
	for i := range targets {
		targets[i] = random.NormFloat64()
	}
	samples := make([]float64, m*n)
	for i := range samples {
		samples[i] = random.NormFloat64()
	}
	cardinality := 1.5
	var strategies []Strategy
	for _, name := range []string{"multilabel_entropy", "label_cardinality_inconsistency",
		"multilabel_bald", "regression_variance", "igs", "structured_bald", "structured_mean_std"} {
		strategies = append(strategies, Strategy{Name: name})
	}
	req := &Request{
		Strategies: strategies, K: 5, Exclude: []int64{0, 39}, LabeledLabelCardinality: &cardinality,
		MultilabelProbabilities: must(Float32Tensor(floats(n*labels, random.Float32), n, labels)),
		MultilabelCommittee:     must(Float32Tensor(floats(m*n*labels, random.Float32), m, n, labels)),
		RegressionSamples:       must(Float64Tensor(samples, m, n)),
		Embeddings:              must(Float32Tensor(floats(n*d, gauss), n, d)),
		LabeledEmbeddings:       must(Float32Tensor(floats(l*d, gauss), l, d)),
		LabeledTargets:          must(Float64Tensor(targets, l)),
		StructuredCommittee:     must(Float32Tensor(structured, m, n, 2, tokens)),
		StructuredMask:          must(Float32Tensor(mask, n, tokens)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	whole, err := dial(t).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var streamed methodLog
	chunked, err := dial(t, streamed.options(), WithMaxMessageBytes(headerRoom+1), WithChunkBytes(256)).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed.names, []string{streamMethod}) || !reflect.DeepEqual(whole, chunked) {
		t.Fatalf("calls %v; streamed answer equals unary: %v", streamed.names, reflect.DeepEqual(whole, chunked))
	}
	for _, r := range whole.Results {
		if len(r.Indices) != 5 {
			t.Errorf("%s: %d indices; want 5", r.Name, len(r.Indices))
		}
	}
}

func TestMaxMessageBytesAloneKeepsStreamChunksUnderIt(t *testing.T) {
	// The default 4 MiB chunks would not fit a 1 MiB message; the client shrinks them.
	var calls methodLog
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := dial(t, calls.options(), WithMaxMessageBytes(1<<20)).SelectQueries(ctx, &Request{
		Strategies: []Strategy{{Name: "least_confidence"}}, K: 3, Probabilities: largePool(t, 200_000, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(calls.names, []string{streamMethod}) || len(resp.Results[0].Indices) != 3 {
		t.Fatalf("calls %v, response %+v", calls.names, resp.Results)
	}
}

func TestBadRequestNamesTheField(t *testing.T) {
	logits, _ := Float32Tensor([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	temperature := -1.0
	_, err := dial(t).SelectQueries(context.Background(), &Request{
		Strategies: []Strategy{{Name: "entropy"}}, K: 1, Logits: logits, Temperature: &temperature})
	var lwErr *Error
	if !errors.As(err, &lwErr) {
		t.Fatalf("got %v (%T); want *labelwise.Error", err, err)
	}
	if lwErr.Code != codes.InvalidArgument || lwErr.Field() != "temperature" ||
		!strings.Contains(lwErr.Violations[0].Description, "-1") {
		t.Fatalf("got %+v; want INVALID_ARGUMENT on field temperature", lwErr)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("status.Code(err) = %s", status.Code(err))
	}
	if !strings.Contains(err.Error(), "temperature") {
		t.Fatalf("message %q does not name the field", err)
	}
}

func TestUnknownParameterNamesItsPath(t *testing.T) {
	probs, _ := Float32Tensor([]float32{0.5, 0.5, 0.9, 0.1}, 2, 2)
	_, err := dial(t).SelectQueries(context.Background(), &Request{
		Strategies: []Strategy{{Name: "entropy"}, {Name: "bald", Params: map[string]any{"nope": 1}}},
		K:          1, Probabilities: probs})
	var lwErr *Error
	if !errors.As(err, &lwErr) || !strings.HasPrefix(lwErr.Field(), "strategies[1]") {
		t.Fatalf("got %v; want a violation under strategies[1]", err)
	}
}

func TestDeadline(t *testing.T) {
	pool := largePool(t, 200_000, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := dial(t).SelectQueries(ctx, &Request{
		Strategies: []Strategy{{Name: "entropy"}}, K: 10, Probabilities: pool})
	var lwErr *Error
	if !errors.As(err, &lwErr) || lwErr.Code != codes.DeadlineExceeded {
		t.Fatalf("got %v; want DEADLINE_EXCEEDED", err)
	}
}

func TestListStrategies(t *testing.T) {
	strategies, err := dial(t).ListStrategies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range strategies {
		names[s.GetName()] = true
	}
	for _, want := range []string{"random", "entropy", "margin", "bald"} {
		if !names[want] {
			t.Errorf("ListStrategies lacks %q", want)
		}
	}
}

func TestLabelQualityMethods(t *testing.T) {
	methods, err := dial(t).LabelQualityMethods(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range methods {
		names = append(names, m.GetName())
	}
	want := []string{"crowdlab", "dawid_skene", "bayes_em", "activelab", "interval_estimation"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("LabelQualityMethods = %v, want %v", names, want)
	}
	params := methods[1].GetParams()
	if len(params) != 2 || params[0].GetName() != "max_iterations" || params[0].GetDefaultValue().GetIntValue() != 100 {
		t.Errorf("dawid_skene params = %v", params)
	}
	params = methods[2].GetParams()
	if len(params) != 3 || params[2].GetName() != "accuracy_prior_strength" ||
		params[2].GetDefaultValue().GetDoubleValue() != 10 {
		t.Errorf("bayes_em params = %v", params)
	}
}

func TestTensorIsLittleEndian(t *testing.T) {
	tensor, err := Float32Tensor([]float32{1, -2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}
	if !reflect.DeepEqual(tensor.raw, want) {
		t.Fatalf("raw %x; want %x", tensor.raw, want)
	}
	if _, err := Float32Tensor([]float32{1, 2, 3}, 2, 2); err == nil {
		t.Fatal("a shape that does not match the data was accepted")
	}
}

func TestCommitteeSplitsAlongAxisOne(t *testing.T) {
	// [m=2, n=3, c=1]: rows 1..2 of each member.
	tensor, _ := Float64Tensor([]float64{0, 1, 2, 10, 11, 12}, 2, 3, 1)
	part, _ := Float64Tensor([]float64{1, 2, 11, 12}, 2, 2, 1)
	got := tensor.slice(1, 1, 3)
	if !reflect.DeepEqual(got.raw, part.raw) || !reflect.DeepEqual(got.shape, []int64{2, 2, 1}) {
		t.Fatalf("slice gave shape %v raw %x", got.shape, got.raw)
	}
}
