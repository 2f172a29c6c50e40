package labelwise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"unicode"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// ScoringBlockBytes is about how many bytes of probability and committee rows the server
// scores at once (at least 1024 rows): ShardedClient cuts shards at multiples of it, so each
// score is computed on the same rows as on one server.
const ScoringBlockBytes = 1 << 22

// ShardedClient splits one pool over several replicas, calls them in parallel and merges
// the answers (docs/scale.md). Strategies that are not batch strategies: each replica
// returns its shard's top K and the merge keeps the K best by score, then pool index (for
// the row-wise scores, one server's answer exactly; random draws per shard). Batch
// strategies: each replica picks Oversample·K of its shard, then one replica picks K from
// the union of those rows (an approximation). badge (WeightedMerge) is merged as a weighted
// summary: the shards report what each pick stands for (report_weights) and the final badge
// runs with those ItemWeights (Bahmani et al. 2012). A Budget needs the whole ranking:
// refused.
type ShardedClient struct {
	Clients    []*Client
	Oversample int64
	// OversampleFor overrides Oversample per strategy.
	OversampleFor map[string]int64

	mu    sync.Mutex
	batch map[string]bool
}

// WeightedMerge are the batch strategies merged as a weighted summary: the shards run them
// with report_weights, and the final call sends each union row's represented weight as
// ItemWeights.
var WeightedMerge = map[string]bool{"badge": true}

// Resolve returns every replica's address: targets as given, or for one name
// (optionally dns:///name:port) every address it resolves to, sorted, as a Kubernetes
// headless Service resolves to its pods.
func Resolve(targets ...string) ([]string, error) {
	if len(targets) != 1 {
		return targets, nil
	}
	target := strings.TrimPrefix(strings.TrimPrefix(targets[0], "dns:///"), "dns:")
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) != nil {
		return targets, nil
	}
	addresses, err := net.LookupHost(host)
	if err != nil {
		return nil, err
	}
	sort.Strings(addresses)
	out := make([]string, 0, len(addresses))
	for _, a := range addresses {
		out = append(out, net.JoinHostPort(a, port))
	}
	return out, nil
}

// DialSharded dials every replica (see Resolve); Oversample starts at 4.
func DialSharded(targets []string, opts ...Option) (*ShardedClient, error) {
	addresses, err := Resolve(targets...)
	if err != nil {
		return nil, err
	}
	if len(addresses) == 0 {
		return nil, errors.New("labelwise: DialSharded needs at least one replica")
	}
	s := &ShardedClient{Oversample: 4, OversampleFor: map[string]int64{}}
	for _, address := range addresses {
		client, err := Dial(address, opts...)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.Clients = append(s.Clients, client)
	}
	return s, nil
}

// Close closes every replica's connection.
func (s *ShardedClient) Close() error {
	var first error
	for _, c := range s.Clients {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *ShardedClient) isBatch(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		infos, err := s.Clients[0].ListStrategies(ctx)
		if err != nil {
			return false, err
		}
		s.batch = map[string]bool{}
		for _, info := range infos {
			s.batch[info.GetName()] = info.GetBatch()
		}
	}
	return s.batch[name], nil
}

// tensorSetters sets a Request's tensor by its proto field name (CamelCase → snake_case).
var tensorSetters = func() map[string]int {
	out := map[string]int{}
	t := reflect.TypeOf(Request{})
	for i := range t.NumField() {
		if t.Field(i).Type == reflect.TypeOf(&Tensor{}) {
			var b strings.Builder
			for j, r := range t.Field(i).Name {
				if unicode.IsUpper(r) && j > 0 {
					b.WriteByte('_')
				}
				b.WriteRune(unicode.ToLower(r))
			}
			out[b.String()] = i
		}
	}
	return out
}()

// withPool is a copy of req whose pool tensors are replaced by pool (by field name).
func withPool(req *Request, pool map[string]*Tensor, k int64, exclude []int64) *Request {
	c := *req
	v := reflect.ValueOf(&c).Elem()
	for name, tensor := range pool {
		v.Field(tensorSetters[name]).Set(reflect.ValueOf(tensor))
	}
	c.K, c.ClampK, c.Exclude = k, true, exclude
	return &c
}

