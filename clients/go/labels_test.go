package labelwise

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

type labelVector struct {
	Request struct {
		Annotations          *vectorTensor `json:"annotations"`
		LabeledProbabilities *vectorTensor `json:"labeled_probabilities"`
		PoolProbabilities    *vectorTensor `json:"pool_probabilities"`
		AnnotatorCosts       *vectorTensor `json:"annotator_costs"`
		Method               string        `json:"method"`
		NumClasses           *int64        `json:"num_classes"`
		// Assess vectors: null (unset) or Bayes EM's pseudo-label count.
		AccuracyPriorStrength *float64 `json:"accuracy_prior_strength"`
		Budget                *float64 `json:"budget"`
		K                     int64    `json:"k"`
		ClampK                bool     `json:"clamp_k"`
		PoolStrategy          string   `json:"pool_strategy"`
		ExcludeLabeled        []int64  `json:"exclude_labeled"`
		ExcludePool           []int64  `json:"exclude_pool"`
	} `json:"request"`
	Response struct {
		Method             string    `json:"method"`
		ConsensusLabels    []int64   `json:"consensus_labels"`
		ConsensusQuality   []float64 `json:"consensus_quality"`
		AnnotatorQuality   []float64 `json:"annotator_quality"`
		MajorityVoteLabels []int64   `json:"majority_vote_labels"`
		ModelTemperature   float64   `json:"model_temperature"`
		Tasks              []struct {
			Kind             string  `json:"kind"`
			Index            int64   `json:"index"`
			Score            float64 `json:"score"`
			Annotator        int64   `json:"annotator"`
			ExpectedAccuracy float64 `json:"expected_accuracy"`
			Cost             float64 `json:"cost"`
		} `json:"tasks"`
		TotalCost            float64 `json:"total_cost"`
		Temperature          float64 `json:"temperature"`
		CandidatesConsidered int64   `json:"candidates_considered"`
	} `json:"response"`
}

func optionalTensor(t *testing.T, v *vectorTensor) *Tensor {
	if v == nil {
		return nil
	}
	return v.tensor(t)
}

func sameInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func closeAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values; want %d", what, len(got), len(want))
	}
	for i := range want {
		if !closeEnough(got[i], want[i]) {
			t.Errorf("%s[%d] = %v; want %v", what, i, got[i], want[i])
		}
	}
}

func TestLabelQualityVectors(t *testing.T) {
	vectors := loadJSON[labelVector](t, "../../tests/vectors/labels/*.json")
	client := dial(t)
	kinds := map[string]bool{}
	for name, v := range vectors {
		in, want := v.Request, v.Response
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if strings.HasPrefix(name, "assess") {
				kinds["assess"] = true
				got, err := client.AssessLabels(ctx, &AssessRequest{
					Annotations:          in.Annotations.tensor(t),
					LabeledProbabilities: optionalTensor(t, in.LabeledProbabilities),
					Method:               LabelQualityMethod(in.Method), NumClasses: in.NumClasses,
					AccuracyPriorStrength: in.AccuracyPriorStrength})
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Method) != want.Method || !sameInts(got.ConsensusLabels, want.ConsensusLabels) ||
					!sameInts(got.MajorityVoteLabels, want.MajorityVoteLabels) {
					t.Fatalf("got %s %v %v; want %s %v %v", got.Method, got.ConsensusLabels,
						got.MajorityVoteLabels, want.Method, want.ConsensusLabels, want.MajorityVoteLabels)
				}
				closeAll(t, "consensus quality", got.ConsensusQuality, want.ConsensusQuality)
				closeAll(t, "annotator quality", got.AnnotatorQuality, want.AnnotatorQuality)
				closeAll(t, "model temperature", []float64{got.ModelTemperature},
					[]float64{want.ModelTemperature})
				return
			}
			kinds["plan"] = true
			got, err := client.PlanLabeling(ctx, &PlanRequest{
				Annotations: in.Annotations.tensor(t), LabeledProbabilities: in.LabeledProbabilities.tensor(t),
				PoolProbabilities: optionalTensor(t, in.PoolProbabilities),
				AnnotatorCosts:    optionalTensor(t, in.AnnotatorCosts), Budget: in.Budget, K: in.K,
				ClampK: in.ClampK, PoolStrategy: in.PoolStrategy, ExcludeLabeled: in.ExcludeLabeled,
				ExcludePool: in.ExcludePool})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Tasks) != len(want.Tasks) || got.CandidatesConsidered != want.CandidatesConsidered {
				t.Fatalf("%d tasks of %d candidates; want %d of %d", len(got.Tasks),
					got.CandidatesConsidered, len(want.Tasks), want.CandidatesConsidered)
			}
			for i, w := range want.Tasks {
				g := got.Tasks[i]
				if g.Kind != w.Kind || g.Index != w.Index || g.Annotator != w.Annotator ||
					!closeEnough(g.Score, w.Score) || !closeEnough(g.Cost, w.Cost) ||
					!closeEnough(g.ExpectedAccuracy, w.ExpectedAccuracy) {
					t.Errorf("task %d is %+v; want %+v", i, g, w)
				}
			}
			closeAll(t, "total cost, temperature", []float64{got.TotalCost, got.Temperature},
				[]float64{want.TotalCost, want.Temperature})
		})
	}
	if !kinds["assess"] || !kinds["plan"] {
		t.Errorf("vectors cover %v; want assess and plan", kinds)
	}
}

