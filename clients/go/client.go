// Package labelwise is the Go client of labelwise, the active-learning query selection
// service: send what your model says about an unlabeled pool, get back for each strategy the
// pool indices to label next, best first, with their scores.
//
//	client, err := labelwise.Dial("labelwise:50051")
//	probs, _ := labelwise.Float32Tensor(p, n, c) // p: []float32, row-major [n, c]
//	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the call's deadline
//	resp, err := client.SelectQueries(ctx, &labelwise.Request{
//		Strategies: []labelwise.Strategy{{Name: "entropy"}}, K: 10, Probabilities: probs})
//
// Pools whose request would exceed the maximum message size go through the streaming call
// in chunks along the pool axis, on their own; both calls give the same answer.
//
// In model mode (Request.Models) the server runs ONNX models on the pool itself; a model is
// sent in full once per client, then by its SHA-256. CheckStopping says whether labeling
// can stop.
package labelwise

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

const (
	// DefaultMaxMessageBytes is the largest message sent or received, the server's default.
	DefaultMaxMessageBytes = 256 << 20
	// DefaultChunkBytes is about how many bytes of pool rows each stream chunk carries.
	DefaultChunkBytes = 4 << 20
	// headerRoom is kept free of tensor bytes in a unary request for strategies, exclude etc.
	headerRoom = 64 << 10
)

// Strategy names a strategy (see ListStrategies) and its parameters; a parameter value is
// an int, int64, float64, string or bool.
type Strategy struct {
	Name   string
	Params map[string]any
}

// Request is one query selection. Set the pool inputs the strategies need; see the proto
// (labelwise/v1/query_selection.proto) for each field's rules.
type Request struct {
	Strategies  []Strategy
	K           int64
	Seed        uint64
	Exclude     []int64
	ClampK      bool
	Budget      *float64 // nil: no budget
	Temperature *float64 // nil: 1

	Probabilities     *Tensor // [n, c]
	Logits            *Tensor // [n, c]
	Committee         *Tensor // [m, n, c]
	CommitteeLogits   *Tensor // [m, n, c]
	Embeddings        *Tensor // [n, d]
	LabeledEmbeddings *Tensor // [l, d]
	Costs             *Tensor // [n]
	// ItemWeights [n] (>= 0): how many items each pool item stands for; read by badge only
	// (weighted k-means++ seeding, docs/scale.md).
	ItemWeights *Tensor

	MultilabelProbabilities   *Tensor  // [n, L]
	MultilabelLogits          *Tensor  // [n, L]
	MultilabelCommittee       *Tensor  // [m, n, L]
	MultilabelCommitteeLogits *Tensor  // [m, n, L]
	LabeledLabelCardinality   *float64 // nil: unset

	RegressionMean    *Tensor // [n]
	RegressionStd     *Tensor // [n]
	RegressionSamples *Tensor // [m, n]
	LabeledTargets    *Tensor // [l]

	StructuredProbabilities   *Tensor // [n, c, ...]
	StructuredLogits          *Tensor // [n, c, ...]
	StructuredCommittee       *Tensor // [m, n, c, ...]
	StructuredCommitteeLogits *Tensor // [m, n, c, ...]
	StructuredMask            *Tensor // [n, ...]

	// Model mode: serialized ONNX models (ReadModels reads .onnx files) that the server runs
	// on ModelInputs, or on Embeddings when ModelInputs is nil, to get the pool's
	// probabilities itself; two or more form an ensemble (a committee). Leave Probabilities,
	// Logits, Committee and CommitteeLogits unset. The first call with a model sends its
	// bytes; later calls on the same client send only its SHA-256, and the bytes again if
	// the server answers that it no longer holds the model.
	Models             [][]byte
	ModelOutput        ModelOutput   // what the models' class output holds; "": probabilities
	EmbeddingsOutput   string        // the models' output of embeddings [n, d']; "": none
	MCDropoutSamples   uint32        // 0: run the model once; else >= 2 dropout samples
	ModelInputs        *Tensor       // [n, d]
	InferenceBatchRows int64         // pool rows per inference call; 0: the server chooses
	InferenceTimeout   time.Duration // a limit on the time running the models; 0: none

	// History is the caller's past rounds, oldest first, for the "auto" strategy (see
	// docs/strategy-selection.md); other strategies ignore it.
	History []Round
}

