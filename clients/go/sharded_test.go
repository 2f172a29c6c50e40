package labelwise

import (
	"context"
	"math/rand"
	"reflect"
	"sort"
	"testing"
	"time"
)

func randomProbabilities(t *testing.T, rng *rand.Rand, n, c int) *Tensor {
	t.Helper()
	data := make([]float64, n*c)
	for i := 0; i < n; i++ {
		var sum float64
		for j := 0; j < c; j++ {
			v := rng.Float64()
			v = v * v * v
			data[i*c+j] = v
			sum += v
		}
		for j := 0; j < c; j++ {
			data[i*c+j] /= sum
		}
	}
	for i := n / 2; i < n; i += 9 { // ties across shards, broken by index as one server does
		copy(data[i*c:(i+1)*c], data[3*c:4*c])
	}
	tensor, err := Float64Tensor(data, n, c)
	if err != nil {
		t.Fatal(err)
	}
	return tensor
}

func twoReplicas(t *testing.T) *ShardedClient {
	t.Helper()
	second, err := uncachedServer()
	if err != nil {
		t.Fatal(err)
	}
	sharded, err := DialSharded([]string{address, second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sharded.Close() })
	return sharded
}

// selectOversampled is req's answer from two replicas, each pre-selecting oversample·k.
func selectOversampled(ctx context.Context, t *testing.T, req *Request, oversample int64) *Response {
	t.Helper()
	sharded := twoReplicas(t)
	sharded.Oversample = oversample
	got, err := sharded.SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestShardedRowWiseEqualsOneServer(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	pool := randomProbabilities(t, rng, 150_000, 8) // 65,536-row scoring blocks: 2 shards
	if got := len(shardBounds(150_000, 2, blockRows((&Request{Probabilities: pool}).poolTensors()))); got != 2 {
		t.Fatalf("shards: %d", got)
	}
	exclude := []int64{0, 3, 131_072, 149_999}
	req := &Request{Strategies: []Strategy{{Name: "entropy"}, {Name: "margin"},
		{Name: "least_confidence"}}, K: 40, Exclude: exclude, Probabilities: pool}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	one, err := dial(t).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sharded, err := twoReplicas(t).SelectQueries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, sharded) {
		t.Fatalf("sharded answer differs from one server's:\n%v\n%v", one.Results[0], sharded.Results[0])
	}
}

func TestShardedBatchPicksFromTheUnionOfTheShardsPicks(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	n, d := 3000, 8
	data := make([]float32, n*d)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	embeddings, _ := Float32Tensor(data, n, d)
	labeledData := make([]float32, 20*d)
	for i := range labeledData {
		labeledData[i] = float32(rng.NormFloat64())
	}
	labeled, _ := Float32Tensor(labeledData, 20, d)
	req := &Request{Strategies: []Strategy{{Name: "core_set"}}, K: 10, Seed: 3,
		Exclude: []int64{5, 2500}, Embeddings: embeddings, LabeledEmbeddings: labeled}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	got := selectOversampled(ctx, t, req, 3)
	// The naive second run: each half's 30 exact picks, then one call on their union.
	one := dial(t)
	var union []int64
	for _, b := range [][2]int64{{0, 1500}, {1500, 3000}} {
		var local []int64
		for _, e := range req.Exclude {
			if e >= b[0] && e < b[1] {
				local = append(local, e-b[0])
			}
		}
		shard := *req
		shard.K, shard.ClampK, shard.Exclude = 30, true, local
		shard.Embeddings = embeddings.slice(0, b[0], b[1])
		picks, err := one.SelectQueries(ctx, &shard)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range picks.Results[0].Indices {
			union = append(union, i+b[0])
		}
	}
	sort.Slice(union, func(i, j int) bool { return union[i] < union[j] })
	last := *req
	last.ClampK, last.Exclude, last.Embeddings = true, nil, embeddings.take(0, union)
	final, err := one.SelectQueries(ctx, &last)
	if err != nil {
		t.Fatal(err)
	}
	for i, position := range final.Results[0].Indices {
		if got.Results[0].Indices[i] != union[position] {
			t.Fatalf("pick %d: %d, want %d", i, got.Results[0].Indices[i], union[position])
		}
	}
	for _, index := range got.Results[0].Indices {
		if index == 5 || index == 2500 {
			t.Fatalf("an excluded item was picked: %d", index)
		}
	}
}

