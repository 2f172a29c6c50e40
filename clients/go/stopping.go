package labelwise

import (
	"context"
	"errors"
	"fmt"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// StoppingRequest is the evidence for CheckStopping. Thresholds left nil take the papers'
// defaults (kappa 0.99 over a window of 3; see the proto's CheckStoppingRequest).
type StoppingRequest struct {
	// The last r rounds' predictions (oldest first) on one fixed stop set of s items:
	// [r, s] class labels (Int64Tensor) or [r, s, c] probabilities.
	StopSetPredictions *Tensor
	PoolProbabilities  *Tensor // [n, c] of the current model, for overall_uncertainty

	KappaThreshold       *float64             // in (0, 1]; nil: 0.99
	KappaWindow          *int64               // >= 1; nil: 3
	UncertaintyThreshold *float64             // entropy in nats, >= 0; nil: 0.01
	UncertaintyAggregate UncertaintyAggregate // "": mean
	MaxChangeFraction    *float64             // in [0, 1]; nil: 0
	Rule                 StoppingRule         // "": all
}

// UncertaintyAggregate is how overall_uncertainty combines the pool's per-item entropies.
type UncertaintyAggregate string

const (
	AggregateMean UncertaintyAggregate = "mean"
	AggregateMax  UncertaintyAggregate = "max"
)

// StoppingRule is how the criteria's verdicts combine into StoppingVerdict.Stop.
type StoppingRule string

const (
	RuleAll StoppingRule = "all" // stop when every criterion evaluated says stop
	RuleAny StoppingRule = "any" // stop when any criterion evaluated says stop
)

var (
	aggregates = map[UncertaintyAggregate]labelwisev1.UncertaintyAggregate{
		"":            labelwisev1.UncertaintyAggregate_UNCERTAINTY_AGGREGATE_UNSPECIFIED,
		AggregateMean: labelwisev1.UncertaintyAggregate_UNCERTAINTY_AGGREGATE_MEAN,
		AggregateMax:  labelwisev1.UncertaintyAggregate_UNCERTAINTY_AGGREGATE_MAX,
	}
	rules = map[StoppingRule]labelwisev1.StoppingRule{
		"":      labelwisev1.StoppingRule_STOPPING_RULE_UNSPECIFIED,
		RuleAll: labelwisev1.StoppingRule_STOPPING_RULE_ALL,
		RuleAny: labelwisev1.StoppingRule_STOPPING_RULE_ANY,
	}
)

// StoppingCriterion is one criterion's measured value, its threshold and its verdict.
type StoppingCriterion struct {
	Name      string // "stabilizing_predictions", "overall_uncertainty" or "classification_change"
	Value     float64
	Threshold float64
	Stop      bool
	Evaluated bool   // false when the request has too few rounds for it (Stop is then false)
	Detail    string // what was compared, or what is missing
}

// StoppingVerdict is CheckStopping's answer: the combined verdict, each criterion whose
// input the request carries (in the server's order), and the kappa between each pair of
// successive rounds, oldest pair first.
type StoppingVerdict struct {
	Stop     bool
	Criteria []StoppingCriterion
	Kappas   []float64
}

// Criterion is the criterion of that name, and whether the verdict has it.
func (v *StoppingVerdict) Criterion(name string) (StoppingCriterion, bool) {
	for _, c := range v.Criteria {
		if c.Name == name {
			return c, true
		}
	}
	return StoppingCriterion{}, false
}

// CheckStopping says whether labeling can stop, from the last rounds' predictions on a
// fixed stop set and the current model's pool probabilities. The context's deadline is the
// call's deadline. A rejected request returns an *Error whose Violations name the fields.
func (c *Client) CheckStopping(ctx context.Context, req *StoppingRequest) (*StoppingVerdict, error) {
	if req == nil {
		return nil, errors.New("labelwise: nil stopping request")
	}
	aggregate, ok := aggregates[req.UncertaintyAggregate]
	if !ok {
		return nil, fmt.Errorf("labelwise: UncertaintyAggregate must be %q or %q; got %q",
			AggregateMean, AggregateMax, req.UncertaintyAggregate)
	}
	rule, ok := rules[req.Rule]
	if !ok {
		return nil, fmt.Errorf("labelwise: Rule must be %q or %q; got %q", RuleAll, RuleAny, req.Rule)
	}
	message := &labelwisev1.CheckStoppingRequest{
		KappaThreshold: req.KappaThreshold, KappaWindow: req.KappaWindow,
		UncertaintyThreshold: req.UncertaintyThreshold, UncertaintyAggregate: aggregate,
		MaxChangeFraction: req.MaxChangeFraction, Rule: rule,
	}
	if req.StopSetPredictions != nil {
		message.StopSetPredictions = req.StopSetPredictions.message()
	}
	if req.PoolProbabilities != nil {
		message.PoolProbabilities = req.PoolProbabilities.message()
	}
	response, err := c.stub.CheckStopping(ctx, message)
	if err != nil {
		return nil, asError(err)
	}
	verdict := &StoppingVerdict{Stop: response.GetStop(), Kappas: response.GetKappas()}
	for _, criterion := range response.GetCriteria() {
		verdict.Criteria = append(verdict.Criteria, StoppingCriterion{
			Name: criterion.GetName(), Value: criterion.GetValue(), Threshold: criterion.GetThreshold(),
			Stop: criterion.GetStop(), Evaluated: criterion.GetEvaluated(), Detail: criterion.GetDetail(),
		})
	}
	return verdict, nil
}