// Round is one past labeling round (the proto's SelectionRound): the strategy that picked
// each labeled item (aligned with Labels, or one name for all; "" for items no strategy
// picked, such as the initial seed set), the class each received and, optionally, the
// model's [len(Labels), c] predictions for them before labeling, flattened row-major.
type Round struct {
	Strategies    []string
	Labels        []int64
	Probabilities []float64
}

// ModelOutput says what the models' class output holds.
type ModelOutput string

const (
	OutputProbabilities ModelOutput = "probabilities" // rows that sum to 1 (the default)
	OutputLogits        ModelOutput = "logits"        // softmaxed by the server at Temperature
)

var modelOutputs = map[ModelOutput]labelwisev1.ModelOutput{
	"":                  labelwisev1.ModelOutput_MODEL_OUTPUT_UNSPECIFIED,
	OutputProbabilities: labelwisev1.ModelOutput_MODEL_OUTPUT_PROBABILITIES,
	OutputLogits:        labelwisev1.ModelOutput_MODEL_OUTPUT_LOGITS,
}

// ReadModels reads ONNX model files, for Request.Models.
func ReadModels(paths ...string) ([][]byte, error) {
	models := make([][]byte, len(paths))
	for i, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("labelwise: model: %w", err)
		}
		models[i] = data
	}
	return models, nil
}

// Result is one strategy's ranking: pool indices best first and their scores.
type Result struct {
	Name      string
	Params    map[string]any // every parameter it ran with, defaults filled in
	Indices   []int64
	Scores    []float64
	TotalCost float64
	// CandidatesConsidered is how many pool items the strategy chose among (after a batch
	// strategy's pre-filter).
	CandidatesConsidered int64
	// AdversarialPoints is, for "deepfool" with return_points, the float64 [k, d] adversarial
	// point of each selected item (read it with Float64s); nil otherwise.
	AdversarialPoints *Tensor
	// Auto is, for "auto", the arm that picked each selected item (Auto.Strategies, aligned
	// with Indices: send them back as Round.Strategies) and every arm's posterior weight;
	// nil otherwise.
	Auto *labelwisev1.AutoSelection
	// AdversarialMethod is, for "deepfool", the method that ran: "gradient" or "decision".
	AdversarialMethod string
	// RepresentedWeights is, for "badge" with report_weights, aligned with Indices, the total
	// ItemWeights (1 each when unset) of the candidates nearest each pick in gradient space;
	// nil otherwise.
	RepresentedWeights []float64
}

// Response holds one Result per requested strategy, in request order.
type Response struct {
	PoolSize int64
	Results  []Result
}

type options struct {
	tls             *tls.Config
	maxMessageBytes int
	chunkBytes      int
	dialOptions     []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithTLS connects over TLS with config (nil: the system roots); without it the connection
// is plaintext, as inside a cluster or behind a mesh.
func WithTLS(config *tls.Config) Option {
	return func(o *options) {
		if config == nil {
			config = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = config
	}
}

// WithMaxMessageBytes sets the largest message sent or received; requests larger than it
// use the streaming call.
func WithMaxMessageBytes(n int) Option { return func(o *options) { o.maxMessageBytes = n } }

// WithChunkBytes sets about how many bytes of pool rows each stream chunk carries; at most
// half the maximum message size.
func WithChunkBytes(n int) Option { return func(o *options) { o.chunkBytes = n } }

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a resolver...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// Client calls a labelwise server over one gRPC connection; it is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	stub    labelwisev1.QuerySelectionServiceClient
	labels  labelwisev1.LabelQualityServiceClient
	options options
	models  sentModels
}

// sentModels are the SHA-256 digests of the models this client has sent in full and the
// server accepted: later calls send those by hash.
type sentModels struct {
	mu   sync.Mutex
	sent map[string]bool
}

func (s *sentModels) known(digests []string) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(digests))
	for i, digest := range digests {
		out[i] = s.sent[digest]
	}
	return out
}