// Bayes EM needs no model: num_classes alone gives c, the prior is then the class priors and
// there is no model temperature; accuracy_prior_strength is sent (a negative one is refused).
func TestBayesEMWithoutModel(t *testing.T) {
	annotations, _ := Int64Tensor([]int64{0, 0, Missing, 1, 1, 2, 2, Missing, 2, 0, 1, 0}, 4, 3)
	classes, strength := int64(3), 2.0
	got, err := dial(t).AssessLabels(context.Background(), &AssessRequest{
		Annotations: annotations, Method: MethodBayesEM, NumClasses: &classes,
		AccuracyPriorStrength: &strength})
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != MethodBayesEM || len(got.ConsensusLabels) != 4 || len(got.ClassPriors) != 3 ||
		got.Iterations < 1 || got.ModelTemperature != 0 || got.Confusion != nil ||
		len(got.AnnotatorWeights) != 0 {
		t.Fatalf("got %+v", got)
	}
	if got.ConsensusLabels[0] != 0 || got.ConsensusLabels[2] != 2 {
		t.Errorf("consensus %v; want the unanimous items 0 -> 0 and 2 -> 2", got.ConsensusLabels)
	}
	negative := -1.0
	_, err = dial(t).AssessLabels(context.Background(), &AssessRequest{Annotations: annotations,
		Method: MethodBayesEM, NumClasses: &classes, AccuracyPriorStrength: &negative})
	var lwErr *Error
	if !errors.As(err, &lwErr) || lwErr.Field() != "accuracy_prior_strength" {
		t.Fatalf("got %v; want a violation of accuracy_prior_strength", err)
	}
}

func TestBadPlanNamesTheField(t *testing.T) {
	annotations, _ := Int64Tensor([]int64{0, 1, 1, Missing}, 2, 2)
	p, _ := Float64Tensor([]float64{0.5, 0.5, 0.2, 0.8}, 2, 2)
	_, err := dial(t).PlanLabeling(context.Background(), &PlanRequest{Annotations: annotations,
		LabeledProbabilities: p, K: 0})
	var lwErr *Error
	if !errors.As(err, &lwErr) || lwErr.Code != codes.InvalidArgument || lwErr.Field() != "k" {
		t.Fatalf("got %v; want INVALID_ARGUMENT on field k", err)
	}
	bad, _ := Int64Tensor([]int64{0, 2, 1, Missing}, 2, 2)
	_, err = dial(t).AssessLabels(context.Background(), &AssessRequest{Annotations: bad,
		LabeledProbabilities: p})
	if !errors.As(err, &lwErr) || lwErr.Field() != "annotations" {
		t.Fatalf("got %v; want a violation of annotations", err)
	}
	if _, err := dial(t).PlanLabeling(context.Background(), &PlanRequest{Annotations: annotations,
		LabeledProbabilities: p, K: 1, AccuracyBound: "best"}); err == nil {
		t.Fatal("an unknown AccuracyBound was sent")
	}
}
