package labelwise

import (
	"context"
	"errors"
	"fmt"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// Missing marks an annotation an annotator did not give, in an annotations matrix [l, a].
const Missing = -1

// LabelQualityMethod is how AssessLabels turns annotations into a consensus.
type LabelQualityMethod string

const (
	MethodCrowdlab   LabelQualityMethod = "crowdlab"    // Goh et al. 2022; the default
	MethodDawidSkene LabelQualityMethod = "dawid_skene" // Dawid & Skene 1979
	MethodBayesEM    LabelQualityMethod = "bayes_em"    // the model as the prior, one-coin annotators
)

// AccuracyBound is which end of an annotator's accuracy interval PlanLabeling uses.
type AccuracyBound string

const (
	BoundUpper AccuracyBound = "upper" // the default: interval estimation's optimism
	BoundMean  AccuracyBound = "mean"
	BoundLower AccuracyBound = "lower"
)

var (
	methods = map[LabelQualityMethod]labelwisev1.LabelQualityMethod{
		"":               labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_UNSPECIFIED,
		MethodCrowdlab:   labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_CROWDLAB,
		MethodDawidSkene: labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_DAWID_SKENE,
		MethodBayesEM:    labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_BAYES_EM,
	}
	bounds = map[AccuracyBound]labelwisev1.AccuracyBound{
		"":         labelwisev1.AccuracyBound_ACCURACY_BOUND_UNSPECIFIED,
		BoundUpper: labelwisev1.AccuracyBound_ACCURACY_BOUND_UPPER,
		BoundMean:  labelwisev1.AccuracyBound_ACCURACY_BOUND_MEAN,
		BoundLower: labelwisev1.AccuracyBound_ACCURACY_BOUND_LOWER,
	}
)

// AssessRequest carries labels from several annotators (see the proto's AssessLabelsRequest).
type AssessRequest struct {
	Annotations          *Tensor // [l, a] Int64Tensor of classes, Missing (-1) where not labeled
	LabeledProbabilities *Tensor // [l, c] out-of-sample; required by CROWDLAB, Bayes EM's prior
	Method               LabelQualityMethod
	NumClasses           *int64   // c, when LabeledProbabilities is absent (Dawid-Skene, Bayes EM)
	MaxIterations        *int64   // Dawid-Skene, Bayes EM; nil: 100
	Tolerance            *float64 // Dawid-Skene, Bayes EM; nil: 1e-5
	// Bayes EM: pseudo-labels at the pooled accuracy each annotator's accuracy starts from,
	// in [0, 1e6]; nil: 10.
	AccuracyPriorStrength *float64
}

// LabelAssessment is AssessLabels' answer: per labeled item and per annotator.
type LabelAssessment struct {
	Method               LabelQualityMethod
	ConsensusLabels      []int64
	ConsensusQuality     []float64
	ItemAgreement        []float64
	AnnotatorQuality     []float64
	AnnotatorAgreement   []float64
	AnnotatorLabelCounts []int64
	MajorityVoteLabels   []int64
	AnnotatorWeights     []float64 // CROWDLAB; empty for the others
	ModelWeight          float64   // CROWDLAB; 0 for the others
	Iterations           int64     // Dawid-Skene, Bayes EM; 0 for CROWDLAB
	Confusion            *Tensor   // Dawid-Skene [a, c, c]; nil for the others
	ClassPriors          []float64 // Dawid-Skene; Bayes EM's mean posterior [c]
	// Bayes EM with LabeledProbabilities: the fitted temperature of the model's prior; 0
	// otherwise.
	ModelTemperature float64
}

// AssessLabels gives each labeled item a consensus label and its quality, and each annotator
// a quality score. The context's deadline is the call's deadline. A rejected request returns
// an *Error whose Violations name the fields.
func (c *Client) AssessLabels(ctx context.Context, req *AssessRequest) (*LabelAssessment, error) {
	if req == nil || req.Annotations == nil {
		return nil, errors.New("labelwise: AssessLabels needs Annotations")
	}
	method, ok := methods[req.Method]
	if !ok {
		return nil, fmt.Errorf("labelwise: Method must be %q, %q or %q; got %q", MethodCrowdlab,
			MethodDawidSkene, MethodBayesEM, req.Method)
	}
	message := &labelwisev1.AssessLabelsRequest{Annotations: req.Annotations.message(),
		Method: method, NumClasses: req.NumClasses, MaxIterations: req.MaxIterations,
		Tolerance: req.Tolerance, AccuracyPriorStrength: req.AccuracyPriorStrength}
	if req.LabeledProbabilities != nil {
		message.LabeledProbabilities = req.LabeledProbabilities.message()
	}
	r, err := c.labels.AssessLabels(ctx, message)
	if err != nil {
		return nil, asError(err)
	}
	out := &LabelAssessment{Method: MethodCrowdlab, ConsensusLabels: r.GetConsensusLabels(),
		ConsensusQuality: r.GetConsensusQuality(), ItemAgreement: r.GetItemAgreement(),
		AnnotatorQuality: r.GetAnnotatorQuality(), AnnotatorAgreement: r.GetAnnotatorAgreement(),
		AnnotatorLabelCounts: r.GetAnnotatorLabelCounts(), MajorityVoteLabels: r.GetMajorityVoteLabels(),
		AnnotatorWeights: r.GetAnnotatorWeights(), ModelWeight: r.GetModelWeight(),
		Iterations: r.GetIterations(), ClassPriors: r.GetClassPriors(),
		ModelTemperature: r.GetModelTemperature()}
	switch r.GetMethod() {
	case labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_DAWID_SKENE:
		out.Method = MethodDawidSkene
	case labelwisev1.LabelQualityMethod_LABEL_QUALITY_METHOD_BAYES_EM:
		out.Method = MethodBayesEM
	}
	if r.GetConfusion() != nil {
		out.Confusion = tensorFrom(r.GetConfusion())
	}
	return out, nil
}

// PlanRequest asks which items to label again, which to label first, and by whom (see the
// proto's PlanLabelingRequest).
type PlanRequest struct {
	Annotations          *Tensor // [l, a] as in AssessRequest
	LabeledProbabilities *Tensor // [l, c] out-of-sample
	PoolProbabilities    *Tensor // [n, c]; nil: re-labels only
	AnnotatorCosts       *Tensor // [a] prices; nil: every label costs 1
	Budget               *float64
	K                    int64
	ClampK               bool
	PoolStrategy         string // "" or "activelab", "least_confidence", "margin", "ratio", "entropy"
	AccuracyBound        AccuracyBound
	Alpha                *float64 // nil: 0.05
	Epsilon              *float64 // nil: 0.9
	MaxTasksPerAnnotator *int64
	ExcludeLabeled       []int64
	ExcludePool          []int64
}

// LabelingTask is one planned label: Kind "relabel" (Index is a row of Annotations) or
// "label_first" (a row of PoolProbabilities).
type LabelingTask struct {
	Kind             string
	Index            int64
	Score            float64
	Annotator        int64
	ExpectedAccuracy float64
	Cost             float64
}

// LabelingPlan is PlanLabeling's answer: the tasks best first and what it knows of each
// annotator (the generated messages, in the order of Annotations' columns).
type LabelingPlan struct {
	Tasks                []LabelingTask
	TotalCost            float64
	Annotators           []*labelwisev1.AnnotatorEstimate
	Temperature          float64
	CandidatesConsidered int64
	ConsensusLabels      []int64
}

// PlanLabeling ranks re-labels and first labels on one scale (ActiveLab) and assigns each to
// an annotator within the budget. The context's deadline is the call's deadline. A rejected
// request returns an *Error whose Violations name the fields.
func (c *Client) PlanLabeling(ctx context.Context, req *PlanRequest) (*LabelingPlan, error) {
	if req == nil || req.Annotations == nil || req.LabeledProbabilities == nil {
		return nil, errors.New("labelwise: PlanLabeling needs Annotations and LabeledProbabilities")
	}
	bound, ok := bounds[req.AccuracyBound]
	if !ok {
		return nil, fmt.Errorf("labelwise: AccuracyBound must be %q, %q or %q; got %q", BoundUpper,
			BoundMean, BoundLower, req.AccuracyBound)
	}
	message := &labelwisev1.PlanLabelingRequest{Annotations: req.Annotations.message(),
		LabeledProbabilities: req.LabeledProbabilities.message(), Budget: req.Budget, K: req.K,
		ClampK: req.ClampK, PoolStrategy: req.PoolStrategy, AccuracyBound: bound, Alpha: req.Alpha,
		Epsilon: req.Epsilon, MaxTasksPerAnnotator: req.MaxTasksPerAnnotator,
		ExcludeLabeled: req.ExcludeLabeled, ExcludePool: req.ExcludePool}
	if req.PoolProbabilities != nil {
		message.PoolProbabilities = req.PoolProbabilities.message()
	}
	if req.AnnotatorCosts != nil {
		message.AnnotatorCosts = req.AnnotatorCosts.message()
	}
	r, err := c.labels.PlanLabeling(ctx, message)
	if err != nil {
		return nil, asError(err)
	}
	plan := &LabelingPlan{TotalCost: r.GetTotalCost(), Annotators: r.GetAnnotators(),
		Temperature: r.GetTemperature(), CandidatesConsidered: r.GetCandidatesConsidered(),
		ConsensusLabels: r.GetConsensusLabels()}
	for _, t := range r.GetTasks() {
		kind := "label_first"
		if t.GetKind() == labelwisev1.LabelingKind_LABELING_KIND_RELABEL {
			kind = "relabel"
		}
		plan.Tasks = append(plan.Tasks, LabelingTask{Kind: kind, Index: t.GetIndex(),
			Score: t.GetScore(), Annotator: t.GetAnnotator(),
			ExpectedAccuracy: t.GetExpectedAccuracy(), Cost: t.GetCost()})
	}
	return plan, nil
}