func (s *sentModels) update(digests []string, sent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[string]bool{}
	}
	for _, digest := range digests {
		if sent {
			s.sent[digest] = true
		} else {
			delete(s.sent, digest)
		}
	}
}

// Dial connects (lazily, on the first call) to target, "host:port" or any gRPC target such
// as "dns:///labelwise.ml.svc:50051".
func Dial(target string, opts ...Option) (*Client, error) {
	o := options{maxMessageBytes: DefaultMaxMessageBytes, chunkBytes: DefaultChunkBytes}
	for _, opt := range opts {
		opt(&o)
	}
	// Every stream chunk must itself fit in a message, with room for the header fields.
	o.chunkBytes = max(1, min(o.chunkBytes, o.maxMessageBytes/2))
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(o.maxMessageBytes), grpc.MaxCallSendMsgSize(o.maxMessageBytes)),
	}, o.dialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: labelwisev1.NewQuerySelectionServiceClient(conn),
		labels: labelwisev1.NewLabelQualityServiceClient(conn), options: o}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub is the generated gRPC client, for calls the wrapper does not cover.
func (c *Client) Stub() labelwisev1.QuerySelectionServiceClient { return c.stub }

// SelectQueries ranks the pool with every requested strategy. The context's deadline is the
// call's deadline. A rejected request returns an *Error whose Violations name the fields.
//
// Models the client has sent before go by their SHA-256; if the server no longer holds one
// (NOT_FOUND, reason ReasonModelNotCached), the call is made once more with the bytes.
func (c *Client) SelectQueries(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, errors.New("labelwise: nil request")
	}
	digests := make([]string, len(req.Models))
	for i, model := range req.Models {
		sum := sha256.Sum256(model)
		digests[i] = hex.EncodeToString(sum[:])
	}
	byHash := c.models.known(digests)
	for attempt := 0; ; attempt++ {
		response, err := c.call(ctx, req, modelMessages(req.Models, digests, byHash))
		if err == nil {
			c.models.update(digests, true)
			return fromMessage(response), nil
		}
		err = asError(err)
		var lwErr *Error
		if attempt > 0 || !slices.Contains(byHash, true) || !errors.As(err, &lwErr) ||
			lwErr.Code != codes.NotFound || lwErr.Reason != ReasonModelNotCached {
			return nil, err
		}
		c.models.update(digests, false)
		byHash = make([]bool, len(digests))
	}
}

// modelMessages are the models as sent: by hash where byHash says so, else as bytes.
func modelMessages(models [][]byte, digests []string, byHash []bool) []*labelwisev1.Model {
	out := make([]*labelwisev1.Model, len(models))
	for i, model := range models {
		if byHash[i] {
			out[i] = &labelwisev1.Model{Source: &labelwisev1.Model_Sha256{Sha256: digests[i]}}
		} else {
			out[i] = &labelwisev1.Model{Source: &labelwisev1.Model_Onnx{Onnx: model}}
		}
	}
	return out
}

// call sends the request with these models, unary when it fits a message, else streamed.
func (c *Client) call(ctx context.Context, req *Request, models []*labelwisev1.Model) (*labelwisev1.SelectQueriesResponse, error) {
	whole, err := req.message()
	if err != nil {
		return nil, err
	}
	whole.Models = models
	if proto.Size(whole) <= c.options.maxMessageBytes-headerRoom {
		return c.stub.SelectQueries(ctx, whole)
	}
	header, err := req.header()
	if err != nil {
		return nil, err
	}
	header.Models = models
	return c.stream(ctx, req, header)
}

// ListStrategies is every strategy the server offers, with its parameters and inputs.
func (c *Client) ListStrategies(ctx context.Context) ([]*labelwisev1.StrategyInfo, error) {
	response, err := c.stub.ListStrategies(ctx, &labelwisev1.ListStrategiesRequest{})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetStrategies(), nil
}

