package labelwise

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

type stoppingVector struct {
	Request struct {
		StopSetPredictions   *vectorTensor `json:"stop_set_predictions"`
		PoolProbabilities    *vectorTensor `json:"pool_probabilities"`
		KappaThreshold       *float64      `json:"kappa_threshold"`
		KappaWindow          *int64        `json:"kappa_window"`
		UncertaintyThreshold *float64      `json:"uncertainty_threshold"`
		MaxChangeFraction    *float64      `json:"max_change_fraction"`
		UncertaintyAggregate *string       `json:"uncertainty_aggregate"`
		Rule                 *string       `json:"rule"`
	} `json:"request"`
	Response struct {
		Stop     bool                `json:"stop"`
		Criteria []StoppingCriterion `json:"criteria"`
		Kappas   []float64           `json:"kappas"`
	} `json:"response"`
}

func (v stoppingVector) request(t *testing.T) *StoppingRequest {
	in := v.Request
	req := &StoppingRequest{KappaThreshold: in.KappaThreshold, KappaWindow: in.KappaWindow,
		UncertaintyThreshold: in.UncertaintyThreshold, MaxChangeFraction: in.MaxChangeFraction}
	if in.StopSetPredictions != nil {
		req.StopSetPredictions = in.StopSetPredictions.tensor(t)
	}
	if in.PoolProbabilities != nil {
		req.PoolProbabilities = in.PoolProbabilities.tensor(t)
	}
	if in.UncertaintyAggregate != nil {
		req.UncertaintyAggregate = UncertaintyAggregate(*in.UncertaintyAggregate)
	}
	if in.Rule != nil {
		req.Rule = StoppingRule(*in.Rule)
	}
	return req
}

// closeEnough is 1e-6 relative, or 1e-9 absolute near zero.
func closeEnough(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9 || closeRelative(got, want)
}

func TestStoppingVectors(t *testing.T) {
	vectors := loadJSON[stoppingVector](t, "../../tests/vectors/stopping/*.json")
	labels := false
	client := dial(t)
	for name, v := range vectors {
		labels = labels || v.Request.StopSetPredictions.DType == "int64"
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := client.CheckStopping(ctx, v.request(t))
			if err != nil {
				t.Fatal(err)
			}
			want := v.Response
			if got.Stop != want.Stop || len(got.Criteria) != len(want.Criteria) {
				t.Fatalf("stop %v with %d criteria; want %v with %d", got.Stop, len(got.Criteria),
					want.Stop, len(want.Criteria))
			}
			for i, w := range want.Criteria {
				g := got.Criteria[i]
				if g.Name != w.Name || g.Stop != w.Stop || g.Evaluated != w.Evaluated || g.Detail != w.Detail {
					t.Errorf("criterion %d is %+v; want %+v", i, g, w)
				}
				if !closeEnough(g.Value, w.Value) || !closeEnough(g.Threshold, w.Threshold) {
					t.Errorf("%s value %v threshold %v; want %v and %v", w.Name, g.Value, g.Threshold,
						w.Value, w.Threshold)
				}
				if byName, ok := got.Criterion(w.Name); !ok || byName != g {
					t.Errorf("Criterion(%q) = %+v, %v", w.Name, byName, ok)
				}
			}
			if len(got.Kappas) != len(want.Kappas) {
				t.Fatalf("kappas %v; want %v", got.Kappas, want.Kappas)
			}
			for i := range want.Kappas {
				if !closeEnough(got.Kappas[i], want.Kappas[i]) {
					t.Errorf("kappa %d is %v; want %v", i, got.Kappas[i], want.Kappas[i])
				}
			}
		})
	}
	if !labels {
		t.Error("no stopping vector sends int64 class labels")
	}
}

func TestBadStoppingRequestNamesTheField(t *testing.T) {
	labels, _ := Int64Tensor([]int64{0, 1, 1, 0, 1, 1}, 2, 3)
	threshold := 1.5
	_, err := dial(t).CheckStopping(context.Background(), &StoppingRequest{
		StopSetPredictions: labels, KappaThreshold: &threshold})
	var lwErr *Error
	if !errors.As(err, &lwErr) {
		t.Fatalf("got %v (%T); want *labelwise.Error", err, err)
	}
	if lwErr.Code != codes.InvalidArgument || lwErr.Field() != "kappa_threshold" ||
		!strings.Contains(lwErr.Violations[0].Description, "1.5") {
		t.Fatalf("got %+v; want INVALID_ARGUMENT on field kappa_threshold", lwErr)
	}
	// Negative labels: the violation names the tensor.
	negative, _ := Int64Tensor([]int64{0, -1, 1, 0}, 2, 2)
	_, err = dial(t).CheckStopping(context.Background(), &StoppingRequest{StopSetPredictions: negative})
	if !errors.As(err, &lwErr) || !strings.HasPrefix(lwErr.Field(), "stop_set_predictions") {
		t.Fatalf("got %v; want a violation of stop_set_predictions", err)
	}
}

func TestUnknownStoppingEnumsAreRefusedBeforeSending(t *testing.T) {
	client := dial(t)
	for _, req := range []*StoppingRequest{{Rule: "most"}, {UncertaintyAggregate: "median"}, nil} {
		_, err := client.CheckStopping(context.Background(), req)
		var lwErr *Error
		if err == nil || errors.As(err, &lwErr) {
			t.Errorf("%+v gave %v; want a client-side error", req, err)
		}
	}
}

func TestInt64TensorRoundTrips(t *testing.T) {
	tensor, err := Int64Tensor([]int64{1, -2, 1 << 40}, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 0, 0, 1, 0, 0}
	if !reflect.DeepEqual(tensor.raw, want) {
		t.Fatalf("raw %x; want %x", tensor.raw, want)
	}
	values, err := tensor.Float64s()
	if err != nil || !reflect.DeepEqual(values, []float64{1, -2, 1 << 40}) {
		t.Fatalf("Float64s() = %v, %v", values, err)
	}
	floats, _ := Float32Tensor([]float32{0.5, -3}, 1, 2)
	if values, err := floats.Float64s(); err != nil || !reflect.DeepEqual(values, []float64{0.5, -3}) {
		t.Fatalf("Float64s() = %v, %v", values, err)
	}
	if _, err := Int64Tensor([]int64{1, 2}, 3); err == nil {
		t.Fatal("a shape that does not match the data was accepted")
	}
}