func blockRows(pool []poolTensor) int64 {
	var rowBytes int64
	for _, p := range pool {
		name := string(p.field.Name())
		if name != "probabilities" && name != "logits" && name != "committee" && name != "committee_logits" {
			continue
		}
		item := int64(4)
		if p.tensor.dtype == labelwisev1.DataType_DATA_TYPE_FLOAT64 {
			item = 8
		}
		elements := int64(1)
		for i, size := range p.tensor.shape {
			if i != p.axis {
				elements *= size
			}
		}
		rowBytes += elements * item
	}
	return max(1024, ScoringBlockBytes/max(rowBytes, 1))
}

// shardBounds cuts n rows into about len(s.Clients) contiguous shards at multiples of block.
func shardBounds(n, shards, block int64) [][2]int64 {
	blocks := (n + block - 1) / block
	per := (blocks + shards - 1) / shards
	var out [][2]int64
	for s := int64(0); s < shards; s++ {
		start, end := min(n, s*per*block), min(n, (s+1)*per*block)
		if end > start {
			out = append(out, [2]int64{start, end})
		}
	}
	return out
}

// take gathers the rows of axis at indices (ascending) into a new tensor.
func (t *Tensor) take(axis int, indices []int64) *Tensor {
	shape := append([]int64(nil), t.shape...)
	shape[axis] = int64(len(indices))
	inner := t.elementSize()
	for _, size := range t.shape[axis+1:] {
		inner *= size
	}
	outer := int64(1)
	for _, size := range t.shape[:axis] {
		outer *= size
	}
	stride := t.shape[axis] * inner
	raw := make([]byte, 0, outer*int64(len(indices))*inner)
	for o := int64(0); o < outer; o++ {
		for _, i := range indices {
			raw = append(raw, t.raw[o*stride+i*inner:o*stride+(i+1)*inner]...)
		}
	}
	return &Tensor{t.dtype, shape, raw}
}

type shardAnswer struct {
	start    int64
	response *Response
}

func (s *ShardedClient) perShard(ctx context.Context, req *Request, strategies []Strategy, k int64, bounds [][2]int64, exclude []int64) ([]shardAnswer, error) {
	answers := make([]shardAnswer, len(bounds))
	errs := make([]error, len(bounds))
	var wg sync.WaitGroup
	for i, b := range bounds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []int64
			for _, e := range exclude {
				if e >= b[0] && e < b[1] {
					local = append(local, e-b[0])
				}
			}
			if int64(len(local)) == b[1]-b[0] {
				answers[i] = shardAnswer{b[0], &Response{}}
				return
			}
			pool := map[string]*Tensor{}
			for _, p := range req.poolTensors() {
				pool[string(p.field.Name())] = p.tensor.slice(p.axis, b[0], b[1])
			}
			shard := withPool(req, pool, k, local)
			shard.Strategies = strategies
			response, err := s.Clients[i].SelectQueries(ctx, shard)
			answers[i], errs[i] = shardAnswer{b[0], response}, err
		}()
	}
	wg.Wait()
	return answers, errors.Join(errs...)
}

// SelectQueries is Client.SelectQueries over every replica's shard of the pool.
func (s *ShardedClient) SelectQueries(ctx context.Context, req *Request) (*Response, error) {
	if req.Budget != nil {
		return nil, errors.New("labelwise: a budget needs the whole ranking: call one server")
	}
	pool := req.poolTensors()
	if len(pool) == 0 || !pool[0].splittable() {
		return nil, errors.New("labelwise: the pool needs a tensor with a pool axis")
	}
	n := pool[0].tensor.shape[pool[0].axis]
	excluded := map[int64]bool{}
	for _, e := range req.Exclude {
		if e < 0 || e >= n {
			return nil, fmt.Errorf("labelwise: exclude entries must be in [0, %d); got %d", n, e)
		}
		excluded[e] = true
	}
	candidates := n - int64(len(excluded))
	if req.K > candidates && !req.ClampK {
		return nil, fmt.Errorf("labelwise: K must be at most the %d candidate items, or set ClampK; got %d", candidates, req.K)
	}
	k := min(req.K, candidates)
	var ranked, batch []Strategy
	for _, strategy := range req.Strategies {
		isBatch, err := s.isBatch(ctx, strategy.Name)
		if err != nil {
			return nil, err
		}
		if isBatch {
			batch = append(batch, strategy)
		} else {
			ranked = append(ranked, strategy)
		}
	}
	results := map[string]Result{}
	shards := int64(len(s.Clients))
	if len(ranked) > 0 {
		answers, err := s.perShard(ctx, req, ranked, k, shardBounds(n, shards, blockRows(pool)), req.Exclude)
		if err != nil {
			return nil, err
		}
		var costs []float64
		if req.Costs != nil {
			if costs, err = req.Costs.Float64s(); err != nil {
				return nil, err
			}
		}
		for _, strategy := range ranked {
			results[strategy.Name] = merge(strategy.Name, answers, k, costs, candidates)
		}
	}
	for _, strategy := range batch {
		factor, ok := s.OversampleFor[strategy.Name]
		if !ok {
			factor = s.Oversample
		}
		bounds := shardBounds(n, shards, 1) // batch picks need no block alignment
		shardStrategy := strategy
		if WeightedMerge[strategy.Name] {
			params := map[string]any{"report_weights": true}
			for name, value := range strategy.Params {
				if name != "report_weights" {
					params[name] = value
				}
			}
			shardStrategy = Strategy{Name: strategy.Name, Params: params}
		}
		answers, err := s.perShard(ctx, req, []Strategy{shardStrategy}, k*max(1, factor), bounds, req.Exclude)
		if err != nil {
			return nil, err
		}
		result, err := s.final(ctx, req, strategy, answers, k)
		if err != nil {
			return nil, err
		}
		results[strategy.Name] = result
	}
	out := &Response{PoolSize: n}
	for _, strategy := range req.Strategies {
		out.Results = append(out.Results, results[strategy.Name])
	}
	return out, nil
}