// LabelQualityMethods is every method of LabelQualityService (AssessLabels, PlanLabeling) as
// ListStrategies describes it: crowdlab, dawid_skene, bayes_em, activelab and
// interval_estimation, each with the request fields that tune it as parameters.
func (c *Client) LabelQualityMethods(ctx context.Context) ([]*labelwisev1.LabelQualityMethodInfo, error) {
	response, err := c.stub.ListStrategies(ctx, &labelwisev1.ListStrategiesRequest{})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetLabelQualityMethods(), nil
}

// stream sends the request through SelectQueriesStream: the first chunk is header (every
// scalar field, the strategies and the models) with the start of exclude or else the first
// rows; then exclude in blocks (the server concatenates exclude lists, which may be long),
// then blocks of pool rows, then blocks of labeled_embeddings rows.
func (c *Client) stream(ctx context.Context, req *Request, header *labelwisev1.SelectQueriesRequest) (*labelwisev1.SelectQueriesResponse, error) {
	call, err := c.stub.SelectQueriesStream(ctx)
	if err != nil {
		return nil, err
	}
	chunkBytes := int64(c.options.chunkBytes)
	// exclude goes first, so a server scoring rows as they arrive skips the excluded ones:
	// in the header's chunk, then in chunks of its own.
	var chunks []*labelwisev1.SelectQueriesRequest
	step := int(max(1, chunkBytes/10)) // an int64 varint takes at most 10 bytes
	for start := 0; start < len(req.Exclude); start += step {
		chunk := &labelwisev1.SelectQueriesRequest{}
		if start == 0 {
			chunk = header
		}
		chunk.Exclude = req.Exclude[start:min(start+step, len(req.Exclude))]
		chunks = append(chunks, chunk)
	}
	first := header
	if len(chunks) > 0 {
		first = &labelwisev1.SelectQueriesRequest{}
	}
	rows := req.chunks(chunkBytes, first)
	if len(rows) == 0 && len(chunks) == 0 {
		rows = []*labelwisev1.SelectQueriesRequest{header}
	}
	chunks = append(chunks, rows...)
	for _, chunk := range chunks {
		if err := call.Send(&labelwisev1.SelectQueriesStreamRequest{Chunk: chunk}); err != nil {
			break // the status comes from CloseAndRecv
		}
	}
	response, err := call.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return response.GetResponse(), nil
}

type poolTensor struct {
	tensor *Tensor
	axis   int
	field  protoreflect.FieldDescriptor
}

// set puts t in the poolTensor's field of m.
func (p poolTensor) set(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) {
	m.ProtoReflect().Set(p.field, protoreflect.ValueOfMessage(t.ProtoReflect()))
}

// tensorFields are the request's tensors by their SelectQueriesRequest field name.
func (r *Request) tensorFields() map[string]*Tensor {
	return map[string]*Tensor{
		"probabilities":               r.Probabilities,
		"logits":                      r.Logits,
		"committee":                   r.Committee,
		"committee_logits":            r.CommitteeLogits,
		"embeddings":                  r.Embeddings,
		"labeled_embeddings":          r.LabeledEmbeddings,
		"costs":                       r.Costs,
		"item_weights":                r.ItemWeights,
		"multilabel_probabilities":    r.MultilabelProbabilities,
		"multilabel_logits":           r.MultilabelLogits,
		"multilabel_committee":        r.MultilabelCommittee,
		"multilabel_committee_logits": r.MultilabelCommitteeLogits,
		"regression_mean":             r.RegressionMean,
		"regression_std":              r.RegressionStd,
		"regression_samples":          r.RegressionSamples,
		"labeled_targets":             r.LabeledTargets,
		"structured_probabilities":    r.StructuredProbabilities,
		"structured_logits":           r.StructuredLogits,
		"structured_committee":        r.StructuredCommittee,
		"structured_committee_logits": r.StructuredCommitteeLogits,
		"structured_mask":             r.StructuredMask,
		"model_inputs":                r.ModelInputs,
	}
}

// splitAxis is a SelectQueriesRequest tensor field with the axis a stream splits it along.
type splitAxis struct {
	field   protoreflect.FieldDescriptor
	axis    int
	labeled bool // about the labeled set (streamed after the pool), not the pool
}

