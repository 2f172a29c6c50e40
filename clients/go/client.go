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
	set    func(*labelwisev1.SelectQueriesRequest, *labelwisev1.Tensor)
}

func (r *Request) poolTensors() []poolTensor {
	all := []poolTensor{
		{r.Probabilities, 0, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.Probabilities = t }},
		{r.Logits, 0, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.Logits = t }},
		{r.Committee, 1, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.Committee = t }},
		{r.CommitteeLogits, 1, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.CommitteeLogits = t }},
		{r.Embeddings, 0, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.Embeddings = t }},
		{r.Costs, 0, func(m *labelwisev1.SelectQueriesRequest, t *labelwisev1.Tensor) { m.Costs = t }},
	}
	var present []poolTensor
	for _, p := range all {
		if p.tensor != nil {
			present = append(present, p)
		}
	}
	return present
}

// chunks splits the tensors along their pool axis into messages of about chunkBytes each.
func (r *Request) chunks(chunkBytes int64) []*labelwisev1.SelectQueriesRequest {
	var out []*labelwisev1.SelectQueriesRequest
	pool := r.poolTensors()
	if len(pool) > 0 {
		n := pool[0].tensor.shape[pool[0].axis]
		var rowBytes int64
		for _, p := range pool {
			if size := p.tensor.shape[p.axis]; size > 0 {
				rowBytes += int64(len(p.tensor.raw)) / size
			}
		}
		step := max(1, chunkBytes/max(rowBytes, 1))
		for start := int64(0); start < max(n, 1); start += step {
			end := min(start+step, n)
			chunk := &labelwisev1.SelectQueriesRequest{}
			for _, p := range pool {
				p.set(chunk, p.tensor.slice(p.axis, min(start, p.tensor.shape[p.axis]), min(end, p.tensor.shape[p.axis])).message())
			}
			out = append(out, chunk)
		}
	}
	if labeled := r.LabeledEmbeddings; labeled != nil {
		l := labeled.shape[0]
		rowBytes := int64(len(labeled.raw)) / max(l, 1)
		step := max(1, chunkBytes/max(rowBytes, 1))
		for start := int64(0); start < max(l, 1); start += step {
			part := labeled.slice(0, min(start, l), min(start+step, l))
			out = append(out, &labelwisev1.SelectQueriesRequest{LabeledEmbeddings: part.message()})
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
	for _, p := range r.poolTensors() {
		p.set(m, p.tensor.message())
	}
	if r.LabeledEmbeddings != nil {
		m.LabeledEmbeddings = r.LabeledEmbeddings.message()
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
