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
package labelwise

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

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
}

// Result is one strategy's ranking: pool indices best first and their scores.
type Result struct {
	Name      string
	Params    map[string]any // every parameter it ran with, defaults filled in
	Indices   []int64
	Scores    []float64
	TotalCost float64
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
	options options
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
	return &Client{conn, labelwisev1.NewQuerySelectionServiceClient(conn), o}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub is the generated gRPC client, for calls the wrapper does not cover.
func (c *Client) Stub() labelwisev1.QuerySelectionServiceClient { return c.stub }

// SelectQueries ranks the pool with every requested strategy. The context's deadline is the
// call's deadline. A rejected request returns an *Error whose Violations name the fields.
func (c *Client) SelectQueries(ctx context.Context, req *Request) (*Response, error) {
	message, err := req.message()
	if err != nil {
		return nil, err
	}
	var response *labelwisev1.SelectQueriesResponse
	if proto.Size(message) <= c.options.maxMessageBytes-headerRoom {
		response, err = c.stub.SelectQueries(ctx, message)
	} else {
		response, err = c.stream(ctx, req, message)
	}
	if err != nil {
		return nil, asError(err)
	}
	return fromMessage(response), nil
}

// ListStrategies is every strategy the server offers, with its parameters and inputs.
func (c *Client) ListStrategies(ctx context.Context) ([]*labelwisev1.StrategyInfo, error) {
	response, err := c.stub.ListStrategies(ctx, &labelwisev1.ListStrategiesRequest{})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetStrategies(), nil
}

// stream sends the request through SelectQueriesStream: the first chunk carries every scalar
// field and the strategies, then come blocks of pool rows, then blocks of labeled_embeddings
// rows, then exclude in blocks (the server concatenates exclude lists, which may be long).
func (c *Client) stream(ctx context.Context, req *Request, whole *labelwisev1.SelectQueriesRequest) (*labelwisev1.SelectQueriesResponse, error) {
	call, err := c.stub.SelectQueriesStream(ctx)
	if err != nil {
		return nil, err
	}
	header := &labelwisev1.SelectQueriesRequest{
		Strategies: whole.Strategies, K: whole.K, Seed: whole.Seed,
		ClampK: whole.ClampK, Budget: whole.Budget, Temperature: whole.Temperature,
		LabeledLabelCardinality: whole.LabeledLabelCardinality,
	}
	chunkBytes := int64(c.options.chunkBytes)
	chunks := req.chunks(chunkBytes)
	if len(chunks) == 0 {
		chunks = []*labelwisev1.SelectQueriesRequest{{}}
	}
	proto.Merge(chunks[0], header)
	step := int(max(1, chunkBytes/10)) // an int64 varint takes at most 10 bytes
	for start := 0; start < len(whole.Exclude); start += step {
		chunks = append(chunks, &labelwisev1.SelectQueriesRequest{
			Exclude: whole.Exclude[start:min(start+step, len(whole.Exclude))]})
	}
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
	set    requestTensor
}

type requestTensor = func(*labelwisev1.SelectQueriesRequest, *labelwisev1.Tensor)

// poolTensors are the tensors given about the pool, each with its pool axis.
func (r *Request) poolTensors() []poolTensor {
	type M = labelwisev1.SelectQueriesRequest
	type T = labelwisev1.Tensor
	all := []poolTensor{
		{r.Probabilities, 0, func(m *M, t *T) { m.Probabilities = t }},
		{r.Logits, 0, func(m *M, t *T) { m.Logits = t }},
		{r.Committee, 1, func(m *M, t *T) { m.Committee = t }},
		{r.CommitteeLogits, 1, func(m *M, t *T) { m.CommitteeLogits = t }},
		{r.Embeddings, 0, func(m *M, t *T) { m.Embeddings = t }},
		{r.Costs, 0, func(m *M, t *T) { m.Costs = t }},
		{r.MultilabelProbabilities, 0, func(m *M, t *T) { m.MultilabelProbabilities = t }},
		{r.MultilabelLogits, 0, func(m *M, t *T) { m.MultilabelLogits = t }},
		{r.MultilabelCommittee, 1, func(m *M, t *T) { m.MultilabelCommittee = t }},
		{r.MultilabelCommitteeLogits, 1, func(m *M, t *T) { m.MultilabelCommitteeLogits = t }},
		{r.RegressionMean, 0, func(m *M, t *T) { m.RegressionMean = t }},
		{r.RegressionStd, 0, func(m *M, t *T) { m.RegressionStd = t }},
		{r.RegressionSamples, 1, func(m *M, t *T) { m.RegressionSamples = t }},
		{r.StructuredProbabilities, 0, func(m *M, t *T) { m.StructuredProbabilities = t }},
		{r.StructuredLogits, 0, func(m *M, t *T) { m.StructuredLogits = t }},
		{r.StructuredCommittee, 1, func(m *M, t *T) { m.StructuredCommittee = t }},
		{r.StructuredCommitteeLogits, 1, func(m *M, t *T) { m.StructuredCommitteeLogits = t }},
		{r.StructuredMask, 0, func(m *M, t *T) { m.StructuredMask = t }},
	}
	return present(all)
}

// labeledTensors are the tensors given about the labeled set, split along axis 0.
func (r *Request) labeledTensors() []poolTensor {
	type M = labelwisev1.SelectQueriesRequest
	type T = labelwisev1.Tensor
	return present([]poolTensor{
		{r.LabeledEmbeddings, 0, func(m *M, t *T) { m.LabeledEmbeddings = t }},
		{r.LabeledTargets, 0, func(m *M, t *T) { m.LabeledTargets = t }},
	})
}

func present(all []poolTensor) []poolTensor {
	var out []poolTensor
	for _, p := range all {
		if p.tensor != nil {
			out = append(out, p)
		}
	}
	return out
}

// splittable reports whether the tensor has its pool axis (a scalar is sent whole).
func (p poolTensor) splittable() bool { return len(p.tensor.shape) > p.axis }

// chunks splits the tensors along their pool axis into messages of about chunkBytes each.
func (r *Request) chunks(chunkBytes int64) []*labelwisev1.SelectQueriesRequest {
	var out []*labelwisev1.SelectQueriesRequest
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
			chunk := &labelwisev1.SelectQueriesRequest{}
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
			chunk := &labelwisev1.SelectQueriesRequest{}
			labeled.set(chunk, labeled.tensor.message())
			out = append(out, chunk)
			continue
		}
		l := labeled.tensor.shape[0]
		rowBytes := int64(len(labeled.tensor.raw)) / max(l, 1)
		step := max(1, chunkBytes/max(rowBytes, 1))
		for start := int64(0); start < max(l, 1); start += step {
			chunk := &labelwisev1.SelectQueriesRequest{}
			labeled.set(chunk, labeled.tensor.slice(0, min(start, l), min(start+step, l)).message())
			out = append(out, chunk)
		}
	}
	return out
}

func (r *Request) message() (*labelwisev1.SelectQueriesRequest, error) {
	if r == nil {
		return nil, errors.New("labelwise: nil request")
	}
	m := &labelwisev1.SelectQueriesRequest{
		K: r.K, Seed: r.Seed, Exclude: r.Exclude, ClampK: r.ClampK,
		Budget: r.Budget, Temperature: r.Temperature,
		LabeledLabelCardinality: r.LabeledLabelCardinality,
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
	for _, p := range append(r.poolTensors(), r.labeledTensors()...) {
		p.set(m, p.tensor.message())
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
			TotalCost: r.GetTotalCost(),
		})
	}
	return out
}