// splitAxes are read from the proto's pool_axis and labeled_axis field options
// (labelwise/v1/options.proto), in field order, so no client keeps a table of its own.
var splitAxes = func() []splitAxis {
	var out []splitAxis
	fields := (*labelwisev1.SelectQueriesRequest)(nil).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		options := fd.Options()
		if proto.HasExtension(options, labelwisev1.E_PoolAxis) {
			axis := proto.GetExtension(options, labelwisev1.E_PoolAxis).(int32)
			out = append(out, splitAxis{fd, int(axis), false})
		} else if proto.HasExtension(options, labelwisev1.E_LabeledAxis) {
			axis := proto.GetExtension(options, labelwisev1.E_LabeledAxis).(int32)
			out = append(out, splitAxis{fd, int(axis), true})
		}
	}
	return out
}()

// tensors are the request's tensors given, the pool's (labeled false) or the labeled set's,
// each with its axis.
func (r *Request) tensors(labeled bool) []poolTensor {
	given := r.tensorFields()
	var out []poolTensor
	for _, split := range splitAxes {
		if t := given[string(split.field.Name())]; t != nil && split.labeled == labeled {
			out = append(out, poolTensor{t, split.axis, split.field})
		}
	}
	return out
}

// poolTensors are the tensors given about the pool, each with its pool axis.
func (r *Request) poolTensors() []poolTensor { return r.tensors(false) }

// labeledTensors are the tensors given about the labeled set, each with its labeled axis.
func (r *Request) labeledTensors() []poolTensor { return r.tensors(true) }

// splittable reports whether the tensor has its pool axis (a scalar is sent whole).
func (p poolTensor) splittable() bool { return len(p.tensor.shape) > p.axis }

// chunks splits the tensors along their pool axis into messages of about chunkBytes each;
// the first message is first, which may already hold other fields.
func (r *Request) chunks(chunkBytes int64, first *labelwisev1.SelectQueriesRequest) []*labelwisev1.SelectQueriesRequest {
	var out []*labelwisev1.SelectQueriesRequest
	next := func() *labelwisev1.SelectQueriesRequest {
		if len(out) == 0 {
			return first
		}
		return &labelwisev1.SelectQueriesRequest{}
	}
	pool := r.poolTensors()
	if len(pool) > 0 {
		n := int64(1)
		if pool[0].splittable() {
			n = pool[0].tensor.shape[pool[0].axis]
		}
		var rowBytes int64
		for _, p := range pool {
			if p.splittable() && p.tensor.shape[p.axis] > 0 {
				rowBytes += int64(len(p.tensor.raw)) / p.tensor.shape[p.axis]
			}
		}
		step := max(1, chunkBytes/max(rowBytes, 1))
		for start := int64(0); start < max(n, 1); start += step {
			end := start + step
			chunk := next()
			for _, p := range pool {
				if !p.splittable() {
					if start == 0 {
						p.set(chunk, p.tensor.message())
					}
					continue
				}
				rows := p.tensor.shape[p.axis]
				p.set(chunk, p.tensor.slice(p.axis, min(start, rows), min(end, rows)).message())
			}
			out = append(out, chunk)
		}
	}
	for _, labeled := range r.labeledTensors() {
		if !labeled.splittable() {
			chunk := next()
			labeled.set(chunk, labeled.tensor.message())
			out = append(out, chunk)
			continue
		}
		l := labeled.tensor.shape[labeled.axis]
		rowBytes := int64(len(labeled.tensor.raw)) / max(l, 1)
		step := max(1, chunkBytes/max(rowBytes, 1))
		for start := int64(0); start < max(l, 1); start += step {
			chunk := next()
			rows := labeled.tensor.slice(labeled.axis, min(start, l), min(start+step, l))
			labeled.set(chunk, rows.message())
			out = append(out, chunk)
		}
	}
	return out
}

// message is the whole request but its models.
func (r *Request) message() (*labelwisev1.SelectQueriesRequest, error) {
	m, err := r.header()
	if err != nil {
		return nil, err
	}
	m.Exclude = r.Exclude
	for _, p := range append(r.poolTensors(), r.labeledTensors()...) {
		p.set(m, p.tensor.message())
	}
	return m, nil
}