func find(r *Response, name string) *Result {
	for i := range r.Results {
		if r.Results[i].Name == name {
			return &r.Results[i]
		}
	}
	return nil
}

// merge keeps the k best of the shards' rankings: score descending, then pool index.
func merge(name string, answers []shardAnswer, k int64, costs []float64, candidates int64) Result {
	type item struct {
		index int64
		score float64
	}
	var items []item
	var params map[string]any
	for _, a := range answers {
		if r := find(a.response, name); r != nil {
			params = r.Params
			for j, index := range r.Indices {
				items = append(items, item{index + a.start, r.Scores[j]})
			}
		}
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].score != items[j].score {
			return items[i].score > items[j].score
		}
		return items[i].index < items[j].index
	})
	items = items[:min(int64(len(items)), k)]
	out := Result{Name: name, Params: params, CandidatesConsidered: candidates,
		Indices: make([]int64, len(items)), Scores: make([]float64, len(items))}
	for i, it := range items {
		out.Indices[i], out.Scores[i] = it.index, it.score
	}
	if costs == nil {
		out.TotalCost = float64(len(items))
	} else {
		for _, index := range out.Indices {
			out.TotalCost += costs[index]
		}
	}
	return out
}

// final has one replica pick k from the union of the shards' picks (weighted by what each
// stands for, for WeightedMerge).
func (s *ShardedClient) final(ctx context.Context, req *Request, strategy Strategy, answers []shardAnswer, k int64) (Result, error) {
	type row struct {
		index  int64
		weight float64
	}
	var rows []row
	var considered int64
	weighted := WeightedMerge[strategy.Name]
	for _, a := range answers {
		if r := find(a.response, strategy.Name); r != nil {
			considered += r.CandidatesConsidered
			if weighted && len(r.RepresentedWeights) != len(r.Indices) {
				return Result{}, fmt.Errorf("labelwise: a replica answered %s without represented_weights: every replica must run a labelwise version with report_weights", strategy.Name)
			}
			for j, index := range r.Indices {
				var weight float64
				if weighted {
					weight = r.RepresentedWeights[j]
				}
				rows = append(rows, row{index + a.start, weight})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].index < rows[j].index })
	union := make([]int64, len(rows))
	weights := make([]float64, len(rows))
	for i, r := range rows {
		union[i], weights[i] = r.index, r.weight
	}
	pool := map[string]*Tensor{}
	for _, p := range req.poolTensors() {
		pool[string(p.field.Name())] = p.tensor.take(p.axis, union)
	}
	if weighted {
		tensor, err := Float64Tensor(weights, len(weights))
		if err != nil {
			return Result{}, err
		}
		pool["item_weights"] = tensor
	}
	last := withPool(req, pool, k, nil)
	last.Strategies = []Strategy{strategy}
	response, err := s.Clients[0].SelectQueries(ctx, last)
	if err != nil {
		return Result{}, err
	}
	picked := response.Results[0]
	indices := make([]int64, len(picked.Indices))
	for i, position := range picked.Indices {
		indices[i] = union[position]
	}
	picked.Indices, picked.CandidatesConsidered = indices, considered
	return picked, nil
}