func TestResolveKeepsAddressesAndResolvesOneName(t *testing.T) {
	if got, _ := Resolve("a:1", "b:2"); !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Fatal(got)
	}
	if got, _ := Resolve("127.0.0.1:5"); !reflect.DeepEqual(got, []string{"127.0.0.1:5"}) {
		t.Fatal(got)
	}
	got, err := Resolve("dns:///localhost:5")
	if err != nil || len(got) == 0 {
		t.Fatal(got, err)
	}
	if !reflect.DeepEqual(shardBounds(10, 3, 4), [][2]int64{{0, 4}, {4, 8}, {8, 10}}) {
		t.Fatal(shardBounds(10, 3, 4))
	}
}

// naiveRepresented is each candidate's weight (1 each) to its nearest pick in BADGE's
// gradient space, (p − e_ŷ) ⊗ x built in float64 (ties: the earlier pick).
func naiveRepresented(p []float64, x []float32, c, d int, picks, candidates []int64) []float64 {
	grad := func(i int64) []float64 {
		a := append([]float64(nil), p[int(i)*c:int(i+1)*c]...)
		top := 0
		for j := range a {
			if a[j] > a[top] {
				top = j
			}
		}
		a[top]--
		g := make([]float64, 0, c*d)
		for _, v := range a {
			for _, e := range x[int(i)*d : int(i+1)*d] {
				g = append(g, v*float64(e))
			}
		}
		return g
	}
	centres := make([][]float64, len(picks))
	for j, pick := range picks {
		centres[j] = grad(pick)
	}
	out := make([]float64, len(picks))
	for _, i := range candidates {
		g := grad(i)
		best, bestD := 0, -1.0
		for j, centre := range centres {
			var d2 float64
			for m := range g {
				d2 += (g[m] - centre[m]) * (g[m] - centre[m])
			}
			if bestD < 0 || d2 < bestD {
				best, bestD = j, d2
			}
		}
		out[best]++
	}
	return out
}

func TestShardedBadgeIsAWeightedBadgeOverTheShardsSummaries(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	n, c, d := 2000, 4, 6
	data := make([]float32, n*d)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	embeddings, _ := Float32Tensor(data, n, d)
	probabilities := randomProbabilities(t, rng, n, c)
	p, _ := probabilities.Float64s()
	exclude := []int64{5, 1500}
	req := &Request{Strategies: []Strategy{{Name: "badge"}}, K: 8, Seed: 3, Exclude: exclude,
		Embeddings: embeddings, Probabilities: probabilities}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	got := selectOversampled(ctx, t, req, 3)
	// The naive second run: each half's 24 badge picks weighted by the shard items nearest
	// each (by loops over the built gradients), then one weighted badge on their union.
	one := dial(t)
	type row struct {
		index  int64
		weight float64
	}
	var rows []row
	for _, b := range [][2]int64{{0, 1000}, {1000, 2000}} {
		var local, candidates []int64
		for i := b[0]; i < b[1]; i++ {
			if i == exclude[0] || i == exclude[1] {
				local = append(local, i-b[0])
			} else {
				candidates = append(candidates, i)
			}
		}
		shard := *req
		shard.K, shard.ClampK, shard.Exclude = 24, true, local
		shard.Embeddings = embeddings.slice(0, b[0], b[1])
		shard.Probabilities = probabilities.slice(0, b[0], b[1])
		picks, err := one.SelectQueries(ctx, &shard)
		if err != nil {
			t.Fatal(err)
		}
		global := make([]int64, len(picks.Results[0].Indices))
		for j, i := range picks.Results[0].Indices {
			global[j] = i + b[0]
		}
		weights := naiveRepresented(p, data, c, d, global, candidates)
		for j, i := range global {
			rows = append(rows, row{i, weights[j]})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].index < rows[j].index })
	union := make([]int64, len(rows))
	weights := make([]float64, len(rows))
	for i, r := range rows {
		union[i], weights[i] = r.index, r.weight
	}
	last := *req
	last.ClampK, last.Exclude = true, nil
	last.Embeddings, last.Probabilities = embeddings.take(0, union), probabilities.take(0, union)
	last.ItemWeights, _ = Float64Tensor(weights, len(weights))
	final, err := one.SelectQueries(ctx, &last)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Results[0].Indices) != 8 {
		t.Fatalf("picks: %v", got.Results[0].Indices)
	}
	for i, position := range final.Results[0].Indices {
		if got.Results[0].Indices[i] != union[position] {
			t.Fatalf("pick %d: %d, want %d", i, got.Results[0].Indices[i], union[position])
		}
	}
	if !reflect.DeepEqual(got.Results[0].Scores, final.Results[0].Scores) {
		t.Fatalf("scores differ: %v %v", got.Results[0].Scores, final.Results[0].Scores)
	}
}