// header is the request without its tensors, exclude and models.
func (r *Request) header() (*labelwisev1.SelectQueriesRequest, error) {
	output, ok := modelOutputs[r.ModelOutput]
	if !ok {
		return nil, fmt.Errorf("labelwise: ModelOutput must be %q or %q; got %q",
			OutputProbabilities, OutputLogits, r.ModelOutput)
	}
	m := &labelwisev1.SelectQueriesRequest{
		K: r.K, Seed: r.Seed, ClampK: r.ClampK, Budget: r.Budget, Temperature: r.Temperature,
		LabeledLabelCardinality: r.LabeledLabelCardinality, ModelOutput: output,
		EmbeddingsOutput: r.EmbeddingsOutput, McDropoutSamples: r.MCDropoutSamples,
		InferenceBatchRows: r.InferenceBatchRows,
	}
	if r.InferenceTimeout != 0 {
		seconds := r.InferenceTimeout.Seconds()
		m.InferenceTimeoutSeconds = &seconds
	}
	for _, s := range r.Strategies {
		spec := &labelwisev1.StrategySpec{Name: s.Name}
		if len(s.Params) > 0 {
			spec.Params = make(map[string]*labelwisev1.ParamValue, len(s.Params))
			for name, value := range s.Params {
				v, err := toParam(value)
				if err != nil {
					return nil, fmt.Errorf("labelwise: strategy %q parameter %q: %w", s.Name, name, err)
				}
				spec.Params[name] = v
			}
		}
		m.Strategies = append(m.Strategies, spec)
	}
	for _, round := range r.History {
		m.History = append(m.History, &labelwisev1.SelectionRound{
			Strategies: round.Strategies, Labels: round.Labels, Probabilities: round.Probabilities,
		})
	}
	return m, nil
}

func toParam(value any) (*labelwisev1.ParamValue, error) {
	switch v := value.(type) {
	case bool:
		return &labelwisev1.ParamValue{Kind: &labelwisev1.ParamValue_BoolValue{BoolValue: v}}, nil
	case int:
		return &labelwisev1.ParamValue{Kind: &labelwisev1.ParamValue_IntValue{IntValue: int64(v)}}, nil
	case int64:
		return &labelwisev1.ParamValue{Kind: &labelwisev1.ParamValue_IntValue{IntValue: v}}, nil
	case float64:
		return &labelwisev1.ParamValue{Kind: &labelwisev1.ParamValue_DoubleValue{DoubleValue: v}}, nil
	case string:
		return &labelwisev1.ParamValue{Kind: &labelwisev1.ParamValue_StringValue{StringValue: v}}, nil
	}
	return nil, fmt.Errorf("must be int, int64, float64, string or bool; got %T", value)
}

func fromParam(value *labelwisev1.ParamValue) any {
	switch v := value.GetKind().(type) {
	case *labelwisev1.ParamValue_BoolValue:
		return v.BoolValue
	case *labelwisev1.ParamValue_IntValue:
		return v.IntValue
	case *labelwisev1.ParamValue_DoubleValue:
		return v.DoubleValue
	case *labelwisev1.ParamValue_StringValue:
		return v.StringValue
	}
	return nil
}

func fromMessage(m *labelwisev1.SelectQueriesResponse) *Response {
	out := &Response{PoolSize: m.GetPoolSize()}
	for _, r := range m.GetResults() {
		params := make(map[string]any, len(r.GetParams()))
		for name, value := range r.GetParams() {
			params[name] = fromParam(value)
		}
		out.Results = append(out.Results, Result{
			Name: r.GetName(), Params: params, Indices: r.GetIndices(), Scores: r.GetScores(),
			TotalCost: r.GetTotalCost(), CandidatesConsidered: r.GetCandidatesConsidered(),
			AdversarialPoints: tensorFrom(r.GetAdversarialPoints()), Auto: r.GetAutoSelection(),
			AdversarialMethod: r.GetAdversarialMethod(), RepresentedWeights: r.GetRepresentedWeights(),
		})
	}
	return out
}
